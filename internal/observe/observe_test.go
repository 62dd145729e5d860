package observe

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestDependencyWarnerLimitsLines(t *testing.T) {
	var buf bytes.Buffer
	d := NewDependencyWarner(slog.New(slog.NewJSONHandler(&buf, nil)), time.Hour)
	for i := 0; i < 5; i++ {
		d.Warn("redis", "rate limit backend failed", errors.New("dial tcp: refused"))
	}
	d.Warn("jwks", "key set fetch failed", nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per key, got %d: %s", len(lines), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["level"] != "WARN" || first["dependency"] != "redis" || first["error"] != "dial tcp: refused" {
		t.Fatalf("line = %v", first)
	}
	var nilWarner *DependencyWarner
	nilWarner.Warn("x", "y", nil) // must not panic
}
