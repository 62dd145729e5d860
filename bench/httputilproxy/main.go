// Command httputilproxy is the baseline reverse proxy of the Portico load-test
// harness (bench/run.sh): the standard library's httputil.ReverseProxy in
// front of one upstream, with a keep-alive connection pool of up to 256 idle
// connections to it. It does nothing else (no logging, no routing, no
// plugins), so it shows what proxying with net/http costs by itself; Portico's
// extra cost is read against it.
//
// Usage:
//
//	httputilproxy -addr 127.0.0.1:28083 -upstream http://127.0.0.1:28080
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:28083", "host:port to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:28080", "URL of the backend to proxy to")
	flag.Parse()

	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		log.Fatalf("bad -upstream %q: %v", *upstream, err)
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 256
	transport.MaxIdleConnsPerHost = 256
	transport.IdleConnTimeout = 90 * time.Second

	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
		},
		Transport: transport,
	}

	srv := &http.Server{
		Addr:              *addr,
		Handler:           proxy,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	log.Printf("httputilproxy listening on %s, proxying to %s", *addr, target)
	log.Fatal(srv.ListenAndServe())
}
