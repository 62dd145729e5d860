// Package sizelimit is the `request_size_limit` plugin: a per-route bound on
// request bodies, tighter than the listener's max_body_bytes.
package sizelimit

import (
	"errors"
	"net/http"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

func init() {
	plugin.Register(plugin.Spec{Name: "request_size_limit", Phase: plugin.PhaseInit, New: func() plugin.Plugin { return new(SizeLimit) }})
}

// SizeLimit answers 413 for a body over MaxBodyBytes: at once when
// Content-Length announces it, or as soon as a streamed body passes it.
type SizeLimit struct {
	// MaxBodyBytes is the largest accepted body, e.g. 1MiB.
	MaxBodyBytes config.Size `yaml:"max_body_bytes"`
}

// Provision checks the limit.
func (s *SizeLimit) Provision(plugin.Context) error {
	if s.MaxBodyBytes <= 0 {
		return errors.New("max_body_bytes must be a positive size, e.g. 1MiB")
	}
	return nil
}

// Wrap returns the size check.
func (s *SizeLimit) Wrap(next http.Handler) http.Handler {
	max := int64(s.MaxBodyBytes)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			request.WriteError(w, r, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			// Wrapped in an request.Body and recorded, so the proxy can tell
			// this client error (413) from an upstream failure.
			b := request.NewBody(http.MaxBytesReader(w, r.Body, max), nil)
			if rec := request.RecordOf(r); rec != nil {
				rec.Body = b
			}
			r.Body = b
		}
		next.ServeHTTP(w, r)
	})
}

// Interface guards.
var (
	_ plugin.Plugin = (*SizeLimit)(nil)
)
