package upstream

import (
	"log/slog"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
)

// logged returns the lines with msg, failing unless each is at level.
func logged(t *testing.T, lines []map[string]any, msg, level string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range lines {
		if l["msg"] == msg {
			if l["level"] != level {
				t.Errorf("%q logged at %v, want %s", msg, l["level"], level)
			}
			out = append(out, l)
		}
	}
	return out
}

// TestOutlierEjectionLogLevels checks that an outlier ejection is logged
// at WARN, the target's return at INFO, and an ejection refused by
// max_ejection_percent at WARN.
func TestOutlierEjectionLogLevels(t *testing.T) {
	t.Parallel()
	u := wrrUpstream(1, 1, 1, 1)
	u.OutlierDetection = &config.OutlierDetection{ConsecutiveFailures: 2, BaseEjectionTime: config.Duration(10 * time.Second),
		MaxEjectionTime: config.Duration(time.Minute), MaxEjectionPercent: 50}
	p, err := NewPool("api", u, nil, NewStateRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	var logs logbuf.Buffer
	p.SetLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	now := time.Now()
	p.Report(p.Targets[0], Failure, now)
	p.Report(p.Targets[0], Failure, now)
	ej := logged(t, logs.Take(t), "target ejected by outlier detection", "WARN")
	if len(ej) != 1 {
		t.Fatalf("%d ejection lines, want 1", len(ej))
	}
	if ej[0]["pool"] != "api" || ej[0]["target"] != "http://10.0.0.1:80" || ej[0]["ejected_for"] != "10s" {
		t.Errorf("ejection line %v", ej[0])
	}

	later := now.Add(11 * time.Second)
	p.Report(p.Targets[0], Success, later)
	p.Report(p.Targets[0], Success, later)
	if back := logged(t, logs.Take(t), "target back in rotation after outlier ejection", "INFO"); len(back) != 1 {
		t.Fatalf("%d recovery lines, want 1", len(back))
	}

	for _, i := range []int{1, 1, 2, 2, 3, 3} {
		p.Report(p.Targets[i], Failure, later)
	}
	lines := logs.Take(t)
	if n := len(logged(t, lines, "target ejected by outlier detection", "WARN")); n != 2 {
		t.Errorf("%d ejections, want 2 (50%% of 4 targets)", n)
	}
	if n := len(logged(t, lines, "outlier detection did not eject a failing target: max_ejection_percent of the pool is already ejected", "WARN")); n != 1 {
		t.Errorf("%d capped-ejection lines, want 1", n)
	}
}

// TestBreakerOpenLogLevel checks that requests refused by a circuit-breaker
// limit, or for want of an available target, are logged at WARN, at most
// once per interval.
func TestBreakerOpenLogLevel(t *testing.T) {
	t.Parallel()
	u := wrrUpstream(1)
	u.Limits = &config.UpstreamLimits{MaxRequests: 1}
	p, err := NewPool("api", u, nil, NewStateRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	var logs logbuf.Buffer
	p.SetLogger(slog.New(slog.NewJSONHandler(&logs, nil)))

	if !p.Begin() {
		t.Fatal("first request refused")
	}
	defer p.End()
	for range 3 {
		if p.Begin() {
			t.Fatal("request over max_requests admitted")
		}
	}
	lines := logs.Take(t)
	open := logged(t, lines, "upstream circuit breaker open: requests refused at max_requests or max_connections + max_pending", "WARN")
	if len(open) != 1 || open[0]["pool"] != "api" {
		t.Fatalf("breaker lines %v, want one for pool api", open)
	}

	p.Refused(ErrNoTarget)
	if n := len(logged(t, logs.Take(t), "upstream refused a request: no target available (all unhealthy, ejected or delayed)", "WARN")); n != 1 {
		t.Fatalf("%d no-target lines, want 1", n)
	}
}
