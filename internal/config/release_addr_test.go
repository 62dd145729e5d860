package config

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestCheckListenAddr(t *testing.T) {
	for _, ok := range []string{":8080", "127.0.0.1:1", "0.0.0.0:65535", "[::1]:9901", "localhost:9001", "gw.example.com:443", "[::]:8080"} {
		if err := CheckListenAddr(ok); err != nil {
			t.Errorf("CheckListenAddr(%q) = %v, want ok", ok, err)
		}
	}
	for _, tc := range []struct{ addr, want string }{
		{"", "empty"},
		{"8080", "must be host:port"},
		{"127.0.0.1", "must be host:port"},
		{":0", "from 1 to 65535"},
		{":65536", "from 1 to 65535"},
		{":-1", "from 1 to 65535"},
		{":http", "from 1 to 65535"},
		{":+80", "from 1 to 65535"},
		{":080", "from 1 to 65535"},
		{"::1:80", "must be host:port"},
		{"a b:80", "neither an IP address nor a host name"},
		{"http://x:80", "host:port"},
	} {
		err := CheckListenAddr(tc.addr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckListenAddr(%q) = %v, want an error containing %q", tc.addr, err, tc.want)
		}
	}
}

// FuzzCheckListenAddr: an accepted address always splits into a host and a
// port from 1 to 65535, and the check never panics.
func FuzzCheckListenAddr(f *testing.F) {
	for _, s := range []string{":8080", "127.0.0.1:9901", "[::1]:1", "localhost:65535", ":0", "x", "[::1", "a..b:1", "a.:1", ":99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if CheckListenAddr(addr) != nil {
			return
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("accepted %q that does not split: %v", addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("accepted %q with port %q", addr, port)
		}
	})
}

func TestEchoSetting(t *testing.T) {
	nolookup := func(string) (string, bool) { return "", false }
	cfg, err := Parse([]byte("echo: {listen: \"127.0.0.1:9001\"}\n"), "t", nolookup)
	if err != nil || cfg.Echo == nil || cfg.Echo.Listen != "127.0.0.1:9001" {
		t.Fatalf("echo setting: %+v %v", cfg, err)
	}
	if cfg, err := Parse([]byte("routes: []\n"), "t", nolookup); err != nil || cfg.Echo != nil {
		t.Fatalf("echo must be off when absent: %+v %v", cfg.Echo, err)
	}
	for _, tc := range []struct{ doc, want string }{
		{"echo: {}\n", `line 1: echo.listen: address is empty`},
		{"echo:\n  listen: \":9001\"\n", `line 2: echo.listen: echo address ":9001" must be a loopback address`},
		{"echo: {listen: \"0.0.0.0:9001\"}\n", `must be a loopback address`},
		{"echo: {listen: \"127.0.0.1:0\"}\n", `from 1 to 65535`},
		{"echo: {addr: \"127.0.0.1:1\"}\n", `echo.addr: unknown field "addr"`},
	} {
		_, err := Parse([]byte(tc.doc), "t", nolookup)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.doc, err, tc.want)
		}
	}
}

func TestOverrides(t *testing.T) {
	nolookup := func(string) (string, bool) { return "", false }
	parse := func(doc string) *Config {
		t.Helper()
		c, err := Parse([]byte(doc), "t", nolookup)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := parse("server: {listen: [{addr: \":8080\", max_connections: 5}, {addr: \":8443\"}]}\n")
	ov := Overrides{Listen: "127.0.0.1:18080", Admin: "127.0.0.1:19901"}
	for range 2 { // idempotent: a config may pass through twice
		if err := ov.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	if c.Server.Listen[0].Addr != "127.0.0.1:18080" || c.Server.Listen[0].MaxConnections != 5 || c.Server.Listen[1].Addr != ":8443" || c.Admin.Listen != "127.0.0.1:19901" {
		t.Fatalf("overrides applied as %+v, admin %q", c.Server.Listen, c.Admin.Listen)
	}
	c = parse("routes: []\n")
	if err := (Overrides{}).Apply(c); err != nil || c.Server.Listen[0].Addr != DefaultListen || c.Admin.Listen != DefaultAdminListen {
		t.Fatalf("empty overrides changed the config: %+v %q %v", c.Server.Listen, c.Admin.Listen, err)
	}
	if err := (Overrides{Listen: ":8443"}).Apply(parse("server: {listen: [{addr: \":8080\"}, {addr: \":8443\"}]}\n")); err == nil || !strings.Contains(err.Error(), "server.listen[1].addr") {
		t.Errorf("a listen override equal to another listener: %v", err)
	}
	if err := (Overrides{Admin: "0.0.0.0:9901"}).Apply(parse("routes: []\n")); err == nil || !strings.Contains(err.Error(), "admin.token is required") {
		t.Errorf("a public admin override without a token: %v", err)
	}
	if err := (Overrides{Admin: "0.0.0.0:9901"}).Apply(parse("admin: {token: s3cret}\n")); err != nil {
		t.Errorf("a public admin override with a token: %v", err)
	}
	if err := (Overrides{Admin: "off"}).Apply(parse("routes: []\n")); err != nil {
		t.Errorf("admin off: %v", err)
	}
	if err := (Overrides{Listen: "nope", Admin: ":1"}).Check("--listen", "PORTICO_ADMIN"); err == nil || !strings.HasPrefix(err.Error(), "--listen: address \"nope\"") {
		t.Errorf("Check: %v", err)
	}
	if err := (Overrides{Admin: ":99999"}).Check("--listen", "PORTICO_ADMIN"); err == nil || !strings.HasPrefix(err.Error(), "PORTICO_ADMIN: ") {
		t.Errorf("Check: %v", err)
	}
}
