package ratelimit

import (
	"slices"
	"testing"

	"github.com/portico-gw/portico/internal/config"
)

// Validate only checks: the defaults come from defaults() (called by
// Provision) and the compiled state from compile().
func TestValidateOnlyChecks(t *testing.T) {
	t.Parallel()
	p := &RateLimit{Limits: []Limit{{Rate: 5, Per: config.Duration(1e9)}}}
	if err := p.Validate(); err == nil {
		t.Fatal("Validate accepted a config without its defaults")
	}
	if p.Key != nil || p.Backend != "" || p.RedisMode != "" || p.OnRedisError != "" || p.Headers != "" || p.MaxKeys != 0 {
		t.Fatalf("Validate filled defaults: %+v", p)
	}
	p.defaults()
	if !slices.Equal(p.Key, []string{"consumer"}) || p.Backend != "local" || p.RedisMode != "exact" ||
		p.OnRedisError != "fail_open" || p.Headers != "ietf" || p.MaxKeys != defaultMaxKeys {
		t.Fatalf("defaults: %+v", p)
	}
	for range 2 {
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if p.key.Len() != 0 || p.specs != nil || p.ietf || p.failure != "" || p.leaseSize != 0 {
		t.Fatal("Validate compiled the config")
	}
	p.compile()
	if p.key.Len() != 1 || len(p.specs) != 1 || !p.ietf || p.xhdrs || p.failure != "fail_open" || p.leaseSize != 1 || p.lease {
		t.Fatalf("compile: key parts %d specs %d ietf %v failure %q leaseSize %d", p.key.Len(), len(p.specs), p.ietf, p.failure, p.leaseSize)
	}
}
