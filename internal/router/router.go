package router

import (
	"net/http"
	"regexp"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
)

// Spec is one route to compile: its conditions and the opaque Index that
// Match returns so the caller can find the route's handler.
type Spec struct {
	Name     string
	Priority int          // higher wins ties between equally specific routes
	Match    config.Match // Hosts, Path, PathPrefix, PathRegex, Methods, Headers, Query
	Index    int          // opaque; returned by Match so the caller finds its handler
}

// Table is a compiled, immutable route table. It is safe for concurrent use
// and Match on it does not allocate.
type Table struct {
	exact map[string]*bucket // exact host name → routes
	wild  map[string]*bucket // "*.example.org" is stored under "example.org"
	any   *bucket            // routes without hosts
	n     int
}

// bucket holds the routes of one host condition.
type bucket struct {
	root  node
	regex []*route
}

// mapThreshold is the fan-out above which a trie node indexes its static
// children with a map instead of scanning them.
const mapThreshold = 8

// node is one segment position of the path trie.
type node struct {
	parent    *node
	seg       string
	static    []*node
	staticMap map[string]*node
	param     *node    // "{name}" child
	rest      []*route // "{name...}" routes ending here
	exact     []*route // routes whose path ends at this node
	prefix    []*route // path_prefix ending here without a trailing slash
	prefixSl  []*route // path_prefix ending here with a trailing slash ("/" at the root)
}

type headerCond struct{ key, value string }
type queryCond struct{ key, value string }

// route is the compiled form of a Spec.
type route struct {
	index    int
	priority int
	order    int // position in the Build argument
	nconds   int
	methods  []string
	headers  []headerCond
	query    []queryCond
	params   []string // param names in capture order
	re       *regexp.Regexp
}

// Len returns the number of routes in the table.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return t.n
}

// Result is the outcome of MatchRequest.
type Result uint8

const (
	// NoMatch: no route's conditions hold.
	NoMatch Result = iota
	// Matched: the returned index is the route.
	Matched
	// Ambiguous: a candidate route matches on a header or query parameter
	// that the request carries in a form a backend may read differently
	// (see the package documentation); the request must be rejected.
	Ambiguous
)

// Match finds the route for r following the package's precedence rules and
// returns its Index. host must come from NormalizeHost and path from
// NormalizePath; the method, headers and query are read from r. params is
// reset and then receives the captured template parameters. Match reads a
// repeated header or query parameter by its first value; the gateway uses
// MatchRequest, which rejects such requests instead.
func (t *Table) Match(r *http.Request, host, path string, params *request.Params) (index int, ok bool) {
	return t.match(r, host, path, params, nil)
}

// MatchRequest is Match with strict conditions: when a candidate route
// examined before the winner (or the winner itself) matches on a header
// that the request repeats, or on a query parameter while the query repeats
// that name (ASCII case-insensitively), holds a malformed escape or a ";",
// the result is Ambiguous. Otherwise it agrees with Match.
func (t *Table) MatchRequest(r *http.Request, host, path string, params *request.Params) (int, Result) {
	amb := false
	idx, ok := t.match(r, host, path, params, &amb)
	switch {
	case amb:
		params.Reset()
		return -1, Ambiguous
	case ok:
		return idx, Matched
	}
	return -1, NoMatch
}
