package introspection

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	"github.com/portico-gw/portico/internal/testutil/fakeclock"
	"github.com/portico-gw/portico/internal/testutil/steps"
)

// authServer is an RFC 7662 endpoint whose answers are set per token.
type authServer struct {
	*httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	// delay holds each answer back, to let concurrent requests pile up.
	delay   time.Duration
	answers map[string]string
	status  int
	last    *http.Request
	form    url.Values
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	s := &authServer{answers: map[string]string{}, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		delay := s.delay
		s.mu.Unlock()
		time.Sleep(delay) // a slow endpoint on purpose, so concurrent requests pile up behind it
		s.mu.Lock()
		s.last, s.form = r, r.PostForm
		status := s.status
		answer, ok := s.answers[r.PostForm.Get("token")]
		s.mu.Unlock()
		if !ok {
			answer = `{"active":false}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = fmt.Fprint(w, answer)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *authServer) set(token, answer string) {
	s.mu.Lock()
	s.answers[token] = answer
	s.mu.Unlock()
}

func (s *authServer) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

// clock is a settable time source.
type clock = fakeclock.Clock

func testStore(t testing.TB) consumer.Store {
	t.Helper()
	s, err := consumer.NewStore([]*config.Consumer{
		{Name: "alice", ID: "u-alice", Groups: []string{"admins", "dev"}},
		{Name: "guest"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// build decodes src the way the gateway does and provisions the instance.
func build(t testing.TB, src string, log *slog.Logger) (*Introspection, error) {
	t.Helper()
	p, _, err := plugintest.Build[*Introspection](t, Name, src, plugintest.WithStore(testStore(t)), plugintest.WithLogger(log))
	return p, err
}

// setup starts an endpoint and builds a plugin talking to it; extra is
// appended to the config. The plugin runs on a fake clock.
func setup(t *testing.T, extra string) (*authServer, *Introspection, *clock) {
	t.Helper()
	srv := newAuthServer(t)
	src := fmt.Sprintf("{introspection_url: %q, client_id: gateway, client_secret: s3cret%s}", srv.URL+"/introspect", extra)
	p, err := build(t, src, nil)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	clk := fakeclock.New(time.Unix(1_800_000_000, 0))
	p.now = clk.Now
	return srv, p, clk
}

// upstream reports what it received as X-Got-* response headers.
var upstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	for k, v := range r.Header {
		w.Header()["X-Got-"+k] = v
	}
	w.WriteHeader(http.StatusOK)
})

// do sends one request with the given headers through the plugin.
func do(p *Introspection, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/api/things", nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec := &request.Record{RequestID: "req-1"}
	r = r.WithContext(request.WithRecord(r.Context(), rec))
	w := httptest.NewRecorder()
	p.Wrap(upstream).ServeHTTP(w, r)
	return w
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// exp is the fake clock's now plus d, as a JSON NumericDate.
func exp(d time.Duration) int64 { return time.Unix(1_800_000_000, 0).Add(d).Unix() }

// introspectionCase is one request of TestIntrospection, the endpoint's
// answer to it and what the plugin must make of it.
type introspectionCase struct {
	desc      string
	extra     string
	answer    string // introspection answer for token "tok"
	status    int    // endpoint status; 0 means 200
	hdr       map[string]string
	wantCode  int
	want      map[string]string // response headers expected (X-Got-* = upstream)
	missing   []string
	wantCalls int64
}

func TestIntrospection(t *testing.T) {
	// Table test: its length is the table of cases.
	t.Parallel()
	active := fmt.Sprintf(`{"active":true,"sub":"u-42","username":"bob","client_id":"app-1","scope":"read write","exp":%d,"email":"bob@example.org","roles":["a","b"],"tenant":7,"admin":false}`, exp(time.Hour))
	tests := []introspectionCase{
		{
			desc:     "active token",
			answer:   active,
			hdr:      bearer("tok"),
			wantCode: 200,
			want: map[string]string{
				"X-Got-X-Consumer-Id": "u-42", "X-Got-X-Consumer-Username": "bob",
				"X-Got-X-Credential-Identifier": "app-1", "X-Got-X-Authenticated-By": Name,
				"X-Got-Authorization": "Bearer tok",
			},
			missing:   []string{"X-Got-X-Anonymous-Consumer"},
			wantCalls: 1,
		},
		{
			desc:      "scheme is case-insensitive",
			answer:    active,
			hdr:       map[string]string{"Authorization": "bearer tok"},
			wantCode:  200,
			wantCalls: 1,
		},
		{
			desc:      "client_id names the consumer without sub",
			answer:    `{"active":true,"client_id":"svc-7"}`,
			hdr:       bearer("tok"),
			wantCode:  200,
			want:      map[string]string{"X-Got-X-Consumer-Id": "svc-7", "X-Got-X-Consumer-Username": "svc-7"},
			wantCalls: 1,
		},
		{
			desc:      "inactive token",
			answer:    `{"active":false}`,
			hdr:       bearer("tok"),
			wantCode:  401,
			want:      map[string]string{"Www-Authenticate": `Bearer realm="portico", error="invalid_token"`},
			wantCalls: 1,
		},
		{
			desc:      "active but expired",
			answer:    fmt.Sprintf(`{"active":true,"sub":"x","exp":%d}`, exp(-time.Second)),
			hdr:       bearer("tok"),
			wantCode:  401,
			wantCalls: 1,
		},
		{
			desc:      "active but not yet valid",
			answer:    fmt.Sprintf(`{"active":true,"sub":"x","nbf":%d}`, exp(time.Minute)),
			hdr:       bearer("tok"),
			wantCode:  401,
			wantCalls: 1,
		},
		{
			desc:      "active without any identity",
			answer:    `{"active":true}`,
			hdr:       bearer("tok"),
			wantCode:  401,
			wantCalls: 1,
		},
		{
			desc:     "missing token",
			hdr:      nil,
			wantCode: 401,
			want:     map[string]string{"Www-Authenticate": `Bearer realm="portico"`},
		},
		{
			desc:     "other scheme",
			hdr:      map[string]string{"Authorization": "Basic YTpi"},
			wantCode: 401,
		},
		{
			desc:     "malformed token",
			hdr:      map[string]string{"Authorization": "Bearer a b"},
			wantCode: 401,
			want:     map[string]string{"Www-Authenticate": `Bearer realm="portico", error="invalid_token"`},
		},
		{
			desc:      "required scopes present",
			extra:     ", required_scopes: [read, write]",
			answer:    active,
			hdr:       bearer("tok"),
			wantCode:  200,
			wantCalls: 1,
		},
		{
			desc:      "required scope missing",
			extra:     ", required_scopes: [read, admin]",
			answer:    active,
			hdr:       bearer("tok"),
			wantCode:  403,
			want:      map[string]string{"Www-Authenticate": `Bearer realm="portico", error="insufficient_scope", scope="read admin"`},
			missing:   []string{"X-Got-X-Consumer-Id"},
			wantCalls: 1,
		},
		{
			desc:      "scope is not a prefix match",
			extra:     ", required_scopes: [rea]",
			answer:    active,
			hdr:       bearer("tok"),
			wantCode:  403,
			wantCalls: 1,
		},
		{
			desc:   "claims to headers, spoofed copies removed",
			extra:  ", claims_to_headers: {email: X-User-Email, roles: X-Roles, tenant: X-Tenant, admin: X-Admin, absent: X-Absent, scope: X-Authenticated-Scope}",
			answer: active,
			hdr: map[string]string{
				"Authorization": "Bearer tok", "X-User-Email": "evil@example.org", "X-Absent": "spoofed",
			},
			wantCode: 200,
			want: map[string]string{
				"X-Got-X-User-Email": "bob@example.org", "X-Got-X-Roles": "a, b",
				"X-Got-X-Tenant": "7", "X-Got-X-Admin": "false", "X-Got-X-Authenticated-Scope": "read write",
			},
			missing:   []string{"X-Got-X-Absent"},
			wantCalls: 1,
		},
		{
			desc:      "spoofed claim headers removed on refusal path too",
			extra:     ", anonymous: guest, claims_to_headers: {email: X-User-Email}",
			hdr:       map[string]string{"X-User-Email": "evil@example.org"},
			wantCode:  200,
			want:      map[string]string{"X-Got-X-Consumer-Username": "guest", "X-Got-X-Anonymous-Consumer": "true"},
			missing:   []string{"X-Got-X-User-Email"},
			wantCalls: 0,
		},
		{
			desc:      "consumer_claim maps to a configured consumer",
			extra:     ", consumer_claim: username",
			answer:    `{"active":true,"sub":"u-9","username":"alice"}`,
			hdr:       bearer("tok"),
			wantCode:  200,
			want:      map[string]string{"X-Got-X-Consumer-Id": "u-alice", "X-Got-X-Consumer-Username": "alice", "X-Got-X-Consumer-Groups": "admins, dev"},
			wantCalls: 1,
		},
		{
			desc:      "consumer_claim matches a consumer ID",
			extra:     ", consumer_claim: sub",
			answer:    `{"active":true,"sub":"u-alice"}`,
			hdr:       bearer("tok"),
			wantCode:  200,
			want:      map[string]string{"X-Got-X-Consumer-Username": "alice"},
			wantCalls: 1,
		},
		{
			desc:      "consumer_claim names an unknown consumer",
			extra:     ", consumer_claim: username",
			answer:    `{"active":true,"sub":"u-9","username":"mallory"}`,
			hdr:       bearer("tok"),
			wantCode:  401,
			wantCalls: 1,
		},
		{
			desc:      "consumer_claim absent",
			extra:     ", consumer_claim: username",
			answer:    `{"active":true,"sub":"u-9"}`,
			hdr:       bearer("tok"),
			wantCode:  401,
			wantCalls: 1,
		},
		{
			desc:      "anonymous fallback on inactive token",
			extra:     ", anonymous: guest",
			answer:    `{"active":false}`,
			hdr:       bearer("tok"),
			wantCode:  200,
			want:      map[string]string{"X-Got-X-Consumer-Username": "guest", "X-Got-X-Anonymous-Consumer": "true"},
			wantCalls: 1,
		},
		{
			desc:      "anonymous does not bypass scopes",
			extra:     ", anonymous: guest, required_scopes: [admin]",
			answer:    active,
			hdr:       bearer("tok"),
			wantCode:  403,
			wantCalls: 1,
		},
		{
			desc:      "endpoint error fails closed",
			answer:    active,
			status:    http.StatusInternalServerError,
			hdr:       bearer("tok"),
			wantCode:  401,
			want:      map[string]string{"Www-Authenticate": `Bearer realm="portico", error="invalid_token"`},
			wantCalls: 1,
		},
		{
			desc:      "malformed JSON fails closed",
			answer:    `{"active":true,`,
			hdr:       bearer("tok"),
			wantCode:  401,
			wantCalls: 1,
		},
		{
			desc:      "non-boolean active fails closed",
			answer:    `{"active":"true","sub":"x"}`,
			hdr:       bearer("tok"),
			wantCode:  401,
			wantCalls: 1,
		},
	}
	plugintest.RunCases(t, tests, func(tc introspectionCase) string { return tc.desc }, checkIntrospection)
}

// checkIntrospection sends tc's request through a plugin whose endpoint
// answers as tc says, and checks the answer and the endpoint calls.
func checkIntrospection(t *testing.T, tc introspectionCase) {
	srv, p, _ := setup(t, tc.extra)
	if tc.answer != "" {
		srv.set("tok", tc.answer)
	}
	if tc.status != 0 {
		srv.setStatus(tc.status)
	}
	w := do(p, tc.hdr)
	if w.Code != tc.wantCode {
		t.Fatalf("status %d, want %d (body %q)", w.Code, tc.wantCode, w.Body)
	}
	plugintest.HeadersEqual(t, w.Header(), tc.want)
	plugintest.HeadersAbsent(t, w.Header(), tc.missing)
	if got := srv.calls.Load(); got != tc.wantCalls {
		t.Errorf("introspection calls = %d, want %d", got, tc.wantCalls)
	}
	if w.Code >= 400 && !strings.Contains(w.Body.String(), `"request_id":"req-1"`) {
		t.Errorf("error body %q lacks the gateway error shape", w.Body)
	}
}

// TestRequestToEndpoint checks the RFC 7662 request: POST, form body with
// token and hint, client credentials with HTTP Basic.
func TestRequestToEndpoint(t *testing.T) {
	t.Parallel()
	t.Run("basic", func(t *testing.T) {
		t.Parallel()
		srv, p, _ := setup(t, ", token_type_hint: access_token")
		do(p, bearer("abc.DEF-123_~+/="))
		srv.mu.Lock()
		defer srv.mu.Unlock()
		r := srv.last
		if r == nil {
			t.Fatal("endpoint not called")
		}
		if r.Method != http.MethodPost || r.URL.Path != "/introspect" {
			t.Errorf("got %s %s", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q", ct)
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "gateway" || secret != "s3cret" {
			t.Errorf("basic auth = %q %q %v", id, secret, ok)
		}
		if got := srv.form.Get("token"); got != "abc.DEF-123_~+/=" {
			t.Errorf("token = %q", got)
		}
		if got := srv.form.Get("token_type_hint"); got != "access_token" {
			t.Errorf("token_type_hint = %q", got)
		}
	})
	t.Run("credentials are form-encoded", func(t *testing.T) {
		t.Parallel()
		srv := newAuthServer(t)
		p, err := build(t, fmt.Sprintf("{introspection_url: %q, client_id: 'my app', client_secret: 'p:ss/w%%rd'}", srv.URL), nil)
		if err != nil {
			t.Fatal(err)
		}
		do(p, bearer("x"))
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if id, secret, _ := srv.last.BasicAuth(); id != "my+app" || secret != "p%3Ass%2Fw%25rd" {
			t.Errorf("basic auth = %q %q", id, secret)
		}
	})
	t.Run("client_auth none", func(t *testing.T) {
		t.Parallel()
		srv := newAuthServer(t)
		p, err := build(t, fmt.Sprintf("{introspection_url: %q, client_auth: none}", srv.URL), nil)
		if err != nil {
			t.Fatal(err)
		}
		do(p, bearer("x"))
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if v := srv.last.Header.Get("Authorization"); v != "" {
			t.Errorf("Authorization sent: %q", v)
		}
	})
}

func TestCache(t *testing.T) {
	t.Parallel()
	steps.Parallel(t,
		steps.Step{Name: "hit makes no call", Run: cacheHit},
		steps.Step{Name: "entry ends at exp", Run: cacheEndsAtExp},
		steps.Step{Name: "negative cache", Run: cacheNegative},
		steps.Step{Name: "errors are not cached", Run: cacheNoErrors},
		steps.Step{Name: "caching disabled", Run: cacheDisabled},
		steps.Step{Name: "bounded and keyed by digest", Run: cacheBounded},
	)
}

// cacheHit checks that a cached token is not introspected again until
// cache_ttl.
func cacheHit(t *testing.T) {
	srv, p, clk := setup(t, "")
	srv.set("tok", fmt.Sprintf(`{"active":true,"sub":"a","exp":%d}`, exp(time.Hour)))
	for i := 0; i < 3; i++ {
		if w := do(p, bearer("tok")); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
		clk.Advance(time.Minute)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("calls = %d, want 1", n)
	}
	// Past cache_ttl (5m) the token is introspected again.
	clk.Advance(3 * time.Minute)
	do(p, bearer("tok"))
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("calls after cache_ttl = %d, want 2", n)
	}
}

// cacheEndsAtExp checks that a cache entry ends at the token's exp.
func cacheEndsAtExp(t *testing.T) {
	srv, p, clk := setup(t, ", cache_ttl: 1h")
	srv.set("tok", fmt.Sprintf(`{"active":true,"sub":"a","exp":%d}`, exp(time.Second)))
	if w := do(p, bearer("tok")); w.Code != 200 {
		t.Fatalf("first: %d", w.Code)
	}
	clk.Advance(500 * time.Millisecond)
	if w := do(p, bearer("tok")); w.Code != 200 {
		t.Fatalf("before exp: %d", w.Code)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("calls before exp = %d, want 1", n)
	}
	clk.Advance(time.Second)
	// The endpoint still says active with the old exp: refused anyway.
	if w := do(p, bearer("tok")); w.Code != 401 {
		t.Errorf("after exp: %d, want 401", w.Code)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("calls after exp = %d, want 2", n)
	}
}

// cacheNegative checks the caching of inactive tokens.
func cacheNegative(t *testing.T) {
	srv, p, clk := setup(t, ", negative_cache_ttl: 10s")
	for i := 0; i < 3; i++ {
		if w := do(p, bearer("revoked")); w.Code != 401 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("calls = %d, want 1", n)
	}
	clk.Advance(11 * time.Second)
	srv.set("revoked", `{"active":true,"sub":"a"}`)
	if w := do(p, bearer("revoked")); w.Code != 200 {
		t.Errorf("after negative TTL: %d", w.Code)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

// cacheNoErrors checks that endpoint errors are not cached.
func cacheNoErrors(t *testing.T) {
	srv, p, _ := setup(t, "")
	srv.set("tok", `{"active":true,"sub":"a"}`)
	srv.setStatus(http.StatusBadGateway)
	if w := do(p, bearer("tok")); w.Code != 401 {
		t.Fatalf("during outage: %d", w.Code)
	}
	srv.setStatus(http.StatusOK)
	if w := do(p, bearer("tok")); w.Code != 200 {
		t.Fatalf("after outage: %d", w.Code)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

// cacheDisabled checks that a zero cache_ttl introspects every time.
func cacheDisabled(t *testing.T) {
	srv, p, _ := setup(t, ", cache_ttl: -1s, negative_cache_ttl: -1s")
	srv.set("tok", `{"active":true,"sub":"a"}`)
	do(p, bearer("tok"))
	do(p, bearer("tok"))
	do(p, bearer("other"))
	do(p, bearer("other"))
	if n := srv.calls.Load(); n != 4 {
		t.Errorf("calls = %d, want 4", n)
	}
}

// cacheBounded checks the cache bound and that entries are keyed by
// token digest.
func cacheBounded(t *testing.T) {
	srv, p, _ := setup(t, ", cache_max_entries: 3")
	for i := 0; i < 10; i++ {
		tok := fmt.Sprintf("token-%d", i)
		srv.set(tok, `{"active":true,"sub":"a"}`)
		if w := do(p, bearer(tok)); w.Code != 200 {
			t.Fatalf("%s: %d", tok, w.Code)
		}
		if n := p.cache.Len(); n > 3 {
			t.Fatalf("cache holds %d entries, max 3", n)
		}
	}
	digests := map[[32]byte]bool{}
	for i := 0; i < 10; i++ {
		digests[sha256.Sum256([]byte(fmt.Sprintf("token-%d", i)))] = true
	}
	for _, k := range p.cache.Keys() {
		if !digests[k] {
			t.Errorf("cache key %x is not a token digest", k)
		}
	}
}

// TestFailClosed checks that an unreachable endpoint refuses the request
// and logs a warning that does not contain the token.
func TestFailClosed(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	p, err := build(t, fmt.Sprintf("{introspection_url: %q, client_id: gw, client_secret: x, timeout: 1s}", deadURL), log)
	if err != nil {
		t.Fatal(err)
	}
	const token = "very-secret-token-value"
	w := do(p, bearer(token))
	if w.Code != 401 {
		t.Fatalf("status %d, want 401", w.Code)
	}
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="portico", error="invalid_token"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if strings.Contains(w.Body.String(), "introspect") || strings.Contains(w.Body.String(), "refused") {
		t.Errorf("body leaks the cause: %q", w.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if !strings.Contains(out, "level=WARN") {
		t.Errorf("no warning logged: %q", out)
	}
	if strings.Contains(out, token) {
		t.Errorf("log contains the token: %q", out)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestSingleflight checks that concurrent requests with one new token
// cause a single introspection call.
func TestSingleflight(t *testing.T) {
	t.Parallel()
	srv, p, _ := setup(t, "")
	srv.mu.Lock()
	srv.delay = 200 * time.Millisecond
	srv.mu.Unlock()
	srv.set("shared", `{"active":true,"sub":"a"}`)
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() { codes[i] = do(p, bearer("shared")).Code })
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: %d", i, c)
		}
	}
	if got := srv.calls.Load(); got != 1 {
		t.Errorf("calls = %d, want 1", got)
	}
}

// TestSingleflightError checks that every waiter gets the shared failure.
func TestSingleflightError(t *testing.T) {
	t.Parallel()
	srv, p, _ := setup(t, "")
	srv.mu.Lock()
	srv.delay = 100 * time.Millisecond
	srv.mu.Unlock()
	srv.setStatus(http.StatusServiceUnavailable)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 10 {
		wg.Go(func() {
			if do(p, bearer("x")).Code == 401 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 10 {
		t.Errorf("%d of 10 refused, want all", ok.Load())
	}
	if got := srv.calls.Load(); got > 2 {
		t.Errorf("calls = %d, want about 1", got)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	plugintest.ExpectErrors(t, Name, []plugintest.ConfigError{
		{Desc: "url required", Config: "{client_id: a, client_secret: b}", Want: []string{"introspection_url is required"}},
		{Desc: "bad url", Config: "{introspection_url: 'ftp://x', client_id: a, client_secret: b}", Want: []string{"not an http or https URL"}},
		{Desc: "credentials in url", Config: "{introspection_url: 'https://u:p@x/i', client_id: a, client_secret: b}", Want: []string{"not in the URL"}},
		{Desc: "credentials required", Config: "{introspection_url: 'https://x/i'}", Want: []string{"client_id and client_secret are required"}},
		{Desc: "secret with none", Config: "{introspection_url: 'https://x/i', client_auth: none, client_secret: b}", Want: []string{"client_auth is none"}},
		{Desc: "bad client_auth", Config: "{introspection_url: 'https://x/i', client_auth: jwt}", Want: []string{"not one of basic, none"}},
		{Desc: "unknown field", Config: "{introspection_url: 'https://x/i', client_auth: none, ttl: 1s}", Want: []string{`unknown field "ttl"`}},
		{Desc: "bad header", Config: "{introspection_url: 'https://x/i', client_auth: none, claims_to_headers: {sub: 'X Bad'}}", Want: []string{"not a valid header name"}},
		{Desc: "reserved header", Config: "{introspection_url: 'https://x/i', client_auth: none, claims_to_headers: {sub: x-consumer-id}}", Want: []string{"cannot be set"}},
		{Desc: "duplicate header", Config: "{introspection_url: 'https://x/i', client_auth: none, claims_to_headers: {sub: X-A, email: x-a}}", Want: []string{"both map to X-A"}},
		{Desc: "bad scope", Config: "{introspection_url: 'https://x/i', client_auth: none, required_scopes: ['a b']}", Want: []string{"not a valid scope"}},
		{Desc: "negative max", Config: "{introspection_url: 'https://x/i', client_auth: none, cache_max_entries: -1}", Want: []string{"cache_max_entries"}},
		{Desc: "unknown anonymous", Config: "{introspection_url: 'https://x/i', client_auth: none, anonymous: nobody}", Want: []string{"nobody"}},
	}, plugintest.WithStore(testStore(t)))
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	p, err := build(t, "{introspection_url: 'https://idp.example/introspect', client_id: a, client_secret: b}", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.TokenTypeHint != "access_token" || p.timeout != 3*time.Second || p.posTTL != 5*time.Minute ||
		p.negTTL != 10*time.Second || p.CacheMaxEntries != 10000 || p.client.Timeout != 3*time.Second {
		t.Errorf("defaults: hint %q timeout %v ttl %v neg %v max %d", p.TokenTypeHint, p.timeout, p.posTTL, p.negTTL, p.CacheMaxEntries)
	}
	if _, ok := plugin.Lookup(Name); !ok {
		t.Error("plugin not registered")
	}
}

func TestHeaderValueOf(t *testing.T) {
	t.Parallel()
	var claims map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"s":"x","n":1.5,"b":true,"l":["a",2],"o":{"k":"v"},"nl":[["x"]],"crlf":"a\r\nb","null":null}`))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		claim string
		want  string
		ok    bool
	}{
		{"s", "x", true}, {"n", "1.5", true}, {"b", "true", true}, {"l", "a, 2", true},
		{"o", `{"k":"v"}`, true}, {"nl", `[["x"]]`, true}, {"crlf", "", false}, {"null", "", false},
		{"absent", "", false},
	}
	for _, tc := range tests {
		got, err := request.RenderClaim(claims[tc.claim])
		ok := err == nil && got != ""
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %q %v, want %q %v", tc.claim, got, ok, tc.want, tc.ok)
		}
	}
}

func BenchmarkCachedToken(b *testing.B) {
	srv := newAuthServerB(b)
	p, err := build(b, fmt.Sprintf("{introspection_url: %q, client_auth: none}", srv.URL), nil)
	if err != nil {
		b.Fatal(err)
	}
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer bench-token")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		b.Fatalf("status %d", w.Code)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func newAuthServerB(b *testing.B) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, `{"active":true,"sub":"bench"}`)
	}))
	b.Cleanup(s.Close)
	return s
}
