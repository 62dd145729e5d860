package rediscache

import (
	"net/http"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/testutil/testredis"
)

// benchEntry is a typical small JSON response: a 1 KiB body and the
// header fields an API sends.
func benchEntry() *httpcache.Entry {
	now := time.Now()
	return &httpcache.Entry{Key: keyOf("bench"), Status: 200,
		Header: http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=600"},
			"Etag": {`"abc123"`}, "Date": {now.UTC().Format(http.TimeFormat)}, "Content-Length": {"1024"}},
		Body: make([]byte, 1024), Meta: httpcache.Meta{ResponseTime: now, RequestTime: now, Lifetime: 10 * time.Minute},
		Path: "api.example/v1/items?page=2", TTL: time.Hour}
}

// BenchmarkRedisHit is a hit through the store on a real redis-server: a
// GET round trip on loopback and the decoding of a 1 KiB entry.
func BenchmarkRedisHit(b *testing.B) {
	benchHit(b, 0)
}

// BenchmarkRedisHitFront is the same hit served by the memory front.
func BenchmarkRedisHitFront(b *testing.B) {
	benchHit(b, time.Minute)
}

func benchHit(b *testing.B, front time.Duration) {
	rd := testredis.Start(b)
	s := newStore(b, rd.Addr, "bench", front)
	if err := s.Set(bg, benchEntry()); err != nil {
		b.Fatal(err)
	}
	k := keyOf("bench")
	b.ReportAllocs()
	for b.Loop() {
		if e, err := s.Get(bg, k); e == nil || err != nil {
			b.Fatalf("miss: %v", err)
		}
	}
}

// BenchmarkDecodeEntry is the decoding alone.
func BenchmarkDecodeEntry(b *testing.B) {
	v := string(appendEntry(nil, benchEntry(), time.Now()))
	b.ReportAllocs()
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if _, _, err := decodeEntry(v); err != nil {
			b.Fatal(err)
		}
	}
}
