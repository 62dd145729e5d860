package reqkey

import (
	"context"
	"hash/maphash"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/request"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		parts []string
		spec  string
		err   string
	}{
		{[]string{"consumer"}, "[consumer]", ""},
		{[]string{"ip", "route", "path", "method"}, "[ip, route, path, method]", ""},
		{[]string{"header:x-api-key"}, "[header:X-Api-Key]", ""},
		{[]string{" header: x-user "}, "[header:X-User]", ""},
		{[]string{"cookie:session", "param:id", "query:page[size]"}, "[cookie:session, param:id, query:page[size]]", ""},
		{nil, "", "at least one part"},
		{[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}, "", "at most 8 parts"},
		{[]string{"user"}, "", `key[0]: unknown key part "user" (valid: consumer, ip, route, path, method, header:<Name>, cookie:<name>, param:<name>, query:<name>, claim:<name>)`},
		{[]string{""}, "", `key[0]: unknown key part ""`},
		{[]string{"ip", "header:"}, "", `key[1]: "header:": header name missing (write header:<name>)`},
		{[]string{"header"}, "", `key[0]: "header": header name missing (write header:<name>)`},
		{[]string{"header:Bad Name"}, "", `key[0]: "header:Bad Name": header name "Bad Name" is not a valid token`},
		{[]string{"header:a:b"}, "", `header name "a:b" is not a valid token`},
		{[]string{"cookie"}, "", "cookie name missing"},
		{[]string{"cookie:a=b"}, "", `cookie name "a=b" is not a valid token`},
		{[]string{"param:"}, "", `key[0]: "param:": param name missing`},
		{[]string{"param:a/b"}, "", `param name "a/b" is not a valid token`},
		{[]string{"query:a&b"}, "", `query parameter name "a&b" may not contain`},
		{[]string{"query:a\x00"}, "", "query parameter name"},
		{[]string{"Consumer"}, "", `unknown key part "Consumer"`},
		{[]string{"claim:beta", "claim:https://acme.test/roles"}, "[claim:beta, claim:https://acme.test/roles]", ""},
		{[]string{"claim:"}, "", "claim name missing"},
		{[]string{"claim:a b"}, "", `claim name "a b" may not contain`},
		{[]string{"user", "ip", "cookie:"}, "", "key[0]: unknown key part \"user\" (valid: " + Valid + ")\nkey[2]: \"cookie:\": cookie name missing"},
	}
	for _, tc := range tests {
		k, err := Parse(tc.parts)
		if tc.err == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", tc.parts, err)
			} else if k.String() != tc.spec || k.Len() != len(tc.parts) {
				t.Errorf("Parse(%q) = %s (%d parts), want %s", tc.parts, k, k.Len(), tc.spec)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q) error = %v, want it to contain %q", tc.parts, err, tc.err)
		}
	}
}

func TestUsesConsumer(t *testing.T) {
	t.Parallel()
	if !MustParse("ip", "consumer").UsesConsumer() || MustParse("ip", "header:X").UsesConsumer() {
		t.Fatal("UsesConsumer is wrong")
	}
}

// testReq builds a request as the gateway hands it to plugins.
type testReq struct {
	ip       string
	consumer *consumer.Consumer
	route    string
	path     string
	method   string
	header   map[string]string
	params   []string
	target   string
	noRecord bool
	peer     string
	claims   map[string]any
}

func (tr testReq) build() (*http.Request, *request.Record) {
	target := tr.target
	if target == "" {
		target = "/raw"
	}
	r := httptest.NewRequest(tr.method, target, nil)
	if tr.method == "" {
		r.Method = http.MethodGet
	}
	if tr.peer != "" {
		r.RemoteAddr = tr.peer
	}
	for k, v := range tr.header {
		r.Header.Set(k, v)
	}
	if tr.noRecord {
		return r, nil
	}
	rec := &request.Record{Consumer: tr.consumer, Route: tr.route, Path: tr.path, Claims: tr.claims}
	if tr.ip != "" {
		rec.ClientIP = netip.MustParseAddr(tr.ip)
	}
	for i := 0; i+1 < len(tr.params); i += 2 {
		rec.Params.Add(tr.params[i], tr.params[i+1])
	}
	return r.WithContext(request.WithRecord(context.Background(), rec)), rec
}

var (
	alice = &consumer.Consumer{ID: "alice", Name: "alice"}
	bob   = &consumer.Consumer{ID: "bob", Name: "bob"}
	anon  = &consumer.Consumer{ID: "anonymous", Name: "anonymous", Anonymous: true}
	noID  = &consumer.Consumer{Name: "nameless"}
)

// TestValues checks the rendered value of every part, and the missing rule.
func TestValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		key  []string
		req  testReq
		want string
		ok   bool // every part has a value of its own
	}{
		{"consumer", []string{"consumer"}, testReq{ip: "10.0.0.1", consumer: alice}, "alice", true},
		{"consumer: none", []string{"consumer"}, testReq{ip: "10.0.0.1"}, "%ip:10.0.0.1", false},
		{"consumer: anonymous", []string{"consumer"}, testReq{ip: "10.0.0.1", consumer: anon}, "%ip:10.0.0.1", false},
		{"consumer: empty ID", []string{"consumer"}, testReq{ip: "10.0.0.1", consumer: noID}, "%ip:10.0.0.1", false},
		{"consumer: no record", []string{"consumer"}, testReq{noRecord: true, peer: "192.0.2.7:1234"}, "%ip:192.0.2.7", false},
		{"ip", []string{"ip"}, testReq{ip: "2001:db8::1"}, "ip:2001:db8::1", true},
		{"ip: no record", []string{"ip"}, testReq{noRecord: true, peer: "[::ffff:192.0.2.7]:1"}, "ip:192.0.2.7", true},
		{"ip: peer without port", []string{"ip"}, testReq{noRecord: true, peer: "192.0.2.8"}, "ip:192.0.2.8", true},
		{"ip: unknown", []string{"ip"}, testReq{noRecord: true, peer: "pipe"}, "ip:", false},
		{"route", []string{"route"}, testReq{ip: "10.0.0.1", route: "api"}, "api", true},
		{"route: no record", []string{"route"}, testReq{noRecord: true}, "", true},
		{"path", []string{"path"}, testReq{ip: "10.0.0.1", path: "/norm"}, "/norm", true},
		{"path: no record", []string{"path"}, testReq{noRecord: true, target: "/a/b"}, "/a/b", true},
		{"method", []string{"method"}, testReq{ip: "10.0.0.1", method: "PATCH"}, "PATCH", true},
		{"header", []string{"header:x-tenant"}, testReq{ip: "10.0.0.1", header: map[string]string{"X-Tenant": "t1"}}, "t1", true},
		{"header: absent", []string{"header:X-Tenant"}, testReq{ip: "10.0.0.1"}, "%ip:10.0.0.1", false},
		{"header: empty", []string{"header:X-Tenant"}, testReq{ip: "10.0.0.1", header: map[string]string{"X-Tenant": ""}}, "%ip:10.0.0.1", false},
		{"cookie", []string{"cookie:sid"}, testReq{ip: "10.0.0.1", header: map[string]string{"Cookie": `a=1; sid="s 2"; b=3`}}, "s 2", true},
		{"cookie: absent", []string{"cookie:sid"}, testReq{ip: "10.0.0.1", header: map[string]string{"Cookie": "a=1; sidx=2"}}, "%ip:10.0.0.1", false},
		{"cookie: empty", []string{"cookie:sid"}, testReq{ip: "10.0.0.1", header: map[string]string{"Cookie": "sid="}}, "%ip:10.0.0.1", false},
		{"param", []string{"param:id"}, testReq{ip: "10.0.0.1", params: []string{"id", "42"}}, "42", true},
		{"param: absent", []string{"param:id"}, testReq{ip: "10.0.0.1", params: []string{"other", "42"}}, "%ip:10.0.0.1", false},
		{"param: no record", []string{"param:id"}, testReq{noRecord: true, peer: "192.0.2.7:1"}, "%ip:192.0.2.7", false},
		{"query", []string{"query:page"}, testReq{ip: "10.0.0.1", target: "/x?a=1&page=3&page=4"}, "3", true},
		{"query: encoded", []string{"query:page_size"}, testReq{ip: "10.0.0.1", target: "/x?page%5Fsize=%61b+%7C"}, "ab %7C", true},
		{"query: bad encoding used as written", []string{"query:q"}, testReq{ip: "10.0.0.1", target: "/x?q=%zz"}, "%25zz", true},
		{"query: absent", []string{"query:page"}, testReq{ip: "10.0.0.1", target: "/x?pages=3"}, "%ip:10.0.0.1", false},
		{"query: empty", []string{"query:page"}, testReq{ip: "10.0.0.1", target: "/x?page="}, "%ip:10.0.0.1", false},
		{"claim", []string{"claim:beta"}, testReq{ip: "10.0.0.1", claims: map[string]any{"beta": true}}, "true", true},
		{"claim: string", []string{"claim:https://acme.test/tier"}, testReq{ip: "10.0.0.1", claims: map[string]any{"https://acme.test/tier": "gold"}}, "gold", true},
		{"claim: list", []string{"claim:groups"}, testReq{ip: "10.0.0.1", claims: map[string]any{"groups": []any{"a", "b"}}}, "a, b", true},
		{"claim: absent", []string{"claim:beta"}, testReq{ip: "10.0.0.1", claims: map[string]any{"other": true}}, "%ip:10.0.0.1", false},
		{"claim: null", []string{"claim:beta"}, testReq{ip: "10.0.0.1", claims: map[string]any{"beta": nil}}, "%ip:10.0.0.1", false},
		{"claim: control character refused", []string{"claim:n"}, testReq{ip: "10.0.0.1", claims: map[string]any{"n": "a\nb"}}, "%ip:10.0.0.1", false},
		{"claim: no token", []string{"claim:beta"}, testReq{ip: "10.0.0.1"}, "%ip:10.0.0.1", false},
		{"claim: no record", []string{"claim:beta"}, testReq{noRecord: true, peer: "192.0.2.7:1"}, "%ip:192.0.2.7", false},
		{"combination", []string{"consumer", "header:X-A", "ip"}, testReq{ip: "10.0.0.1", consumer: alice, header: map[string]string{"X-A": "v|w"}}, "alice|v%7Cw|ip:10.0.0.1", true},
		{"combination: one missing", []string{"consumer", "method"}, testReq{ip: "10.0.0.2"}, "%ip:10.0.0.2|GET", false},
		{"escaping", []string{"header:A", "consumer"}, testReq{ip: "10.0.0.1", consumer: &consumer.Consumer{ID: "x}|{y%"}, header: map[string]string{"A": "{tag}"}}, "%7Btag%7D|x%7D%7C%7By%25", true},
	}
	for _, tc := range tests {
		k, err := Parse(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		r, rec := tc.req.build()
		if got := k.Render(r, rec); got != tc.want {
			t.Errorf("%s: Render = %q, want %q", tc.desc, got, tc.want)
		}
		if _, ok := k.Sum64(r, rec); ok != tc.ok {
			t.Errorf("%s: Sum64 ok = %v, want %v", tc.desc, ok, tc.ok)
		}
	}
}

// TestSharing checks which requests share a key, through Hash, Sum64 and
// Render alike.
func TestSharing(t *testing.T) {
	t.Parallel()
	h := func(s string) map[string]string { return map[string]string{"X-Key": s} }
	tests := []struct {
		desc   string
		key    []string
		a, b   testReq
		shared bool
	}{
		{"ip: same address", []string{"ip"}, testReq{ip: "10.0.0.1", consumer: alice}, testReq{ip: "10.0.0.1", consumer: bob}, true},
		{"ip: other address", []string{"ip"}, testReq{ip: "10.0.0.1"}, testReq{ip: "10.0.0.2"}, false},
		{"consumer: same consumer", []string{"consumer"}, testReq{ip: "10.0.0.1", consumer: alice}, testReq{ip: "10.0.0.2", consumer: alice}, true},
		{"consumer: other consumers", []string{"consumer"}, testReq{ip: "10.0.0.1", consumer: alice}, testReq{ip: "10.0.0.1", consumer: bob}, false},
		{"consumer: missing, same IP", []string{"consumer"}, testReq{ip: "10.0.0.1"}, testReq{ip: "10.0.0.1", consumer: anon}, true},
		{"consumer: missing, other IPs", []string{"consumer"}, testReq{ip: "10.0.0.1"}, testReq{ip: "10.0.0.2"}, false},
		{"consumer: fallback is not a consumer", []string{"consumer"}, testReq{ip: "10.0.0.1"}, testReq{ip: "10.0.0.1", consumer: &consumer.Consumer{ID: "%ip:10.0.0.1"}}, false},
		{"header: same value", []string{"header:X-Key"}, testReq{ip: "10.0.0.1", header: h("k")}, testReq{ip: "10.0.0.2", header: h("k")}, true},
		{"header: missing, other IPs", []string{"header:X-Key"}, testReq{ip: "10.0.0.1"}, testReq{ip: "10.0.0.2"}, false},
		{"header: missing, same IP", []string{"header:X-Key"}, testReq{ip: "10.0.0.1"}, testReq{ip: "10.0.0.1", header: h("")}, true},
		{"header: a value is not the fallback", []string{"header:X-Key"}, testReq{ip: "10.0.0.1"}, testReq{ip: "10.0.0.1", header: h("%ip:10.0.0.1")}, false},
		{"header: a value is not the fallback's text", []string{"header:X-Key"}, testReq{ip: "10.0.0.1"}, testReq{ip: "10.0.0.1", header: h("10.0.0.1")}, false},
		{"parts do not run together", []string{"header:A", "header:B"},
			testReq{ip: "10.0.0.1", header: map[string]string{"A": "xy", "B": "z"}}, testReq{ip: "10.0.0.1", header: map[string]string{"A": "x", "B": "yz"}}, false},
		{"separator in a value", []string{"header:A", "header:B"},
			testReq{ip: "10.0.0.1", header: map[string]string{"A": "x|y", "B": "z"}}, testReq{ip: "10.0.0.1", header: map[string]string{"A": "x", "B": "y|z"}}, false},
		{"path and method", []string{"path", "method"}, testReq{ip: "10.0.0.1", path: "/a", method: "GET"}, testReq{ip: "10.0.0.2", path: "/a", method: "GET"}, true},
		{"method differs", []string{"path", "method"}, testReq{ip: "10.0.0.1", path: "/a", method: "GET"}, testReq{ip: "10.0.0.1", path: "/a", method: "PUT"}, false},
		{"route", []string{"route"}, testReq{ip: "10.0.0.1", route: "a"}, testReq{ip: "10.0.0.2", route: "b"}, false},
	}
	seed := maphash.MakeSeed()
	for _, tc := range tests {
		k, err := Parse(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		ra, reca := tc.a.build()
		rb, recb := tc.b.build()
		if got := k.Hash(seed, ra, reca) == k.Hash(seed, rb, recb); got != tc.shared {
			t.Errorf("%s: Hash equal = %v, want %v", tc.desc, got, tc.shared)
		}
		sa, _ := k.Sum64(ra, reca)
		sb, _ := k.Sum64(rb, recb)
		if got := sa == sb; got != tc.shared {
			t.Errorf("%s: Sum64 equal = %v, want %v", tc.desc, got, tc.shared)
		}
		if ka, kb := k.Render(ra, reca), k.Render(rb, recb); (ka == kb) != tc.shared {
			t.Errorf("%s: Render %q and %q, want equal = %v", tc.desc, ka, kb, tc.shared)
		}
	}
}

// TestSum64Stable pins the stable hash: a one-part key hashes like the
// value alone (consistent hashing's hash before keys existed), so the
// same key keeps its target across versions and processes.
func TestSum64Stable(t *testing.T) {
	t.Parallel()
	r, rec := testReq{ip: "192.0.2.1", header: map[string]string{"X-User": "u1"}, path: "/p"}.build()
	k := MustParse("header:X-User")
	if h, ok := k.Sum64(r, rec); !ok || h != HashString("u1") {
		t.Fatalf("Sum64 = %x, %v; want %x", h, ok, HashString("u1"))
	}
	if h, _ := MustParse("path").Sum64(r, rec); h != HashString("/p") {
		t.Fatalf("path Sum64 = %x", h)
	}
	ip := netip.MustParseAddr("192.0.2.1").As16()
	if h, _ := MustParse("ip").Sum64(r, rec); h != HashString(string(ip[:])) {
		t.Fatalf("ip Sum64 = %x", h)
	}
	const want = 0x715fdd7b59a9a19f
	if HashString("u1") != want {
		t.Fatalf("HashString(u1) = %#x, want %#x (the stable hash must not change)", HashString("u1"), uint64(want))
	}
}

func TestNoAllocs(t *testing.T) {
	k := MustParse("consumer", "ip", "route", "path", "method", "header:X-A", "cookie:sid", "query:q")
	miss := MustParse("consumer", "header:X-B", "param:id", "cookie:none", "query:none")
	r, rec := testReq{ip: "10.0.0.1", consumer: alice, route: "api", path: "/p", target: "/p?q=1",
		header: map[string]string{"X-A": "a", "Cookie": "sid=1"}}.build()
	seed := maphash.MakeSeed()
	var buf [256]byte
	for name, f := range map[string]func(){
		"Hash":         func() { k.Hash(seed, r, rec) },
		"Hash missing": func() { miss.Hash(seed, r, rec) },
		"Sum64":        func() { k.Sum64(r, rec) },
		"Sum64 miss":   func() { miss.Sum64(r, rec) },
		"Append":       func() { k.Append(buf[:0], r, rec) },
		"Append miss":  func() { miss.Append(buf[:0], r, rec) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { k.Render(r, rec) }); n != 1 {
		t.Errorf("Render: %v allocations, want 1", n)
	}
}

func TestEscape(t *testing.T) {
	t.Parallel()
	if got := Escape("a%b|c{d}e"); got != "a%25b%7Cc%7Bd%7De" {
		t.Fatalf("Escape = %q", got)
	}
}

func TestCookieValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lines []string
		name  string
		want  string
		ok    bool
	}{
		{[]string{"a=1; b=2"}, "b", "2", true},
		{[]string{"a=1", " b = \"x\" "}, "b", "x", true},
		{[]string{"a=1;b"}, "b", "", false},
		{[]string{`b="`}, "b", `"`, true},
		{nil, "b", "", false},
	} {
		v, ok := CookieValue(tc.lines, tc.name)
		if v != tc.want || ok != tc.ok {
			t.Errorf("CookieValue(%q, %q) = %q, %v", tc.lines, tc.name, v, ok)
		}
	}
}
