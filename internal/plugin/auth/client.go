package auth

import (
	"net/http"
	"time"
)

// NewServiceClient returns the HTTP client an auth plugin uses for its own
// calls (an authorization service, an introspection endpoint) and its
// transport, whose idle connections the plugin closes in Cleanup. Calls are
// bounded by timeout, connections are pooled, and a redirect is returned as
// the answer rather than followed.
func NewServiceClient(timeout time.Duration) (*http.Client, *http.Transport) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport:     t,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, t
}
