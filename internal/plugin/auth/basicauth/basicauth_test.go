package basicauth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

const (
	clearPass  = "clear-pass-1"
	bcryptPass = "bcrypt pass: with colon"
	argonPass  = "argon-pässword"
)

// argonHash returns a PHC argon2id string for pass.
func argonHash(t testing.TB, pass string, m, iter uint32, par uint8) string {
	t.Helper()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	key := argon2.IDKey([]byte(pass), salt, iter, m, par, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, iter, par,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func testStore(t testing.TB) consumer.Store {
	t.Helper()
	bh, err := bcrypt.GenerateFromPassword([]byte(bcryptPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return plugintest.Store(t, []*config.Consumer{
		{Name: "alice", ID: "c-1", Groups: []string{"admins"}, Credentials: config.Credentials{
			BasicAuth: []config.BasicCredential{{Username: "alice", Password: clearPass}},
		}},
		{Name: "bob", Credentials: config.Credentials{
			BasicAuth: []config.BasicCredential{{Username: "bob", PasswordHash: string(bh)}},
		}},
		{Name: "carol", Credentials: config.Credentials{
			BasicAuth: []config.BasicCredential{{Username: "carol", PasswordHash: argonHash(t, argonPass, 1024, 2, 2)}},
		}},
		{Name: "dave", Credentials: config.Credentials{
			// The parameters of the documented example.
			BasicAuth: []config.BasicCredential{{Username: "dave", PasswordHash: argonHash(t, "dave-pw", 65536, 3, 4)}},
		}},
		{Name: "guest"},
	})
}

func mustBuild(t testing.TB, src string, store consumer.Store) (*BasicAuth, http.Handler) {
	t.Helper()
	in := plugintest.MustBuildWithStore(t, Name, src, store)
	return in.Plugin.(*BasicAuth), in.Plugin.Wrap(http.HandlerFunc(upstream))
}

func upstream(w http.ResponseWriter, r *http.Request) {
	plugintest.EchoIdentity(w.Header(), r)
	w.Header().Set("X-Got-Authorization", r.Header.Get("Authorization"))
	w.WriteHeader(http.StatusOK)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func do(h http.Handler, authz string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://example.com/x", nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	store := testStore(t)
	const challenge = `Basic realm="portico", charset="UTF-8"`
	tests := []struct {
		desc   string
		config string
		authz  string
		status int
		want   map[string]string
	}{
		{
			desc: "clear password", authz: basic("alice", clearPass), status: 200,
			want: map[string]string{"X-Got-Consumer": "alice", "X-Got-Consumer-Id": "c-1", "X-Got-Credential": "alice", "X-Got-Authorization": "", "X-Got-Anonymous": ""},
		},
		{desc: "bcrypt password with a colon", authz: basic("bob", bcryptPass), status: 200, want: map[string]string{"X-Got-Consumer": "bob"}},
		{desc: "argon2id password", authz: basic("carol", argonPass), status: 200, want: map[string]string{"X-Got-Consumer": "carol"}},
		{desc: "argon2id documented parameters", authz: basic("dave", "dave-pw"), status: 200, want: map[string]string{"X-Got-Consumer": "dave"}},
		{desc: "lower-case scheme", authz: "basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+clearPass)), status: 200},
		{
			desc: "hide_credentials false", config: "hide_credentials: false", authz: basic("alice", clearPass), status: 200,
			want: map[string]string{"X-Got-Authorization": basic("alice", clearPass)},
		},
		{desc: "missing", status: 401, want: map[string]string{"WWW-Authenticate": challenge}},
		{desc: "other scheme is missing", authz: "Bearer abc", status: 401, want: map[string]string{"WWW-Authenticate": challenge}},
		{desc: "wrong clear password", authz: basic("alice", "nope"), status: 401, want: map[string]string{"WWW-Authenticate": challenge}},
		{desc: "wrong bcrypt password", authz: basic("bob", "nope"), status: 401},
		{desc: "wrong argon2id password", authz: basic("carol", "nope"), status: 401},
		{desc: "unknown user", authz: basic("mallory", clearPass), status: 401},
		{desc: "bad base64", authz: "Basic !!!notbase64", status: 401},
		{desc: "unpadded base64 is refused", authz: "Basic " + base64.RawStdEncoding.EncodeToString([]byte("alice:"+clearPass+"x")), status: 401},
		{desc: "no colon", authz: "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), status: 401},
		{desc: "empty user", authz: basic("", clearPass), status: 401},
		{desc: "scheme only", authz: "Basic", status: 401},
		{
			desc: "custom realm", config: "realm: internal api", status: 401,
			want: map[string]string{"WWW-Authenticate": `Basic realm="internal api", charset="UTF-8"`},
		},
		{
			desc: "anonymous on missing", config: "anonymous: guest", status: 200,
			want: map[string]string{"X-Got-Consumer": "guest", "X-Got-Anonymous": "true"},
		},
		{
			desc: "anonymous on invalid, Authorization hidden", config: "anonymous: guest", authz: basic("alice", "wrong"), status: 200,
			want: map[string]string{"X-Got-Consumer": "guest", "X-Got-Anonymous": "true", "X-Got-Authorization": ""},
		},
		{
			desc: "anonymous keeps a foreign scheme", config: "anonymous: guest", authz: "Bearer abc", status: 200,
			want: map[string]string{"X-Got-Consumer": "guest", "X-Got-Authorization": "Bearer abc"},
		},
		{
			desc: "anonymous with valid credentials", config: "anonymous: guest", authz: basic("bob", bcryptPass), status: 200,
			want: map[string]string{"X-Got-Consumer": "bob", "X-Got-Anonymous": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, h := mustBuild(t, tc.config, store)
			plugintest.ExpectAnswer(t, do(h, tc.authz), tc.status, tc.want)
		})
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	store := testStore(t)
	for _, user := range []struct{ name, pass string }{{"bob", bcryptPass}, {"carol", argonPass}} {
		t.Run(user.name, func(t *testing.T) {
			t.Parallel()
			p, h := mustBuild(t, "cache_ttl: 10s", store)
			clock := time.Unix(1_700_000_000, 0)
			p.now = func() time.Time { return clock }

			start := time.Now()
			if w := do(h, basic(user.name, user.pass)); w.Code != 200 {
				t.Fatalf("first: status %d", w.Code)
			}
			slow := time.Since(start)
			start = time.Now()
			if w := do(h, basic(user.name, user.pass)); w.Code != 200 {
				t.Fatalf("second: status %d", w.Code)
			}
			fast := time.Since(start)
			if n := p.slowChecks.Load(); n != 1 {
				t.Fatalf("slow checks after a cache hit = %d, want 1", n)
			}
			t.Logf("uncached %v, cached %v", slow, fast)

			// Wrong passwords are never in the cache of successes; each
			// different one is checked (a repeated one is refused from the
			// failure cache, see TestFailureCache).
			for i := range 2 {
				if w := do(h, basic(user.name, fmt.Sprint("wrong-", i))); w.Code != 401 {
					t.Fatalf("wrong password: status %d", w.Code)
				}
			}
			if n := p.slowChecks.Load(); n != 3 {
				t.Fatalf("slow checks after two failures = %d, want 3", n)
			}
			if n := p.cache.len(); n != 1 {
				t.Fatalf("cache entries = %d, want 1", n)
			}

			// After the TTL the hash is checked again.
			clock = clock.Add(11 * time.Second)
			if w := do(h, basic(user.name, user.pass)); w.Code != 200 {
				t.Fatalf("after ttl: status %d", w.Code)
			}
			if n := p.slowChecks.Load(); n != 4 {
				t.Fatalf("slow checks after expiry = %d, want 4", n)
			}
		})
	}
}

func TestCacheDisabled(t *testing.T) {
	t.Parallel()
	p, h := mustBuild(t, "cache_ttl: 0", testStore(t))
	if p.cache != nil {
		t.Fatal("cache_ttl 0 should disable the cache")
	}
	for range 2 {
		if w := do(h, basic("bob", bcryptPass)); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := p.slowChecks.Load(); n != 2 {
		t.Fatalf("slow checks = %d, want 2", n)
	}
}

func TestClearPasswordsAreNotCached(t *testing.T) {
	t.Parallel()
	p, h := mustBuild(t, "", testStore(t))
	for range 2 {
		if w := do(h, basic("alice", clearPass)); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := p.cache.len(); n != 0 {
		t.Fatalf("cache entries = %d, want 0", n)
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	c := newVerifiedCache(time.Minute, 3)
	p := &BasicAuth{}
	now := time.Unix(1_700_000_000, 0)
	for i := range 10 {
		c.put(p.key("u", fmt.Sprint(i)), now)
		if c.len() > 3 {
			t.Fatalf("cache grew to %d entries", c.len())
		}
	}
	if !c.get(p.key("u", "9"), now) {
		t.Fatal("the newest entry was evicted")
	}
	// Expired entries go first.
	later := now.Add(2 * time.Minute)
	c.put(p.key("v", "1"), later)
	if c.len() != 1 || !c.get(p.key("v", "1"), later) {
		t.Fatalf("expired entries were kept: %d entries", c.len())
	}
}

func TestCheckArgon2id(t *testing.T) {
	t.Parallel()
	good := argonHash(t, "pw", 64, 1, 1)
	if !checkArgon2id(good, "pw") || checkArgon2id(good, "px") {
		t.Fatal("argon2id check is wrong")
	}
	parts := strings.Split(good, "$")
	bad := []string{
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=64,t=1", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=64,t=0,p=1", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=1,t=1,p=1", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=99999999,t=1,p=1", 1),
		strings.Replace(good, "m=64,t=1,p=1", "m=64,t=1,p=1,x=2", 1),
		strings.Join(append(parts[:5:5], "!!"), "$"),
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA",
	}
	for _, h := range bad {
		if checkArgon2id(h, "pw") {
			t.Errorf("accepted malformed hash %q", h)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	store := testStore(t)
	tests := []struct{ desc, config, want string }{
		{"unknown field", "realms: x", `unknown field "realms"`},
		{"quote in realm", `realm: 'a"b'`, "realm: must not contain"},
		{"negative ttl", "cache_ttl: -1s", "cache_ttl: must not be negative"},
		{"bad ttl", "cache_ttl: soon", "invalid duration"},
		{"negative size", "cache_size: -1", "cache_size: must not be negative"},
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
