package router

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
)

// benchSpecs returns n routes: per service a static exact path, a template,
// a prefix and, for every 50th service, a host-specific route.
func benchSpecs(n int) []Spec {
	var out []Spec
	for i := 0; len(out) < n; i++ {
		out = append(out,
			Spec{Name: fmt.Sprintf("static%d", i), Match: config.Match{Path: fmt.Sprintf("/svc%d/static", i)}},
			Spec{Name: fmt.Sprintf("tmpl%d", i), Match: config.Match{Path: fmt.Sprintf("/svc%d/users/{id}", i), Methods: []string{"GET"}}},
			Spec{Name: fmt.Sprintf("prefix%d", i), Match: config.Match{PathPrefix: fmt.Sprintf("/svc%d/files/", i)}},
		)
		if i%50 == 0 {
			out = append(out, Spec{Name: fmt.Sprintf("host%d", i), Match: config.Match{
				Hosts: []string{fmt.Sprintf("svc%d.example.com", i), fmt.Sprintf("*.svc%d.example.net", i)},
				Path:  fmt.Sprintf("/svc%d/static", i),
			}})
		}
	}
	return specs(out[:n]...)
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		s := benchSpecs(n)
		tab := mustBuild(b, s)
		svc := (n / 3) / 2
		for _, bc := range []struct{ desc, path, want string }{
			{desc: "templated", path: fmt.Sprintf("/svc%d/users/12345", svc), want: fmt.Sprintf("tmpl%d", svc)},
			{desc: "static", path: fmt.Sprintf("/svc%d/static", svc), want: fmt.Sprintf("static%d", svc)},
			{desc: "prefix", path: fmt.Sprintf("/svc%d/files/a/b/c.txt", svc), want: fmt.Sprintf("prefix%d", svc)},
		} {
			b.Run(fmt.Sprintf("routes=%d/%s", n, bc.desc), func(b *testing.B) {
				r := &http.Request{Method: "GET", Host: "www.example.com", URL: &url.URL{Path: bc.path}, Header: http.Header{}}
				host := NormalizeHost(r.Host)
				var ps request.Params
				idx, ok := tab.Match(r, host, bc.path, &ps)
				if !ok || s[idx].Name != bc.want {
					b.Fatalf("matched %v %v, want %s", idx, ok, bc.want)
				}
				b.ReportAllocs()
				for b.Loop() {
					tab.Match(r, host, bc.path, &ps)
				}
			})
		}
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, bc := range []struct{ desc, path string }{
		{desc: "normal", path: "/api/v1/users/12345/posts"},
		{desc: "needs-work", path: "//api/./v1/%75sers/../users/12345/posts%2f"},
	} {
		b.Run(bc.desc, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = NormalizePath(bc.path)
			}
		})
	}
}
