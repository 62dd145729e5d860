package gateway

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/proxy"
	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

// splitHandler is the terminal of a route with a split: it picks a variant
// by rules, then by weight (sticky or at random), and hands the request to
// that variant's forwarder. Everything it reads is built once per config;
// a request takes no lock and allocates nothing here.
type splitHandler struct {
	variants []splitVariant
	// cum holds the variants' cumulative shares in (0, 1], the last
	// positive one exactly 1: a draw u in [0, 1) picks the first variant
	// with u < cum[i]. Moving weight between neighbours moves only the
	// draws between the old and the new boundary.
	cum   []float64
	rules []splitRule
	// sticky keys the draw when set; otherwise it is random.
	sticky    reqkey.Key
	hasSticky bool
	// header is the canonical response header naming the variant ("" for
	// none).
	header string
	// cookie, when set, keeps clients on their variant with a signed
	// cookie.
	cookie *splitCookie
}

type splitVariant struct {
	name string
	fwd  http.Handler
	// value is the header value, clipped so that appending to it copies.
	value []string
}

// splitRule is one compiled rule: a request-key value to compare
// (header, cookie, query, claim), consumer names or groups, or client IP
// ranges.
type splitRule struct {
	key    reqkey.Key
	hasKey bool
	value  string
	// names are consumer names (groups false) or group names (groups true).
	names  []string
	groups bool
	nets   []netip.Prefix
	to     int
}

// matches reports whether the request satisfies the rule; it does not
// allocate (but for a claim rendered from a number or a list).
func (ru *splitRule) matches(r *http.Request, rec *request.Record) bool {
	switch {
	case ru.hasKey:
		v, ok := ru.key.Value(r, rec)
		return ok && v == ru.value
	case ru.nets != nil:
		ip := reqkey.ClientIP(r, rec)
		for _, n := range ru.nets {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	}
	if rec == nil || rec.Consumer == nil || rec.Consumer.Anonymous {
		return false
	}
	c := rec.Consumer
	for _, n := range ru.names {
		if (ru.groups && c.InGroup(n)) || (!ru.groups && c.Name == n) {
			return true
		}
	}
	return false
}

// stickySalt decorrelates the variant draw from an upstream's consistent
// hash on the same key, which reads the same stable hash.
const stickySalt = 0x9e3779b97f4a7c15

func (h *splitHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := request.RecordOf(r)
	i, setCookie := h.choose(r, rec)
	v := &h.variants[i]
	if rec != nil {
		rec.Upstream = v.name
	}
	if h.header != "" {
		w.Header()[h.header] = v.value
	}
	if setCookie {
		h.cookie.setCookie(w, rec, i)
	}
	v.fwd.ServeHTTP(w, r)
}

// choose returns the index of the request's variant and whether the
// variant cookie is to be set on the response (a cookie-sticky split
// whose request carried no valid cookie for a variant with a share).
func (h *splitHandler) choose(r *http.Request, rec *request.Record) (int, bool) {
	for i := range h.rules {
		if ru := &h.rules[i]; ru.matches(r, rec) {
			return ru.to, false
		}
	}
	if h.cookie != nil {
		if i := h.cookie.variant(r, h.cum); i >= 0 {
			return i, false
		}
		return pickCumulative(h.cum, rand.Float64()), true
	}
	var u float64
	if h.hasSticky {
		sum, _ := h.sticky.Sum64(r, rec)
		u = unitFloat(reqkey.Mix64(sum ^ stickySalt))
	} else {
		u = rand.Float64()
	}
	return pickCumulative(h.cum, u), false
}

// unitFloat maps a 64-bit hash onto [0, 1) evenly.
func unitFloat(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// pickCumulative returns the first index with u < cum[i], or the last
// variant with a positive share when rounding leaves u past every bound.
func pickCumulative(cum []float64, u float64) int {
	for i, c := range cum {
		if u < c {
			return i
		}
	}
	last := len(cum) - 1
	for last > 0 && cum[last] == cum[last-1] {
		last--
	}
	return last
}

// cumulative turns weights into cumulative shares ending at 1; the sum
// must be positive (validation ensures it).
func cumulative(weights []float64) []float64 {
	sum := 0.0
	for _, w := range weights {
		sum += w
	}
	cum := make([]float64, len(weights))
	acc := 0.0
	for i, w := range weights {
		acc += w
		cum[i] = acc / sum
	}
	// The last variant with a positive weight ends at exactly 1 (no
	// rounding gap), and those after it keep that bound, so none of them
	// is drawn.
	for i := len(cum) - 1; i >= 0; i-- {
		cum[i] = 1
		if weights[i] > 0 {
			break
		}
	}
	return cum
}

// buildSplit builds the terminal of a route with a split: one forwarder per
// variant, each on its upstream's pool, so target health, breakers and
// connections stay the pool's across reloads and weight changes. It
// returns nil after adding errors when the split cannot be built.
func (b *Builder) buildSplit(s *Snapshot, rc *config.Route, path string, logger *slog.Logger, errs *located) http.Handler {
	sp := rc.Split
	rw, err := proxy.CompileRewrite(rc.Rewrite, rc.Match)
	if err != nil {
		errs.add(path+".rewrite", err)
		return nil
	}
	h := &splitHandler{header: http.CanonicalHeaderKey(sp.Header)}
	index := make(map[string]int, len(sp.Variants))
	weights := make([]float64, 0, len(sp.Variants))
	ok := true
	for i, v := range sp.Variants {
		pool := s.pools[v.Upstream]
		if pool == nil {
			if _, defined := s.cfg.Upstreams[v.Upstream]; !defined {
				errs.add(fmt.Sprintf("%s.split.variants[%d].upstream", path, i), fmt.Errorf("upstream %q is not available", v.Upstream))
			}
			ok = false
			continue
		}
		index[v.Upstream] = len(h.variants)
		h.variants = append(h.variants, splitVariant{name: v.Upstream, value: slices.Clip([]string{v.Upstream}),
			fwd: proxy.NewForwarder(pool, forwardOptions(b, rc, rw, logger))})
		weights = append(weights, v.Weight)
	}
	for i, ru := range sp.Rules {
		r, err := compileSplitRule(ru, index)
		if err != nil {
			errs.add(fmt.Sprintf("%s.split.rules[%d]", path, i), err)
			ok = false
			continue
		}
		h.rules = append(h.rules, r)
	}
	if sp.Sticky != nil && sp.Sticky.Cookie != nil {
		h.cookie = newSplitCookie(sp.Sticky.Cookie, rc.Name, h.variants)
	} else if sp.Sticky != nil {
		if h.sticky, err = reqkey.Parse(sp.Sticky.Key); err != nil {
			errs.add(path+".split.sticky.key", err)
			ok = false
		}
		h.hasSticky = true
	}
	if !ok || len(h.variants) == 0 {
		return nil
	}
	h.cum = cumulative(weights)
	return h
}

// compileSplitRule compiles one rule; index maps variant upstreams to
// their positions.
func compileSplitRule(ru config.SplitRule, index map[string]int) (splitRule, error) {
	to, ok := index[ru.Upstream]
	if !ok {
		return splitRule{}, fmt.Errorf("upstream %q is not one of the split's variants", ru.Upstream)
	}
	out := splitRule{to: to}
	var kind string
	var m *config.SplitMatch
	switch {
	case ru.Header != nil:
		kind, m = "header", ru.Header
	case ru.Cookie != nil:
		kind, m = "cookie", ru.Cookie
	case ru.Query != nil:
		kind, m = "query", ru.Query
	case ru.Claim != nil:
		kind, m = "claim", ru.Claim
	case ru.Consumer != nil:
		out.names = slices.Clone(ru.Consumer)
		return out, nil
	case ru.Group != nil:
		out.names, out.groups = slices.Clone(ru.Group), true
		return out, nil
	case ru.IP != nil:
		for _, s := range ru.IP {
			p, err := config.ParsePrefix(s)
			if err != nil {
				return splitRule{}, err
			}
			out.nets = append(out.nets, p)
		}
		return out, nil
	default:
		return splitRule{}, fmt.Errorf("set exactly one of header, cookie, query, claim, consumer, group and ip")
	}
	k, err := reqkey.Parse([]string{kind + ":" + m.Name})
	if err != nil {
		return splitRule{}, err
	}
	out.key, out.hasKey, out.value = k, true, m.Value
	return out, nil
}

// variantMetrics are a split route's metrics for one variant.
type variantMetrics struct {
	upstream string
	metrics  *observe.RouteMetrics
}

// splitMetrics returns one metrics set per variant of a split route, or
// per version of a route with versions (nil for other routes), so the
// upstream label names the chosen variant.
func (b *Builder) splitMetrics(rc *config.Route) []variantMetrics {
	if rc.Versions != nil {
		return b.versionUpstreamMetrics(rc)
	}
	if rc.Split == nil {
		return nil
	}
	out := make([]variantMetrics, 0, len(rc.Split.Variants))
	for _, v := range rc.Split.Variants {
		out = append(out, variantMetrics{upstream: v.Upstream, metrics: b.Metrics.Route(rc.Name, v.Upstream)})
	}
	return out
}

// metricsOf returns the metrics a finished request of the route counts in:
// its variant's on a split route, else the route's (a request a plugin
// answered before the split chose has no variant).
func (rt *route) metricsOf(rec *request.Record) *observe.RouteMetrics {
	for i := range rt.variants {
		if rt.variants[i].upstream == rec.Upstream {
			return rt.variants[i].metrics
		}
	}
	return rt.metrics
}
