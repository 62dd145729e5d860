// Package fault is the `fault_injection` plugin: it delays or aborts a
// configured share of a route's requests, to test how clients and
// dependent services behave when an upstream is slow or failing.
//
// It runs in plugin.PhaseFault, after authentication, authorisation and
// rate limits, so an injected fault never answers a request those plugins
// would have refused, and a faulted request still counts against limits.
package fault

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

// InjectedMetric counts injected faults, labelled by route and kind
// ("delay" or "abort").
const InjectedMetric = "portico_fault_injected_total"

// reservedPrefix is the header namespace the gateway strips from client
// requests before plugins run.
const reservedPrefix = "X-Portico-"

// statusClientClosed is the status recorded for a client that went away
// (the proxy's 499).
const statusClientClosed = 499

// MaxDelay is the longest delay a config may ask for.
const MaxDelay = time.Hour

// Messages recorded in the access log (and sent as the error body).
const (
	abortMsg        = "fault injected: abort"
	delayTimeoutMsg = "fault injected: delay exceeded the route timeout"
	delayGoneMsg    = "fault injected: client went away during the delay"
)

func init() {
	plugin.Register(plugin.Spec{Name: "fault_injection", Phase: plugin.PhaseFault, New: func() plugin.Plugin { return new(Fault) }})
}

// Fault delays and/or aborts a percentage of requests. At least one of
// delay and abort is required; when both fire on one request the delay
// comes first.
type Fault struct {
	// Delay holds requests back before passing them on.
	Delay *Delay `yaml:"delay"`
	// Abort answers requests with an error instead of passing them on.
	Abort *Abort `yaml:"abort"`
	// WhenHeader, when set, limits faults to requests carrying this
	// header (any value), e.g. X-Fault-Test. Any client can send it: it
	// selects requests for testing, it is no access control. X-Portico-*
	// names are refused (the gateway removes them from client requests);
	// a name with "_" needs server.underscores_in_headers.
	WhenHeader string `yaml:"when_header"`

	header           string
	delayAt          uint64
	delayAll         bool
	abortAt          uint64
	abortAll         bool
	timeout          time.Duration
	now              func() time.Time
	delays, aborts   *observe.Counter
	grpcCode         int
	delayDur         time.Duration
	delayOn, abortOn bool

	// rnd draws the uniform random numbers requests are sampled with
	// (math/rand/v2's lock-free generator); tests replace it with a
	// seeded source.
	rnd func() uint64
	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// Delay is the delay fault.
type Delay struct {
	// Duration of the delay, at most 1h, e.g. 200ms.
	Duration config.Duration `yaml:"duration"`
	// Percent of requests delayed, 0–100; decimals allowed, e.g. 0.5.
	Percent *float64 `yaml:"percent"`
}

// Abort is the abort fault.
type Abort struct {
	// Status is the HTTP status answered, 200–599, e.g. 503. The body is
	// the gateway's JSON error.
	Status int `yaml:"status"`
	// Percent of requests aborted, 0–100; decimals allowed, e.g. 0.5.
	Percent *float64 `yaml:"percent"`
	// GRPCStatus is the gRPC status code (0–16) a gRPC call is answered
	// with, e.g. 14 (UNAVAILABLE). Default: the code the gateway maps
	// Status to (503 → 14).
	GRPCStatus *int `yaml:"grpc_status"`
}

// Provision resolves the counters, clock and route timeout and precomputes
// the sampling thresholds.
func (f *Fault) Provision(ctx plugin.Context) error {
	route := fmt.Sprintf("route=%q", ctx.Route())
	f.delays = ctx.Stats().Counter(InjectedMetric, route+`,kind="delay"`)
	f.aborts = ctx.Stats().Counter(InjectedMetric, route+`,kind="abort"`)
	f.now = ctx.Clock()
	f.timeout = ctx.RouteTimeout()
	f.rnd = rand.Uint64
	f.sleep = sleep
	if f.WhenHeader != "" {
		f.header = textproto.CanonicalMIMEHeaderKey(f.WhenHeader)
	}
	if d := f.Delay; d != nil && d.Percent != nil {
		f.delayOn = true
		f.delayAt, f.delayAll = threshold(*d.Percent)
		f.delayDur = d.Duration.D()
	}
	if a := f.Abort; a != nil && a.Percent != nil {
		f.abortOn = true
		f.abortAt, f.abortAll = threshold(*a.Percent)
		f.grpcCode = request.GRPCCode(a.Status)
		if a.GRPCStatus != nil {
			f.grpcCode = *a.GRPCStatus
		}
	}
	return nil
}

// threshold turns a percentage into the bound a uniform uint64 is compared
// with; all is true when every request is sampled.
func threshold(percent float64) (at uint64, all bool) {
	x := math.Ldexp(percent/100, 64)
	if !(x > 0) {
		return 0, false
	}
	if x >= math.Ldexp(1, 64) {
		return 0, true
	}
	return uint64(x), false
}

// Validate checks the config; every message names the offending field.
func (f *Fault) Validate() error {
	var errs []error
	if f.Delay == nil && f.Abort == nil {
		errs = append(errs, errors.New("at least one of delay and abort is required"))
	}
	if d := f.Delay; d != nil {
		errs = append(errs, checkPercent("delay", d.Percent))
		if d.Duration <= 0 || d.Duration.D() > MaxDelay {
			errs = append(errs, fmt.Errorf("delay.duration must be between 1ns and %s, e.g. 200ms; got %s", MaxDelay, d.Duration.D()))
		}
	}
	if a := f.Abort; a != nil {
		errs = append(errs, checkPercent("abort", a.Percent))
		if a.Status < 200 || a.Status > 599 {
			errs = append(errs, fmt.Errorf("abort.status must be an HTTP status 200–599, e.g. 503; got %d", a.Status))
		}
		if g := a.GRPCStatus; g != nil && (*g < 0 || *g > 16) {
			errs = append(errs, fmt.Errorf("abort.grpc_status must be a gRPC status code 0–16, e.g. 14 (UNAVAILABLE); got %d", *g))
		}
	}
	if f.WhenHeader != "" && !httpx.ValidToken(f.WhenHeader) {
		errs = append(errs, fmt.Errorf("when_header %q is not a valid header name", f.WhenHeader))
	} else if strings.HasPrefix(f.header, reservedPrefix) {
		errs = append(errs, fmt.Errorf("when_header %q is in Portico's own X-Portico-* namespace, which the gateway removes from every client request, so no request would carry it; use another name, e.g. X-Fault-Test", f.WhenHeader))
	}
	return errors.Join(errs...)
}

func checkPercent(field string, p *float64) error {
	if p == nil {
		return fmt.Errorf("%s.percent is required: the share of requests to fault, 0–100, e.g. 5 or 0.5", field)
	}
	if !(*p >= 0 && *p <= 100) {
		return fmt.Errorf("%s.percent must be between 0 and 100; got %v", field, *p)
	}
	return nil
}

// Wrap returns the fault injector.
func (f *Fault) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.header != "" && len(r.Header[f.header]) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if f.delayOn && f.fires(f.delayAt, f.delayAll) {
			f.delays.Inc()
			f.delayThen(w, r, next)
			return
		}
		f.abortOr(w, r, next)
	})
}

// fires samples one request.
func (f *Fault) fires(at uint64, all bool) bool {
	return all || (at > 0 && f.rnd() < at)
}

// abortOr aborts the request if the abort fault fires, else passes it on.
func (f *Fault) abortOr(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !f.abortOn || !f.fires(f.abortAt, f.abortAll) {
		next.ServeHTTP(w, r)
		return
	}
	f.aborts.Inc()
	if request.IsGRPC(r) {
		request.WriteGRPCStatus(w, r, f.grpcCode, abortMsg)
		return
	}
	request.WriteError(w, r, f.Abort.Status, abortMsg)
}

// delayThen holds the request back, then goes on to the abort fault. The
// wait ends early when the client goes away, and counts against the route
// timeout: a delay as long as the timeout is answered 504 when the timeout
// passes, a shorter one leaves the upstream exchange only the rest of it.
func (f *Fault) delayThen(w http.ResponseWriter, r *http.Request, next http.Handler) {
	d := f.delayDur
	expires := f.timeout > 0 && d >= f.timeout
	if expires {
		d = f.timeout
	}
	start := f.now()
	if err := f.sleep(r.Context(), d); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			request.WriteError(w, r, http.StatusGatewayTimeout, delayTimeoutMsg)
		} else if rec := request.RecordOf(r); rec != nil {
			// Nobody reads an answer: record it as the proxy records a
			// client that went away.
			rec.Status, rec.ErrorMsg = statusClientClosed, delayGoneMsg
		}
		return
	}
	if expires {
		request.WriteError(w, r, http.StatusGatewayTimeout, delayTimeoutMsg)
		return
	}
	if f.timeout > 0 {
		rest := f.timeout - f.now().Sub(start)
		if rest <= 0 {
			request.WriteError(w, r, http.StatusGatewayTimeout, delayTimeoutMsg)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), rest)
		defer cancel()
		r = r.WithContext(ctx)
	}
	f.abortOr(w, r, next)
}

// sleep waits d, or until ctx is done (then it returns ctx's error). It
// starts no goroutine.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Interface guards.
var (
	_ plugin.Plugin    = (*Fault)(nil)
	_ plugin.Validator = (*Fault)(nil)
)
