package cache

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// TestUncacheableNotCoalesced: while a URL's answers are not storable,
// concurrent misses for it go upstream side by side instead of waiting for
// each other; once an answer is stored again, it is served.
func TestUncacheableNotCoalesced(t *testing.T) {
	c := plugintest.MustBuild[*Cache](t, Name, "{}")
	var arrivals atomic.Int32
	var storable atomic.Bool
	gate := make(chan struct{})
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrivals.Add(1)
		<-gate
		if storable.Load() {
			w.Header().Set("Cache-Control", "max-age=60")
		} else {
			w.Header().Set("Cache-Control", "no-store")
		}
		_, _ = w.Write([]byte("answer"))
	}))
	newReq := func() *http.Request { return httptest.NewRequest("GET", "http://api.example/live", nil) }
	key := c.primaryKey(newReq())
	var wg sync.WaitGroup
	send := func() {
		wg.Go(func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, newReq())
			if w.Code != 200 || w.Body.String() != "answer" {
				t.Errorf("answer %d %q", w.Code, w.Body.String())
			}
		})
	}

	// Not yet known to be uncacheable: the second request waits for the
	// first one's response, then goes upstream itself.
	send()
	wait.For(t, 5*time.Second, "the first request upstream", func() bool { return arrivals.Load() == 1 })
	send()
	wait.For(t, 5*time.Second, "the second to wait", func() bool { return c.group.Waiting(key) == 1 })
	gate <- struct{}{}
	wait.For(t, 5*time.Second, "the second upstream", func() bool { return arrivals.Load() == 2 })
	gate <- struct{}{}
	wg.Wait()
	if !c.uncacheable(key) {
		t.Fatal("key not marked uncacheable")
	}

	// Marked: two concurrent requests are upstream at once.
	send()
	send()
	wait.For(t, 5*time.Second, "both requests upstream at once", func() bool { return arrivals.Load() == 4 })
	gate <- struct{}{}
	gate <- struct{}{}
	wg.Wait()

	// Storable again: stored, the mark cleared, then a hit.
	storable.Store(true)
	send()
	wait.For(t, 5*time.Second, "upstream", func() bool { return arrivals.Load() == 5 })
	gate <- struct{}{}
	wg.Wait()
	if c.uncacheable(key) {
		t.Fatal("mark kept after a stored response")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, newReq())
	if w.Header().Get("X-Cache") != "HIT" || arrivals.Load() != 5 {
		t.Fatalf("after storing: X-Cache %q, upstream requests %d", w.Header().Get("X-Cache"), arrivals.Load())
	}
}
