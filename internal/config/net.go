package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
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
	if raw == "" {
		return fmt.Errorf("target URL is required (e.g. \"http://127.0.0.1:9001\")")
	}
	if !strings.Contains(raw, "://") {
		return fmt.Errorf("target URL %q is missing its scheme: write \"http://%s\" (or https://)", s, strings.TrimPrefix(s, "//"))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid target URL %q: %s", s, urlErrReason(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("target URL %q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("target URL %q has no host", s)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p, false); err != nil {
			return fmt.Errorf("target URL %q: %v", s, err)
		}
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

// urlErrReason is the reason of a url.Parse error without the repeated URL.
func urlErrReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// checkPort checks a port number: 1 to 65535, or 0 when listen is set (a
// listener on port 0 is given a free port by the system).
func checkPort(p string, listen bool) error {
	n, err := strconv.Atoi(p)
	switch {
	case err != nil || n < 0:
		return fmt.Errorf("port %q must be a number from 1 to 65535", p)
	case n > 65535:
		return fmt.Errorf("port %d is out of range (1 to 65535)", n)
	case n == 0 && !listen:
		return fmt.Errorf("port 0 is not a port to connect to (use 1 to 65535)")
	}
	return nil
}

// checkListenAddr checks a listen address: host:port or :port, with an IP
// address or host name and a port from 1 to 65535 (0 picks a free port).
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q must be host:port or :port (e.g. \":8080\", \"127.0.0.1:8080\")", addr)
	}
	if strings.ContainsAny(host, "/ @") {
		return fmt.Errorf("listen address %q must be host:port, without a scheme or path", addr)
	}
	if err := checkPort(port, true); err != nil {
		return fmt.Errorf("listen address %q: %v", addr, err)
	}
	return nil
}

// CheckDialAddr checks a host:port address to connect to (a Redis node, a
// collector): a host and a port from 1 to 65535.
func CheckDialAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || strings.ContainsAny(host, "/ @") {
		return fmt.Errorf("address %q must be host:port", addr)
	}
	if err := checkPort(port, false); err != nil {
		return fmt.Errorf("address %q: %v", addr, err)
	}
	return nil
}
