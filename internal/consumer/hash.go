package consumer

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Limits on argon2id parameters read from a stored hash, so a mistyped hash
// cannot make every check allocate gigabytes or run for minutes.
const (
	MaxArgonMemoryKiB = 4 << 20 // 4 GiB
	MaxArgonTime      = 64
	MaxArgonKeyLen    = 1024
)

// Argon2id is a parsed argon2id PHC string.
type Argon2id struct {
	// Memory is m (KiB), Time is t (passes), Threads is p (lanes).
	Memory, Time uint32
	Threads      uint8
	Salt, Key    []byte
}

// ParseArgon2id parses a PHC string
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>, salt and hash
// in unpadded standard base64, within the limits above. The error says what
// is wrong without repeating the hash.
func ParseArgon2id(phc string) (Argon2id, error) {
	var a Argon2id
	parts := strings.Split(phc, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return a, errors.New("an argon2id hash has the form $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>")
	}
	if parts[2] != "v=19" {
		return a, errors.New("only argon2id version 19 (v=19) is supported")
	}
	var m, t, par uint64
	seen := 0
	for kv := range strings.SplitSeq(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return a, fmt.Errorf("parameter %q is not a number", k)
		}
		switch k {
		case "m":
			m, seen = n, seen|1
		case "t":
			t, seen = n, seen|2
		case "p":
			par, seen = n, seen|4
		default:
			return a, fmt.Errorf("unknown parameter %q (want m, t and p)", k)
		}
	}
	switch {
	case seen != 7:
		return a, errors.New("parameters m, t and p are all required")
	case t == 0 || t > MaxArgonTime:
		return a, fmt.Errorf("t must be from 1 to %d", MaxArgonTime)
	case par == 0 || par > 255:
		return a, errors.New("p must be from 1 to 255")
	case m < 8*par || m > MaxArgonMemoryKiB:
		return a, fmt.Errorf("m must be from 8×p to %d KiB", MaxArgonMemoryKiB)
	}
	salt, err := b64(parts[4])
	if err != nil || len(salt) < 8 {
		return a, errors.New("the salt must be base64 of at least 8 bytes")
	}
	key, err := b64(parts[5])
	if err != nil || len(key) < 16 || len(key) > MaxArgonKeyLen {
		return a, fmt.Errorf("the hash must be base64 of 16 to %d bytes", MaxArgonKeyLen)
	}
	return Argon2id{Memory: uint32(m), Time: uint32(t), Threads: uint8(par), Salt: salt, Key: key}, nil
}

// b64 decodes PHC base64 (unpadded; padding is tolerated).
func b64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// CheckPasswordHash reports whether hash is a well-formed bcrypt ("$2a$",
// "$2b$", "$2y$") or argon2id ("$argon2id$") hash that basic_auth can verify
// passwords against.
func CheckPasswordHash(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		_, err := ParseArgon2id(hash)
		return err
	case strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$"):
		if len(hash) != 60 {
			return fmt.Errorf("malformed bcrypt hash: it has %d characters, a bcrypt hash has 60", len(hash))
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return errors.New("malformed bcrypt hash: the cost after the version must be two digits from 04 to 31")
		}
		if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
			return fmt.Errorf("bcrypt cost %d is out of range (%d to %d)", cost, bcrypt.MinCost, bcrypt.MaxCost)
		}
		return nil
	}
	return errors.New("unsupported hash: use bcrypt ($2b$…) or argon2id ($argon2id$…)")
}
