package plugin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

// stamper counts the requests it sees in a counter and stamps them with
// the time, both taken from its context at Provision.
type stamper struct {
	seen *observe.Counter
	now  func() time.Time
}

func (p *stamper) Provision(ctx plugin.Context) error {
	p.seen = ctx.Stats().Counter("test_stamped_total", `route="`+ctx.Route()+`"`)
	p.now = ctx.Clock()
	return nil
}

func (p *stamper) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.seen.Inc()
		w.Header().Set("X-Stamp", p.now().UTC().Format(time.RFC3339))
		next.ServeHTTP(w, r)
	})
}

func init() {
	plugin.Register(plugin.Spec{Name: "test.stamper", Phase: plugin.PhaseInit, New: func() plugin.Plugin { return &stamper{} }})
}

// TestServicesContextStatsAndClock checks that a plugin's counters land in
// the Stats of its context and that it reads time from the context's
// clock, and that a bare StaticContext defaults to time.Now.
func TestServicesContextStatsAndClock(t *testing.T) {
	t.Parallel()
	stats := observe.NewStats()
	fixed := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	p, _, err := plugintest.Build[*stamper](t, "test.stamper", "{}", plugintest.WithStats(stats),
		plugintest.WithClock(func() time.Time { return fixed }))
	if err != nil {
		t.Fatal(err)
	}
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if got := rec.Header().Get("X-Stamp"); got != "2026-03-10T12:00:00Z" {
			t.Errorf("stamp = %q, want the context's clock", got)
		}
	}
	labels := `route="` + plugintest.DefaultRoute + `"`
	if n := stats.Counter("test_stamped_total", labels).Value(); n != 2 {
		t.Errorf("counter in the context's Stats = %d, want 2", n)
	}
	var bare plugin.StaticContext
	if d := time.Since(bare.Clock()()); d < 0 || d > time.Minute {
		t.Errorf("default clock is %v away from time.Now", d)
	}
	if bare.Stats() == nil {
		t.Error("a bare StaticContext has no Stats")
	}
}
