package config

import (
	"fmt"
	"net"
	"strconv"
)

// CheckListenAddr reports whether addr is a listen address: host:port with a
// numeric port from 1 to 65535 (":8080" listens on every interface). Port 0,
// a missing port and a service name are errors, so the address a user wrote
// is the one that is served.
func CheckListenAddr(addr string) error {
	if addr == "" {
		return fmt.Errorf("address is empty; want host:port, e.g. 127.0.0.1:8080 or :8080")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q must be host:port, e.g. 127.0.0.1:8080 or :8080", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '0' {
		return fmt.Errorf("address %q: port %q must be a number from 1 to 65535", addr, port)
	}
	if host != "" && host != "localhost" {
		if ip := net.ParseIP(host); ip == nil && !validHostName(host) {
			return fmt.Errorf("address %q: host %q is neither an IP address nor a host name", addr, host)
		}
	}
	return nil
}

// validHostName reports whether h is a plausible DNS name (letters, digits,
// '-' and '.', labels of at most 63 characters).
func validHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c == '-', c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0 || h[len(h)-1] == '.'
}

// validateEcho checks the echo backend setting.
func (c *Config) validateEcho(l *errorList) {
	if c.Echo == nil {
		return
	}
	if err := CheckListenAddr(c.Echo.Listen); err != nil {
		l.add("echo.listen", "%v", err)
	} else if !IsLoopback(c.Echo.Listen) {
		l.add("echo.listen", "echo address %q must be a loopback address (127.0.0.1, ::1 or localhost): the echo backend reflects request headers, credentials included", c.Echo.Listen)
	}
}

// Overrides replace listen addresses of a loaded config, for `portico run
// --listen/--admin` and PORTICO_LISTEN/PORTICO_ADMIN. Empty fields change
// nothing.
type Overrides struct {
	// Listen replaces the address of the first entry of server.listen (its
	// TLS, HTTP/3 and connection settings stay).
	Listen string
	// Admin replaces admin.listen ("off" turns the admin listener off).
	Admin string
}

// Check validates the override values themselves; name gives the flag or
// variable each came from, for the message.
func (o Overrides) Check(listenName, adminName string) error {
	if o.Listen != "" {
		if err := CheckListenAddr(o.Listen); err != nil {
			return fmt.Errorf("%s: %v", listenName, err)
		}
	}
	if o.Admin != "" && o.Admin != "off" {
		if err := CheckListenAddr(o.Admin); err != nil {
			return fmt.Errorf("%s: %v", adminName, err)
		}
	}
	return nil
}

// Apply sets the overridden addresses in c and checks what they change: a
// listen address used twice, or a non-loopback admin address without
// admin.token. It is idempotent, so a config may pass through it again.
func (o Overrides) Apply(c *Config) error {
	l := &errorList{root: c.Root}
	if o.Listen != "" {
		if len(c.Server.Listen) == 0 {
			c.Server.Listen = []Listener{{Addr: o.Listen, MaxConnections: DefaultMaxConnections}}
		}
		c.Server.Listen[0].Addr = o.Listen
		for i := 1; i < len(c.Server.Listen); i++ {
			if c.Server.Listen[i].Addr == o.Listen {
				l.add(fmt.Sprintf("server.listen[%d].addr", i), "listen address %q is also given as the --listen/PORTICO_LISTEN override of server.listen[0]", o.Listen)
			}
		}
	}
	if o.Admin != "" {
		c.Admin.Listen = o.Admin
		if o.Admin != "off" && c.Admin.Token == "" && !IsLoopback(o.Admin) {
			l.add("admin.token", "admin.token is required when the admin address (overridden to %q) is not a loopback address", o.Admin)
		}
	}
	return l.err()
}
