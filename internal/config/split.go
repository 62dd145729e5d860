package config

import (
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/portico-gw/portico/internal/httpx"
)

// Split sends a route's requests to one of several upstreams (variants):
// canary releases and A/B tests. Rules are checked in order first; a
// request no rule matches goes to a variant chosen by weight, at random or,
// with Sticky, by a hash of a request key.
type Split struct {
	// Variants are the upstreams to choose from, each with its share.
	Variants []SplitVariant `yaml:"variants"`
	// Rules send matching requests to a named variant before weights are
	// considered; the first matching rule wins.
	Rules []SplitRule `yaml:"rules"`
	// Sticky chooses the variant from a hash of a request key instead of
	// at random, so the same key always gets the same variant, and moving
	// weight moves only as many keys as the change needs.
	Sticky *SplitSticky `yaml:"sticky"`
	// Header, when set, names a response header that carries the chosen
	// upstream's name (e.g. X-Portico-Variant).
	Header string `yaml:"header"`
}

// SplitVariant is one upstream of a split and its weight.
type SplitVariant struct {
	// Upstream names a defined upstream.
	Upstream string `yaml:"upstream"`
	// Weight is the variant's share relative to the others' sum (95 and 5
	// send 95% and 5%). 0 takes the variant out of the weighted choice;
	// rules may still send requests to it.
	Weight float64 `yaml:"weight"`
}

// SplitRule sends requests that match it to one variant. Set exactly one of
// header, cookie, query, claim, consumer, group and ip.
type SplitRule struct {
	// Header matches when the request header's first value equals value.
	Header *SplitMatch `yaml:"header"`
	// Cookie matches when the cookie's value equals value.
	Cookie *SplitMatch `yaml:"cookie"`
	// Query matches when the query parameter's first value (decoded)
	// equals value.
	Query *SplitMatch `yaml:"query"`
	// Claim matches when a top-level claim of the token that authenticated
	// the consumer (jwt, oauth2_introspection), rendered as for
	// claims_to_headers, equals value: a boolean claim is "true" or
	// "false". An auth plugin must run on the route.
	Claim *SplitMatch `yaml:"claim"`
	// Consumer matches requests authenticated as one of these consumers
	// (by name). The anonymous consumer never matches.
	Consumer StringList `yaml:"consumer"`
	// Group matches requests whose authenticated consumer is in one of
	// these groups. The anonymous consumer never matches.
	Group StringList `yaml:"group"`
	// IP matches when the client IP (trusted-proxy aware) is one of these
	// addresses or in one of these CIDR ranges.
	IP StringList `yaml:"ip"`
	// Upstream is the variant matching requests go to; it must be one of
	// the split's variants.
	Upstream string `yaml:"upstream"`
}

// SplitMatch is a name and the exact value it must have.
type SplitMatch struct {
	// Name is the header, cookie, query parameter or claim name.
	Name string `yaml:"name"`
	// Value is the exact value that matches (compared case-sensitively).
	Value string `yaml:"value"`
}

// SplitSticky keys the weighted choice on a request key, or keeps a
// client on its variant with a signed cookie. Set exactly one of key and
// cookie.
type SplitSticky struct {
	// Key is a request key (README "Request keys"), e.g. [consumer] or
	// cookie:session. A request whose key part has no value is keyed by
	// its client IP.
	Key StringList `yaml:"key"`
	// Cookie keeps a client on the variant it was first given: Portico
	// sets a signed cookie naming the variant and honours it on later
	// requests.
	Cookie *SplitCookie `yaml:"cookie"`
}

// SplitCookie is the signed cookie of a cookie-sticky split.
type SplitCookie struct {
	// Name is the cookie name (default portico_variant).
	Name string `yaml:"name"`
	// TTL is the cookie's Max-Age (default 24h).
	TTL Duration `yaml:"ttl"`
	// Secret signs the cookie (HMAC-SHA256 over route and variant); at
	// least 32 bytes, usually "${ENV}". Required.
	Secret string `yaml:"secret" secret:"true"`
}

// UsesUpstream reports whether the route sends requests to the upstream
// name, directly, as a variant of its split or as one of its versions.
func (r *Route) UsesUpstream(name string) bool {
	if r.Upstream == name || r.Versions.usesUpstream(name) {
		return true
	}
	if r.Split != nil {
		for _, v := range r.Split.Variants {
			if v.Upstream == name {
				return true
			}
		}
	}
	return false
}

// validateSplit checks a route's split at path p.
func (c *Config) validateSplit(l *errorList, p string, s *Split) {
	if len(s.Variants) == 0 {
		l.add(p+".variants", "split needs at least one variant")
	}
	seen := map[string]int{}
	sum := 0.0
	for i, v := range s.Variants {
		vp := fmt.Sprintf("%s.variants[%d]", p, i)
		switch {
		case v.Upstream == "":
			l.add(vp+".upstream", "variant upstream is required")
		case c.Upstreams[v.Upstream] == nil && !c.Covered("upstreams"):
			l.add(vp+".upstream", "upstream %q is not defined (defined: %s)", v.Upstream, strings.Join(sortedKeys(c.Upstreams), ", "))
		}
		if j, dup := seen[v.Upstream]; dup && v.Upstream != "" {
			l.add(vp+".upstream", "upstream %q is already variants[%d]; list each upstream once", v.Upstream, j)
		} else {
			seen[v.Upstream] = i
		}
		if !(v.Weight >= 0) || math.IsInf(v.Weight, 0) {
			l.add(vp+".weight", "weight must be a number of at least 0")
			continue
		}
		sum += v.Weight
	}
	if len(s.Variants) > 0 && !(sum > 0) {
		l.add(p+".variants", "the variants' weights must add up to more than 0")
	}
	for i, r := range s.Rules {
		validateSplitRule(l, fmt.Sprintf("%s.rules[%d]", p, i), &r, seen)
	}
	if s.Sticky != nil {
		validateSplitSticky(l, p+".sticky", s.Sticky)
	}
	if s.Header != "" && (!httpx.ValidToken(s.Header) || httpx.IsHopByHop(http.CanonicalHeaderKey(s.Header))) {
		l.add(p+".header", "header %q must be a header name such as X-Portico-Variant (not a hop-by-hop header)", s.Header)
	}
}

// validateSplitRule checks one rule; variants maps the split's upstreams.
func validateSplitRule(l *errorList, p string, r *SplitRule, variants map[string]int) {
	n := 0
	for _, m := range []struct {
		kind string
		m    *SplitMatch
	}{{"header", r.Header}, {"cookie", r.Cookie}, {"query", r.Query}, {"claim", r.Claim}} {
		if m.m == nil {
			continue
		}
		n++
		switch {
		case m.m.Name == "":
			l.add(p+"."+m.kind+".name", "%s name is required", m.kind)
		case (m.kind == "header" || m.kind == "cookie") && !httpx.ValidToken(m.m.Name):
			l.add(p+"."+m.kind+".name", "%s name %q is not a valid token (letters, digits and !#$%%&'*+-.^_`|~)", m.kind, m.m.Name)
		case strings.ContainsAny(m.m.Name, " &=#\t"):
			l.add(p+"."+m.kind+".name", "%s name %q may not contain spaces, '&', '=' or '#'", m.kind, m.m.Name)
		}
	}
	for _, m := range []struct {
		kind  string
		names StringList
	}{{"consumer", r.Consumer}, {"group", r.Group}, {"ip", r.IP}} {
		if m.names == nil {
			continue
		}
		n++
		if len(m.names) == 0 {
			l.add(p+"."+m.kind, "list at least one %s", m.kind)
		}
		for i, v := range m.names {
			switch {
			case m.kind == "ip":
				if _, err := ParsePrefix(v); err != nil {
					l.add(fmt.Sprintf("%s.ip[%d]", p, i), "%v", err)
				}
			case v == "":
				l.add(fmt.Sprintf("%s.%s[%d]", p, m.kind, i), "empty %s name", m.kind)
			}
		}
	}
	if n != 1 {
		l.add(p, "set exactly one of header, cookie, query, claim, consumer, group and ip")
	}
	if r.Upstream == "" {
		l.add(p+".upstream", "rule upstream is required")
	} else if _, ok := variants[r.Upstream]; !ok {
		l.add(p+".upstream", "upstream %q is not one of the split's variants", r.Upstream)
	}
}
