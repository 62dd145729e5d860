// Command backend is the upstream used by the Portico load-test harness
// (bench/run.sh). It answers every request, whatever its method or path, with
// status 200 and exactly 100 bytes of body, keeping connections alive, so that
// the proxies under test are measured on their own overhead and not on the
// backend's work.
//
// Usage:
//
//	backend -addr 127.0.0.1:28080
package main

import (
	"bytes"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"time"
)

// bodySize is the exact size of every response body.
const bodySize = 100

func main() {
	addr := flag.String("addr", "127.0.0.1:28080", "host:port to listen on")
	flag.Parse()

	body := bytes.Repeat([]byte("x"), bodySize-1)
	body = append(body, '\n')
	length := strconv.Itoa(len(body))

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Drain any request body so the connection can be reused.
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		hd := w.Header()
		hd["Content-Type"] = []string{"text/plain"}
		hd["Content-Length"] = []string{length}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})

	srv := &http.Server{
		Addr:              *addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	log.Printf("backend listening on %s (%d-byte responses)", *addr, bodySize)
	log.Fatal(srv.ListenAndServe())
}
