package proxy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/upstream"
)

// seenRequest is what a test backend received.
type seenRequest struct {
	uri    string
	host   string
	header http.Header
	body   string
}

// recordingBackend is a real HTTP server that remembers the last request.
type recordingBackend struct {
	*httptest.Server
	mu   sync.Mutex
	last *seenRequest
}

func newRecordingBackend(t *testing.T, h http.HandlerFunc) *recordingBackend {
	t.Helper()
	b := &recordingBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.last = &seenRequest{uri: r.RequestURI, host: r.Host, header: r.Header.Clone(), body: string(body)}
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("X-Backend", "yes")
		_, _ = io.WriteString(w, "backend says hi")
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *recordingBackend) seen() *seenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// forwarderFor builds a forwarder for one target URL with a real transport.
func forwarderFor(t *testing.T, targetURL string, rw *config.Rewrite, m config.Match, timeout time.Duration) *Forwarder {
	t.Helper()
	u := &config.Upstream{
		Targets:               []config.Target{{URL: targetURL}},
		ConnectTimeout:        config.Duration(2 * time.Second),
		ResponseHeaderTimeout: config.Duration(10 * time.Second),
		IdleConnTimeout:       config.Duration(10 * time.Second),
		MaxIdleConnsPerTarget: 4,
	}
	reg := upstream.NewRegistry()
	tr, release, err := reg.Acquire("backend", u, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	states := upstream.NewStateRegistry()
	pool, err := upstream.NewPool("backend", u, tr, states)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close(); release() })
	crw, err := CompileRewrite(rw, m)
	if err != nil {
		t.Fatal(err)
	}
	return NewForwarder(pool, Options{Rewrite: crw, Timeout: timeout, Logger: slog.New(slog.DiscardHandler)})
}

// TestForwarderRequest checks what the backend receives through the
// forwarder: the rewritten path under the target's base path with the query
// kept, the Host policy, the X-Forwarded-* headers derived from the record
// (client-supplied ones kept only from a trusted peer) and the record's
// request ID.
func TestForwarderRequest(t *testing.T) {
	t.Parallel()
	peer := netip.MustParseAddr("10.1.2.3")
	spoofed := map[string]string{
		"X-Forwarded-For":   "6.6.6.6",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "evil.example",
		"Forwarded":         "for=6.6.6.6",
		"X-Real-Ip":         "6.6.6.6",
		"X-Request-Id":      "client-chosen",
	}
	tests := []struct {
		desc       string
		basePath   string
		rewrite    *config.Rewrite
		match      config.Match
		target     string // request URL as the client sent it
		recPath    string // normalised path in the record
		trusted    bool
		tls        bool
		reqHeaders map[string]string
		// want* are what the backend must see; a "" header means absent,
		// and wantHost "backend" means the target's host:port.
		wantURI    string
		wantHost   string
		wantHeader map[string]string
	}{
		{desc: "strip prefix under base path, untrusted peer", basePath: "/base",
			rewrite: &config.Rewrite{StripPrefix: "/api"}, target: "http://gw.example/api/users/42?x=1&y=2", recPath: "/api/users/42",
			reqHeaders: spoofed, wantURI: "/base/users/42?x=1&y=2", wantHost: "gw.example",
			wantHeader: map[string]string{"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "gw.example",
				"Forwarded": "", "X-Real-Ip": "", "X-Request-Id": "rid-fwd"}},
		{desc: "trusted peer appends and keeps forwarding headers", rewrite: nil, target: "http://gw.example/users", recPath: "/users", trusted: true,
			reqHeaders: map[string]string{"X-Forwarded-For": "1.1.1.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "orig.example", "Forwarded": "for=1.1.1.1"},
			wantURI:    "/users", wantHost: "gw.example",
			wantHeader: map[string]string{"X-Forwarded-For": "1.1.1.1, 10.1.2.3", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "orig.example",
				"Forwarded": "for=1.1.1.1", "X-Request-Id": "rid-fwd"}},
		{desc: "trusted peer without prior headers over TLS", target: "http://gw.example/x", recPath: "/x", trusted: true, tls: true,
			wantURI: "/x", wantHost: "gw.example",
			wantHeader: map[string]string{"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "gw.example"}},
		{desc: "replace prefix and upstream host", rewrite: &config.Rewrite{ReplacePrefix: strPtr("/internal/v2"), Host: "upstream"},
			match: config.Match{PathPrefix: "/v1"}, target: "http://gw.example/v1/orders", recPath: "/v1/orders",
			wantURI: "/internal/v2/orders", wantHost: "backend"},
		{desc: "regex and literal host", rewrite: &config.Rewrite{Regex: &config.RegexRewrite{Pattern: "^/u/([0-9]+)$", Replacement: "/users/$1"}, Host: "users.svc"},
			target: "http://gw.example/u/7", recPath: "/u/7", wantURI: "/users/7", wantHost: "users.svc"},
		{desc: "escaped path stays escaped", basePath: "/b", rewrite: &config.Rewrite{StripPrefix: "/files"},
			target: "http://gw.example/files/a%2Fb", recPath: "/files/a%2Fb", wantURI: "/b/a%2Fb", wantHost: "gw.example"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			be := newRecordingBackend(t, nil)
			f := forwarderFor(t, be.URL+tc.basePath, tc.rewrite, tc.match, 0)
			rec := &request.Record{RequestID: "rid-fwd", Peer: peer, ClientIP: peer, TrustedPeer: tc.trusted, TLS: tc.tls, Path: tc.recPath}
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			for k, v := range tc.reqHeaders {
				r.Header.Set(k, v)
			}
			r = r.WithContext(request.WithRecord(r.Context(), rec))
			w := httptest.NewRecorder()
			f.ServeHTTP(w, r)

			if w.Code != http.StatusOK || w.Body.String() != "backend says hi" || w.Header().Get("X-Backend") != "yes" {
				t.Fatalf("response %d %q %v", w.Code, w.Body.String(), w.Header())
			}
			got := be.seen()
			if got == nil {
				t.Fatal("backend saw no request")
			}
			if got.uri != tc.wantURI {
				t.Errorf("backend URI = %q, want %q", got.uri, tc.wantURI)
			}
			wantHost := tc.wantHost
			if wantHost == "backend" {
				wantHost = strings.TrimPrefix(be.URL, "http://")
			}
			if got.host != wantHost {
				t.Errorf("backend Host = %q, want %q", got.host, wantHost)
			}
			for k, v := range tc.wantHeader {
				if g := strings.Join(got.header.Values(k), ", "); g != v {
					t.Errorf("backend %s = %q, want %q", k, g, v)
				}
			}
			if rec.Upstream != "backend" || rec.UpstreamAddr != strings.TrimPrefix(be.URL, "http://") || rec.Attempts != 1 {
				t.Errorf("record Upstream, UpstreamAddr, Attempts = %q, %q, %d, want %q, %q, 1", rec.Upstream, rec.UpstreamAddr, rec.Attempts, "backend", strings.TrimPrefix(be.URL, "http://"))
			}
			if rec.UpstreamDuration <= 0 {
				t.Errorf("record UpstreamDuration = %v, want > 0", rec.UpstreamDuration)
			}
		})
	}
}

// TestForwarderErrors checks the error responses of the forwarding path
// end to end: a route timeout gives 504, a refused connection 502, a body
// over the limit 413, each as the JSON error with the record's request ID;
// a client that already left gets nothing.
func TestForwarderErrors(t *testing.T) {
	t.Parallel()
	closedAddr := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	tests := []struct {
		desc       string
		backend    http.HandlerFunc
		closed     bool // target a port nothing listens on
		timeout    time.Duration
		body       string
		maxBody    int64
		cancelled  bool
		wantStatus int
		wantMsg    string
	}{
		{desc: "route timeout", timeout: 100 * time.Millisecond, backend: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, wantStatus: 504, wantMsg: "upstream timed out"},
		{desc: "connection refused", closed: true, wantStatus: 502, wantMsg: "upstream connection refused"},
		{desc: "body over the limit", body: strings.Repeat("x", 64<<10), maxBody: 1024, wantStatus: 413, wantMsg: "request body too large"},
		{desc: "client gone", cancelled: true, wantStatus: StatusClientClosed, wantMsg: "client closed request"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var target string
			if tc.closed {
				target = closedAddr(t)
			} else {
				target = newRecordingBackend(t, tc.backend).URL
			}
			f := forwarderFor(t, target, nil, config.Match{}, tc.timeout)
			rec := &request.Record{RequestID: "rid-err", Peer: netip.MustParseAddr("127.0.0.1"), Path: "/slow"}
			method := http.MethodGet
			var body io.Reader
			if tc.body != "" {
				method, body = http.MethodPost, strings.NewReader(tc.body)
			}
			r := httptest.NewRequest(method, "http://gw.example/slow", body)
			if tc.maxBody > 0 {
				rec.Body = request.NewBody(http.MaxBytesReader(nil, r.Body, tc.maxBody), nil)
				r.Body = rec.Body
			}
			ctx := r.Context()
			if tc.cancelled {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			r = r.WithContext(request.WithRecord(ctx, rec))
			w := httptest.NewRecorder()
			start := time.Now()
			f.ServeHTTP(w, r)
			if el := time.Since(start); el > 4*time.Second {
				t.Fatalf("took %v", el)
			}
			if tc.wantStatus == StatusClientClosed {
				if w.Body.Len() != 0 {
					t.Fatalf("wrote %q to a gone client", w.Body.String())
				}
				if rec.Status != StatusClientClosed {
					t.Fatalf("record status = %d, want 499", rec.Status)
				}
				return
			}
			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", w.Code, tc.wantStatus, w.Body.String())
			}
			var got map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			if got["error"] != tc.wantMsg || got["request_id"] != "rid-err" {
				t.Fatalf("body = %v, want error %q request_id rid-err", got, tc.wantMsg)
			}
			if w.Header().Get("X-Request-Id") != "rid-err" {
				t.Fatalf("X-Request-Id = %q", w.Header().Get("X-Request-Id"))
			}
		})
	}
}
