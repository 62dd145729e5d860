package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// StringList is a list of strings that YAML may also give as one string:
// `key: ip` is `key: [ip]`, and an empty string is an empty list. Request keys (see internal/reqkey) use it.
type StringList []string

// UnmarshalYAML accepts a scalar or a list of scalars.
func (s *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			*s = nil
		} else {
			*s = StringList{n.Value}
		}
		return nil
	case yaml.SequenceNode:
		out := make(StringList, 0, len(n.Content))
		for i, c := range n.Content {
			if c.Kind == yaml.AliasNode && c.Alias != nil {
				c = c.Alias
			}
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("item %d: expected a string, got %s", i, Describe(c))
			}
			out = append(out, c.Value)
		}
		*s = out
		return nil
	}
	return fmt.Errorf("expected a string or a list of strings, got %s", Describe(n))
}
