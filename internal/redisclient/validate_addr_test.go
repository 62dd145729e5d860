package redisclient

import (
	"strings"
	"testing"
)

// TestValidateAddrPorts checks every Redis address is host:port with a port
// from 1 to 65535, so validate finds what connecting would.
func TestValidateAddrPorts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Addr: "redis:99999"}, `redis.addr: address "redis:99999": port 99999 is out of range`},
		{Config{Addr: "redis"}, `redis.addr: address "redis" must be host:port`},
		{Config{Cluster: []string{"a:6379", "b:0"}}, `redis.cluster[1]: address "b:0": port 0`},
		{Config{Sentinel: &Sentinel{MasterName: "m", Addrs: []string{":26379"}}}, `redis.sentinel.addrs[0]: address ":26379" must be host:port`},
	} {
		err := tc.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	ok := Config{Addr: "127.0.0.1:6379"}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}
