package oidclogin

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// chunkSize is the largest cookie value written; with the name and
	// attributes a Set-Cookie line stays under the 4096 bytes browsers keep.
	chunkSize = 3800
	// maxChunks bounds how many numbered cookies one session may use.
	maxChunks = 8
	// stateCookiePrefix names the per-login state cookies.
	stateCookiePrefix = "portico_oidc_state_"
	// stateNameLen is how many characters of the state value go into the
	// name of its cookie, so concurrent logins do not overwrite each other.
	stateNameLen = 12
	// stateTTL bounds a login attempt.
	stateTTL = 10 * time.Minute
)

// Purposes bound into the AEAD additional data: a state cookie can never be
// replayed as a session cookie or the other way round.
const (
	purposeSession = "session"
	purposeState   = "state"
)

var errBadCookie = errors.New("cookie is missing, tampered with or unreadable")

// sealer encrypts and authenticates cookie values with AES-256-GCM under a
// key derived from cookie_secret with HKDF-SHA256. GCM is an AEAD: any change
// to the ciphertext, nonce, cookie name or purpose makes Open fail, and so
// does opening it for another issuer or client ID: routes that share
// cookie_secret but log in against different providers or clients cannot
// accept each other's cookies.
type sealer struct {
	aead cipher.AEAD
	// binding is the issuer and client ID, bound into the additional data.
	binding string
}

func newSealer(secret []byte, issuer, clientID string) (*sealer, error) {
	key, err := hkdf.Key(sha256.New, secret, []byte("portico-oidc-login"), "cookie encryption v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, binding: strconv.Quote(issuer) + "\x00" + strconv.Quote(clientID)}, nil
}

func (s *sealer) additionalData(purpose, name string) []byte {
	return []byte("portico-oidc\x00" + purpose + "\x00" + name + "\x00" + s.binding)
}

// seal returns base64url(nonce || ciphertext) of the JSON encoding of v.
func (s *sealer) seal(purpose, name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	ns := s.aead.NonceSize()
	buf := make([]byte, ns, ns+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	buf = s.aead.Seal(buf, buf[:ns], plain, s.additionalData(purpose, name))
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

// open reverses seal into v.
func (s *sealer) open(purpose, name, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	ns := s.aead.NonceSize()
	if err != nil || len(raw) < ns+s.aead.Overhead() {
		return errBadCookie
	}
	plain, err := s.aead.Open(nil, raw[:ns], raw[ns:], s.additionalData(purpose, name))
	if err != nil {
		return errBadCookie
	}
	if json.Unmarshal(plain, v) != nil {
		return errBadCookie
	}
	return nil
}

// chunkName is the name of the i-th cookie of a split session.
func chunkName(base string, i int) string { return base + "_" + strconv.Itoa(i) }

// readChunked returns the session cookie value: the cookie named base, or
// the concatenation of base_0, base_1, … when the session was split.
func readChunked(r *http.Request, base string) (string, bool) {
	if c, err := r.Cookie(base); err == nil && c.Value != "" {
		return c.Value, true
	}
	var b strings.Builder
	for i := range maxChunks {
		c, err := r.Cookie(chunkName(base, i))
		if err != nil || c.Value == "" {
			break
		}
		b.WriteString(c.Value)
	}
	return b.String(), b.Len() > 0
}

// duplicateCookie reports whether the request carries the cookie name, or
// one of its chunks name_0 … name_N, more than once. Which copy the plugin
// reads and which the application reads could differ, so such a request
// is ambiguous.
func duplicateCookie(r *http.Request, name string) bool {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return false
	}
	var seen [maxChunks + 1]bool
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			n, _, _ := strings.Cut(part, "=")
			n = strings.TrimSpace(n)
			i := -1
			if n == name {
				i = maxChunks
			} else if len(n) == len(name)+2 && n[len(name)] == '_' && strings.HasPrefix(n, name) {
				if d := n[len(name)+1]; d >= '0' && d < '0'+maxChunks {
					i = int(d - '0')
				}
			}
			if i < 0 {
				continue
			}
			if seen[i] {
				return true
			}
			seen[i] = true
		}
	}
	return false
}

// cookieAttrs are the attributes shared by every cookie of one kind.
type cookieAttrs struct {
	path     string
	secure   bool
	sameSite http.SameSite
}

func (a cookieAttrs) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: a.path, MaxAge: maxAge,
		Secure: a.secure, HttpOnly: true, SameSite: a.sameSite,
	}
}

// writeChunked sets the session cookie(s) for value and deletes the
// cookies of any other layout the request still carries (a split session
// that now fits in one cookie, or fewer chunks than before).
func writeChunked(w http.ResponseWriter, r *http.Request, a cookieAttrs, base, value string, maxAge int) error {
	if len(value) <= chunkSize {
		http.SetCookie(w, a.cookie(base, value, maxAge))
		for i := range maxChunks {
			if _, err := r.Cookie(chunkName(base, i)); err == nil {
				http.SetCookie(w, a.cookie(chunkName(base, i), "", -1))
			}
		}
		return nil
	}
	n := (len(value) + chunkSize - 1) / chunkSize
	if n > maxChunks {
		return errors.New("session is too large for cookies")
	}
	for i := range n {
		end := min((i+1)*chunkSize, len(value))
		http.SetCookie(w, a.cookie(chunkName(base, i), value[i*chunkSize:end], maxAge))
	}
	if _, err := r.Cookie(base); err == nil {
		http.SetCookie(w, a.cookie(base, "", -1))
	}
	for i := n; i < maxChunks; i++ {
		if _, err := r.Cookie(chunkName(base, i)); err == nil {
			http.SetCookie(w, a.cookie(chunkName(base, i), "", -1))
		}
	}
	return nil
}

// clearChunked deletes every session cookie the request carries.
func clearChunked(w http.ResponseWriter, r *http.Request, a cookieAttrs, base string) {
	if _, err := r.Cookie(base); err == nil {
		http.SetCookie(w, a.cookie(base, "", -1))
	}
	for i := range maxChunks {
		if _, err := r.Cookie(chunkName(base, i)); err == nil {
			http.SetCookie(w, a.cookie(chunkName(base, i), "", -1))
		}
	}
}

// stripCookies removes the plugin's own cookies (session chunks and login
// state) from the Cookie header, so the upstream never sees them.
func stripCookies(h http.Header, base string) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	own := func(name string) bool {
		if name == base || strings.HasPrefix(name, stateCookiePrefix) {
			return true
		}
		rest, ok := strings.CutPrefix(name, base+"_")
		if !ok || rest == "" {
			return false
		}
		_, err := strconv.Atoi(rest)
		return err == nil
	}
	var kept []string
	changed := false
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			name, _, _ := strings.Cut(p, "=")
			if own(strings.TrimSpace(name)) {
				changed = true
				continue
			}
			kept = append(kept, p)
		}
	}
	if !changed {
		return
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h.Set("Cookie", strings.Join(kept, "; "))
}
