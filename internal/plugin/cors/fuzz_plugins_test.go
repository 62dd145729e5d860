package cors

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

// FuzzOrigin: any Origin value is judged and parsed without panicking,
// and an allowed origin is echoed only when it is safe to.
func FuzzOrigin(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com", "HTTPS://APP.EXAMPLE.COM", "https://a.example.org", "https://.example.org",
		"https://a.b.example.org", "null", "", "https://app.example.com, https://evil", "http://localhost:3000",
		"https://[::1]:8443", "https://xn--d1acufc.example.org", "https://a_b.example.org", "https://évil.example.org",
	} {
		f.Add(s)
	}
	var cs []*CORS
	for _, cfg := range []string{exactCfg, credsCfg, anyCredsCfg} {
		cs = append(cs, plugintest.MustBuild[*CORS](f, "cors", cfg))
	}
	f.Fuzz(func(t *testing.T, o string) {
		for _, c := range cs {
			if !c.originAllowed(o) {
				continue
			}
			if v := c.allowOrigin([]string{o}); len(v) != 1 || strings.ContainsAny(v[0], ",\r\n") {
				t.Fatalf("origin %q echoed as %q", o, v)
			}
		}
		_, _ = parseOrigin(o)
	})
}
