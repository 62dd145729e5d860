package httpcache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestFlow walks the path the cache plugin takes through this package: key,
// storability, freshness, storing, a fresh hit with Age, a client's
// conditional request answered 304, staleness, revalidation with a 304
// that refreshes the entry, and stale-if-error.
func TestFlow(t *testing.T) {
	ctx := context.Background()
	p := &Policy{}
	store := newMem(t, MemoryOptions{MaxBytes: 1 << 20})
	key, names := flowStore(t, store, p)

	// 4 s later the same request (params in another order) hits fresh.
	r2 := httptest.NewRequest("GET", "http://API.example:80/items?a=1&b=2", nil)
	r2.Header.Set("Accept-Encoding", "gzip")
	got, _ := store.Get(ctx, VariantKey(NewKey(r2, nil, nil), SecondaryKey(names, r2.Header)))
	if got == nil {
		t.Fatal("miss")
	}
	now := t0.Add(4 * time.Second)
	reqCC := RequestCacheControl(r2.Header)
	if d := Decide(&got.Meta, &reqCC, now); d != Fresh {
		t.Fatalf("decision %v", d)
	}
	if AgeValue(&got.Meta, now) != "4" {
		t.Fatalf("age %s", AgeValue(&got.Meta, now))
	}
	// A client revalidating its copy gets a 304 from the cache.
	r2.Header.Set("If-None-Match", `W/"v1"`)
	if !NotModified(r2, got.Header) {
		t.Fatal("conditional request not answered 304")
	}
	out := http.Header{}
	NotModifiedHeader(out, got.Header)
	if out.Get("Etag") != `"v1"` || out.Get("Content-Type") != "" {
		t.Fatalf("304 header %v", out)
	}

	// At t0+15 s it is stale: revalidate with the stored validators.
	now = t0.Add(15 * time.Second)
	if d := Decide(&got.Meta, &reqCC, now); d != Revalidate {
		t.Fatalf("decision %v", d)
	}
	outReq := http.Header{"If-None-Match": {`"client"`}}
	AddValidators(outReq, got.Header)
	if outReq.Get("If-None-Match") != `"v1"` {
		t.Fatalf("validation request %v", outReq)
	}
	// If the upstream is down, stale-if-error lets the entry be served.
	if !got.Meta.StaleIfErrorAllowed(&reqCC, now) {
		t.Fatal("stale-if-error refused")
	}
	// The upstream answers 304: update a copy and store it again.
	nm := hdr("Date", httpDate(now), "Etag", `"v1"`, "Cache-Control", "max-age=100")
	if !Selects304(got.Header, nm) {
		t.Fatal("304 does not select the entry")
	}
	fresh := *got
	fresh.Header = got.Header.Clone()
	fresh.Meta = Update304(fresh.Header, nm, now, now, p)
	_ = store.Set(ctx, &fresh)
	again, _ := store.Get(ctx, key)
	if d := Decide(&again.Meta, &reqCC, now.Add(50*time.Second)); d != Fresh || string(again.Body) != `{"a":1}` {
		t.Fatalf("after 304: %v %q", d, again.Body)
	}
	// The old entry, still held by earlier readers, did not change.
	if got.Header.Get("Cache-Control") != "max-age=10, stale-if-error=60" {
		t.Fatal("stored entry mutated")
	}

	// A POST to the same URL invalidates it.
	post := httptest.NewRequest("POST", "http://api.example/items", nil)
	if !Invalidates(post.Method, 201) {
		t.Fatal("POST 201 does not invalidate")
	}
	if n, _ := store.Purge(ctx, Purge{Prefix: "api.example" + InvalidationTargets(post, nil)[0].Path}); n != 1 {
		t.Fatalf("purged %d", n)
	}
}

// flowStore stores the upstream's first answer, received at t0.
func flowStore(t *testing.T, store *MemoryStore, p *Policy) (Key, []string) {
	ctx := context.Background()
	r := httptest.NewRequest("GET", "http://api.example/items?b=2&a=1", nil)
	r.Header.Set("Accept-Encoding", "gzip")

	// The upstream answers at t0.
	up := hdr("Date", httpDate(t0), "Cache-Control", "max-age=10, stale-if-error=60", "Etag", `"v1"`,
		"Vary", "Accept-Encoding", "Connection", "X-Conn", "X-Conn", "1", "Content-Type", "application/json")
	if ok, why := Storable(r, 200, up, p); !ok {
		t.Fatal(why)
	}
	names, _ := VaryNames(up["Vary"])
	primary := NewKey(r, nil, nil)
	key := VariantKey(primary, SecondaryKey(names, r.Header))
	m := Freshness(up, t0, t0, p)
	e := &Entry{Key: key, Status: 200, Header: StoredHeader(up), Body: []byte(`{"a":1}`), Meta: m, Vary: names,
		Path: "api.example/items", TTL: m.Lifetime + m.StaleIfError + time.Hour}
	if err := store.Set(ctx, e); err != nil {
		t.Fatal(err)
	}
	if e.Header.Get("X-Conn") != "" {
		t.Fatal("Connection-listed field stored")
	}

	return key, names
}
