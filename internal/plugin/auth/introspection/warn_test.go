package introspection

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/testutil/logbuf"
)

// TestEndpointFailureWarnRateLimited checks that an unreachable endpoint is
// logged at WARN once, not once per request, with the dependency named.
func TestEndpointFailureWarnRateLimited(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	var logs logbuf.Buffer
	p, err := build(t, fmt.Sprintf("{introspection_url: %q, client_id: gw, client_secret: x, timeout: 1s}", deadURL),
		slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if w := do(p, bearer(fmt.Sprint("token-", i))); w.Code != 401 {
			t.Fatalf("status %d, want 401", w.Code)
		}
	}
	var warns []map[string]any
	for _, l := range logs.Lines(t) {
		if l["msg"] == "token introspection failed" {
			warns = append(warns, l)
		}
	}
	if len(warns) != 1 {
		t.Fatalf("%d warning lines for 5 failures, want 1: %s", len(warns), logs.String())
	}
	if w := warns[0]; w["level"] != "WARN" || w["dependency"] != "oauth2_introspection" || !strings.Contains(fmt.Sprint(w["error"]), "refused") {
		t.Errorf("warning line %v", w)
	}
}
