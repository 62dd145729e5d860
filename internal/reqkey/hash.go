package reqkey

import (
	"hash/maphash"
	"net/http"
	"net/netip"

	"github.com/portico-gw/portico/internal/request"
)

// Hash hashes the request's key with seed, for in-process tables, without
// allocating. Each part is written with a tag and its length, so different
// splits of the same bytes hash differently, and a missing value's client
// IP is tagged apart from every real value (and from an ip part).
func (k Key) Hash(seed maphash.Seed, r *http.Request, rec *request.Record) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for i := range k.parts {
		p := &k.parts[i]
		if p.kind == kindIP {
			writeIP(&h, byte(kindIP), ClientIP(r, rec))
			continue
		}
		if v, ok := p.value(r, rec); ok {
			writeStr(&h, byte(p.kind), v)
		} else {
			writeIP(&h, tagMissing, ClientIP(r, rec))
		}
	}
	return h.Sum64()
}

func writeStr(h *maphash.Hash, tag byte, s string) {
	var b [9]byte
	b[0] = tag
	n := uint64(len(s))
	for i := 1; i < 9; i++ {
		b[i] = byte(n)
		n >>= 8
	}
	_, _ = h.Write(b[:])
	_, _ = h.WriteString(s)
}

func writeIP(h *maphash.Hash, tag byte, ip netip.Addr) {
	var b [18]byte
	b[0] = tag
	b[1] = byte(ip.BitLen())
	a := ip.As16()
	copy(b[2:], a[:])
	_, _ = h.Write(b[:])
}

// Sum64 is a hash of the request's key that is the same in every process
// and on every machine (FNV-1a 64 with a SplitMix64 finalizer), for
// consistent hashing; it does not allocate. ok reports whether every part
// had a value of its own; when one had none, the hash is that of the
// missing-value rule (the client IP stands in for it), and a caller with a
// documented "no key" behaviour ignores it.
//
// For a one-part key the hash is that of the value's bytes alone (an IP as
// its 16-byte form), so it does not change when a one-field hash_on
// setting is written as a key; longer keys fold each part's length in too.
func (k Key) Sum64(r *http.Request, rec *request.Record) (uint64, bool) {
	h := uint64(fnvOffset64)
	ok := true
	framed := len(k.parts) > 1
	for i := range k.parts {
		p := &k.parts[i]
		tag := byte(p.kind)
		var v string
		isIP := p.kind == kindIP
		if !isIP {
			var has bool
			if v, has = p.value(r, rec); !has {
				ok, isIP, tag = false, true, tagMissing
			}
		}
		if isIP {
			a := ClientIP(r, rec)
			if !a.IsValid() {
				ok = false
			}
			ip := a.As16()
			if framed || tag == tagMissing {
				h = fnvByte(h, tag)
			}
			for _, c := range ip {
				h = fnvByte(h, c)
			}
			continue
		}
		if framed {
			h = fnvByte(h, tag)
			for n, j := uint64(len(v)), 0; j < 8; j, n = j+1, n>>8 {
				h = fnvByte(h, byte(n))
			}
		}
		h = FNV1a(h, v)
	}
	return Mix64(h), ok
}

// FNV-1a 64 constants.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// FNV1a folds s into the FNV-1a 64 hash h.
func FNV1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = fnvByte(h, s[i])
	}
	return h
}

func fnvByte(h uint64, c byte) uint64 { return (h ^ uint64(c)) * fnvPrime64 }

// Mix64 is the SplitMix64 finalizer: it spreads FNV's weak low bits over
// the whole word before they are reduced modulo a table size.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// HashString is the stable hash of one string value: Sum64 of a one-part
// key whose value is s.
func HashString(s string) uint64 { return Mix64(FNV1a(fnvOffset64, s)) }
