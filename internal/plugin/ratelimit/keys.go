package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/netip"
	"strings"

	"github.com/portico-gw/portico/internal/request"
)

// Key part kinds.
const (
	partConsumer = iota + 1
	partIP
	partRoute
	partHeader
	partParam
	partPath
)

// keyPart is one parsed element of the `key` list.
type keyPart struct {
	kind int
	// name is the canonical header name or the parameter name.
	name string
}

func parseKeyPart(s string) (keyPart, error) {
	switch {
	case s == "consumer":
		return keyPart{kind: partConsumer}, nil
	case s == "ip":
		return keyPart{kind: partIP}, nil
	case s == "route":
		return keyPart{kind: partRoute}, nil
	case s == "path":
		return keyPart{kind: partPath}, nil
	case strings.HasPrefix(s, "header:"):
		name := s[len("header:"):]
		if name == "" || strings.ContainsAny(name, " \t:\r\n") {
			return keyPart{}, fmt.Errorf("%q: header name missing or invalid", s)
		}
		return keyPart{kind: partHeader, name: http.CanonicalHeaderKey(name)}, nil
	case strings.HasPrefix(s, "param:"):
		name := s[len("param:"):]
		if name == "" {
			return keyPart{}, fmt.Errorf("%q: parameter name missing", s)
		}
		return keyPart{kind: partParam, name: name}, nil
	}
	return keyPart{}, errors.New("unknown key part " + fmt.Sprintf("%q", s) + " (use consumer, ip, route, path, header:<Name> or param:<name>)")
}

// consumerID returns the authenticated consumer's ID, or false when the
// request is not authenticated (no consumer, or an auth plugin's anonymous
// fallback consumer).
func consumerID(rec *request.Record) (string, bool) {
	if rec == nil || rec.Consumer == nil || rec.Consumer.Anonymous {
		return "", false
	}
	return rec.Consumer.ID, true
}

func clientIP(r *http.Request, rec *request.Record) netip.Addr {
	if rec != nil {
		return rec.ClientIP
	}
	// Outside the gateway (tests, tools): the TCP peer.
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return ap.Addr().Unmap()
}

func headerValue(r *http.Request, name string) string {
	if v := r.Header[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// hashKey hashes the request's key parts into the local store key without
// allocating. Each part is written with a kind tag and its length, so
// different splits of the same bytes hash differently.
func hashKey(seed maphash.Seed, parts []keyPart, r *http.Request, rec *request.Record, route string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for _, p := range parts {
		switch p.kind {
		case partConsumer:
			if id, ok := consumerID(rec); ok {
				writeStr(&h, 'c', id)
			} else {
				writeIP(&h, clientIP(r, rec))
			}
		case partIP:
			writeIP(&h, clientIP(r, rec))
		case partRoute:
			writeStr(&h, 'r', recRoute(rec, route))
		case partHeader:
			writeStr(&h, 'h', headerValue(r, p.name))
		case partParam:
			writeStr(&h, 'p', recParam(rec, p.name))
		case partPath:
			writeStr(&h, 'u', rec.PathOf(r))
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

func writeIP(h *maphash.Hash, ip netip.Addr) {
	var b [18]byte
	b[0] = 'i'
	b[1] = byte(ip.BitLen())
	a := ip.As16()
	copy(b[2:], a[:])
	_, _ = h.Write(b[:])
}

func recRoute(rec *request.Record, route string) string {
	if rec != nil && rec.Route != "" {
		return rec.Route
	}
	return route
}

func recParam(rec *request.Record, name string) string {
	if rec == nil {
		return ""
	}
	v, _ := rec.Params.Get(name)
	return v
}

// keyString renders the request's key as text for Redis key names. Parts
// are separated by '|'; '%', '|', '{' and '}' inside values are
// percent-encoded, so parts cannot run into each other and the key is safe
// inside a Redis Cluster hash tag.
func keyString(parts []keyPart, r *http.Request, rec *request.Record, route string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('|')
		}
		switch p.kind {
		case partConsumer:
			if id, ok := consumerID(rec); ok {
				b.WriteString("c:")
				escape(&b, id)
			} else {
				b.WriteString("ip:")
				b.WriteString(clientIP(r, rec).String())
			}
		case partIP:
			b.WriteString("ip:")
			b.WriteString(clientIP(r, rec).String())
		case partRoute:
			escape(&b, recRoute(rec, route))
		case partHeader:
			escape(&b, headerValue(r, p.name))
		case partParam:
			escape(&b, recParam(rec, p.name))
		case partPath:
			escape(&b, rec.PathOf(r))
		}
	}
	return b.String()
}

func escape(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%', '|', '{', '}':
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
	}
}

func escapeString(s string) string {
	var b strings.Builder
	escape(&b, s)
	return b.String()
}
