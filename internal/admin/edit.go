package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// change is one write request's edit of the config, with what is needed
// to locate the errors it causes in the request body.
type change struct {
	apply EditFunc
	// body is the request body as a YAML node (nil for deletes).
	body *yaml.Node
	// item is the config path the body is written at ("routes[3]",
	// "upstreams.users", "plugins"); apply sets it.
	item string
	// shadows are config paths of other items that start with item (the
	// upstream "users.v2" next to "users"); their errors are not the body's.
	shadows []string
}

// readBody decodes the JSON request body into a YAML node, keeping the
// order of object keys. want is yaml.MappingNode or yaml.SequenceNode.
func readBody(r *http.Request, want yaml.Kind) (*yaml.Node, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, &requestError{msg: "cannot read the request body: " + err.Error(), problems: []problem{{Message: err.Error()}}}
	}
	what := "a JSON object"
	if want == yaml.SequenceNode {
		what = "a JSON array"
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, bodyError("", "the body is empty; expected %s", what)
	}
	// The whole body is checked first: its syntax errors carry the exact
	// offset, which the token reader below does not always report.
	if err := json.Unmarshal(data, new(json.RawMessage)); err != nil {
		return nil, syntaxError(data, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := jsonNode(dec, "")
	if err != nil {
		return nil, err
	}
	if n.Kind != want {
		return nil, bodyError("", "expected %s", what)
	}
	return n, nil
}

// jsonNode reads one JSON value, at pointer ptr of the body, from dec as
// a YAML node. The input is valid JSON; a key given twice in one object is
// refused.
func jsonNode(dec *json.Decoder, ptr string) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			var seen map[string]bool
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				kp := ptr + "/" + escapePointerToken(key)
				if seen == nil {
					seen = map[string]bool{}
				}
				if seen[key] {
					return nil, bodyError(kp, "key %s is given twice", quote(key))
				}
				seen[key] = true
				val, err := jsonNode(dec, kp)
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
				val, err := jsonNode(dec, fmt.Sprintf("%s/%d", ptr, len(n.Content)))
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
			return nil, config.Errors{{Path: key, Msg: fmt.Sprintf("%s is not a %s in the config file", key, kindName(kind))}}
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
			return nil, bodyError("/name", "name in the body (%s) does not match the name in the URL (%s)", quote(v.Value), quote(name))
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
		return "", &requestError{msg: "the name in the URL is required", problems: []problem{{Message: "the name in the URL is required"}}}
	}
	return name, nil
}

// namedBody reads the item name from the path and the item from the body
// (a YAML or JSON mapping).
func namedBody(r *http.Request) (string, *yaml.Node, error) {
	name, err := pathName(r)
	if err != nil {
		return "", nil, err
	}
	body, err := readBody(r, yaml.MappingNode)
	return name, body, err
}

// putListItem builds the edit for PUT of a named item of a top-level list
// (routes, consumers): replace the item with that name or append it. index
// finds the item in the running config, whose list has the same order as
// the unexpanded document's.
func putListItem(r *http.Request, key string, index func(cur *config.Config, name string) int) (*change, error) {
	name, body, err := namedBody(r)
	if err != nil {
		return nil, err
	}
	if body, err = withName(body, name); err != nil {
		return nil, err
	}
	ch := &change{body: body}
	ch.apply = func(doc *yaml.Node, cur *config.Config) error {
		seq, err := section(doc, key, yaml.SequenceNode)
		if err != nil {
			return err
		}
		if i := index(cur, name); i >= 0 && i < len(seq.Content) {
			seq.Content[i] = body
			ch.item = fmt.Sprintf("%s[%d]", key, i)
			return nil
		}
		if len(seq.Content) == 0 {
			seq.Style = 0
		}
		ch.item = fmt.Sprintf("%s[%d]", key, len(seq.Content))
		seq.Content = append(seq.Content, body)
		return nil
	}
	return ch, nil
}

// deleteListItem builds the edit for DELETE of a named list item.
func deleteListItem(r *http.Request, key, kind string, index func(cur *config.Config, name string) int) (*change, error) {
	name, err := pathName(r)
	if err != nil {
		return nil, err
	}
	return &change{apply: func(doc *yaml.Node, cur *config.Config) error {
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
	}}, nil
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

func putRoute(r *http.Request) (*change, error) { return putListItem(r, "routes", routeIndex) }

func deleteRoute(r *http.Request) (*change, error) {
	return deleteListItem(r, "routes", "route", routeIndex)
}

func putConsumer(r *http.Request) (*change, error) {
	return putListItem(r, "consumers", consumerIndex)
}

func deleteConsumer(r *http.Request) (*change, error) {
	return deleteListItem(r, "consumers", "consumer", consumerIndex)
}

func putUpstream(r *http.Request) (*change, error) {
	name, body, err := namedBody(r)
	if err != nil {
		return nil, err
	}
	ch := &change{body: body, item: "upstreams." + name}
	ch.apply = func(doc *yaml.Node, cur *config.Config) error {
		m, err := section(doc, "upstreams", yaml.MappingNode)
		if err != nil {
			return err
		}
		ch.shadows = nil
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i].Value; k != name {
				if _, under := underPath(k, name); under {
					ch.shadows = append(ch.shadows, "upstreams."+k)
				}
			}
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == name {
				m.Content[i+1] = body
				return nil
			}
		}
		m.Content = append(m.Content, strNode(name), body)
		return nil
	}
	return ch, nil
}

// UpstreamInUseError is returned by the edit deleting an upstream that
// routes still use.
type UpstreamInUseError struct {
	Name string
	// Routes are the names of the routes that use the upstream.
	Routes []string
}

func (e *UpstreamInUseError) Error() string {
	q := make([]string, len(e.Routes))
	for i, r := range e.Routes {
		q[i] = quote(r)
	}
	if len(q) == 1 {
		return fmt.Sprintf("upstream %s is used by route %s; change or delete that route first", quote(e.Name), q[0])
	}
	return fmt.Sprintf("upstream %s is used by routes %s; change or delete those routes first", quote(e.Name), strings.Join(q, ", "))
}

// upstreamUsers lists the routes of cfg that send requests to the upstream
// name. Every config field that names an upstream is checked here: the
// route's upstream, its split's variants and its versions' upstreams.
func upstreamUsers(cfg *config.Config, name string) []string {
	var out []string
	for _, r := range cfg.Routes {
		if r != nil && r.UsesUpstream(name) {
			out = append(out, r.Name)
		}
	}
	return out
}

func deleteUpstream(r *http.Request) (*change, error) {
	name, err := pathName(r)
	if err != nil {
		return nil, err
	}
	return &change{apply: func(doc *yaml.Node, cur *config.Config) error {
		if cur.Upstreams[name] == nil {
			return &NotFoundError{Kind: "upstream", Name: name}
		}
		if users := upstreamUsers(cur, name); len(users) > 0 {
			return &UpstreamInUseError{Name: name, Routes: users}
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
	}}, nil
}

func putPlugins(r *http.Request) (*change, error) {
	body, err := readBody(r, yaml.SequenceNode)
	if err != nil {
		return nil, err
	}
	ch := &change{body: body, item: "plugins"}
	ch.apply = func(doc *yaml.Node, cur *config.Config) error {
		seq, err := section(doc, "plugins", yaml.SequenceNode)
		if err != nil {
			return err
		}
		seq.Content = body.Content
		seq.Style = 0
		return nil
	}
	return ch, nil
}

// Interface guard.
var _ error = (*UpstreamInUseError)(nil)
