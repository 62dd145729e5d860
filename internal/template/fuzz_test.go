package template

import (
	"bytes"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/request"
)

// FuzzTemplateParse checks that Parse never panics, that its errors name a
// position, and that a template it accepts renders (without a request's
// values) no control character.
func FuzzTemplateParse(f *testing.F) {
	for _, s := range []string{
		"", "static", "${ip}", "${header:X-A|dflt}", "${$}{", "${", "${}", "${param:id}-${query:q}",
		"$$", "${claim:https://a.test/r}", "${nope}", "a${header:X}b${request_id}c", "${query:a|b|c}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tp, err := Parse(src)
		if err != nil {
			if !strings.Contains(err.Error(), "position ") && !strings.Contains(err.Error(), "longer than") {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		r, _ := http.NewRequest("GET", "http://h/", nil)
		if v, ok := tp.Header(r, nil); ok && ctlIndex(v) >= 0 {
			t.Fatalf("%q rendered %q", src, v)
		}
	})
}

// FuzzTemplateRender renders templates with random request values: it never
// panics, a header value never carries CR, LF or NUL, a query value always
// decodes back to the text, and a path never has a ".." segment or a '?'.
func FuzzTemplateRender(f *testing.F) {
	f.Add("x-${query:v}-${header:X-A}", "a%0D%0Ab", "v\r\n", "id", "sub")
	f.Add("${param:id}${claim:sub}${cookie:c}", "..", "../..", "a/b?c#d", "x\x00y")
	f.Add("${consumer}${consumer_name}${ip}", "%zz", "\x7f", ".", "")
	f.Fuzz(func(t *testing.T, src, query, header, param, claim string) {
		tp, err := Parse(src)
		if err != nil {
			return
		}
		r := &http.Request{Method: "GET", Host: header, URL: &url.URL{Path: "/", RawQuery: "v=" + query + "&q=" + query},
			Header: http.Header{"X-A": {header}, "Cookie": {"c=" + header}}}
		rec := &request.Record{RequestID: header, ClientIP: netip.MustParseAddr("2001:db8::1"), Route: param,
			Consumer: &consumer.Consumer{ID: claim, Name: header}, Claims: map[string]any{"sub": claim}}
		rec.Params.Add("id", param)
		if v, ok := tp.Header(r, rec); ok && strings.ContainsAny(v, "\r\n\x00") {
			t.Fatalf("header value %q", v)
		}
		raw := tp.Append(nil, r, rec)
		q := tp.AppendQuery(nil, r, rec)
		if dec, err := url.QueryUnescape(string(q)); err != nil || dec != string(raw) {
			t.Fatalf("query %q decodes to %q, %v; want %q", q, dec, err, raw)
		}
		if bytes.ContainsAny(q, "&=#? ") {
			t.Fatalf("query value %q", q)
		}
		for _, pt := range []string{"/a/{id}", "/a/{id}/b", "/.{id}.", "/{id}{rest}", "/x/{rest}"} {
			p, err := ParsePath(pt, "/m/{id}/{rest...}")
			if err != nil {
				t.Fatal(err)
			}
			prec := &request.Record{}
			prec.Params.Add("id", param)
			prec.Params.Add("rest", query)
			out := string(p.AppendPath(nil, prec))
			if !strings.HasPrefix(out, "/") || strings.ContainsAny(out, "?#\r\n\x00 ") {
				t.Fatalf("path %q from %q", out, pt)
			}
			for _, seg := range strings.Split(out, "/") {
				if seg == "." || seg == ".." {
					t.Fatalf("path %q from %q has a dot segment", out, pt)
				}
			}
		}
	})
}
