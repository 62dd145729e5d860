package hmacauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

const (
	aliceSecret = "alice-secret-0123456789"
	bobSecret   = "bob-secret-9876543210xx"
)

// epoch is the gateway's clock in these tests.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testStore(t testing.TB) consumer.Store {
	t.Helper()
	return plugintest.Store(t, []*config.Consumer{
		{Name: "alice", ID: "c-1", Credentials: config.Credentials{
			HMACAuth: []config.HMACCredential{{KeyID: "alice-key", Secret: aliceSecret}},
		}},
		{Name: "bob", Credentials: config.Credentials{
			HMACAuth: []config.HMACCredential{{KeyID: "bob-key", Secret: bobSecret}},
		}},
		{Name: "guest"},
	})
}

// mustBuild builds the plugin with its clock at epoch.
func mustBuild(t testing.TB, src string, store consumer.Store) (*HMACAuth, http.Handler) {
	t.Helper()
	in := plugintest.MustBuildWithStore(t, Name, src, store)
	p := in.Plugin.(*HMACAuth)
	p.now = func() time.Time { return epoch }
	return p, p.Wrap(http.HandlerFunc(upstream))
}

// upstream reads the whole body and reports it with the identity headers.
func upstream(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	plugintest.EchoIdentity(w.Header(), r)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// signed describes a request and how to sign it.
type signed struct {
	method, target, body string
	date                 time.Time
	dateHeader           string // "Date" (default) or "X-Date"
	keyID, secret, alg   string
	headers              string // signed header list
	noDigest             bool
	// tamper changes the request after signing.
	tamper func(r *http.Request)
}

func digestOf(body string) string {
	s := sha256.Sum256([]byte(body))
	return "SHA-256=" + base64.StdEncoding.EncodeToString(s[:])
}

func (s signed) request() *http.Request {
	if s.method == "" {
		s.method = http.MethodGet
	}
	if s.target == "" {
		s.target = "/orders?id=7&x=a%20b"
	}
	if s.date.IsZero() {
		s.date = epoch
	}
	if s.dateHeader == "" {
		s.dateHeader = "Date"
	}
	if s.keyID == "" {
		s.keyID = "alice-key"
	}
	if s.secret == "" {
		s.secret = aliceSecret
	}
	if s.alg == "" {
		s.alg = "hmac-sha256"
	}
	if s.headers == "" {
		s.headers = "@request-target " + strings.ToLower(s.dateHeader)
		if s.body != "" && !s.noDigest {
			s.headers += " digest"
		}
	}
	var body io.Reader
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	r := httptest.NewRequest(s.method, "http://api.example.com"+s.target, body)
	r.Header.Set(s.dateHeader, s.date.Format(http.TimeFormat))
	if s.body != "" && !s.noDigest {
		r.Header.Set("Digest", digestOf(s.body))
	}
	var lines []string
	for _, h := range strings.Fields(s.headers) {
		switch h {
		case "@request-target":
			lines = append(lines, h+": "+strings.ToLower(s.method)+" "+s.target)
		case "host":
			lines = append(lines, h+": "+r.Host)
		default:
			lines = append(lines, h+": "+r.Header.Get(h))
		}
	}
	var newHash func() hash.Hash = sha256.New
	if s.alg == "hmac-sha512" {
		newHash = sha512.New
	}
	mac := hmac.New(newHash, []byte(s.secret))
	mac.Write([]byte(strings.Join(lines, "\n")))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	r.Header.Set("Authorization", fmt.Sprintf(`hmac username="%s", algorithm="%s", headers="%s", signature="%s"`, s.keyID, s.alg, s.headers, sig))
	if s.tamper != nil {
		s.tamper(r)
	}
	return r
}

func TestHMACAuth(t *testing.T) {
	t.Parallel()
	store := testStore(t)
	const challenge = `hmac realm="portico", headers="@request-target date digest"`
	tests := []struct {
		desc   string
		config string
		req    signed
		raw    *http.Request // sent instead of req when set
		status int
		want   map[string]string
		body   string // expected upstream body on success
	}{
		{desc: "valid GET", status: 200, want: map[string]string{"X-Got-Consumer": "alice", "X-Got-Credential": "alice-key"}},
		{
			desc: "valid POST, body restored for the upstream", req: signed{method: "POST", body: `{"qty":3}`},
			status: 200, body: `{"qty":3}`, want: map[string]string{"X-Got-Consumer": "alice"},
		},
		{
			desc: "body of unknown length", req: signed{method: "PUT", body: "streamed", tamper: func(r *http.Request) { r.ContentLength = -1 }},
			status: 200, body: "streamed",
		},
		{desc: "hmac-sha512", req: signed{alg: "hmac-sha512", keyID: "bob-key", secret: bobSecret}, status: 200, want: map[string]string{"X-Got-Consumer": "bob"}},
		{desc: "sha512 refused when not allowed", config: "algorithms: [hmac-sha256]", req: signed{alg: "hmac-sha512"}, status: 401},
		{desc: "x-date instead of date", req: signed{dateHeader: "X-Date"}, status: 200},
		{desc: "host and extra headers signed", req: signed{headers: "@request-target host date"}, status: 200},
		{desc: "date within skew", req: signed{date: epoch.Add(-299 * time.Second)}, status: 200},
		{desc: "custom clock_skew", config: "clock_skew: 10s", req: signed{date: epoch.Add(-11 * time.Second)}, status: 401},
		{desc: "wrong secret", req: signed{secret: bobSecret}, status: 401, want: map[string]string{"WWW-Authenticate": challenge}},
		{desc: "unknown key id", req: signed{keyID: "nobody"}, status: 401},
		{desc: "expired date", req: signed{date: epoch.Add(-301 * time.Second)}, status: 401},
		{desc: "future date beyond skew", req: signed{date: epoch.Add(301 * time.Second)}, status: 401},
		{
			desc: "date changed after signing", req: signed{tamper: func(r *http.Request) {
				r.Header.Set("Date", epoch.Add(time.Second).Format(http.TimeFormat))
			}}, status: 401,
		},
		{
			desc: "path changed after signing", req: signed{tamper: func(r *http.Request) {
				r.RequestURI = "/orders?id=8&x=a%20b"
			}}, status: 401,
		},
		{
			desc: "body tampered", status: 401,
			req: signed{method: "POST", body: `{"qty":3}`, tamper: func(r *http.Request) {
				r.Body = io.NopCloser(strings.NewReader(`{"qty":9}`))
			}},
		},
		{
			desc: "digest mismatch", status: 401,
			req: signed{method: "POST", body: `{"qty":3}`, headers: "@request-target date digest", tamper: func(r *http.Request) {
				r.Header.Set("Digest", digestOf("other"))
			}},
		},
		{desc: "body without digest", req: signed{method: "POST", body: "data", noDigest: true}, status: 401},
		{desc: "body without digest, enforce_digest false", config: "enforce_digest: false", req: signed{method: "POST", body: "data", noDigest: true}, status: 200, body: "data"},
		{desc: "digest present but not signed", req: signed{method: "POST", body: "data", headers: "@request-target date"}, status: 401},
		{desc: "request-target not signed", req: signed{headers: "date"}, status: 401},
		{desc: "date not signed", req: signed{headers: "@request-target"}, status: 401},
		{desc: "required header not signed", config: "required_headers: ['@request-target', date, host]", status: 401},
		{desc: "required host signed", config: "required_headers: ['@request-target', date, host]", req: signed{headers: "@request-target date host"}, status: 200},
		{
			desc: "signed header missing from request", req: signed{headers: "@request-target date x-tenant"}, status: 401,
		},
		{desc: "body too large", config: "max_body_bytes: 8", req: signed{method: "POST", body: "0123456789"}, status: 413},
		{desc: "missing", raw: httptest.NewRequest("GET", "/x", nil), status: 401, want: map[string]string{"WWW-Authenticate": challenge}},
		{desc: "other scheme", raw: withAuth(`Basic YTpi`), status: 401},
		{desc: "garbled parameters", raw: withAuth(`hmac username=alice-key`), status: 401},
		{desc: "missing signature", raw: withAuth(`hmac username="alice-key", algorithm="hmac-sha256", headers="date"`), status: 401},
		{desc: "bad base64 signature", raw: withAuth(`hmac username="alice-key", algorithm="hmac-sha256", headers="date", signature="!!"`), status: 401},
		{
			desc: "anonymous on wrong secret", config: "anonymous: guest", req: signed{secret: bobSecret}, status: 200,
			want: map[string]string{"X-Got-Consumer": "guest", "X-Got-Anonymous": "true"},
		},
		{
			desc: "anonymous on missing", config: "anonymous: guest", raw: httptest.NewRequest("GET", "/x", nil), status: 200,
			want: map[string]string{"X-Got-Consumer": "guest", "X-Got-Anonymous": "true"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, h := mustBuild(t, tc.config, store)
			r := tc.raw
			if r == nil {
				r = tc.req.request()
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			plugintest.ExpectAnswer(t, w, tc.status, tc.want)
			if tc.status == 200 && w.Body.String() != tc.body {
				t.Errorf("upstream body = %q, want %q", w.Body.String(), tc.body)
			}
		})
	}
}

func withAuth(v string) *http.Request {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Date", epoch.Format(http.TimeFormat))
	r.Header.Set("Authorization", v)
	return r
}

func TestReplay(t *testing.T) {
	t.Parallel()
	p, h := mustBuild(t, "", testStore(t))
	req := signed{method: "POST", body: "pay 10"}
	send := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req.request())
		return w.Code
	}
	if c := send(); c != 200 {
		t.Fatalf("first: status %d", c)
	}
	if c := send(); c != 401 {
		t.Fatalf("replay: status %d, want 401", c)
	}
	// The same signature with different (ignored) padding bits is the
	// same signature and must not slip past the replay check.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	r := req.request()
	a := r.Header.Get("Authorization")
	i := strings.Index(a, `signature="`) + len(`signature="`)
	j := len(a) - 1 // the closing quote
	sig := a[i:j]   // 44 characters ending in one "="
	flipped := alphabet[strings.IndexByte(alphabet, sig[len(sig)-2])^1]
	r.Header.Set("Authorization", a[:i]+sig[:len(sig)-2]+string(flipped)+"="+a[j:])
	w0 := httptest.NewRecorder()
	h.ServeHTTP(w0, r)
	if w0.Code != 401 {
		t.Fatalf("re-encoded replay: status %d, want 401", w0.Code)
	}
	// Another signature (a different date) is a new request.
	req2 := req
	req2.date = epoch.Add(time.Second)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req2.request())
	if w.Code != 200 {
		t.Fatalf("new date: status %d", w.Code)
	}
	// Once the date has left the window the replay is refused as expired,
	// and the entry may be forgotten.
	p.now = func() time.Time { return epoch.Add(301 * time.Second) }
	if c := send(); c != 401 {
		t.Fatalf("late replay: status %d", c)
	}
}

func TestReplayCacheBounded(t *testing.T) {
	t.Parallel()
	c := newReplayCache(replayShards * 2) // two per shard
	now := epoch
	for i := range 1000 {
		if !c.add("k", []byte(fmt.Sprint(i)), now.Add(time.Duration(i)*time.Second), now) {
			t.Fatalf("entry %d reported as a replay", i)
		}
	}
	if n := c.len(); n > replayShards*2 {
		t.Fatalf("cache holds %d entries, bound %d", n, replayShards*2)
	}
	// The newest entry survives eviction and is still detected.
	if c.add("k", []byte("999"), now.Add(time.Hour), now) {
		t.Fatal("newest entry was evicted")
	}
	// Expired entries are not replays.
	later := now.Add(2000 * time.Second)
	if !c.add("k", []byte("999"), later.Add(time.Minute), later) {
		t.Fatal("expired entry counted as a replay")
	}
}

func TestParseAuthorization(t *testing.T) {
	t.Parallel()
	sp, found, ok := parseAuthorization(`HMAC username="k1",algorithm="HMAC-SHA256" , headers="@request-target Date", signature="c2ln", created="1"`)
	if !found || !ok {
		t.Fatalf("found=%v ok=%v", found, ok)
	}
	if sp.keyID != "k1" || sp.algorithm != "hmac-sha256" || strings.Join(sp.headers, " ") != "@request-target date" || string(sp.signature) != "sig" {
		t.Fatalf("parsed %+v", sp)
	}
	bad := []string{
		`hmac`,
		`hmac username="k1", username="k2", algorithm="hmac-sha256", signature="c2ln"`,
		`hmac username="k1", algorithm="hmac-sha256", headers="date date", signature="c2ln"`,
		`hmac username="k1", algorithm="hmac-sha256", headers=" ", signature="c2ln"`,
		`hmac username="k1" algorithm="hmac-sha256", signature="c2ln"`,
		`hmac username="k1, algorithm="hmac-sha256", signature="c2ln`,
	}
	for _, h := range bad {
		if _, found, ok := parseAuthorization(h); !found || ok {
			t.Errorf("%q: found=%v ok=%v, want found and not ok", h, found, ok)
		}
	}
	if _, found, _ := parseAuthorization(`hmacfoo username="k1"`); found {
		t.Error("hmacfoo is not the hmac scheme")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	store := testStore(t)
	tests := []struct{ desc, config, want string }{
		{"unknown field", "skew: 1s", `unknown field "skew"`},
		{"unsupported algorithm", "algorithms: [hmac-sha1]", `unsupported "hmac-sha1"`},
		{"no algorithms", "algorithms: []", "at least one"},
		{"negative skew", "clock_skew: -1s", "clock_skew: must be positive"},
		{"bad size", "max_body_bytes: lots", "invalid size"},
		{"unknown anonymous", "anonymous: nobody", `consumer "nobody" is not defined`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := plugintest.BuildWithStore(t, Name, tc.config, store)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
