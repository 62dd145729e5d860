package proxy

import (
	"fmt"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/template"
)

// compileTransform compiles rewrite.path, rewrite.prefix and rewrite.query
// into out; m is the route's match, whose path template defines the
// parameters rewrite.path may use.
func compileTransform(out *Rewrite, rw *config.Rewrite, m config.Match) error {
	if rw.Path != "" {
		pt, err := template.ParsePath(rw.Path, m.Path)
		if err != nil {
			return fmt.Errorf("rewrite.path: %w", err)
		}
		out.PathTemplate = pt
	}
	if rw.Prefix != "" {
		// A prefix is a path template without parameters: canonical path
		// text with no dot or empty segment.
		if _, err := template.ParsePath(rw.Prefix, ""); err != nil {
			return fmt.Errorf("rewrite.prefix: %w", err)
		}
		out.Prefix = rw.Prefix
	}
	q, err := CompileQuery(rw.Query)
	if err != nil {
		return err
	}
	out.Query = q
	return nil
}

// templatePath renders rewrite.path, after the prefix, for the request
// whose route parameters rec holds.
func (rw *Rewrite) templatePath(rec *request.Record) string {
	var buf [256]byte
	b := append(buf[:0], rw.Prefix...)
	return string(rw.PathTemplate.AppendPath(b, rec))
}
