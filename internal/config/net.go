package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

// ParsePrefix parses a CIDR or a single IP address (as a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP or CIDR %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func checkTargetURL(raw string) error {
	// Errors show the URL without its credentials.
	s := RedactUserinfo(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid target URL %q", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("target URL %q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("target URL %q has no host", s)
	}
	if u.User != nil {
		return fmt.Errorf("target URL %q: credentials (user:password@) are not allowed in the URL; set an Authorization header with the headers plugin instead", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("target URL %q must not have a query or fragment", s)
	}
	return nil
}

func compileRegexp(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression: %v", err)
	}
	return re, nil
}
