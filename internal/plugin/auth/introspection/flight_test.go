package introspection

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil/wait"
)

// TestSingleflightCancel checks that the request that started a shared
// introspection call can give up without failing the others: its lookup
// returns its own context's error at once, the call goes on, and a request
// that joined it gets the result.
func TestSingleflightCancel(t *testing.T) {
	t.Parallel()
	srv, p, _ := setup(t, "")
	srv.mu.Lock()
	srv.delay = 300 * time.Millisecond
	srv.mu.Unlock()
	srv.set("shared", `{"active":true,"sub":"a"}`)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := p.lookup(ctx, "shared")
		first <- err
	}()
	// Polling a counter: there is no event to wait on.
	if !wait.Within(5*time.Second, func() bool { return srv.calls.Load() != 0 }) {
		t.Fatal("the endpoint was never called")
	}
	type out struct {
		res *result
		err error
	}
	second := make(chan out, 1)
	go func() {
		res, err := p.lookup(context.Background(), "shared")
		second <- out{res, err}
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled lookup: %v, want context.Canceled", err)
	}
	got := <-second
	if got.err != nil || got.res == nil || !got.res.active {
		t.Fatalf("joined lookup: %+v, %v; want an active result", got.res, got.err)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("endpoint calls = %d, want 1", n)
	}
	if _, ok := p.cache.Get(sha256.Sum256([]byte("shared")), p.now()); !ok {
		t.Error("result of the shared call not cached")
	}
}
