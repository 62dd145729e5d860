package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

func init() {
	RegisterBalancer("consistent_hash", newMaglev)
}

const (
	// maglevSmallTable is the lookup table size for pools of up to
	// maglevSmallTable/100 targets (Maglev's and Envoy's default, a prime).
	maglevSmallTable = 65537
	// maglevMaxTargets bounds a consistent_hash pool: table entries are
	// uint16 target positions. The table is then a prime >= 100 × targets,
	// at most about 6.6 million entries.
	maglevMaxTargets = 1<<16 - 1
)

// maglev is consistent hashing with Google's Maglev lookup table. The table
// is built once from the target URLs and weights, so the same key maps to
// the same target across reloads, restarts and gateway instances; each
// target owns table entries in proportion to its weight, and adding or
// removing one target moves about 1/N of the keys.
//
// A pick hashes the request's key (a request key, internal/reqkey: a
// header, a cookie, the client IP, the path, or any list of parts) with the
// stable reqkey.Key.Sum64 to a table entry. When that entry's target is unavailable it walks
// on to the following entries, which belong to the other targets in
// proportion, so only the keys of the unavailable target move. A request
// without a key (a part with no value) goes to a random admissible target,
// by weight: the one exception to reqkey's missing-value rule, as
// documented for hash_on.
type maglev struct {
	table []uint16
	// seeds are the targets' URL hashes; mixed with the key they give the
	// key's slow-start draw for that target.
	seeds []uint64
	// rk is the request key hashed.
	rk reqkey.Key
	w  weightTable
}

// validateHashOn checks the hash_on settings of an upstream using balancer.
func validateHashOn(balancer string, h *config.HashOn) error {
	if balancer != "consistent_hash" {
		if h != nil {
			return errors.New("hash_on only applies to balancer: consistent_hash")
		}
		return nil
	}
	if h == nil {
		return errors.New("consistent_hash needs hash_on (header, cookie, client_ip, path or key)")
	}
	n := 0
	for _, set := range []bool{h.Header != "", h.Cookie != "", h.ClientIP, h.Path, len(h.Key) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("hash_on: set exactly one of header, cookie, client_ip, path, key (%d set)", n)
	}
	return nil
}

// hashKey is the request key a hash_on setting names: a one-field form is
// the one-part key it stands for.
func hashKey(h *config.HashOn) (reqkey.Key, error) {
	parts := []string(h.Key)
	switch {
	case h.Header != "":
		parts = []string{"header:" + h.Header}
	case h.Cookie != "":
		parts = []string{"cookie:" + h.Cookie}
	case h.ClientIP:
		parts = []string{"ip"}
	case h.Path:
		parts = []string{"path"}
	}
	k, err := reqkey.Parse(parts)
	if err != nil {
		return k, fmt.Errorf("hash_on: %w", err)
	}
	return k, nil
}

func newMaglev(u *config.Upstream, ts []*Target) (Balancer, error) {
	if err := validateHashOn("consistent_hash", u.HashOn); err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, errors.New("consistent_hash needs at least one target")
	}
	if len(ts) > maglevMaxTargets {
		return nil, fmt.Errorf("consistent_hash supports at most %d targets, got %d", maglevMaxTargets, len(ts))
	}
	key, err := hashKey(u.HashOn)
	if err != nil {
		return nil, err
	}
	b := &maglev{w: newWeightTable(ts), rk: key}
	b.table, b.seeds = buildMaglev(ts, maglevTableSize(len(ts)))
	return b, nil
}

// maglevTableSize is the lookup table size for n targets: a prime at least
// 100 times n, so that shares stay within about 1% of the weights.
func maglevTableSize(n int) int {
	if n*100 <= maglevSmallTable {
		return maglevSmallTable
	}
	m := n * 100
	for !isPrime(m) {
		m++
	}
	return m
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// buildMaglev fills a table of size m (a prime) with target positions and
// returns it with the targets' URL hashes.
//
// Each target walks its own permutation of the table (offset and skip from
// two hashes of its URL) and claims the next free entry on each of its
// turns. A target of weight w gets a turn in w/max-weight of the rounds, so
// its share of the table follows its weight. Targets take their turns in URL
// order, which makes the table independent of the order targets are listed
// in.
func buildMaglev(ts []*Target, m int) ([]uint16, []uint64) {
	type builder struct {
		pos, skip uint64
		// weight is relative to the heaviest target; turns counts the
		// entries claimed so far.
		weight, turns float64
		index         int
		url           string
	}
	mm := uint64(m)
	seeds := make([]uint64, len(ts))
	bs := make([]builder, len(ts))
	var maxW uint64
	for _, t := range ts {
		maxW = max(maxW, weightOf(t))
	}
	for i, t := range ts {
		u := t.URL.String()
		seeds[i] = hashString(u)
		bs[i] = builder{
			pos:    seeds[i] % mm,
			skip:   reqkey.Mix64(reqkey.FNV1a(fnvOffset64Alt, u))%(mm-1) + 1,
			weight: float64(weightOf(t)) / float64(maxW),
			index:  i,
			url:    u,
		}
	}
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].url != bs[j].url {
			return bs[i].url < bs[j].url
		}
		return bs[i].index < bs[j].index
	})
	table := make([]uint16, m)
	taken := make([]bool, m)
	filled := 0
	for round := 1; filled < m; round++ {
		for i := range bs {
			e := &bs[i]
			if float64(round)*e.weight < e.turns {
				continue
			}
			e.turns++
			for taken[e.pos] {
				e.pos = (e.pos + e.skip) % mm
			}
			table[e.pos] = uint16(e.index)
			taken[e.pos] = true
			e.pos = (e.pos + e.skip) % mm
			if filled++; filled == m {
				break
			}
		}
	}
	return table, seeds
}

func (b *maglev) Pick(ts []*Target, r *http.Request, f *Filter) *Target {
	if h, ok := b.key(r); ok && len(ts) == len(b.seeds) {
		return b.walk(ts, f, h)
	}
	for try := 0; ; try++ {
		t := b.w.pickOK(ts, f)
		if admitSlowStart(f, t, try) {
			return t
		}
	}
}

// walk returns the first admissible target in table order from the key's
// entry. Under slow start a recovering target keeps the keys whose draw
// (fixed per key and target) falls under its factor, so the keys it takes
// stay with it as the factor grows.
func (b *maglev) walk(ts []*Target, f *Filter, h uint64) *Target {
	m := uint64(len(b.table))
	pos := h % m
	refused := 0
	for k := uint64(0); k < m; k++ {
		i := b.table[pos]
		if t := ts[i]; f.OK(t) {
			if admitSlowStartAt(f, t, refused, unitFloat(reqkey.Mix64(h^b.seeds[i]))) {
				return t
			}
			refused++
		} else if k == 0 && !anyOK(ts, f) {
			return nil
		}
		if pos++; pos == m {
			pos = 0
		}
	}
	return nil
}

// anyOK reports whether f admits some target of ts.
func anyOK(ts []*Target, f *Filter) bool {
	for _, t := range ts {
		if f.OK(t) {
			return true
		}
	}
	return false
}

// key returns the hash of r's consistent-hash key, or false when r has none.
func (b *maglev) key(r *http.Request) (uint64, bool) {
	if r == nil {
		return 0, false
	}
	return b.rk.Sum64(r, request.RecordOf(r))
}

// fnvOffset64Alt is a second FNV offset basis, for a hash of a target URL
// independent of reqkey.HashString's.
const fnvOffset64Alt = 0x9e3779b97f4a7c15

// hashString is the stable 64-bit hash of s used for keys and target URLs.
func hashString(s string) uint64 { return reqkey.HashString(s) }

// unitFloat maps a hash to [0, 1).
func unitFloat(h uint64) float64 { return float64(h>>11) * 0x1p-53 }

// Interface guard.
var _ Balancer = (*maglev)(nil)
