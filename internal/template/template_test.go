package template

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/request"
	"go.yaml.in/yaml/v3"
)

// testRequest is a request with every value a placeholder can read.
func testRequest() (*http.Request, *request.Record) {
	r := httptest.NewRequest("GET", "http://api.example.test/users/caf%C3%A9?page=2&q=a+b%26c&empty=", nil)
	r.Header.Set("X-Tenant", "acme")
	r.Header.Set("Cookie", "sid=s-1; theme=dark")
	rec := &request.Record{
		RequestID: "rid-1",
		ClientIP:  netip.MustParseAddr("203.0.113.7"),
		Consumer:  &consumer.Consumer{ID: "c-42", Name: "alice"},
		Claims:    map[string]any{"sub": "user-9", "roles": []any{"admin", "dev"}, "bad": "a\r\nX-Evil: 1"},
		Route:     "users",
		Path:      "/users/caf%C3%A9",
	}
	rec.Params.Add("id", "caf%C3%A9")
	rec.Params.Add("rest", "a/b%2Fc")
	return r, rec
}

func TestRender(t *testing.T) {
	t.Parallel()
	r, rec := testRequest()
	tests := []struct {
		desc, src, want string
	}{
		{"constant", "static", "static"},
		{"empty", "", ""},
		{"param decoded", "${param:id}", "café"},
		{"query decoded", "${query:q}", "a b&c"},
		{"query empty is missing", "[${query:empty|none}]", "[none]"},
		{"header", "t=${header:x-tenant}", "t=acme"},
		{"cookie", "${cookie:sid}", "s-1"},
		{"claim", "${claim:sub}", "user-9"},
		{"claim list", "${claim:roles}", "admin, dev"},
		{"consumer", "${consumer}", "c-42"},
		{"consumer name", "${consumer_name}", "alice"},
		{"ip", "${ip}", "203.0.113.7"},
		{"route", "${route}", "users"},
		{"method", "${method}", "GET"},
		{"path", "${path}", "/users/caf%C3%A9"},
		{"host", "${host}", "api.example.test"},
		{"request id", "${request_id}", "rid-1"},
		{"three", "${consumer}/${header:X-Tenant}/${request_id}", "c-42/acme/rid-1"},
		{"missing renders empty", "[${header:X-None}]", "[]"},
		{"missing default", "${header:X-None|public}", "public"},
		{"present ignores default", "${header:X-Tenant|public}", "acme"},
		{"empty default", "${query:nope|}", ""},
		{"dollar escape", "${$}{header:X-Tenant}", "${header:X-Tenant}"},
		{"lone dollar", "$5 $ $x", "$5 $ $x"},
		{"legacy spelling is literal", "$request_id", "$request_id"},
		{"claim refused as missing", "${claim:bad|refused}", "refused"},
		{"missing param", "${param:nope|d}", "d"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			tp, err := Parse(tc.src)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.src, err)
			}
			if got := string(tp.Append(nil, r, rec)); got != tc.want {
				t.Errorf("Append(%q) = %q, want %q", tc.src, got, tc.want)
			}
			if got, ok := tp.Header(r, rec); !ok || got != tc.want {
				t.Errorf("Header(%q) = %q, %v, want %q", tc.src, got, ok, tc.want)
			}
		})
	}
}

func TestRenderNoRecord(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/x", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	tp := MustParse("${consumer}|${consumer_name}|${request_id}|${param:id}|${claim:sub}|${route}|${ip}|${path}")
	if got, ok := tp.Header(r, nil); !ok || got != "||||||192.0.2.1|/x" {
		t.Errorf("without a record: %q, %v", got, ok)
	}
	anon := &request.Record{Consumer: &consumer.Consumer{ID: "anon", Name: "anonymous", Anonymous: true}}
	if got := string(MustParse("${consumer|none}/${consumer_name|none}").Append(nil, r, anon)); got != "none/none" {
		t.Errorf("anonymous consumer: %q", got)
	}
	noIP := httptest.NewRequest("GET", "/x", nil)
	noIP.RemoteAddr = "pipe"
	if got := string(MustParse("${ip|unknown}").Append(nil, noIP, nil)); got != "unknown" {
		t.Errorf("no client IP: %q", got)
	}
}

func TestHeaderRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"a%0D%0AX-Evil:+1", "a%00b", "a%0Ab", "a%7Fb", "%1B"} {
		r := httptest.NewRequest("GET", "/?v="+raw, nil)
		tp := MustParse("x-${query:v}")
		if v, ok := tp.Header(r, nil); ok {
			t.Errorf("query %q rendered into a header as %q", raw, v)
		}
	}
	r := httptest.NewRequest("GET", "/?v=a%09b", nil)
	if v, ok := MustParse("${query:v}").Header(r, nil); !ok || v != "a\tb" {
		t.Errorf("tab: %q, %v", v, ok)
	}
}

func TestAppendQuery(t *testing.T) {
	t.Parallel()
	r, rec := testRequest()
	tests := []struct{ src, want string }{
		{"a b&c=d#e", "a+b%26c%3Dd%23e"},
		{"${query:q}", "a+b%26c"},
		{"${param:id}", "caf%C3%A9"},
		{"${claim:roles}", "admin%2C+dev"},
		{"${ip}-${consumer}", "203.0.113.7-c-42"},
		{"${header:X-None|x y}", "x+y"},
	}
	for _, tc := range tests {
		if got := string(MustParse(tc.src).AppendQuery(nil, r, rec)); got != tc.want {
			t.Errorf("AppendQuery(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
	zoned := &request.Record{ClientIP: netip.MustParseAddr("fe80::1%eth0")}
	if got := string(MustParse("${ip}").AppendQuery(nil, r, zoned)); got != "fe80%3A%3A1%25eth0" {
		t.Errorf("zoned IP: %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, err string }{
		{"a${header:X", `position 1: "${" without a closing "}"`},
		{"${}", "position 0: ${}: empty placeholder"},
		{"ab${nope}", `position 2: ${nope}: unknown placeholder "nope" (valid: ` + Valid + ")"},
		{"${header:}", "header name missing"},
		{"${header:Bad Name}", "not a valid token"},
		{"${param:a-b}", `parameter name "a-b" must be letters, digits and _`},
		{"${query:a&b}", "may not contain"},
		{"${ ip}", "spaces around the placeholder name"},
		{"${header:X }", "spaces around the placeholder name"},
		{"${cookie:}", "cookie name missing"},
		{"${foo:bar}", `unknown placeholder "foo:bar"`},
		{"${ header:X}", "spaces around the placeholder name"},
		{"${Consumer}", `unknown placeholder "Consumer"`},
		{"a\r\nb", "position 1: control character 0x0d is not allowed"},
		{"${header:X|a\x00}", "position 12: control character 0x00"},
		{strings.Repeat("a", MaxLen+1), "longer than"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q) error = %v, want it to contain %q", tc.src, err, tc.err)
		}
	}
}

func TestConstantDoesNotAllocate(t *testing.T) {
	r, rec := testRequest()
	tp := MustParse("static value")
	if !tp.IsConstant() || tp.Constant() != "static value" || len(tp.Params()) != 0 {
		t.Fatalf("constant: %v %q", tp.IsConstant(), tp.Constant())
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = tp.Header(r, rec) }); n != 0 {
		t.Errorf("constant Header: %v allocations, want 0", n)
	}
	dyn := MustParse("${consumer}/${header:X-Tenant}/${request_id}")
	if n := testing.AllocsPerRun(100, func() { _, _ = dyn.Header(r, rec) }); n != 1 {
		t.Errorf("three-placeholder Header: %v allocations, want 1", n)
	}
	var buf [64]byte
	if n := testing.AllocsPerRun(100, func() { _ = dyn.AppendQuery(buf[:0], r, rec) }); n != 0 {
		t.Errorf("AppendQuery into a buffer: %v allocations, want 0", n)
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	got := MustParse("${param:a}-${header:X}-${param:b}").Params()
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("Params = %q", got)
	}
}

// TestConfigLeavesTemplateVars checks that the configuration loader's
// ${ENV} expansion leaves every template variable to the template.
func TestConfigLeavesTemplateVars(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("upstreams:\n  u:\n    targets: [{url: http://127.0.0.1:1}]\nroutes:\n  - name: r\n    match: {path_prefix: /}\n    upstream: u\n    plugins:\n      - name: headers\n        config:\n          request:\n            set:\n")
	for _, v := range Vars {
		b.WriteString("              X-" + v + ": \"${" + v + "}\"\n")
	}
	cfg, err := config.Parse([]byte(b.String()), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	values := map[string]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		values[n.Value] = true
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&cfg.Routes[0].Plugins[0].Config)
	for _, v := range Vars {
		if !values["${"+v+"}"] {
			t.Errorf("${%s} was not left for the template", v)
		}
	}
}
