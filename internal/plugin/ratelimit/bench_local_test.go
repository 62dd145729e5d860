package ratelimit

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/portico-gw/portico/internal/request"
)

// BenchmarkLocalAllow measures one local decision, key hashing included,
// for one hot key and for many keys.
func BenchmarkLocalAllow(b *testing.B) {
	for _, bc := range []struct {
		name string
		keys int
	}{{"hot_key", 1}, {"many_keys", 50_000}} {
		b.Run(bc.name, func(b *testing.B) {
			p := newPlugin(b, `{key: [consumer], limits: [{rate: 1000000, per: 1s, burst: 1000000000}, {rate: 1000000000, per: 1h, algorithm: sliding_window}]}`, nil)
			var seq atomic.Uint32
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				base := seq.Add(1) << 20
				r := req(&request.Record{Route: "test", Path: "/x"})
				rec := request.RecordOf(r)
				i := uint32(0)
				for pb.Next() {
					i++
					a := [4]byte{10, 0, 0, 1}
					if bc.keys > 1 {
						k := (base + i) % uint32(bc.keys)
						a = [4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}
					}
					rec.ClientIP = netip.AddrFrom4(a)
					p.decide(r, rec)
				}
			})
		})
	}
}
