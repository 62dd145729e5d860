package acl

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
)

func build(t *testing.T, src string) (http.Handler, error) {
	t.Helper()
	p, _, err := plugintest.Build[plugin.Plugin](t, "acl", src, plugintest.WithRoute("r"))
	if err != nil {
		return nil, err
	}
	return p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })), nil
}

// TestACL: deny wins, allow restricts, and no consumer is 401.
func TestACL(t *testing.T) {
	t.Parallel()
	h, err := build(t, "{allow: [admins, ops], deny: [suspended]}")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc   string
		c      *consumer.Consumer
		status int
	}{
		{desc: "no consumer", c: nil, status: 401},
		{desc: "allowed group", c: &consumer.Consumer{Name: "a", Groups: []string{"ops"}}, status: 204},
		{desc: "denied group wins", c: &consumer.Consumer{Name: "b", Groups: []string{"admins", "suspended"}}, status: 403},
		{desc: "no allowed group", c: &consumer.Consumer{Name: "c", Groups: []string{"users"}}, status: 403},
		{desc: "no groups", c: &consumer.Consumer{Name: "d"}, status: 403},
		{desc: "anonymous judged by its groups", c: &consumer.Consumer{Name: "guest", Anonymous: true, Groups: []string{"ops"}}, status: 204},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r = r.WithContext(request.WithRecord(r.Context(), &request.Record{RequestID: "t", Consumer: tc.c}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
		})
	}
}

// TestACLConfigErrors: empty lists and contradictions are refused at load.
func TestACLConfigErrors(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"{}", "{allow: [a], deny: [a]}", "{allow: ['']}", "{allows: [a]}"} {
		if _, err := build(t, src); err == nil {
			t.Errorf("config %s accepted", src)
		}
	}
}
