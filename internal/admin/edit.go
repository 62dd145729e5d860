package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// badRequest is a request error located like a config error, so every 400
// has the same shape.
func badRequest(path, format string, args ...any) error {
	return config.Errors{{Path: path, Msg: fmt.Sprintf(format, args...)}}
}

// readBody decodes the JSON request body into a YAML node, keeping the
// order of object keys. want is yaml.MappingNode or yaml.SequenceNode.
func readBody(r *http.Request, want yaml.Kind) (*yaml.Node, error) {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	n, err := jsonNode(dec)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest("", "request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("", "request body must hold one JSON value")
	}
	if n.Kind != want {
		if want == yaml.MappingNode {
			return nil, badRequest("", "request body must be a JSON object")
		}
		return nil, badRequest("", "request body must be a JSON array")
	}
	return n, nil
}

// jsonNode reads one JSON value from dec as a YAML node.
func jsonNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("empty body")
		}
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				val, err := jsonNode(dec)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, strNode(key), val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		case '[':
			n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for dec.More() {
				val, err := jsonNode(dec)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		}
		return nil, fmt.Errorf("unexpected %v", v)
	case string:
		return strNode(v), nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(v.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// rootMap returns the document's top-level mapping.
func rootMap(doc *yaml.Node) (*yaml.Node, error) {
	if doc == nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("config document is empty")
	}
	m := doc.Content[0]
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		*m = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if m.Kind != yaml.MappingNode {
		return nil, errors.New("config document is not a mapping")
	}
	return m, nil
}

// section returns the value node of a top-level key, creating it as an
// empty node of kind when it is missing or null. An alias is replaced by a
// copy of what it points to, so edits never reach other places.
func section(doc *yaml.Node, key string, kind yaml.Kind) (*yaml.Node, error) {
	m, err := rootMap(doc)
	if err != nil {
		return nil, err
	}
	empty := func() *yaml.Node {
		if kind == yaml.SequenceNode {
			return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		}
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		v := m.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = config.CloneNode(v.Alias)
			v.Anchor = ""
			m.Content[i+1] = v
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			v = empty()
			m.Content[i+1] = v
		}
		if v.Kind != kind {
			return nil, badRequest(key, "%s is not a %s in the config file", key, kindName(kind))
		}
		return v, nil
	}
	v := empty()
	m.Content = append(m.Content, strNode(key), v)
	return v, nil
}

func kindName(k yaml.Kind) string {
	if k == yaml.SequenceNode {
		return "list"
	}
	return "mapping"
}

// withName checks a body's "name" against the URL's and puts it first.
func withName(body *yaml.Node, name string) (*yaml.Node, error) {
	for i := 0; i+1 < len(body.Content); i += 2 {
		if body.Content[i].Value != "name" {
			continue
		}
		v := body.Content[i+1]
		if v.Kind != yaml.ScalarNode || v.Value != name {
			return nil, badRequest("name", "name in the body (%s) does not match the name in the URL (%s)", v.Value, name)
		}
		body.Content = append(body.Content[:i], body.Content[i+2:]...)
		break
	}
	body.Content = append([]*yaml.Node{strNode("name"), strNode(name)}, body.Content...)
	return body, nil
}

// pathName returns the {name} path value, rejecting an empty one.
func pathName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if strings.TrimSpace(name) == "" {
		return "", badRequest("name", "name is required")
	}
	return name, nil
}

// putListItem builds the edit for PUT of a named item of a top-level list
// (routes, consumers): replace the item with that name or append it. index
// finds the item in the running config, whose list has the same order as
// the unexpanded document's.
func putListItem(r *http.Request, key string, index func(cur *config.Config, name string) int) (EditFunc, error) {
	name, err := pathName(r)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r, yaml.MappingNode)
	if err != nil {
		return nil, err
	}
	if body, err = withName(body, name); err != nil {
		return nil, err
	}
	return func(doc *yaml.Node, cur *config.Config) error {
		seq, err := section(doc, key, yaml.SequenceNode)
		if err != nil {
			return err
		}
		if i := index(cur, name); i >= 0 && i < len(seq.Content) {
			seq.Content[i] = body
			return nil
		}
		if len(seq.Content) == 0 {
			seq.Style = 0
		}
		seq.Content = append(seq.Content, body)
		return nil
	}, nil
}

// deleteListItem builds the edit for DELETE of a named list item.
func deleteListItem(r *http.Request, key, kind string, index func(cur *config.Config, name string) int) (EditFunc, error) {
	name, err := pathName(r)
	if err != nil {
		return nil, err
	}
	return func(doc *yaml.Node, cur *config.Config) error {
		i := index(cur, name)
		if i < 0 {
			return &NotFoundError{Kind: kind, Name: name}
		}
		seq, err := section(doc, key, yaml.SequenceNode)
		if err != nil {
			return err
		}
		if i >= len(seq.Content) {
			return &NotFoundError{Kind: kind, Name: name}
		}
		seq.Content = append(seq.Content[:i], seq.Content[i+1:]...)
		return nil
	}, nil
}

func routeIndex(cur *config.Config, name string) int {
	for i, r := range cur.Routes {
		if r != nil && r.Name == name {
			return i
		}
	}
	return -1
}

func consumerIndex(cur *config.Config, name string) int {
	for i, c := range cur.Consumers {
		if c != nil && c.Name == name {
			return i
		}
	}
	return -1
}

func putRoute(r *http.Request) (EditFunc, error) { return putListItem(r, "routes", routeIndex) }

func deleteRoute(r *http.Request) (EditFunc, error) {
	return deleteListItem(r, "routes", "route", routeIndex)
}

func putConsumer(r *http.Request) (EditFunc, error) {
	return putListItem(r, "consumers", consumerIndex)
}

func deleteConsumer(r *http.Request) (EditFunc, error) {
	return deleteListItem(r, "consumers", "consumer", consumerIndex)
}

func putUpstream(r *http.Request) (EditFunc, error) {
	name, err := pathName(r)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r, yaml.MappingNode)
	if err != nil {
		return nil, err
	}
	return func(doc *yaml.Node, cur *config.Config) error {
		m, err := section(doc, "upstreams", yaml.MappingNode)
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == name {
				m.Content[i+1] = body
				return nil
			}
		}
		m.Content = append(m.Content, strNode(name), body)
		return nil
	}, nil
}

func deleteUpstream(r *http.Request) (EditFunc, error) {
	name, err := pathName(r)
	if err != nil {
		return nil, err
	}
	return func(doc *yaml.Node, cur *config.Config) error {
		if cur.Upstreams[name] == nil {
			return &NotFoundError{Kind: "upstream", Name: name}
		}
		m, err := section(doc, "upstreams", yaml.MappingNode)
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == name {
				m.Content = append(m.Content[:i], m.Content[i+2:]...)
				return nil
			}
		}
		return &NotFoundError{Kind: "upstream", Name: name}
	}, nil
}

func putPlugins(r *http.Request) (EditFunc, error) {
	body, err := readBody(r, yaml.SequenceNode)
	if err != nil {
		return nil, err
	}
	return func(doc *yaml.Node, cur *config.Config) error {
		seq, err := section(doc, "plugins", yaml.SequenceNode)
		if err != nil {
			return err
		}
		seq.Content = body.Content
		seq.Style = 0
		return nil
	}, nil
}
