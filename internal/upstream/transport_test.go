package upstream

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
)

// acquire takes a transport from g, failing the test on error, and
// returns it with its release func.
func acquire(t *testing.T, g *Registry, name string, u *config.Upstream) (*Transport, func()) {
	t.Helper()
	tr, release, err := g.Acquire(name, u, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Acquire(%q): %v", name, err)
	}
	return tr, release
}

func registryCfg(connect, header, idle time.Duration, maxIdle int) *config.Upstream {
	return &config.Upstream{
		ConnectTimeout:        config.Duration(connect),
		ResponseHeaderTimeout: config.Duration(header),
		IdleConnTimeout:       config.Duration(idle),
		MaxIdleConnsPerTarget: maxIdle,
	}
}

// TestRegistryShareAndRelease checks that acquiring the same upstream
// settings twice returns one shared, ref-counted transport that stays alive
// until the last release, after which a new acquire builds a fresh one.
func TestRegistryShareAndRelease(t *testing.T) {
	t.Parallel()
	g := NewRegistry()
	u := registryCfg(time.Second, 2*time.Second, 3*time.Second, 8)
	a, relA := acquire(t, g, "api", u)
	b, relB := acquire(t, g, "api", registryCfg(time.Second, 2*time.Second, 3*time.Second, 8))
	if a != b {
		t.Fatal("same settings gave different transports")
	}
	if g.Len() != 1 {
		t.Fatalf("Len = %d, want 1", g.Len())
	}
	relA()
	relA() // a second call of one release does not drop b's reference
	if g.Len() != 1 {
		t.Fatalf("after one release: Len = %d, want 1", g.Len())
	}
	relB()
	if g.Len() != 0 {
		t.Fatalf("after last release Len = %d, want 0", g.Len())
	}
	c, relC := acquire(t, g, "api", u)
	if c == a {
		t.Fatal("acquire after the last release reused the retired transport")
	}
	if g.Len() != 1 {
		t.Fatalf("fresh transport: Len = %d, want 1", g.Len())
	}
	relC()
}

// TestRegistryDistinctSettings checks that any difference in name or in a
// transport-shaping setting yields a separate transport.
func TestRegistryDistinctSettings(t *testing.T) {
	t.Parallel()
	base := func() *config.Upstream { return registryCfg(time.Second, 2*time.Second, 3*time.Second, 8) }
	tests := []struct {
		desc string
		name string
		u    *config.Upstream
	}{
		{desc: "other name", name: "other", u: base()},
		{desc: "connect timeout", name: "api", u: registryCfg(5*time.Second, 2*time.Second, 3*time.Second, 8)},
		{desc: "response header timeout", name: "api", u: registryCfg(time.Second, 9*time.Second, 3*time.Second, 8)},
		{desc: "idle conn timeout", name: "api", u: registryCfg(time.Second, 2*time.Second, 9*time.Second, 8)},
		{desc: "max idle per target", name: "api", u: registryCfg(time.Second, 2*time.Second, 3*time.Second, 9)},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			g := NewRegistry()
			a, relA := acquire(t, g, "api", base())
			b, relB := acquire(t, g, tc.name, tc.u)
			if a == b {
				t.Fatal("different settings shared a transport")
			}
			if g.Len() != 2 {
				t.Fatalf("Len = %d, want 2", g.Len())
			}
			relB()
			if g.Len() != 1 {
				t.Fatalf("Len after releasing one = %d, want 1", g.Len())
			}
			relA()
			if g.Len() != 0 {
				t.Fatalf("Len after releasing both = %d, want 0", g.Len())
			}
		})
	}
}

// TestRegistryTargetsIgnored checks that the targets of an upstream do not
// take part in the transport key: changing the backend list on reload keeps
// the warm transport.
func TestRegistryTargetsIgnored(t *testing.T) {
	t.Parallel()
	g := NewRegistry()
	u1 := registryCfg(time.Second, time.Second, time.Second, 4)
	u1.Targets = []config.Target{{URL: "http://a:1"}}
	u2 := registryCfg(time.Second, time.Second, time.Second, 4)
	u2.Targets = []config.Target{{URL: "http://b:2", Weight: 5}}
	a, relA := acquire(t, g, "api", u1)
	b, relB := acquire(t, g, "api", u2)
	defer relA()
	defer relB()
	if a != b {
		t.Fatal("changing targets replaced the transport")
	}
}

// TestRegistryConcurrent checks that concurrent acquires and releases of the
// same settings keep the ref count consistent, always return the live
// transport, and end with none once the last reference goes.
func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	g := NewRegistry()
	u := registryCfg(time.Second, time.Second, time.Second, 4)
	keep, relKeep := acquire(t, g, "api", u)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				tr, release, err := g.Acquire("api", u, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if tr != keep {
					t.Error("acquire returned a different transport while one reference is held")
					return
				}
				release()
			}
		}()
	}
	wg.Wait()
	if g.Len() != 1 {
		t.Fatalf("Len = %d, want 1", g.Len())
	}
	if again, rel := acquire(t, g, "api", u); again != keep {
		t.Fatal("the transport still held by one reference was replaced")
	} else {
		rel()
	}
	relKeep()
	if g.Len() != 0 {
		t.Fatalf("Len = %d, want 0", g.Len())
	}
}

// TestTransportSettings checks that the built transport applies the
// upstream's settings, ignores proxy environment variables and leaves
// response bodies uncompressed.
func TestTransportSettings(t *testing.T) {
	t.Parallel()
	g := NewRegistry()
	tr, release := acquire(t, g, "api", registryCfg(time.Second, 2*time.Second, 3*time.Second, 7))
	defer release()
	if tr.Proxy != nil {
		t.Error("Proxy is set; upstream traffic must not follow proxy environment variables")
	}
	if !tr.DisableCompression {
		t.Error("DisableCompression is false")
	}
	if tr.ResponseHeaderTimeout != 2*time.Second || tr.IdleConnTimeout != 3*time.Second || tr.MaxIdleConnsPerHost != 7 {
		t.Errorf("ResponseHeaderTimeout %v, IdleConnTimeout %v, MaxIdleConnsPerHost %d; want 2s, 3s, 7",
			tr.ResponseHeaderTimeout, tr.IdleConnTimeout, tr.MaxIdleConnsPerHost)
	}
}

// TestTransportRoundTrip checks that an acquired transport carries a request
// to a real backend and that releasing it afterwards is safe.
func TestTransportRoundTrip(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	g := NewRegistry()
	tr, release := acquire(t, g, "api", registryCfg(time.Second, time.Second, time.Second, 2))
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	release()
	if g.Len() != 0 {
		t.Fatalf("Len = %d, want 0", g.Len())
	}
}

// TestRegistryStaleRelease checks that releasing a transport that was
// already retired does not drop the live transport that replaced it under
// the same settings.
func TestRegistryStaleRelease(t *testing.T) {
	t.Parallel()
	g := NewRegistry()
	u := registryCfg(time.Second, time.Second, time.Second, 4)
	old, relOld := acquire(t, g, "api", u)
	relOld()
	live, relLive := acquire(t, g, "api", u)
	defer relLive()
	if live == old {
		t.Fatal("retired transport was reused")
	}
	relOld() // a second, stale release
	if g.Len() != 1 {
		t.Fatalf("Len = %d after a stale release, want the live transport kept", g.Len())
	}
	again, relAgain := acquire(t, g, "api", u)
	defer relAgain()
	if again != live {
		t.Fatal("acquire after a stale release did not return the live transport")
	}
}
