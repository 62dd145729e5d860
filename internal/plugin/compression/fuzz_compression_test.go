package compression

import "testing"

// FuzzAcceptEncoding: the negotiation parser never panics and always
// answers one of the offered encodings or identity, never a refused one.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{
		"", "gzip", "gzip, deflate, br, zstd", "br;q=0.5, gzip;q=0.5", "*;q=0", "*, gzip;q=0",
		"identity;q=1, zstd;q=0.9", "gzip;q=1.0001", ";;;,,,q=", "GZIP;Q=0.3,Br", "zstd;q=0.",
	} {
		f.Add(s)
	}
	offers := [][]int{offeredDefault, {encGzip}, {encBrotli, encGzip}}
	f.Fuzz(func(t *testing.T, ae string) {
		for _, offered := range offers {
			got := negotiate([]string{ae}, offered)
			if got == encNone {
				continue
			}
			ok := false
			for _, o := range offered {
				ok = ok || o == got
			}
			if !ok {
				t.Fatalf("negotiate(%q, %v) = %d, not offered", ae, offered, got)
			}
			// The chosen coding is acceptable: its q-value (or *'s) is > 0.
			if q := qOf(ae, got); q <= 0 {
				t.Fatalf("negotiate(%q) = %s with q %d", ae, encNames[got], q)
			}
		}
	})
}

// qOf is a plain re-implementation of the q-value lookup for enc.
func qOf(ae string, enc int) int {
	q, star := -1, -1
	for len(ae) > 0 {
		elem := ae
		if i := indexByte(ae, ','); i >= 0 {
			elem, ae = ae[:i], ae[i+1:]
		} else {
			ae = ""
		}
		name, v := parseElement(elem)
		switch {
		case name == "*":
			star = max(star, v)
		case encodingByName(name) == enc:
			q = max(q, v)
		}
	}
	if q < 0 {
		return star
	}
	return q
}
