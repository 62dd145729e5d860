package request

import (
	"encoding/hex"
	"math/rand/v2"
)

// MaxIDLen bounds an accepted incoming request ID.
const MaxIDLen = 128

// NewID returns a random 128-bit ID as 32 lowercase hex digits.
func NewID() string {
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(a >> (8 * i))
		b[8+i] = byte(c >> (8 * i))
	}
	var out [32]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}

// ValidID reports whether an incoming ID is safe to propagate: 1 to
// MaxIDLen characters of A-Z a-z 0-9 and - _ . : / + =.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=':
		default:
			return false
		}
	}
	return true
}
