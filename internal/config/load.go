package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, expands, decodes, defaults and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, os.LookupEnv)
}

// LoadAll is Load that keeps going past errors, as ParseAll does.
func LoadAll(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseAll(data, path, os.LookupEnv)
}

// Parse decodes a YAML document into a validated Config. lookup resolves
// ${VAR} references (os.LookupEnv in production). The returned error is an
// Errors value listing every problem with its path and line.
func Parse(data []byte, source string, lookup func(string) (string, bool)) (*Config, error) {
	cfg, err := ParseAll(data, source, lookup)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// ParseAll is Parse for tools that report every mistake in one run: with
// errors it still returns the config as far as it decoded (nil only when the
// YAML syntax is broken), carrying the errors (Problems) so the gateway's
// build can check the parts that are intact and report its own errors with
// them (Config.Merge). A config returned with an error must never be served.
//
// Decoding reports wrong types, malformed values, unknown fields and unset
// ${VAR}s; a value that failed to decode is left at its zero value, and
// validation skips the part of the file it is in (Config.Covered), so no
// follow-on errors are reported.
func ParseAll(data []byte, source string, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
		} else {
			return nil, yamlErrors(nil, "", err)
		}
	}
	if len(root.Content) == 0 || (root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Tag == "!!null") {
		root.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
	}
	l := &errorList{root: &root}
	raw := CloneNode(&root)
	expandEnv(l, &root, "", lookup)
	// Unknown fields and malformed values are collected first; each value
	// that cannot decode is then replaced by null, so the rest of the
	// document decodes and is validated in the same run.
	l.prune = true
	checkNode(l, root.Content[0], reflect.TypeOf(Config{}), "")
	for _, n := range l.bad {
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	cfg := &Config{}
	if err := root.Content[0].Decode(cfg); err != nil && len(l.errs) == 0 {
		// checkNode rejects everything the decoder would; this is a
		// safety net that still reports the error in plain words.
		if es, ok := yamlErrors(root.Content[0], "", err).(Errors); ok {
			l.errs = append(l.errs, es...)
		}
	}
	cfg.Root = &root
	cfg.RawRoot = raw
	cfg.Source = source
	sum := sha256.Sum256(data)
	cfg.Hash = hex.EncodeToString(sum[:])
	cfg.problems = l.errs
	cfg.setPaths()
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		var es Errors
		errors.As(err, &es)
		// Validation errors about parts that did not decode are
		// follow-on errors and dropped.
		merged := cfg.Merge(es)
		cfg.problems, _ = merged.(Errors)
	} else {
		cfg.problems = cfg.problems.Tidy()
	}
	if len(cfg.problems) > 0 {
		return cfg, cfg.problems
	}
	return cfg, nil
}

// setPaths records each plugin spec's YAML path so plugins can locate errors.
func (c *Config) setPaths() {
	for i := range c.Plugins {
		c.Plugins[i].Path = fmt.Sprintf("plugins[%d]", i)
	}
	for ri, r := range c.Routes {
		if r == nil {
			continue
		}
		for i := range r.Plugins {
			r.Plugins[i].Path = fmt.Sprintf("routes[%d].plugins[%d]", ri, i)
		}
		r.Versions.setPaths(fmt.Sprintf("routes[%d]", ri))
	}
}

// LocatedError returns err (from a plugin or the router) as Errors located
// at the line of path; the lines of Errors it already holds are filled in
// where missing.
func (c *Config) LocatedError(path string, err error) Errors {
	var es Errors
	if errors.As(err, &es) {
		for i := range es {
			if es[i].Line == 0 {
				es[i].Line = LineOf(c.Root, es[i].Path)
			}
		}
		return es
	}
	return Errors{{Path: path, Line: LineOf(c.Root, path), Msg: err.Error()}}
}

// IsLoopback reports whether a host:port listen address binds only a
// loopback interface ("localhost", 127.0.0.0/8 or ::1). An empty host binds
// every interface and is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
