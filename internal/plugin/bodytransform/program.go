package bodytransform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/itchyny/gojq"

	"github.com/portico-gw/portico/internal/request"
)

// The variables every program may read. Only the ones a program mentions
// are computed per request; the others are null.
const (
	varParams = iota
	varQuery
	varHeaders
	varConsumer
	varClaims
	varClientIP
	varRequestID
	varRoute
	varMethod
	varPath
	numVars
)

var varNames = [numVars]string{
	"$params", "$query", "$headers", "$consumer", "$claims",
	"$client_ip", "$request_id", "$route", "$method", "$path",
}

// hiddenHeaders are the request headers $headers leaves out: credentials
// a transformed body must not be able to copy anywhere.
var hiddenHeaders = map[string]bool{"Authorization": true, "Cookie": true, "Proxy-Authorization": true}

// Runtime failures of a program.
var (
	errNoResult      = errors.New("the program produced no result")
	errManyResults   = errors.New("the program produced more than one result (collect them with [...])")
	errTimeout       = errors.New("the program did not finish within the timeout")
	errClientGone    = errors.New("the client went away")
	errOutputTooBig  = errors.New("the result is larger than max_body")
	errUnsupportedGo = errors.New("a value has a type the program cannot handle")
)

// program is one compiled jq program.
type program struct {
	code *gojq.Code
	uses [numVars]bool
	// identity is true for ".": the input is the result.
	identity bool
}

// varRef matches a variable reference in a program's canonical text.
var varRef = regexp.MustCompile(`\$[A-Za-z_][A-Za-z0-9_]*`)

// compileProgram parses and compiles src; field names the config key in
// error messages.
func compileProgram(field, src string) (*program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("%s is empty", field)
	}
	q, err := gojq.Parse(src)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			line, col := position(src, pe.Offset)
			return nil, fmt.Errorf("%s: syntax error at line %d, column %d: %v", field, line, col, err)
		}
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	code, err := gojq.Compile(q, gojq.WithVariables(varNames[:]))
	if err != nil {
		return nil, fmt.Errorf("%s: %v (variables: %s)", field, err, strings.Join(varNames[:], ", "))
	}
	p := &program{code: code, identity: strings.TrimSpace(src) == "."}
	for _, ref := range varRef.FindAllString(q.String(), -1) {
		for i, n := range varNames {
			if ref == n {
				p.uses[i] = true
			}
		}
	}
	return p, nil
}

// position turns a byte offset of src into a 1-based line and column.
func position(src string, off int) (line, col int) {
	off = min(max(off, 0), len(src))
	before := src[:off]
	line = strings.Count(before, "\n") + 1
	col = off - strings.LastIndexByte(before, '\n')
	return line, col
}

// vars computes the values of the variables p uses for request r.
func (p *program) vars(r *http.Request, out *[numVars]any) {
	rec := request.RecordOf(r)
	if p.uses[varParams] {
		m := map[string]any{}
		if rec != nil {
			for i := 0; i < rec.Params.N; i++ {
				m[rec.Params.Arr[i].Key] = rec.Params.Arr[i].Value
			}
		}
		out[varParams] = m
	}
	if p.uses[varQuery] {
		m := map[string]any{}
		for k, v := range r.URL.Query() {
			m[k] = v[0]
		}
		out[varQuery] = m
	}
	if p.uses[varHeaders] {
		m := make(map[string]any, len(r.Header))
		for k, v := range r.Header {
			if !hiddenHeaders[k] {
				m[strings.ToLower(k)] = strings.Join(v, ", ")
			}
		}
		out[varHeaders] = m
	}
	if p.uses[varMethod] {
		out[varMethod] = r.Method
	}
	if p.uses[varPath] {
		out[varPath] = r.URL.Path
	}
	if rec == nil {
		return
	}
	if p.uses[varPath] {
		out[varPath] = rec.PathOf(r)
	}
	if p.uses[varConsumer] && rec.Consumer != nil && !rec.Consumer.Anonymous {
		out[varConsumer] = rec.Consumer.Name
	}
	if p.uses[varClaims] && rec.Claims != nil {
		out[varClaims] = rec.Claims
	}
	if p.uses[varClientIP] && rec.ClientIP.IsValid() {
		out[varClientIP] = rec.ClientIP.String()
	}
	if p.uses[varRequestID] {
		out[varRequestID] = rec.RequestID
	}
	if p.uses[varRoute] {
		out[varRoute] = rec.Route
	}
}

// run runs p on input with the variables of r, bounded by timeout, and
// returns its one result.
func (p *program) run(r *http.Request, input any, timeout time.Duration) (out any, err error) {
	if p.identity {
		return input, nil
	}
	var vals [numVars]any
	p.vars(r, &vals)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	defer func() {
		// gojq is given only the value types it documents; this keeps a
		// value of another type (a claim set by a future plugin) from
		// taking the gateway down.
		if x := recover(); x != nil {
			out, err = nil, errUnsupportedGo
		}
	}()
	it := p.code.RunWithContext(ctx, input, vals[:]...)
	v, ok := it.Next()
	if !ok {
		return nil, errNoResult
	}
	if err := resultErr(ctx, v); err != nil {
		return nil, err
	}
	if v2, more := it.Next(); more {
		if err := resultErr(ctx, v2); err != nil {
			return nil, err
		}
		return nil, errManyResults
	}
	return v, nil
}

// resultErr turns an error result into the error reported.
func resultErr(ctx context.Context, v any) error {
	err, ok := v.(error)
	if !ok {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errTimeout
	}
	if errors.Is(err, context.Canceled) {
		return errClientGone
	}
	// gojq builds some messages lazily, from the values involved; build
	// it here, under run's recover.
	return errors.New(err.Error())
}
