package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// problem is one entry of the "errors" list of a 400 answer to a write.
// A problem in the request body has a pointer; one the change causes
// elsewhere in the config has only a path.
type problem struct {
	// Pointer is an RFC 6901 JSON pointer into the request body ("" is the
	// whole body). Present exactly when the problem is in the body.
	Pointer *string `json:"pointer,omitempty"`
	// Path is the config path (routes[1].upstream) of a problem outside
	// the request body, e.g. a route that names a deleted upstream.
	Path string `json:"path,omitempty"`
	// Line and Column (1-based, column in characters) and Offset (0-based,
	// in bytes) locate a JSON syntax error in the request body.
	Line   int  `json:"line,omitempty"`
	Column int  `json:"column,omitempty"`
	Offset *int `json:"offset,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// text renders p for the human "error" string.
func (p problem) text() string {
	switch {
	case p.Pointer != nil && *p.Pointer != "":
		return *p.Pointer + ": " + p.Message
	case p.Line > 0:
		return fmt.Sprintf("line %d, column %d: %s", p.Line, p.Column, p.Message)
	case p.Path != "":
		return p.Path + " (elsewhere in the config): " + p.Message
	}
	return p.Message
}

// requestError is a 400 for a request that cannot become an edit (bad
// JSON, wrong shape, a name that does not match the URL).
type requestError struct {
	msg      string
	problems []problem
}

func (e *requestError) Error() string { return e.msg }

// bodyError is a requestError about the value at pointer in the body.
func bodyError(pointer, format string, args ...any) error {
	p := problem{Pointer: &pointer, Message: fmt.Sprintf(format, args...)}
	return &requestError{msg: "invalid request body: " + p.text(), problems: []problem{p}}
}

// syntaxError locates a JSON syntax error in body by line, column and
// byte offset.
func syntaxError(body []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return &requestError{msg: "request body is not valid JSON: " + err.Error(), problems: []problem{{Message: err.Error()}}}
	}
	// Offset counts the bytes read up to and including the offending
	// one; at the end of the input it is the input's length.
	off := int(se.Offset) - 1
	if strings.Contains(se.Error(), "unexpected end") {
		off = int(se.Offset)
	}
	off = min(max(off, 0), len(body))
	line, col := lineCol(body, off)
	p := problem{Line: line, Column: col, Offset: &off, Message: se.Error()}
	return &requestError{msg: "request body is not valid JSON: " + p.text(), problems: []problem{p}}
}

// lineCol returns the 1-based line and column (in characters) of byte
// offset off in b.
func lineCol(b []byte, off int) (line, col int) {
	b = b[:off]
	line = 1 + strings.Count(string(b), "\n")
	if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
		b = b[i+1:]
	}
	return line, 1 + utf8.RuneCount(b)
}

// escapePointerToken escapes one reference token per RFC 6901.
func escapePointerToken(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// configProblems turns the config errors of a refused write into
// problems: those under the written item (ch.item) get a JSON pointer
// into the request body, the others keep their config path.
func configProblems(es config.Errors, ch *change) []problem {
	out := make([]problem, len(es))
	for i, e := range es {
		out[i] = problem{Path: e.Path, Message: e.Msg}
		if ch == nil {
			continue
		}
		if ptr, ok := ch.pointer(e.Path); ok {
			out[i] = problem{Pointer: &ptr, Message: e.Msg}
		}
	}
	return out
}

// pointer maps a config path (routes[3].match.path) to a JSON pointer into
// the request body (/match/path) when the path is inside the written item.
func (ch *change) pointer(path string) (string, bool) {
	if ch.item == "" || ch.body == nil {
		return "", false
	}
	rest, ok := underPath(path, ch.item)
	if !ok {
		return "", false
	}
	for _, s := range ch.shadows {
		if _, in := underPath(path, s); in {
			return "", false
		}
	}
	return pathPointer(rest, ch.body), true
}

// underPath returns what follows prefix in a config path, when path is
// prefix itself or something inside it.
func underPath(path, prefix string) (string, bool) {
	if prefix == "" {
		return path, true
	}
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok || (rest != "" && rest[0] != '.' && rest[0] != '[') {
		return "", false
	}
	return rest, true
}

// pathPointer converts the rest of a config path (".match.hosts[2]") to a
// JSON pointer ("/match/hosts/2"). Keys are matched against the body, so a
// key that contains a dot or a bracket is kept whole.
func pathPointer(rest string, body *yaml.Node) string {
	var b strings.Builder
	n := body
	for rest != "" {
		if rest[0] == '[' {
			j := strings.IndexByte(rest, ']')
			if j < 0 {
				// An unterminated bracket: the rest is one key.
				b.WriteString("/" + escapePointerToken(rest))
				break
			}
			idx := rest[1:j]
			b.WriteString("/" + escapePointerToken(idx))
			n = seqItem(n, idx)
			rest = rest[j+1:]
			continue
		}
		rest = strings.TrimPrefix(rest, ".")
		key := mapKey(n, rest)
		b.WriteString("/" + escapePointerToken(key))
		n = config.MapValue(n, key)
		rest = rest[len(key):]
	}
	return b.String()
}

// mapKey returns the key of mapping n that rest starts with (the longest,
// followed by the end, a dot or a bracket), or else rest up to its first
// dot or bracket.
func mapKey(n *yaml.Node, rest string) string {
	best := -1
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if len(k) > best && strings.HasPrefix(rest, k) && (len(k) == len(rest) || rest[len(k)] == '.' || rest[len(k)] == '[') {
				best = len(k)
			}
		}
	}
	if best >= 0 {
		return rest[:best]
	}
	if i := strings.IndexAny(rest, ".["); i >= 0 {
		return rest[:i]
	}
	return rest
}

func seqItem(n *yaml.Node, idx string) *yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	i := 0
	for _, c := range idx {
		if c < '0' || c > '9' || i > len(n.Content) {
			return nil
		}
		i = i*10 + int(c-'0')
	}
	if idx == "" || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

// invalidConfigMsg is the human summary of a refused change's problems.
func invalidConfigMsg(ps []problem) string {
	var b strings.Builder
	b.WriteString("invalid config; nothing was changed")
	for i, p := range ps {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(p.text())
	}
	return b.String()
}

// Interface guard.
var _ error = (*requestError)(nil)
