// Command httputilproxy is the baseline reverse proxy of the Portico load-test
// harness (bench/run.sh): the standard library's httputil.ReverseProxy in
// front of one upstream, with a keep-alive connection pool of up to 256 idle
// connections to it. It does nothing else (no logging, no routing, no
// plugins), so it shows what proxying with net/http costs by itself; Portico's
// extra cost is read against it.
//
// With -h2c the listener also accepts HTTP/2 with prior knowledge over plain
// text (http.Server.Protocols is HTTP/1 plus unencrypted HTTP/2); requests to
// the upstream stay HTTP/1.1.
//
// Usage:
//
//	httputilproxy -addr 127.0.0.1:28083 -upstream http://127.0.0.1:28080
//	httputilproxy -h2c -addr 127.0.0.1:28088 -upstream http://127.0.0.1:28080
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
	h2c := flag.Bool("h2c", false, "also accept HTTP/2 with prior knowledge (h2c) on the listener")
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
	protos := "HTTP/1.1"
	if *h2c {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		protos = "HTTP/1.1 and h2c"
	}
	log.Printf("httputilproxy listening on %s (%s), proxying to %s", *addr, protos, target)
	log.Fatal(srv.ListenAndServe())
}
