package gateway

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/request"
)

// TestMirrorReadBodyReachesEnd: reading a mirrored body of known length
// ahead of the upstream reads on to its end, so the client body's end
// callback runs (it lifts the body read deadline), and the upstream still
// gets every byte.
func TestMirrorReadBodyReachesEnd(t *testing.T) {
	m := &mirror{maxBody: 1 << 10}
	ended := false
	r := httptest.NewRequest("POST", "/api", nil)
	r.Body = request.NewBody(io.NopCloser(strings.NewReader(`{"n":1}`)), func() { ended = true })
	r.ContentLength = 7
	buf, ok := m.readBody(r)
	if !ok || string(buf) != `{"n":1}` {
		t.Fatalf("readBody = %q, %v", buf, ok)
	}
	if !ended {
		t.Error("the body's end was not reached: its read deadline would stay set")
	}
	if got, _ := io.ReadAll(r.Body); string(got) != `{"n":1}` {
		t.Errorf("the upstream's body = %q", got)
	}
}
