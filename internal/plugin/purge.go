package plugin

import (
	"context"
	"errors"
)

// PurgeRequest selects the stored responses a Purger removes: exactly one
// of All, URL, Prefix or Tag is set.
type PurgeRequest struct {
	// All removes everything the instance stored.
	All bool
	// URL is an absolute http or https URL; every stored response for it
	// goes (every method, variant and consumer), whatever the scheme and
	// the order of its query parameters.
	URL string
	// Prefix is "host/path…" or an absolute URL; the responses stored for
	// URLs that start with it go.
	Prefix string
	// Tag removes the responses the upstream tagged with it (for instance
	// in Cache-Tag or Surrogate-Key).
	Tag string
}

// Kind names the selector that is set: all, url, prefix or tag.
func (p PurgeRequest) Kind() string {
	switch {
	case p.All:
		return "all"
	case p.URL != "":
		return "url"
	case p.Prefix != "":
		return "prefix"
	}
	return "tag"
}

// PurgeInputError is returned by Purger.Purge for a request it cannot
// carry out as written (a URL that is not absolute, an empty selector):
// Field is the selector at fault (url, prefix, tag or all).
type PurgeInputError struct {
	Field string
	Err   error
}

func (e *PurgeInputError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *PurgeInputError) Unwrap() error { return e.Err }

// Purger is implemented by plugins that keep stored responses (the cache
// plugin), so the gateway can purge them for the admin API without knowing
// the plugin. Purge removes what p selects from the instance's store and
// returns how many stored entries it removed; the instances of one route
// across reloads, and any others that share its store, see the removal,
// and a second purge of the same store finds nothing more. Safe for
// concurrent use, also with requests being served.
type Purger interface {
	Purge(ctx context.Context, p PurgeRequest) (int, error)
}

// ErrPurgeSelector is the reason of a PurgeInputError for a request that
// does not set exactly one selector.
var ErrPurgeSelector = errors.New("set exactly one of url, prefix, tag or all")

// Interface guard.
var _ error = (*PurgeInputError)(nil)
