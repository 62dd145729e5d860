package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

const e2eRewriteConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
  based: {targets: [{url: "{{REC}}/base"}]}
  based-slash: {targets: [{url: "{{REC}}/base/"}]}
routes:
  - {name: strip, match: {path_prefix: /users}, upstream: rec, rewrite: {strip_prefix: /users}}
  - {name: strip-slash, match: {path_prefix: /svc/}, upstream: rec, rewrite: {strip_prefix: /svc/}}
  - {name: replace, match: {path_prefix: /old}, upstream: rec, rewrite: {replace_prefix: /new}}
  - {name: replace-root, match: {path_prefix: /v1}, upstream: rec, rewrite: {replace_prefix: /}}
  - name: regex
    match: {path_prefix: /re}
    upstream: rec
    rewrite: {regex: {pattern: '^/re/(\w+)/(\d+)$', replacement: '/r/${2}/$1'}}
  - name: regex-relative
    match: {path_prefix: /rel}
    upstream: rec
    rewrite: {regex: {pattern: '^/rel/(.*)$', replacement: 'v2/$1'}}
  - {name: strip-boundary, match: {path_regex: "^/apix?(/|$)"}, upstream: rec, rewrite: {strip_prefix: /api}}
  - {name: host-preserve, match: {path_prefix: /hp}, upstream: rec}
  - {name: host-explicit-preserve, match: {path_prefix: /hpx}, upstream: rec, rewrite: {host: preserve}}
  - {name: host-upstream, match: {path_prefix: /hu}, upstream: rec, rewrite: {host: upstream}}
  - {name: host-literal, match: {path_prefix: /hl}, upstream: rec, rewrite: {host: internal.svc.local}}
  - {name: base, match: {path_prefix: /bp}, upstream: based, rewrite: {strip_prefix: /bp}}
  - {name: base-keep, match: {path_prefix: /bk}, upstream: based}
  - {name: base-slash, match: {path_prefix: /bs}, upstream: based-slash, rewrite: {strip_prefix: /bs}}
`

func TestRewritePathAndHost(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, e2eRewriteConfig, map[string]string{"REC": rec.URL})
	recHost := e2eHostPort(rec.URL)
	gwHost := e2eHostPort(tg.URL)

	tests := []struct {
		desc     string
		path     string
		host     string // Host header sent by the client ("" = gateway address)
		wantURI  string
		wantHost string // "" = don't check
	}{
		{desc: "strip prefix below", path: "/users/1", wantURI: "/1"},
		{desc: "strip prefix exact", path: "/users", wantURI: "/"},
		{desc: "strip prefix with trailing slash", path: "/users/", wantURI: "/"},
		{desc: "strip prefix deep with query", path: "/users/1/orders?limit=5&x=%2F", wantURI: "/1/orders?limit=5&x=%2F"},
		{desc: "strip prefix after normalisation", path: "/users/a/../2", wantURI: "/2"},
		{desc: "strip prefix configured with trailing slash", path: "/svc/x", wantURI: "/x"},
		{desc: "replace prefix below", path: "/old/x/y", wantURI: "/new/x/y"},
		{desc: "replace prefix exact", path: "/old", wantURI: "/new"},
		{desc: "replace prefix with trailing slash", path: "/old/", wantURI: "/new/"},
		{desc: "replace prefix with root below", path: "/v1/x", wantURI: "/x"},
		{desc: "replace prefix with root exact", path: "/v1", wantURI: "/"},
		{desc: "regex with groups", path: "/re/item/42", wantURI: "/r/42/item"},
		{desc: "regex keeps query", path: "/re/item/42?a=b", wantURI: "/r/42/item?a=b"},
		{desc: "regex non-matching path unchanged", path: "/re/other", wantURI: "/re/other"},
		{desc: "regex result gets a leading slash", path: "/rel/a/b", wantURI: "/v2/a/b"},
		{desc: "strip prefix on a segment boundary", path: "/api/v1", wantURI: "/v1"},
		{desc: "strip prefix leaves a longer segment alone", path: "/apix/v1", wantURI: "/apix/v1"},
		{desc: "host preserved by default", path: "/hp", host: "client.example", wantURI: "/hp", wantHost: "client.example"},
		{desc: "host preserved with port", path: "/hp", host: "client.example:8443", wantURI: "/hp", wantHost: "client.example:8443"},
		{desc: "host preserved explicitly", path: "/hpx", host: "client.example", wantURI: "/hpx", wantHost: "client.example"},
		{desc: "host of gateway preserved", path: "/hp", wantURI: "/hp", wantHost: gwHost},
		{desc: "host upstream", path: "/hu", host: "client.example", wantURI: "/hu", wantHost: recHost},
		{desc: "host literal", path: "/hl", host: "client.example", wantURI: "/hl", wantHost: "internal.svc.local"},
		{desc: "target base path with strip", path: "/bp/1", wantURI: "/base/1"},
		{desc: "target base path exact strip", path: "/bp", wantURI: "/base/"},
		{desc: "target base path without rewrite", path: "/bk/1?q=1", wantURI: "/base/bk/1?q=1"},
		{desc: "target base path with trailing slash", path: "/bs/1", wantURI: "/base/1"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp, body := e2eGetHost(t, tg.URL+tc.path, tc.host)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			s := e2eDecodeSeen(t, body)
			if s.RequestURI != tc.wantURI {
				t.Errorf("upstream request URI = %q, want %q", s.RequestURI, tc.wantURI)
			}
			if tc.wantHost != "" && s.Host != tc.wantHost {
				t.Errorf("upstream Host = %q, want %q", s.Host, tc.wantHost)
			}
		})
	}
}

func TestRewriteWeightedTargets(t *testing.T) {
	heavy := e2eNewRecorder(t, "heavy", nil)
	light := e2eNewRecorder(t, "light", nil)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  w:
    targets:
      - {url: "{{A}}", weight: 3}
      - {url: "{{B}}", weight: 1}
routes:
  - {name: w, match: {path_prefix: /}, upstream: w}
`, map[string]string{"A": heavy.URL, "B": light.URL})

	counts := map[string]int{}
	var seq strings.Builder
	for i := 0; i < 400; i++ {
		resp, body := e2eGet(t, tg.URL+"/w")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
		b := resp.Header.Get("X-Backend")
		counts[b]++
		if i < 8 {
			seq.WriteByte(b[0])
		}
	}
	if counts["heavy"] != 300 || counts["light"] != 100 {
		t.Errorf("counts = %v, want heavy 300 light 100", counts)
	}
	// Smooth WRR interleaves instead of sending bursts: every window of four
	// consecutive requests has exactly one for the light target.
	if got := seq.String(); strings.Count(got[:4], "l") != 1 || strings.Count(got[4:], "l") != 1 {
		t.Errorf("first 8 picks %q are not smoothly interleaved", got)
	}
	if heavy.count() != 300 || light.count() != 100 {
		t.Errorf("backends received heavy %d light %d", heavy.count(), light.count())
	}
}

func TestRewriteRespondAction(t *testing.T) {
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
routes:
  - name: created
    match: {path: /created}
    respond: {status: 201, body: "made it\n", headers: {X-Custom: yes, Content-Type: text/x-custom}}
  - {name: plain, match: {path: /plain}, respond: {body: hello}}
  - {name: empty, match: {path: /empty}, respond: {status: 204}}
  - {name: teapot, match: {path: /teapot}, respond: {status: 418, body: "{\"tea\":true}", headers: {Content-Type: application/json}}}
`, nil)

	tests := []struct {
		desc     string
		method   string
		path     string
		status   int
		body     string
		ctype    string
		headers  map[string]string
		wantCLen string
	}{
		{desc: "status body and headers", method: "GET", path: "/created", status: 201, body: "made it\n", ctype: "text/x-custom", headers: map[string]string{"X-Custom": "yes"}, wantCLen: "8"},
		{desc: "POST gets the same", method: "POST", path: "/created", status: 201, body: "made it\n", ctype: "text/x-custom", wantCLen: "8"},
		{desc: "HEAD has no body", method: "HEAD", path: "/created", status: 201, body: "", ctype: "text/x-custom", headers: map[string]string{"X-Custom": "yes"}, wantCLen: "8"},
		{desc: "default status and content type", method: "GET", path: "/plain", status: 200, body: "hello", ctype: "text/plain; charset=utf-8", wantCLen: "5"},
		{desc: "HEAD on default", method: "HEAD", path: "/plain", status: 200, body: "", wantCLen: "5"},
		{desc: "no body", method: "GET", path: "/empty", status: 204, body: ""},
		{desc: "custom status with JSON", method: "GET", path: "/teapot", status: 418, body: `{"tea":true}`, ctype: "application/json", wantCLen: "12"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp, body := e2eDo(t, e2eReq(t, tc.method, tg.URL+tc.path, nil))
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if string(body) != tc.body {
				t.Errorf("body = %q, want %q", body, tc.body)
			}
			if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tc.ctype)
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tc.wantCLen != "" && resp.Header.Get("Content-Length") != tc.wantCLen {
				t.Errorf("Content-Length = %q, want %q", resp.Header.Get("Content-Length"), tc.wantCLen)
			}
		})
	}
}

func TestRewriteRedirectAction(t *testing.T) {
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
routes:
  - {name: to-path, match: {path_prefix: /old-path}, redirect: {path: /new-path, status: 301}}
  - {name: to-host, match: {path_prefix: /to-host}, redirect: {host: www.example.org}}
  - {name: to-https, match: {path_prefix: /secure}, redirect: {scheme: https, status: 308}}
  - {name: to-url, match: {path_prefix: /landing}, redirect: {url: "https://example.com/welcome", status: 307}}
  - {name: to-url-drop, match: {path_prefix: /landing-drop}, redirect: {url: "https://example.com/welcome", drop_query: true}}
  - {name: to-path-drop, match: {path_prefix: /drop}, redirect: {path: /dropped, drop_query: true, status: 303}}
  - {name: all-parts, match: {path_prefix: /move}, redirect: {scheme: https, host: new.example.net, path: /moved}}
`, nil)
	gw := e2eHostPort(tg.URL)

	tests := []struct {
		desc     string
		path     string
		host     string
		status   int
		location string
	}{
		{desc: "path with query kept", path: "/old-path/x?a=1&b=%2F", status: 301, location: "http://" + gw + "/new-path?a=1&b=%2F"},
		{desc: "path without query", path: "/old-path", status: 301, location: "http://" + gw + "/new-path"},
		{desc: "host keeps path and query, default 302", path: "/to-host/p?q=1", status: 302, location: "http://www.example.org/to-host/p?q=1"},
		{desc: "scheme keeps e2eClient host", path: "/secure/a?z=9", host: "shop.example", status: 308, location: "https://shop.example/secure/a?z=9"},
		{desc: "url gets query appended", path: "/landing?ref=ad", status: 307, location: "https://example.com/welcome?ref=ad"},
		{desc: "url without query", path: "/landing", status: 307, location: "https://example.com/welcome"},
		{desc: "url drops query", path: "/landing-drop?ref=ad", status: 302, location: "https://example.com/welcome"},
		{desc: "path drops query", path: "/drop?secret=1", status: 303, location: "http://" + gw + "/dropped"},
		{desc: "scheme host and path", path: "/move/x?k=v", status: 302, location: "https://new.example.net/moved?k=v"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp, body := e2eGetHost(t, tg.URL+tc.path, tc.host)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %q", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Errorf("Location = %q, want %q", got, tc.location)
			}
			if len(body) != 0 {
				t.Errorf("redirect has a body: %q", body)
			}
		})
	}
}
