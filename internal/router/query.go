package router

import (
	"strings"
)

// queryOnly reports whether key occurs in the raw query exactly once with
// the given value. ambiguous is true when backends may read the query
// differently from the router: key occurs more than once (also in another
// ASCII case, which some frameworks merge), or the query holds a ";" (a
// separator for some) or a malformed escape (decoded leniently by some).
func queryOnly(raw, key, value string) (ok, ambiguous bool) {
	if strings.IndexByte(raw, ';') >= 0 {
		return false, true
	}
	seen := false
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		keq, kfold, kvalid := queryKeyEqual(k, key)
		veq, vvalid := queryEqual(v, value)
		if !kvalid || !vvalid {
			return false, true
		}
		if !kfold {
			continue
		}
		if seen {
			return false, true
		}
		seen = true
		ok = keq && veq
	}
	return ok, false
}

// queryKeyEqual decodes the query key enc on the fly and compares it with
// want, exactly (eq) and ASCII case-insensitively (fold).
func queryKeyEqual(enc, want string) (eq, fold, valid bool) {
	eq, fold = true, true
	j := 0
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(enc) {
				return false, false, false
			}
			hi, _, ok1 := unhex(enc[i+1])
			lo, _, ok2 := unhex(enc[i+2])
			if !ok1 || !ok2 {
				return false, false, false
			}
			c = hi<<4 | lo
			i += 2
		}
		if j >= len(want) {
			eq, fold = false, false
		} else if w := want[j]; w != c {
			eq = false
			if lower(w) != lower(c) {
				fold = false
			}
		}
		j++
	}
	if j != len(want) {
		eq, fold = false, false
	}
	return eq, fold, true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// queryHas reports whether the first valid occurrence of key in the raw query
// has the given value, with url.ParseQuery's decoding and skipping rules.
func queryHas(raw, key, value string) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		keq, kvalid := queryEqual(k, key)
		if !kvalid {
			continue
		}
		veq, vvalid := queryEqual(v, value)
		if !vvalid || !keq {
			continue
		}
		return veq
	}
	return false
}

// queryEqual decodes the query component enc on the fly and compares it with
// want. valid is false when enc has a malformed escape.
func queryEqual(enc, want string) (eq, valid bool) {
	eq, _, valid = queryKeyEqual(enc, want)
	return eq, valid
}
