package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

// ParsePrefix parses a CIDR or a single IP address (as a /32 or /128).
// IPv4-mapped IPv6 forms are returned as IPv4 ("::ffff:10.0.0.1" is
// 10.0.0.1/32, "::ffff:10.0.0.0/104" is 10.0.0.0/8), because client
// addresses are always compared in their unmapped form.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		p = p.Masked()
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid IP or CIDR %q", s)
	}
	a = a.Unmap()
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
