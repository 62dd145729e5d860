package admin

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// putWeights builds the edit for PUT /routes/{name}/weights: the body maps
// variant upstreams of the route's split to new weights, {"stable": 90,
// "canary": 10}. Variants it does not name keep their weights, and nothing
// else of the route changes, so a canary can be moved without resending
// the route. The result is validated like any write (the weights must
// still add up to more than 0).
func putWeights(r *http.Request) (*change, error) {
	name, body, err := namedBody(r)
	if err != nil {
		return nil, err
	}
	if len(body.Content) == 0 {
		return nil, bodyError("", "name at least one variant upstream and its weight")
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i].Value, body.Content[i+1]
		if w, err := strconv.ParseFloat(v.Value, 64); v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") ||
			err != nil || math.IsInf(w, 0) || w < 0 {
			return nil, bodyError("/"+escapePointerToken(k), "weight must be a number of at least 0")
		}
	}
	ch := &change{}
	ch.apply = func(doc *yaml.Node, cur *config.Config) error {
		i := routeIndex(cur, name)
		if i < 0 {
			return &NotFoundError{Kind: "route", Name: name}
		}
		rc := cur.Routes[i]
		if rc.Split == nil {
			return &requestError{msg: "route " + quote(name) + " has no split", problems: []problem{{Path: fmt.Sprintf("routes[%d]", i), Message: "route has no split: its weights cannot be set"}}}
		}
		variants, err := variantNodes(doc, i, len(rc.Split.Variants))
		if err != nil {
			return err
		}
		for k := 0; k+1 < len(body.Content); k += 2 {
			up, w := body.Content[k].Value, body.Content[k+1]
			j := variantIndex(rc.Split, up)
			if j < 0 {
				return bodyError("/"+escapePointerToken(up), "upstream %s is not a variant of route %s (variants: %s)", quote(up), quote(name), variantNames(rc.Split))
			}
			setMapValue(variants.Content[j], "weight", &yaml.Node{Kind: yaml.ScalarNode, Tag: w.Tag, Value: w.Value})
		}
		ch.item = fmt.Sprintf("routes[%d]", i)
		return nil
	}
	return ch, nil
}

// variantNodes returns the sequence node of routes[i].split.variants in
// the document, which must hold n variant mappings like the running config.
func variantNodes(doc *yaml.Node, i, n int) (*yaml.Node, error) {
	routes, err := section(doc, "routes", yaml.SequenceNode)
	if err != nil {
		return nil, err
	}
	if i >= len(routes.Content) {
		return nil, fmt.Errorf("routes[%d] is not in the config document", i)
	}
	seq := mapValue(mapValue(routes.Content[i], "split"), "variants")
	if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) != n {
		return nil, fmt.Errorf("routes[%d].split.variants cannot be edited in the config document (written with anchors or aliases?)", i)
	}
	for _, v := range seq.Content {
		if v.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("routes[%d].split.variants cannot be edited in the config document", i)
		}
	}
	return seq, nil
}

// mapValue returns the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setMapValue sets key in mapping m to v, adding the key when missing.
func setMapValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, strNode(key), v)
}

func variantIndex(s *config.Split, upstream string) int {
	for j, v := range s.Variants {
		if v.Upstream == upstream {
			return j
		}
	}
	return -1
}

func variantNames(s *config.Split) string {
	names := make([]string, len(s.Variants))
	for j, v := range s.Variants {
		names[j] = v.Upstream
	}
	return strings.Join(names, ", ")
}
