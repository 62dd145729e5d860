package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestHeadersHopByHopRequest(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStartRec(t, rec, e2eRecAll)
	addr := e2eHostPort(tg.URL)

	tests := []struct {
		desc   string
		lines  []string // extra request header lines
		absent []string // headers the backend must not see
		want   map[string]string
	}{
		{
			desc:   "header named in Connection",
			lines:  []string{"Connection: X-Hop", "X-Hop: 1", "X-Kept: 2"},
			absent: []string{"X-Hop", "Connection"},
			want:   map[string]string{"X-Kept": "2"},
		},
		{
			desc:   "several headers named in Connection",
			lines:  []string{"Connection: keep-alive, X-A , x-b", "X-A: 1", "X-B: 2", "X-C: 3"},
			absent: []string{"X-A", "X-B", "Connection"},
			want:   map[string]string{"X-C": "3"},
		},
		{
			desc:   "standard hop-by-hop headers",
			lines:  []string{"Keep-Alive: timeout=5", "Proxy-Connection: keep-alive", "Proxy-Authorization: Basic Zm9vOmJhcg==", "Trailer: X-Trail", "Upgrade: foo"},
			absent: []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Trailer", "Upgrade", "Transfer-Encoding"},
		},
		{
			desc:   "TE other than trailers",
			lines:  []string{"TE: gzip, deflate"},
			absent: []string{"Te"},
		},
		{
			desc:  "TE trailers is kept",
			lines: []string{"TE: trailers"},
			want:  map[string]string{"Te": "trailers"},
		},
		{
			desc:   "Upgrade without Connection upgrade is not an upgrade",
			lines:  []string{"Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="},
			absent: []string{"Upgrade", "Connection"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			raw := "GET /hop HTTP/1.1\r\nHost: gw.test\r\n" + strings.Join(tc.lines, "\r\n") + "\r\n\r\n"
			resp := e2eRawDo(t, addr, "GET", raw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %q", resp.StatusCode, resp.Body)
			}
			s := e2eDecodeSeen(t, resp.Body)
			for _, h := range tc.absent {
				if v, ok := s.Header[h]; ok {
					t.Errorf("backend received hop-by-hop %s: %q", h, v)
				}
			}
			for k, v := range tc.want {
				if got := s.Header.Get(k); got != v {
					t.Errorf("backend %s = %q, want %q", k, got, v)
				}
			}
		})
	}

	t.Run("chunked request body arrives without Transfer-Encoding header", func(t *testing.T) {
		t.Parallel()
		raw := "POST /chunked HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
		resp := e2eRawDo(t, addr, "POST", raw)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %q", resp.StatusCode, resp.Body)
		}
		s := e2eDecodeSeen(t, resp.Body)
		if s.BodyLen != 11 {
			t.Errorf("backend body length %d, want 11", s.BodyLen)
		}
		if _, ok := s.Header["Transfer-Encoding"]; ok {
			t.Errorf("backend saw a Transfer-Encoding header field")
		}
	})
}

func TestHeadersHopByHopResponse(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Resp-Hop")
		h.Set("X-Resp-Hop", "secret")
		h.Set("Keep-Alive", "timeout=9")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Proxy-Authenticate", "Basic realm=x")
		h.Set("Upgrade", "foo")
		h.Set("X-Resp-Kept", "yes")
	})
	tg := e2eStartRec(t, rec, e2eRecAll)

	resp := e2eRawDo(t, e2eHostPort(tg.URL), "GET", "GET /resp HTTP/1.1\r\nHost: gw.test\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Upgrade"} {
		if v, ok := resp.Header[h]; ok {
			t.Errorf("client received hop-by-hop response header %s: %q", h, v)
		}
	}
	if c := resp.Header.Get("Connection"); strings.Contains(strings.ToLower(c), "x-resp-hop") {
		t.Errorf("client received the backend's Connection header %q", c)
	}
	if resp.Header.Get("X-Resp-Kept") != "yes" {
		t.Errorf("end-to-end response header lost")
	}
}

func TestHeadersForwardedUntrusted(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStartRec(t, rec, e2eRecAll)
	gw := e2eHostPort(tg.URL)

	tests := []struct {
		desc     string
		host     string
		header   map[string][]string
		wantHost string
	}{
		{desc: "no incoming forwarding headers", wantHost: gw},
		{
			desc: "spoofed values replaced",
			host: "shop.example",
			header: map[string][]string{
				"X-Forwarded-For":   {"1.2.3.4"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host":  {"evil.example"},
				"Forwarded":         {"for=1.2.3.4;proto=https;host=evil.example"},
				"X-Real-Ip":         {"1.2.3.4"},
			},
			wantHost: "shop.example",
		},
		{
			desc: "several spoofed XFF lines replaced",
			header: map[string][]string{
				"X-Forwarded-For": {"10.0.0.1", "10.0.0.2, 10.0.0.3"},
				"X-Real-Ip":       {"10.9.9.9"},
			},
			wantHost: gw,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s := headersSeen(t, tg.URL+"/fwd", tc.host, tc.header)
			if got := s.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("X-Forwarded-For = %q, want [127.0.0.1]", got)
			}
			if got := s.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
				t.Errorf("X-Forwarded-Proto = %q, want [http]", got)
			}
			if got := s.Header.Values("X-Forwarded-Host"); len(got) != 1 || got[0] != tc.wantHost {
				t.Errorf("X-Forwarded-Host = %q, want [%s]", got, tc.wantHost)
			}
			for _, h := range []string{"Forwarded", "X-Real-Ip"} {
				if v, ok := s.Header[h]; ok {
					t.Errorf("untrusted %s reached the backend: %q", h, v)
				}
			}
		})
	}
}

func TestHeadersForwardedTrusted(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, `
server:
  listen: [{addr: "127.0.0.1:0"}]
  trusted_proxies: ["127.0.0.1/32"]
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
routes:
  - {name: all, match: {path_prefix: /}, upstream: rec}
`, map[string]string{"REC": rec.URL})
	gw := e2eHostPort(tg.URL)

	tests := []struct {
		desc      string
		header    map[string][]string
		wantXFF   string
		wantProto string
		wantHost  string
	}{
		{desc: "no incoming values", wantXFF: "127.0.0.1", wantProto: "http", wantHost: gw},
		{
			desc:      "incoming values kept and peer appended",
			header:    map[string][]string{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"public.example"}},
			wantXFF:   "203.0.113.7, 127.0.0.1",
			wantProto: "https",
			wantHost:  "public.example",
		},
		{
			desc:      "several XFF lines joined in order",
			header:    map[string][]string{"X-Forwarded-For": {"198.51.100.1", "198.51.100.2, 10.0.0.1"}},
			wantXFF:   "198.51.100.1, 198.51.100.2, 10.0.0.1, 127.0.0.1",
			wantProto: "http",
			wantHost:  gw,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s := headersSeen(t, tg.URL+"/fwd", "", tc.header)
			if got := strings.Join(s.Header.Values("X-Forwarded-For"), ", "); got != tc.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", got, tc.wantXFF)
			}
			if got := s.Header.Get("X-Forwarded-Proto"); got != tc.wantProto {
				t.Errorf("X-Forwarded-Proto = %q, want %q", got, tc.wantProto)
			}
			if got := s.Header.Get("X-Forwarded-Host"); got != tc.wantHost {
				t.Errorf("X-Forwarded-Host = %q, want %q", got, tc.wantHost)
			}
		})
	}
}

func TestHeadersRequestID(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", func(w http.ResponseWriter, r *http.Request) {
		// An upstream's own ID must not replace the gateway's echo.
		w.Header().Set("X-Request-Id", "from-upstream")
	})
	plain := e2eStartRec(t, rec, e2eRecAll)
	echo := e2eStartRec(t, rec, e2eRecAll+`  - {name: not-found-helper, match: {path: /respond}, respond: {body: ok}}
plugins:
  - name: request_id
`)

	long := strings.Repeat("a", 200)
	tests := []struct {
		desc     string
		incoming []string // X-Request-Id values sent ("" entries are skipped)
		keep     bool     // the incoming value must be propagated
	}{
		{desc: "absent is generated"},
		{desc: "valid is propagated", incoming: []string{"abc-123_DEF.4:5/6+7="}, keep: true},
		{desc: "128 characters is valid", incoming: []string{strings.Repeat("b", 128)}, keep: true},
		{desc: "too long is replaced", incoming: []string{long}},
		{desc: "spaces are replaced", incoming: []string{"has space"}},
		{desc: "quotes are replaced", incoming: []string{`"quoted"`}},
		{desc: "angle brackets are replaced", incoming: []string{"<script>"}},
		{desc: "two values are replaced", incoming: []string{"one", "two"}},
	}
	for _, gw := range []struct {
		name string
		url  string
		echo bool
	}{{"core", plain.URL, false}, {"request_id plugin", echo.URL, true}} {
		for _, tc := range tests {
			t.Run(gw.name+"/"+tc.desc, func(t *testing.T) {
				t.Parallel()
				req := e2eReq(t, http.MethodGet, gw.url+"/id", nil)
				if len(tc.incoming) > 0 {
					req.Header["X-Request-Id"] = tc.incoming
				}
				resp, body := e2eDo(t, req)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				s := e2eDecodeSeen(t, body)
				up := s.Header.Values("X-Request-Id")
				if len(up) != 1 {
					t.Fatalf("backend X-Request-Id = %q, want exactly one", up)
				}
				switch {
				case tc.keep && up[0] != tc.incoming[0]:
					t.Errorf("backend X-Request-Id = %q, want the incoming %q", up[0], tc.incoming[0])
				case !tc.keep && !e2eHex32.MatchString(up[0]):
					t.Errorf("backend X-Request-Id = %q, want a generated 32-hex ID", up[0])
				}
				if gw.echo {
					if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != up[0] {
						t.Errorf("response X-Request-Id = %q, want [%s]", got, up[0])
					}
				}
			})
		}
	}
	t.Run("request_id plugin/respond route echoes", func(t *testing.T) {
		t.Parallel()
		req := e2eReq(t, http.MethodGet, echo.URL+"/respond", nil)
		req.Header.Set("X-Request-Id", "resp-route-1")
		resp, _ := e2eDo(t, req)
		if got := resp.Header.Get("X-Request-Id"); got != "resp-route-1" {
			t.Errorf("response X-Request-Id = %q", got)
		}
	})
}

func TestHeadersPlugin(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-Secret", "s3cr3t")
		w.Header().Set("Server", "backend/1.0")
		w.Header().Set("X-Old-Resp", "moved")
	})
	tg := e2eStartRec(t, rec, `
routes:
  - name: h
    match: {path_prefix: /h}
    upstream: rec
    plugins:
      - name: headers
        config:
          request:
            set: {X-Set: set-value, X-Trace: "id=$request_id"}
            add: {X-Multi: added}
            remove: [X-Drop, Cookie]
            rename: {X-Old: X-New}
          response:
            set: {Server: portico, X-Resp-Id: $request_id}
            add: {X-Added: one}
            remove: [X-Backend-Secret]
            rename: {X-Old-Resp: X-New-Resp}
  - {name: other, match: {path_prefix: /other}, upstream: rec}
`)

	t.Run("applied on the plugin route", func(t *testing.T) {
		t.Parallel()
		req := e2eReq(t, http.MethodGet, tg.URL+"/h", nil)
		req.Header.Set("X-Request-Id", "rid-42")
		req.Header.Set("X-Set", "client-value")
		req.Header.Add("X-Multi", "client")
		req.Header.Set("X-Drop", "gone")
		req.Header.Set("Cookie", "session=1")
		req.Header.Set("X-Old", "renamed")
		resp, body := e2eDo(t, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		s := e2eDecodeSeen(t, body)
		check := func(side, name string, got []string, want ...string) {
			t.Helper()
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s %s = %q, want %q", side, name, got, want)
			}
		}
		check("request", "X-Set", s.Header.Values("X-Set"), "set-value")
		check("request", "X-Trace", s.Header.Values("X-Trace"), "id=rid-42")
		check("request", "X-Multi", s.Header.Values("X-Multi"), "client", "added")
		check("request", "X-Drop", s.Header.Values("X-Drop"))
		check("request", "Cookie", s.Header.Values("Cookie"))
		check("request", "X-Old", s.Header.Values("X-Old"))
		check("request", "X-New", s.Header.Values("X-New"), "renamed")
		check("response", "Server", resp.Header.Values("Server"), "portico")
		check("response", "X-Resp-Id", resp.Header.Values("X-Resp-Id"), "rid-42")
		check("response", "X-Added", resp.Header.Values("X-Added"), "one")
		check("response", "X-Backend-Secret", resp.Header.Values("X-Backend-Secret"))
		check("response", "X-Old-Resp", resp.Header.Values("X-Old-Resp"))
		check("response", "X-New-Resp", resp.Header.Values("X-New-Resp"), "moved")
	})
	t.Run("not applied on other routes", func(t *testing.T) {
		t.Parallel()
		req := e2eReq(t, http.MethodGet, tg.URL+"/other", nil)
		req.Header.Set("X-Drop", "kept")
		resp, body := e2eDo(t, req)
		s := e2eDecodeSeen(t, body)
		if s.Header.Get("X-Drop") != "kept" || s.Header.Get("X-Set") != "" {
			t.Errorf("request headers changed on a route without the plugin: %v", s.Header)
		}
		if resp.Header.Get("X-Backend-Secret") != "s3cr3t" {
			t.Errorf("response headers changed on a route without the plugin")
		}
	})
}

func TestHeadersCORS(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStartRec(t, rec, `
routes:
  - {name: api, match: {path_prefix: /api}, upstream: rec}
plugins:
  - name: cors
    config:
      allow_origins: ["https://app.example"]
      allow_methods: [GET, PUT]
      max_age: 10m
`)

	preflight := func(t *testing.T, origin, method string) (*http.Response, []byte) {
		req := e2eReq(t, http.MethodOptions, tg.URL+"/api/things", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "x-token")
		return e2eDo(t, req)
	}

	before := rec.count()
	resp, body := preflight(t, "https://app.example", "PUT")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight status %d body %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	if got := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "PUT") {
		t.Errorf("Access-Control-Allow-Methods = %q", got)
	}
	if got := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "x-token") {
		t.Errorf("Access-Control-Allow-Headers = %q", got)
	}
	if got := resp.Header.Get("Access-Control-Max-Age"); got != "600" {
		t.Errorf("Access-Control-Max-Age = %q", got)
	}

	resp, body = preflight(t, "https://evil.example", "PUT")
	e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusForbidden)
	resp, body = preflight(t, "https://app.example", "DELETE")
	e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusForbidden)
	if n := rec.count() - before; n != 0 {
		t.Errorf("preflights reached the backend %d times", n)
	}

	req := e2eReq(t, http.MethodGet, tg.URL+"/api/things", nil)
	req.Header.Set("Origin", "https://app.example")
	resp, _ = e2eDo(t, req)
	if resp.StatusCode != http.StatusOK || rec.count()-before != 1 {
		t.Fatalf("actual request: status %d, backend hits %d", resp.StatusCode, rec.count()-before)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Errorf("actual request Access-Control-Allow-Origin = %q", got)
	}
	if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("Vary = %q, want Origin", resp.Header.Values("Vary"))
	}
}

// headersSeen GETs url with Host host ("" for the URL's) and header, and
// returns what the recorder behind the gateway saw; the answer must be 200.
func headersSeen(t *testing.T, url, host string, header map[string][]string) e2eSeen {
	t.Helper()
	req := e2eReq(t, http.MethodGet, url, nil)
	if host != "" {
		req.Host = host
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, body := e2eDo(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return e2eDecodeSeen(t, body)
}
