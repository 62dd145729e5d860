package upstream

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
)

// TestPoolUsableAfterClose: a request of a retired snapshot may still end
// after its pool was closed. Ending it must neither panic nor miss the
// shared counters, and closing twice must not release a state twice.
func TestPoolUsableAfterClose(t *testing.T) {
	t.Parallel()
	states := NewStateRegistry()
	u := wrrUpstream(1, 2)
	u.Limits = &config.UpstreamLimits{MaxRequests: 1}
	old, err := NewPool("api", u, nil, states)
	if err != nil {
		t.Fatal(err)
	}
	if !old.Begin() {
		t.Fatal("first request refused")
	}
	tgt := old.Targets[0]
	tgt.State.Begin()
	if !old.AcquireRetry(100, 1) {
		t.Fatal("retry refused")
	}
	// The reload: a new pool for the same upstream shares the states, then
	// the old one is closed (twice, as a forced and a final release would).
	cur, err := NewPool("api", u, nil, states)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	old.Close()
	if n := states.Len(); n != 2 {
		t.Fatalf("states alive after closing the old pool = %d, want 2 (the new pool's)", n)
	}
	if cur.Begin() {
		t.Fatal("breaker admitted a second request while the old one is in flight")
	}
	// The old request ends after its pool was closed.
	old.Report(tgt, Failure, time.Now())
	old.Report(tgt, Success, time.Now())
	old.ReleaseRetry()
	tgt.State.End()
	old.End()
	if a := cur.State().Active(); a != 0 {
		t.Fatalf("pool in-flight after the old request ended = %d, want 0", a)
	}
	if n := cur.Targets[0].State.Inflight(); n != 0 {
		t.Fatalf("target in-flight = %d, want 0", n)
	}
	if !cur.Begin() {
		t.Fatal("breaker stayed open after the old request ended")
	}
	cur.End()
	req := httptest.NewRequest("GET", "/", nil)
	f := old.NewFilter(time.Now())
	if _, err := old.Pick(req, &f); err != nil {
		t.Fatalf("pick on a closed pool: %v", err)
	}
	cur.Close()
	if n := states.Len(); n != 0 {
		t.Fatalf("states alive after closing every pool = %d, want 0", n)
	}
}
