package quota

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
	"github.com/portico-gw/portico/internal/testutil/testredis"
)

// TestRedisDownLogged checks that Redis failures are logged as structured
// JSON WARN lines with dependency "redis", once per interval rather than
// once per request, for both failure policies.
func TestRedisDownLogged(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	type inst struct {
		policy string
		h      http.Handler
		logs   *logbuf.Buffer
	}
	var insts []inst
	for _, policy := range []string{"fail_open", "fail_closed"} {
		p, err := build(t, fmt.Sprintf(`{limit: 5, period: day, on_redis_error: %s, redis: {addr: %q, timeout: 100ms}}`, policy, rs.Addr), nil)
		if err != nil {
			t.Fatal(err)
		}
		logs := new(logbuf.Buffer)
		p.warner = observe.NewDependencyWarner(slog.New(slog.NewJSONHandler(logs, nil)), 0)
		h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		if rr := do(h, cons("alice", nil)); rr.Code != http.StatusOK {
			t.Fatalf("%s with Redis up: %d", policy, rr.Code)
		}
		insts = append(insts, inst{policy, h, logs})
	}
	rs.Stop()
	for _, in := range insts {
		want := http.StatusOK
		if in.policy == "fail_closed" {
			want = http.StatusServiceUnavailable
		}
		for range 30 {
			if rr := do(in.h, cons("alice", nil)); rr.Code != want {
				t.Fatalf("%s with Redis down: %d, want %d", in.policy, rr.Code, want)
			}
		}
		var warns []map[string]any
		for line := range strings.Lines(in.logs.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line is not JSON: %q", line)
			}
			if m["level"] == "WARN" && m["dependency"] == "redis" {
				warns = append(warns, m)
			}
		}
		if len(warns) != 1 {
			t.Fatalf("%s: %d WARN lines about redis for 30 failed requests, want 1:\n%s", in.policy, len(warns), in.logs.String())
		}
		if w := warns[0]; w["error"] == nil || w["on_redis_error"] != in.policy {
			t.Errorf("%s: WARN line %v lacks the error or the policy", in.policy, w)
		}
	}
}
