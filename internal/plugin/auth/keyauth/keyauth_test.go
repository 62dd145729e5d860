package keyauth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin/auth"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

const (
	aliceKey = "alice-key-0123456789"
	bobKey   = "bob-key-9876543210"
)

func testStore(t testing.TB) consumer.Store {
	t.Helper()
	bobDigest := sha256.Sum256([]byte(bobKey))
	return plugintest.Store(t, []*config.Consumer{
		{Name: "alice", ID: "c-1", Groups: []string{"admins", "dev"}, Credentials: config.Credentials{
			KeyAuth: []config.KeyCredential{{Key: aliceKey}},
		}},
		{Name: "bob", Credentials: config.Credentials{
			KeyAuth: []config.KeyCredential{{KeySHA256: hex.EncodeToString(bobDigest[:])}},
		}},
		{Name: "guest"},
	})
}

func mustBuild(t testing.TB, src string, store consumer.Store) http.Handler {
	t.Helper()
	in := plugintest.MustBuildWithStore(t, Name, src, store)
	return in.Plugin.Wrap(http.HandlerFunc(upstream))
}

// upstream reports what reached it as X-Got-* response headers.
func upstream(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	plugintest.EchoIdentity(h, r)
	h.Set("X-Got-Groups", r.Header.Get(auth.HeaderConsumerGroups))
	h.Set("X-Got-By", r.Header.Get(auth.HeaderAuthenticatedBy))
	h.Set("X-Got-Api-Key", strings.Join(r.Header.Values("X-Api-Key"), ","))
	h.Set("X-Got-Query", r.URL.RawQuery)
	h.Set("X-Got-Cookie", strings.Join(r.Header.Values("Cookie"), " | "))
	w.WriteHeader(http.StatusOK)
}

func TestKeyAuth(t *testing.T) {
	// Table test: its length is the table of cases.
	t.Parallel()
	store := testStore(t)
	aliceID := credentialID(aliceKey)
	tests := []struct {
		desc   string
		config string
		target string
		header map[string]string
		status int
		// want are expected response headers (X-Got-* from upstream, or
		// WWW-Authenticate on a 401).
		want map[string]string
	}{
		{
			desc:   "valid key in default header",
			target: "/x",
			header: map[string]string{"X-API-Key": aliceKey},
			status: 200,
			want: map[string]string{
				"X-Got-Consumer": "alice", "X-Got-Consumer-Id": "c-1", "X-Got-Groups": "admins, dev",
				"X-Got-Credential": aliceID, "X-Got-By": "key_auth", "X-Got-Anonymous": "", "X-Got-Api-Key": "",
			},
		},
		{
			desc:   "valid hashed key in default query parameter",
			target: "/x?a=1&apikey=" + bobKey + "&b=2",
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "bob", "X-Got-Consumer-Id": "bob", "X-Got-Query": "a=1&b=2"},
		},
		{
			desc:   "escaped query parameter",
			target: "/x?api%6Bey=" + strings.ReplaceAll(aliceKey, "-", "%2D"),
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "alice", "X-Got-Query": ""},
		},
		{
			desc:   "key in cookie, other cookies kept",
			config: "cookie_names: [session_key]",
			target: "/x",
			header: map[string]string{"Cookie": "theme=dark; session_key=" + aliceKey + "; lang=en"},
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "alice", "X-Got-Cookie": "theme=dark; lang=en"},
		},
		{
			desc:   "only cookie removed leaves no Cookie header",
			config: "cookie_names: [k]",
			target: "/x",
			header: map[string]string{"Cookie": "k=" + aliceKey},
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "alice", "X-Got-Cookie": ""},
		},
		{
			desc:   "custom header",
			config: "header_names: [Authorization-Key]",
			target: "/x",
			header: map[string]string{"authorization-key": aliceKey},
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "alice"},
		},
		{
			// A key in both places is ambiguous (issue 9): refused, never
			// decided by source order.
			desc:   "key in header and query is refused",
			target: "/x?apikey=" + bobKey,
			header: map[string]string{"X-API-Key": aliceKey},
			status: 400,
		},
		{
			desc:   "hide_credentials false passes the key on",
			config: "hide_credentials: false",
			target: "/x?apikey=" + bobKey,
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "bob", "X-Got-Query": "apikey=" + bobKey},
		},
		{
			desc:   "hide_credentials false keeps header",
			config: "hide_credentials: false",
			target: "/x",
			header: map[string]string{"X-API-Key": aliceKey},
			status: 200,
			want:   map[string]string{"X-Got-Api-Key": aliceKey},
		},
		{
			desc:   "missing key",
			target: "/x?other=1",
			status: 401,
			want:   map[string]string{"WWW-Authenticate": `Key realm="portico"`},
		},
		{
			desc:   "empty key is missing",
			target: "/x?apikey=",
			header: map[string]string{"X-API-Key": ""},
			status: 401,
			want:   map[string]string{"WWW-Authenticate": `Key realm="portico"`},
		},
		{
			desc:   "unknown key",
			target: "/x",
			header: map[string]string{"X-API-Key": "not-a-known-key"},
			status: 401,
			want:   map[string]string{"WWW-Authenticate": `Key realm="portico"`},
		},
		{
			desc:   "query disabled",
			config: "query_names: []",
			target: "/x?apikey=" + aliceKey,
			status: 401,
		},
		{
			desc:   "cookie not configured",
			target: "/x",
			header: map[string]string{"Cookie": "apikey=" + aliceKey},
			status: 401,
		},
		{
			desc:   "anonymous on missing key",
			config: "anonymous: guest",
			target: "/x",
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "guest", "X-Got-Anonymous": "true", "X-Got-Credential": ""},
		},
		{
			desc:   "anonymous on invalid header key, key still hidden",
			config: "anonymous: guest",
			target: "/x",
			header: map[string]string{"X-API-Key": "wrong-key-456"},
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "guest", "X-Got-Anonymous": "true", "X-Got-Api-Key": ""},
		},
		{
			desc:   "anonymous on invalid query key, key still hidden",
			config: "anonymous: guest",
			target: "/x?apikey=wrong-key-123",
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "guest", "X-Got-Anonymous": "true", "X-Got-Query": ""},
		},
		{
			desc:   "two keys are refused even with anonymous",
			config: "anonymous: guest",
			target: "/x?apikey=wrong-key-123",
			header: map[string]string{"X-API-Key": "wrong-key-456"},
			status: 400,
		},
		{
			desc:   "anonymous does not override a valid key",
			config: "anonymous: guest",
			target: "/x",
			header: map[string]string{"X-API-Key": aliceKey},
			status: 200,
			want:   map[string]string{"X-Got-Consumer": "alice", "X-Got-Anonymous": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := mustBuild(t, tc.config, store)
			r := httptest.NewRequest(http.MethodGet, "http://example.com"+tc.target, nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			plugintest.ExpectAnswer(t, w, tc.status, tc.want)
			if body := w.Body.String(); tc.status == 401 && (strings.Contains(body, "missing") || strings.Contains(body, "invalid")) {
				t.Errorf("body reveals the reason: %q", body)
			}
		})
	}
}

func TestKeyAuthConfigErrors(t *testing.T) {
	t.Parallel()
	store := testStore(t)
	tests := []struct {
		desc, config, want string
	}{
		{"unknown field", "key_names: [x]", `unknown field "key_names"`},
		{"no sources", "header_names: []\nquery_names: []", "at least one of"},
		{"bad header name", "header_names: ['bad header']", "not a valid header name"},
		{"bad cookie name", "cookie_names: ['a;b']", "not a valid cookie name"},
		{"empty query name", "query_names: ['']", "must not be empty"},
		{"unknown anonymous", "anonymous: nobody", `consumer "nobody" is not defined`},
		{"bad bool", "hide_credentials: maybe", "expected true or false"},
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

func TestRemoveQuery(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"apikey=1", ""},
		{"a=1&apikey=2", "a=1"},
		{"apikey=1&a=1&apikey=2&b=%20x", "a=1&b=%20x"},
		{"a=1&&b=2&apikey", "a=1&b=2"},
		{"apikeyx=1&xapikey=2", "apikeyx=1&xapikey=2"},
	}
	for _, tc := range tests {
		got, _ := removeQuery(tc.in, []string{"apikey"})
		if got != tc.want {
			t.Errorf("removeQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCredentialIDIsNotTheKey(t *testing.T) {
	t.Parallel()
	id := credentialID(aliceKey)
	d := sha256.Sum256([]byte(aliceKey))
	if len(id) != credentialIDLen || !strings.HasPrefix(hex.EncodeToString(d[:]), id) {
		t.Fatalf("credentialID = %q", id)
	}
}

// BenchmarkKeyAuthLookup measures the plugin handler authenticating a valid
// header key against a store of 100,000 consumers.
func BenchmarkKeyAuthLookup(b *testing.B) {
	const n = 100_000
	cs := make([]*config.Consumer, n)
	for i := range cs {
		cs[i] = &config.Consumer{
			Name:        fmt.Sprintf("consumer-%06d", i),
			Groups:      []string{"bench"},
			Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: fmt.Sprintf("bench-key-%08d-secret", i)}}},
		}
	}
	in := plugintest.MustBuildWithStore(b, Name, "", plugintest.Store(b, cs))
	h := in.Plugin.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	key := fmt.Sprintf("bench-key-%08d-secret", n/2)
	r := httptest.NewRequest(http.MethodGet, "http://example.com/x", nil)
	keyVal := []string{key}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r.Header["X-Api-Key"] = keyVal // removed by hide_credentials
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if got := r.Header.Get(auth.HeaderConsumerUsername); got != fmt.Sprintf("consumer-%06d", n/2) {
		b.Fatalf("consumer = %q", got)
	}
}
