// Command mintjwt prints a signed JWT for the load-test harness
// (bench/run.sh): a token with iss, aud, sub, scope, iat and an exp one day
// ahead, signed with the given key.
//
//	mintjwt -alg RS256 -key priv.pem -iss portico-bench -aud bench -scope read
//
// -key is a PEM private key (PKCS#1, PKCS#8 or SEC 1) for the RS*, PS*, ES*
// and EdDSA algorithms, or a file holding the raw secret for HS*.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	alg := flag.String("alg", "RS256", "signing algorithm (HS*, RS*, PS*, ES*, EdDSA)")
	keyFile := flag.String("key", "", "private key PEM file (or secret file for HS*)")
	iss := flag.String("iss", "", "iss claim (omitted when empty)")
	aud := flag.String("aud", "", "aud claim (omitted when empty)")
	scope := flag.String("scope", "", "scope claim, space-separated (omitted when empty)")
	sub := flag.String("sub", "bench-user", "sub claim")
	ttl := flag.Duration("ttl", 24*time.Hour, "validity from now")
	flag.Parse()
	tok, err := mint(*alg, *keyFile, *iss, *aud, *scope, *sub, *ttl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mintjwt:", err)
		os.Exit(1)
	}
	fmt.Println(tok)
}

func mint(alg, keyFile, iss, aud, scope, sub string, ttl time.Duration) (string, error) {
	if keyFile == "" {
		return "", errors.New("-key is required")
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil || alg == "none" {
		return "", fmt.Errorf("unknown algorithm %q", alg)
	}
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return "", err
	}
	var key any
	switch {
	case strings.HasPrefix(alg, "HS"):
		key = []byte(strings.TrimRight(string(raw), "\r\n"))
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		key, err = jwt.ParseRSAPrivateKeyFromPEM(raw)
	case strings.HasPrefix(alg, "ES"):
		key, err = jwt.ParseECPrivateKeyFromPEM(raw)
	case alg == "EdDSA":
		key, err = jwt.ParseEdPrivateKeyFromPEM(raw)
	default:
		return "", fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", keyFile, err)
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"sub": sub,
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}
	if iss != "" {
		claims["iss"] = iss
	}
	if aud != "" {
		claims["aud"] = aud
	}
	if scope != "" {
		claims["scope"] = scope
	}
	return jwt.NewWithClaims(method, claims).SignedString(key)
}
