package forwardauth

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
)

// authService is an authorization service whose answer is set per test; it
// remembers the last request it received.
type authService struct {
	*httptest.Server
	calls atomic.Int64
	conns atomic.Int64

	mu     sync.Mutex
	answer http.HandlerFunc
	last   *http.Request
	body   string
}

func newAuthService(t *testing.T, answer http.HandlerFunc) *authService {
	t.Helper()
	s := &authService{answer: answer}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.last, s.body = r, string(b)
		answer := s.answer
		s.mu.Unlock()
		answer(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// seen returns the last request's headers and body.
func (s *authService) seen() (http.Header, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return nil, "", ""
	}
	return s.last.Header, s.body, s.last.Method
}

func testStore(t testing.TB) consumer.Store {
	t.Helper()
	s, err := consumer.NewStore([]*config.Consumer{
		{Name: "alice", ID: "u-alice", Groups: []string{"admins"}},
		{Name: "guest"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func build(t testing.TB, src string) (*ForwardAuth, error) {
	t.Helper()
	p, _, err := plugintest.Build[*ForwardAuth](t, Name, src, plugintest.WithStore(testStore(t)))
	return p, err
}

func mustBuild(t testing.TB, src string) *ForwardAuth {
	t.Helper()
	return plugintest.MustBuild[*ForwardAuth](t, Name, src, plugintest.WithStore(testStore(t)))
}

// upstream echoes the request headers as X-Got-* and the body as its body,
// and counts the requests that reach it.
type upstream struct{ hits atomic.Int64 }

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	for k, v := range r.Header {
		w.Header()["X-Got-"+k] = v
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("X-Upstream", "yes")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// newRequest builds a client request as the gateway hands it to plugins.
func newRequest(method, target, body string, hdr map[string]string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec := &request.Record{RequestID: "req-1", ClientIP: netip.MustParseAddr("203.0.113.7"), Peer: netip.MustParseAddr("10.0.0.1")}
	return r.WithContext(request.WithRecord(r.Context(), rec))
}

func serve(p *ForwardAuth, r *http.Request) (*httptest.ResponseRecorder, *upstream) {
	up := &upstream{}
	w := httptest.NewRecorder()
	p.Wrap(up).ServeHTTP(w, r)
	return w, up
}

// forwardAuthCase is one request of TestForwardAuth, the auth service's
// answer to it and what the plugin must make of it.
type forwardAuthCase struct {
	desc     string
	extra    string
	answer   http.HandlerFunc
	hdr      map[string]string
	wantCode int
	upstream bool
	want     map[string]string // response headers (X-Got-* are upstream request headers)
	wantBody string            // substring of the response body
	missing  []string
}

func TestForwardAuth(t *testing.T) {
	// Table test: its length is the table of cases.
	t.Parallel()
	tests := []forwardAuthCase{
		{
			desc:  "allowed, copied headers reach the upstream, spoofed ones removed",
			extra: ", copy_response_headers: [X-User, x-roles, X-Team]",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-User", "bob")
				w.Header().Add("X-Roles", "admin")
				w.Header().Add("X-Roles", "dev")
				w.Header().Set("X-Not-Copied", "x")
				w.WriteHeader(http.StatusOK)
			},
			hdr:      map[string]string{"Authorization": "Bearer t", "X-User": "mallory", "X-Team": "spoofed"},
			wantCode: 200,
			upstream: true,
			want:     map[string]string{"X-Got-X-User": "bob", "X-Got-X-Roles": "admin", "X-Got-Authorization": "Bearer t"},
			missing:  []string{"X-Got-X-Team", "X-Got-X-Not-Copied", "X-Got-X-Consumer-Id"},
		},
		{
			desc:     "any 2xx allows",
			answer:   func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			wantCode: 200,
			upstream: true,
		},
		{
			desc: "denied 401 relays challenge and body",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="corp"`)
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("X-Internal", "secret")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, "please log in")
			},
			wantCode: 401,
			want:     map[string]string{"Www-Authenticate": `Bearer realm="corp"`, "Content-Type": "text/plain", "X-Request-Id": "req-1"},
			wantBody: "please log in",
			missing:  []string{"X-Internal", "X-Upstream"},
		},
		{
			desc: "denied 403",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `{"reason":"no"}`)
			},
			wantCode: 403,
			wantBody: `{"reason":"no"}`,
		},
		{
			desc: "other 4xx relayed",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = io.WriteString(w, "slow down")
			},
			wantCode: 429,
			wantBody: "slow down",
		},
		{
			desc: "empty refusal gets the gateway error body",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", "Basic")
				w.WriteHeader(http.StatusUnauthorized)
			},
			wantCode: 401,
			want:     map[string]string{"Www-Authenticate": "Basic", "Content-Type": "application/json"},
			wantBody: `"request_id":"req-1"`,
		},
		{
			desc: "redirect to login passed through",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "/login?rd=https%3A%2F%2Fapi.example%2F")
				w.Header().Set("Set-Cookie", "csrf=abc; HttpOnly")
				w.WriteHeader(http.StatusFound)
			},
			wantCode: 302,
			want:     map[string]string{"Location": "/login?rd=https%3A%2F%2Fapi.example%2F", "Set-Cookie": "csrf=abc; HttpOnly"},
		},
		{
			desc:     "5xx fails closed",
			answer:   func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) },
			wantCode: 503,
			wantBody: "authorization service unavailable",
		},
		{
			desc:     "5xx with failure_mode_allow",
			extra:    ", failure_mode_allow: true, copy_response_headers: [X-User]",
			answer:   func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
			hdr:      map[string]string{"X-User": "mallory"},
			wantCode: 200,
			upstream: true,
			missing:  []string{"X-Got-X-User", "X-Got-X-Consumer-Id"},
		},
		{
			desc:  "consumer_header names a configured consumer",
			extra: ", consumer_header: X-Auth-User",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Auth-User", "alice")
			},
			wantCode: 200,
			upstream: true,
			want: map[string]string{
				"X-Got-X-Consumer-Id": "u-alice", "X-Got-X-Consumer-Username": "alice",
				"X-Got-X-Consumer-Groups": "admins", "X-Got-X-Authenticated-By": Name,
			},
		},
		{
			desc:  "consumer_header names an unknown consumer",
			extra: ", consumer_header: X-Auth-User",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Auth-User", "carol@example.org")
			},
			wantCode: 200,
			upstream: true,
			want:     map[string]string{"X-Got-X-Consumer-Id": "carol@example.org", "X-Got-X-Consumer-Username": "carol@example.org"},
			missing:  []string{"X-Got-X-Consumer-Groups", "X-Got-X-Anonymous-Consumer"},
		},
		{
			desc:     "consumer_header absent from the answer",
			extra:    ", consumer_header: X-Auth-User",
			answer:   func(w http.ResponseWriter, r *http.Request) {},
			wantCode: 200,
			upstream: true,
			missing:  []string{"X-Got-X-Consumer-Id"},
		},
		{
			desc:  "anonymous on 401",
			extra: ", anonymous: guest",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
			},
			wantCode: 200,
			upstream: true,
			want:     map[string]string{"X-Got-X-Consumer-Username": "guest", "X-Got-X-Anonymous-Consumer": "true"},
		},
		{
			desc:  "anonymous on redirect",
			extra: ", anonymous: guest",
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/login", http.StatusFound)
			},
			wantCode: 200,
			upstream: true,
			want:     map[string]string{"X-Got-X-Consumer-Username": "guest"},
		},
		{
			desc:  "anonymous does not override 403",
			extra: ", anonymous: guest",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusForbidden)
			},
			wantCode: 403,
		},
		{
			desc: "refusal body is bounded",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, strings.Repeat("x", 200<<10))
			},
			wantCode: 403,
			want:     map[string]string{"Content-Length": fmt.Sprint(64 << 10)},
		},
	}
	plugintest.RunCases(t, tests, func(tc forwardAuthCase) string { return tc.desc }, checkForwardAuth)
}

// checkForwardAuth sends tc's request through a plugin whose auth
// service answers with tc.answer, and checks the answer.
func checkForwardAuth(t *testing.T, tc forwardAuthCase) {
	svc := newAuthService(t, tc.answer)
	p := mustBuild(t, fmt.Sprintf("{url: %q%s}", svc.URL+"/check", tc.extra))
	w, up := serve(p, newRequest(http.MethodGet, "/api/things", "", tc.hdr))
	if w.Code != tc.wantCode {
		t.Fatalf("status %d, want %d (body %.200q)", w.Code, tc.wantCode, w.Body)
	}
	if reached := up.hits.Load() > 0; reached != tc.upstream {
		t.Errorf("upstream reached = %v, want %v", reached, tc.upstream)
	}
	if svc.calls.Load() != 1 {
		t.Errorf("auth service calls = %d, want 1", svc.calls.Load())
	}
	plugintest.HeadersEqual(t, w.Header(), tc.want)
	plugintest.HeadersAbsent(t, w.Header(), tc.missing)
	if tc.wantBody != "" && !strings.Contains(w.Body.String(), tc.wantBody) {
		t.Errorf("body %.200q does not contain %q", w.Body, tc.wantBody)
	}
	if n := w.Header().Get("Content-Length"); n != "" && n != fmt.Sprint(w.Body.Len()) {
		t.Errorf("Content-Length %s for a %d-byte body", n, w.Body.Len())
	}
}

// TestForwardedHeaders checks what the authorization service is told about
// the request.
func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		extra   string
		trusted bool
		tls     bool
		hdr     map[string]string
		want    map[string]string
		missing []string
	}{
		{
			desc: "defaults",
			tls:  true,
			hdr: map[string]string{
				"Authorization": "Bearer t", "Cookie": "session=1", "X-Other": "o",
			},
			want: map[string]string{
				"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/a/b%20c?x=1&y=2",
				"X-Forwarded-Host": "api.example", "X-Forwarded-Proto": "https",
				"X-Forwarded-For": "203.0.113.7", "X-Request-Id": "req-1",
				"Authorization": "Bearer t", "Cookie": "session=1",
			},
			missing: []string{"X-Other", "Content-Type", HeaderBodyPartial},
		},
		{
			desc:    "custom forward_headers",
			extra:   ", forward_headers: [x-other, X-Tenant]",
			hdr:     map[string]string{"Authorization": "Bearer t", "X-Other": "o", "X-Tenant": "t1"},
			want:    map[string]string{"X-Other": "o", "X-Tenant": "t1", "X-Forwarded-Proto": "http"},
			missing: []string{"Authorization", "Cookie"},
		},
		{
			desc:    "no forward_headers",
			extra:   ", forward_headers: []",
			hdr:     map[string]string{"Authorization": "Bearer t"},
			want:    map[string]string{"X-Forwarded-Method": "POST"},
			missing: []string{"Authorization"},
		},
		{
			desc:    "trusted proxy's host and proto are believed",
			trusted: true,
			hdr:     map[string]string{"X-Forwarded-Host": "public.example, inner", "X-Forwarded-Proto": "https"},
			want:    map[string]string{"X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"},
		},
		{
			desc:  "untrusted peer's are not",
			hdr:   map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"},
			want:  map[string]string{"X-Forwarded-Host": "api.example", "X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.7"},
			extra: ", method: post",
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			svc := newAuthService(t, func(http.ResponseWriter, *http.Request) {})
			p := mustBuild(t, fmt.Sprintf("{url: %q%s}", svc.URL, tc.extra))
			r := newRequest(http.MethodPost, "http://api.example/a/b%20c?x=1&y=2", "payload", tc.hdr)
			rec := request.RecordOf(r)
			rec.TrustedPeer, rec.TLS = tc.trusted, tc.tls
			w, up := serve(p, r)
			if w.Code != 200 || up.hits.Load() != 1 {
				t.Fatalf("status %d, upstream hits %d", w.Code, up.hits.Load())
			}
			if got := w.Body.String(); got != "payload" {
				t.Errorf("upstream body %q", got)
			}
			h, body, method := svc.seen()
			if wantMethod := strings.ToUpper(strings.TrimPrefix(tc.extra, ", method: ")); strings.HasPrefix(tc.extra, ", method:") {
				if method != wantMethod {
					t.Errorf("method %s, want %s", method, wantMethod)
				}
			} else if method != http.MethodGet {
				t.Errorf("method %s, want GET", method)
			}
			if body != "" {
				t.Errorf("auth service got a body without forward_body: %q", body)
			}
			for k, v := range tc.want {
				if got := strings.Join(h.Values(k), "|"); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.missing {
				if v, ok := h[http.CanonicalHeaderKey(k)]; ok {
					t.Errorf("%s sent: %q", k, v)
				}
			}
		})
	}
}

func TestForwardBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		extra    string
		body     string
		wantAuth string
		partial  bool
	}{
		{desc: "whole body", extra: "", body: `{"amount":10}`, wantAuth: `{"amount":10}`},
		{desc: "partial body", extra: ", max_body_bytes: 4", body: "0123456789", wantAuth: "0123", partial: true},
		{desc: "exactly the limit", extra: ", max_body_bytes: 10", body: "0123456789", wantAuth: "0123456789"},
		{desc: "large body", extra: "", body: strings.Repeat("z", 100<<10), wantAuth: strings.Repeat("z", 64<<10), partial: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			svc := newAuthService(t, func(http.ResponseWriter, *http.Request) {})
			p := mustBuild(t, fmt.Sprintf("{url: %q, method: POST, forward_body: true%s}", svc.URL, tc.extra))
			w, _ := serve(p, newRequest(http.MethodPost, "/orders", tc.body, map[string]string{"Content-Type": "application/json"}))
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			if got := w.Body.String(); got != tc.body {
				t.Errorf("upstream got %d bytes, want %d", len(got), len(tc.body))
			}
			h, body, _ := svc.seen()
			if body != tc.wantAuth {
				t.Errorf("auth service got %d bytes %.20q, want %d", len(body), body, len(tc.wantAuth))
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type to auth service %q", ct)
			}
			if got := h.Get(HeaderBodyPartial) == "true"; got != tc.partial {
				t.Errorf("partial = %v, want %v", got, tc.partial)
			}
		})
	}
	t.Run("request body too large", func(t *testing.T) {
		t.Parallel()
		svc := newAuthService(t, func(http.ResponseWriter, *http.Request) {})
		p := mustBuild(t, fmt.Sprintf("{url: %q, forward_body: true}", svc.URL))
		r := newRequest(http.MethodPost, "/", strings.Repeat("a", 100), nil)
		w := httptest.NewRecorder()
		r.Body = http.MaxBytesReader(w, r.Body, 10)
		up := &upstream{}
		p.Wrap(up).ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge || up.hits.Load() != 0 || svc.calls.Load() != 0 {
			t.Errorf("status %d, upstream %d, auth calls %d", w.Code, up.hits.Load(), svc.calls.Load())
		}
	})
}

func TestFailures(t *testing.T) {
	t.Parallel()
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	tests := []struct {
		desc     string
		slow     bool
		extra    string
		wantCode int
		upstream bool
	}{
		{desc: "timeout fails closed", slow: true, wantCode: 503},
		{desc: "timeout with failure_mode_allow", slow: true, extra: ", failure_mode_allow: true", wantCode: 200, upstream: true},
		{desc: "unreachable fails closed", wantCode: 503},
		{desc: "unreachable with failure_mode_allow", extra: ", failure_mode_allow: true", wantCode: 200, upstream: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			target := deadURL
			if tc.slow {
				target = newAuthService(t, slow).URL
			}
			p := mustBuild(t, fmt.Sprintf("{url: %q, timeout: 100ms%s}", target, tc.extra))
			start := time.Now()
			w, up := serve(p, newRequest(http.MethodGet, "/", "", map[string]string{"Authorization": "Bearer t"}))
			if el := time.Since(start); el > time.Second {
				t.Errorf("took %v despite the 100ms timeout", el)
			}
			if w.Code != tc.wantCode {
				t.Fatalf("status %d, want %d", w.Code, tc.wantCode)
			}
			if reached := up.hits.Load() > 0; reached != tc.upstream {
				t.Errorf("upstream reached = %v, want %v", reached, tc.upstream)
			}
			if w.Code == 503 {
				if !strings.Contains(w.Body.String(), `"error":"authorization service unavailable"`) ||
					w.Header().Get("Content-Type") != "application/json" {
					t.Errorf("503 body %q", w.Body)
				}
			}
		})
	}
}

// TestConnectionReuse checks that the plugin keeps its connection to the
// authorization service alive between requests.
func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	svc := newAuthService(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "no")
	})
	p := mustBuild(t, fmt.Sprintf("{url: %q}", svc.URL))
	for i := 0; i < 5; i++ {
		if w, _ := serve(p, newRequest(http.MethodGet, "/", "", nil)); w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := svc.conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 calls, want 1", n)
	}
}

// TestGRPCDenied checks that a gRPC client gets a gRPC status, not the
// service's body.
func TestGRPCDenied(t *testing.T) {
	t.Parallel()
	svc := newAuthService(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "<html>no</html>")
	})
	p := mustBuild(t, fmt.Sprintf("{url: %q}", svc.URL))
	w, _ := serve(p, newRequest(http.MethodPost, "/pkg.Svc/Method", "", map[string]string{"Content-Type": "application/grpc"}))
	if w.Code != 200 || w.Header().Get("Grpc-Status") != "7" || w.Body.Len() != 0 {
		t.Errorf("status %d grpc-status %q body %q", w.Code, w.Header().Get("Grpc-Status"), w.Body)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	plugintest.ExpectErrors(t, Name, []plugintest.ConfigError{
		{Desc: "url required", Config: "{method: GET}", Want: []string{"url is required"}},
		{Desc: "bad url", Config: "{url: 'auth:9000'}", Want: []string{"not an http or https URL"}},
		{Desc: "bad method", Config: "{url: 'http://a', method: 'G T'}", Want: []string{"not a valid HTTP method"}},
		{Desc: "negative timeout", Config: "{url: 'http://a', timeout: -1s}", Want: []string{"timeout must be positive"}},
		{Desc: "bad forward header", Config: "{url: 'http://a', forward_headers: ['a b']}", Want: []string{"not a valid header name"}},
		{Desc: "framing header", Config: "{url: 'http://a', forward_headers: [content-length]}", Want: []string{"managed by the HTTP layer"}},
		{Desc: "always sent", Config: "{url: 'http://a', forward_headers: [x-forwarded-uri]}", Want: []string{"always sent"}},
		{Desc: "duplicate", Config: "{url: 'http://a', forward_headers: [Cookie, cookie]}", Want: []string{"listed twice"}},
		{Desc: "identity copy", Config: "{url: 'http://a', copy_response_headers: [X-Consumer-Id]}", Want: []string{"cannot be copied"}},
		{Desc: "host copy", Config: "{url: 'http://a', copy_response_headers: [host]}", Want: []string{"cannot be copied"}},
		{Desc: "bad consumer header", Config: "{url: 'http://a', consumer_header: 'a:b'}", Want: []string{"consumer_header"}},
		{Desc: "negative body", Config: "{url: 'http://a', max_body_bytes: -1}", Want: []string{"max_body_bytes"}},
		{Desc: "unknown anonymous", Config: "{url: 'http://a', anonymous: nobody}", Want: []string{"nobody"}},
		{Desc: "unknown field", Config: "{url: 'http://a', headers: [a]}", Want: []string{`unknown field "headers"`}},
	}, plugintest.WithStore(testStore(t)))
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, "{url: 'http://auth.internal:9000/check'}")
	if p.Method != "GET" || p.client.Timeout != 2*time.Second || p.maxBody != 64<<10 ||
		strings.Join(p.forward, ",") != "Authorization,Cookie" || p.FailureModeAllow || p.ForwardBody {
		t.Errorf("defaults: %s %v %d %v", p.Method, p.client.Timeout, p.maxBody, p.forward)
	}
	if p.transport.MaxIdleConnsPerHost < 2 {
		t.Errorf("MaxIdleConnsPerHost = %d", p.transport.MaxIdleConnsPerHost)
	}
	if _, ok := plugin.Lookup(Name); !ok {
		t.Error("plugin not registered")
	}
}
