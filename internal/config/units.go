package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "250ms", "10s" or "2m" in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string; a bare integer means seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	if n.Kind != yaml.ScalarNode || s == "" {
		return fmt.Errorf("expected a duration such as 10s, 250ms or 2m, got %s", Describe(n))
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		*d = Duration(time.Duration(i) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration: expected a duration such as 10s, 250ms or 2m, got %s", Describe(n))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in its string form.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Size is a byte count written as "64KiB", "10MiB", "1GB" or a plain integer.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
}

// ParseSize parses a human-readable byte size; "-1" means unlimited.
func ParseSize(s string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || (v < 0 && !(v == -1 && mult == 1)) {
		return 0, fmt.Errorf("invalid size %q (use e.g. 65536, 64KiB, 10MiB)", s)
	}
	if v > 0 && v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(v * mult), nil
}

// UnmarshalYAML parses a human-readable byte size.
func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as 65536 or 10MiB, got %s", Describe(n))
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*z = v
	return nil
}
