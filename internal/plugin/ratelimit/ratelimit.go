// Package ratelimit implements the "rate_limit" plugin: per-key request
// limits enforced in this process or shared through Redis.
//
// Every request is counted against each configured limit under its key
// (internal/reqkey: consumer, client IP, route, path, method, header,
// cookie, path or query parameter, in any combination). It passes only
// when every limit allows it; a denied request consumes nothing from any
// limit (the check and the update are one atomic step in both backends). A denial is answered 429 with Retry-After.
//
// Algorithms: "gcra" (the generic cell rate algorithm, an exact token
// bucket kept as one theoretical arrival time per key) and
// "sliding_window" (the two-window counter approximation; see Limit).
//
// Backends: "local" keeps the state in a sharded in-memory map bounded by
// max_keys; "redis" shares it across gateway nodes, either with one atomic
// script call per request (redis_mode: exact) or with leases of tokens
// served locally (redis_mode: lease), which bounds over-admission by
// nodes × lease_size per window. Redis failures follow on_redis_error.
package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

// maxLimits is the most limits one instance may configure.
const maxLimits = 8

// Defaults.
const (
	defaultMaxKeys = 100_000
	// sweepInterval is how often idle local keys are removed.
	sweepInterval = 10 * time.Second
	// retryRedisMin is how long a Redis failure keeps requests on the
	// failure policy before one request tries Redis again; each failed
	// probe doubles it, up to retryRedisMax, and a success resets it.
	retryRedisMin = 100 * time.Millisecond
	retryRedisMax = time.Second
)

// ErrorsMetric counts Redis errors and timeouts of rate_limit instances.
const ErrorsMetric = "portico_ratelimit_redis_errors_total"

// RejectedMetric counts requests refused by rate_limit, by reason: "limit"
// (429) or "unavailable" (503 with on_redis_error: fail_closed).
const RejectedMetric = "portico_ratelimit_rejected_total"

func init() {
	plugin.Register(plugin.Spec{Name: "rate_limit", Phase: plugin.PhaseRateLimit, New: func() plugin.Plugin { return new(RateLimit) }})
}

// RateLimit is the configuration of one "rate_limit" plugin instance.
type RateLimit struct {
	// Key lists what identifies a client, in the request-key grammar
	// (README "Request keys"); requests with the same values share limits.
	// Parts: consumer, ip, route, path, method, header:<Name>,
	// cookie:<name>, param:<name>, query:<name>. A part with no value (no
	// authenticated consumer, an absent header…) stands for the client IP.
	// One part may be written without the list. Default [consumer]: the
	// consumer when authenticated, else the client IP.
	Key config.StringList `yaml:"key"`
	// Limits are checked together; at least one, at most 8.
	Limits []Limit `yaml:"limits"`
	// Backend is "local" (default) or "redis".
	Backend string `yaml:"backend"`
	// Redis is the Redis deployment (required with backend: redis). Its
	// timeout (default 100ms) bounds every rate-limit call to Redis.
	Redis *redisclient.Config `yaml:"redis"`
	// RedisMode is "exact" (default: one script round trip per request)
	// or "lease" (tokens taken in batches and served locally).
	RedisMode string `yaml:"redis_mode"`
	// LeaseSize is the tokens per lease in lease mode. Default:
	// min(10% of the smallest rate, 100), at least 1.
	LeaseSize int64 `yaml:"lease_size"`
	// LeaseTTL is how long a lease may be served from before its unused
	// tokens go back to Redis. Default: min(shortest per, 1s).
	LeaseTTL config.Duration `yaml:"lease_ttl"`
	// OnRedisError is "fail_open" (default: allow), "fail_closed" (answer
	// 503 "rate limiter unavailable") or "local" (decide with an
	// in-process limiter with the same limits while Redis is down).
	// After a failure Redis is left alone for 100ms, doubling with each
	// failed probe up to 1s (requests take this policy at once), then
	// probed by one request at a time; failures are logged as WARN with
	// "dependency":"redis", once per 10s.
	OnRedisError string `yaml:"on_redis_error"`
	// Headers selects the rate-limit response headers: "ietf" (default),
	// "x", "both" or "none".
	Headers string `yaml:"headers"`
	// MaxKeys bounds the keys held in memory by the local limiter (and
	// the lease table). Default 100000.
	MaxKeys int `yaml:"max_keys"`

	specs       []limitSpec
	key         reqkey.Key
	seed        maphash.Seed
	ietf, xhdrs bool
	// policy is the precomputed RateLimit-Policy value.
	policy      []string
	xLimit      [][]string
	route       string
	failure     string
	now         func() time.Time
	epoch       time.Time
	local       *localStore
	client      *redisclient.Client
	relClient   func()
	timeout     time.Duration
	keyPrefixes []string
	staticArgs  [][]any
	exactArgs   []any
	lease       bool
	leases      *leaseStore
	leaseSize   int64
	leaseTTL    time.Duration
	downUntil   atomic.Int64
	// backoff is the breaker's current open time (0: retryRedisMin).
	backoff atomic.Int64
	// probing is set while the breaker's probe is in flight.
	probing atomic.Bool
	// refills tracks lease refills running on their own goroutine.
	refills     sync.WaitGroup
	errCount    *observe.Counter
	warner      *observe.DependencyWarner
	limited     *observe.Counter
	unavailable *observe.Counter
	stop        chan struct{}
	done        []chan struct{}
	cleanOnce   sync.Once
}

// Limit is one rate limit.
type Limit struct {
	// Rate is the number of requests allowed per Per (required, ≥ 1).
	Rate int64 `yaml:"rate"`
	// Per is the window length (required), e.g. 1s, 1m, 1h.
	Per config.Duration `yaml:"per"`
	// Burst is the GCRA bucket size: how many requests may arrive at
	// once after an idle period. Default Rate. Not used by sliding_window.
	Burst int64 `yaml:"burst"`
	// Algorithm is "gcra" (default) or "sliding_window".
	//
	// gcra is an exact token bucket refilled continuously at Rate/Per.
	//
	// sliding_window keeps two fixed-window counters per key and
	// estimates the last Per as previous×(time left of it)/Per + current.
	// No fixed window ever admits more than Rate; with requests spread
	// evenly over the previous window the estimate is exact; the worst
	// case (the previous window's requests all at its very end) admits
	// up to 2×Rate within one sliding interval of length Per.
	Algorithm string `yaml:"algorithm"`
}

// Provision applies the defaults, checks the config, builds the limiter
// and opens the Redis client.
func (p *RateLimit) Provision(ctx plugin.Context) error {
	p.defaults()
	if err := p.Validate(); err != nil {
		return err
	}
	p.compile()
	p.route = ctx.Route()
	p.warner = observe.NewDependencyWarner(ctx.Logger(), 0)
	p.limited = ctx.Stats().Counter(RejectedMetric, `route="`+p.route+`",reason="limit"`)
	p.unavailable = ctx.Stats().Counter(RejectedMetric, `route="`+p.route+`",reason="unavailable"`)
	if p.now == nil {
		p.now = ctx.Clock()
	}
	p.epoch = p.now()
	p.seed = maphash.MakeSeed()
	p.stop = make(chan struct{})
	if p.Backend == "local" || p.failure == "local" {
		p.local = newLocalStore(p.specs, p.MaxKeys, p.now)
		done := make(chan struct{})
		p.done = append(p.done, done)
		go sweeper(p.local, sweepInterval, p.stop, done)
	}
	if p.Backend != "redis" {
		return nil
	}
	cl, release, err := redisclient.Shared(ctx.Shared, p.Redis)
	if err != nil {
		return err
	}
	p.client, p.relClient = cl, release
	p.timeout = p.Redis.Timeout.D()
	ns := p.route
	if ns == "" {
		ns = "global"
	}
	p.keyPrefixes = redisKeyPrefixes(cl.Prefix, ns, len(p.specs))
	p.staticArgs = make([][]any, len(p.specs))
	for i := range p.specs {
		p.staticArgs[i] = staticLimitArgs(&p.specs[i])
	}
	p.exactArgs = p.scriptArgs(1, false, 0, nil)
	p.errCount = ctx.Stats().Counter(ErrorsMetric, `route="`+p.route+`"`)
	warmed := make(chan struct{})
	p.done = append(p.done, warmed)
	go p.warmUp(p.stop, warmed)
	if p.lease {
		p.leases = newLeaseStore(p.MaxKeys)
		done := make(chan struct{})
		p.done = append(p.done, done)
		go p.leaseSweeper(p.stop, done)
	}
	return nil
}

// defaults fills in the defaults of unset options; Provision calls it
// before Validate.
func (p *RateLimit) defaults() {
	if len(p.Key) == 0 {
		p.Key = config.StringList{"consumer"}
	}
	if p.Backend == "" {
		p.Backend = "local"
	}
	if p.RedisMode == "" {
		p.RedisMode = "exact"
	}
	if p.OnRedisError == "" {
		p.OnRedisError = "fail_open"
	}
	if p.Headers == "" {
		p.Headers = "ietf"
	}
	if p.MaxKeys == 0 {
		p.MaxKeys = defaultMaxKeys
	}
}

// Validate checks the config, with the defaults applied; it changes
// nothing.
func (p *RateLimit) Validate() error {
	var errs []error
	if _, err := reqkey.Parse(p.Key); err != nil {
		errs = append(errs, err)
	}
	switch {
	case len(p.Limits) == 0:
		errs = append(errs, errors.New("limits: at least one limit is required"))
	case len(p.Limits) > maxLimits:
		errs = append(errs, fmt.Errorf("limits: at most %d limits", maxLimits))
	}
	_, limitErrs := compileLimits(p.Limits)
	errs = append(errs, limitErrs...)
	if p.MaxKeys < 0 {
		errs = append(errs, errors.New("max_keys must be positive"))
	}
	errs = append(errs, p.checkBackend()...)
	switch p.OnRedisError {
	case "fail_open", "fail_closed", "local":
	default:
		errs = append(errs, fmt.Errorf("on_redis_error: %q is not fail_open, fail_closed or local", p.OnRedisError))
	}
	switch p.Headers {
	case "ietf", "x", "both", "none":
	default:
		errs = append(errs, fmt.Errorf("headers: %q is not ietf, x, both or none", p.Headers))
	}
	return errors.Join(errs...)
}

// checkBackend checks backend, redis, redis_mode, lease_size and
// lease_ttl.
func (p *RateLimit) checkBackend() []error {
	var errs []error
	switch p.Backend {
	case "local":
		if p.Redis != nil {
			errs = append(errs, errors.New("redis is set but backend is local (set backend: redis)"))
		}
	case "redis":
		if p.Redis == nil {
			errs = append(errs, errors.New("backend redis needs redis: {addr: ...}"))
		} else if err := p.Redis.Validate(); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf("backend: %q is not local or redis", p.Backend))
	}
	switch p.RedisMode {
	case "exact", "lease":
	default:
		errs = append(errs, fmt.Errorf("redis_mode: %q is not exact or lease", p.RedisMode))
	}
	if p.LeaseSize < 0 || p.LeaseTTL < 0 {
		errs = append(errs, errors.New("lease_size and lease_ttl must be positive"))
	}
	return errs
}

// compileLimits compiles the limits; limits of the same name get a
// numbered suffix.
func compileLimits(limits []Limit) ([]limitSpec, []error) {
	var specs []limitSpec
	var errs []error
	names := map[string]int{}
	for i, l := range limits {
		s, err := compileLimit(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("limits[%d]: %w", i, err))
			continue
		}
		names[s.name]++
		if names[s.name] > 1 {
			s.name += "-" + strconv.Itoa(names[s.name])
		}
		specs = append(specs, s)
	}
	return specs, errs
}

// compile precomputes a validated config: key parts, limits, backend
// modes, lease size and TTL, and the response headers.
func (p *RateLimit) compile() {
	p.key, _ = reqkey.Parse(p.Key)
	p.specs, _ = compileLimits(p.Limits)
	p.lease = p.RedisMode == "lease" && p.Backend != "local"
	p.failure = p.OnRedisError
	p.ietf = p.Headers == "ietf" || p.Headers == "both"
	p.xhdrs = p.Headers == "x" || p.Headers == "both"
	p.leaseSize, p.leaseTTL = p.LeaseSize, p.LeaseTTL.D()
	if p.leaseSize == 0 {
		p.leaseSize = 100
		for _, s := range p.specs {
			p.leaseSize = min(p.leaseSize, max(s.rate/10, 1))
		}
	}
	if p.leaseTTL == 0 {
		p.leaseTTL = time.Second
		for _, s := range p.specs {
			p.leaseTTL = min(p.leaseTTL, time.Duration(s.per))
		}
	}
	p.compileHeaders()
}

// compileLimit checks one Limit and precomputes it.
func compileLimit(l Limit) (limitSpec, error) {
	s := limitSpec{rate: l.Rate, per: int64(l.Per), burst: l.Burst}
	switch l.Algorithm {
	case "", "gcra":
		s.alg = algGCRA
	case "sliding_window":
		s.alg = algSliding
		if l.Burst != 0 {
			return s, errors.New("burst applies to the gcra algorithm only")
		}
	default:
		return s, fmt.Errorf("algorithm: %q is not gcra or sliding_window", l.Algorithm)
	}
	if l.Rate < 1 {
		return s, errors.New("rate must be at least 1")
	}
	if l.Per < config.Duration(time.Millisecond) {
		return s, errors.New("per must be at least 1ms")
	}
	if s.burst == 0 {
		s.burst = s.rate
	}
	if s.burst < 1 {
		return s, errors.New("burst must be at least 1")
	}
	if s.rate > s.per/1000 {
		return s, errors.New("rate is too high for per (at most one request per microsecond)")
	}
	s.t = s.per / s.rate
	// burst·t must fit in int64 with room to add a time.
	if float64(s.burst)*float64(s.t) > math.MaxInt64/4 {
		return s, errors.New("burst is too large")
	}
	s.window = max(int64(math.Ceil(time.Duration(s.per).Seconds())), 1)
	s.name = strconv.FormatInt(s.rate, 10) + "-per-" + formatPer(time.Duration(s.per))
	return s, nil
}

// formatPer writes a window compactly: 1s, 10m, 1h, 500ms.
func formatPer(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
}

// compileHeaders precomputes the static header values.
func (p *RateLimit) compileHeaders() {
	items := make([]string, len(p.specs))
	p.xLimit = make([][]string, len(p.specs))
	for i, s := range p.specs {
		items[i] = fmt.Sprintf("%q;q=%d;w=%d", s.name, s.rate, s.window)
		if s.alg == algGCRA && s.burst != s.rate {
			items[i] += ";portico-burst=" + strconv.FormatInt(s.burst, 10)
		}
		p.xLimit[i] = []string{strconv.FormatInt(s.rate, 10)}
	}
	p.policy = []string{strings.Join(items, ", ")}
}

// clock is the time since the plugin's epoch in nanoseconds.
func (p *RateLimit) clock() int64 { return int64(p.now().Sub(p.epoch)) }

// Cleanup stops the background goroutines, returns unused lease tokens and
// releases the Redis client; it tolerates a partial Provision.
func (p *RateLimit) Cleanup() error {
	p.cleanOnce.Do(func() {
		if p.stop != nil {
			close(p.stop)
		}
		for _, d := range p.done {
			<-d
		}
		p.refills.Wait()
		if p.relClient != nil {
			p.relClient()
			p.client, p.relClient = nil, nil
		}
	})
	return nil
}

// Wrap returns the handler that enforces the limits before next.
func (p *RateLimit) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, next) })
}

// serve runs the plugin for one request, then next.
func (p *RateLimit) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := request.RecordOf(r)
	d, status := p.decide(r, rec)
	switch status {
	case statusDecided:
	case statusOpen:
		next.ServeHTTP(w, r)
		return
	case statusClosed:
		p.unavailable.Inc()
		request.WriteError(w, r, http.StatusServiceUnavailable, "rate limiter unavailable")
		return
	}
	p.writeHeaders(w.Header(), &d)
	if !d.allowed {
		w.Header()["Retry-After"] = []string{strconv.FormatInt(ceilSeconds(d.retry), 10)}
		p.limited.Inc()
		request.WriteError(w, r, http.StatusTooManyRequests, "rate limit exceeded")
		return
	}
	next.ServeHTTP(w, r)
}

// Outcomes of decide besides a decision.
const (
	statusDecided = iota
	// statusOpen lets the request through undecided (Redis down, fail_open).
	statusOpen
	// statusClosed refuses it (Redis down, fail_closed).
	statusClosed
)

// decide applies the backend and, for Redis, the failure policy.
func (p *RateLimit) decide(r *http.Request, rec *request.Record) (decision, int) {
	if p.client == nil {
		return p.local.allow(p.key.Hash(p.seed, r, rec), 1), statusDecided
	}
	var d decision
	var err error
	if p.lease {
		d, err = p.redisLease(r.Context(), p.key.Hash(p.seed, r, rec), func() []string {
			return p.redisKeys(p.key.Render(r, rec))
		})
	} else {
		if !p.mayCallRedis(p.clock()) {
			return p.onFailure(r, rec)
		}
		d, err = p.redisExact(r.Context(), p.key.Render(r, rec))
	}
	if err != nil {
		return p.onFailure(r, rec)
	}
	return d, statusDecided
}

func (p *RateLimit) onFailure(r *http.Request, rec *request.Record) (decision, int) {
	switch p.failure {
	case "local":
		return p.local.allow(p.key.Hash(p.seed, r, rec), 1), statusDecided
	case "fail_closed":
		return decision{}, statusClosed
	}
	return decision{}, statusOpen
}

// writeHeaders sets the configured rate-limit headers for d.
func (p *RateLimit) writeHeaders(h http.Header, d *decision) {
	if !p.ietf && !p.xhdrs {
		return
	}
	s := &p.specs[d.idx]
	reset := ceilSeconds(d.reset)
	if p.ietf {
		h["Ratelimit-Policy"] = p.policy
		b := make([]byte, 0, 64)
		b = append(b, '"')
		b = append(b, s.name...)
		b = append(b, `";r=`...)
		b = strconv.AppendInt(b, d.remaining, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, reset, 10)
		h["Ratelimit"] = []string{string(b)}
	}
	if p.xhdrs {
		h["X-Ratelimit-Limit"] = p.xLimit[d.idx]
		h["X-Ratelimit-Remaining"] = []string{strconv.FormatInt(d.remaining, 10)}
		h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(reset, 10)}
	}
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

var (
	_ plugin.Plugin    = (*RateLimit)(nil)
	_ plugin.Validator = (*RateLimit)(nil)
	_ plugin.Cleaner   = (*RateLimit)(nil)
)

// Interface guards.
var (
	_ plugin.Plugin    = (*RateLimit)(nil)
	_ plugin.Validator = (*RateLimit)(nil)
	_ plugin.Cleaner   = (*RateLimit)(nil)
)
