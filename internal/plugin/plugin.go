// Package plugin defines the contract every Portico plugin implements, the
// name → constructor registry, and the chain builder that turns a route's
// plugin list into one http.Handler.
//
// Lifecycle, once per route: New (no side effects) → strict decode of the YAML
// config into the value New returned → Provision → Validate → Wrap. At request
// time a plugin is a plain http.Handler wrapper; it reads only what it
// precomputed. Cleanup runs when the snapshot that owns it is retired and must
// tolerate a partial Provision.
package plugin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"reflect"
	"sort"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/observe"
)

// Plugin is one configured instance of a plugin on one route.
type Plugin interface {
	// Provision prepares the instance (compile, parse keys, open clients).
	Provision(ctx Context) error
	// Wrap returns the handler that runs this plugin, then next.
	Wrap(next http.Handler) http.Handler
}

// Validator is implemented by plugins that check their config after Provision.
type Validator interface {
	Validate() error
}

// Cleaner is implemented by plugins that hold resources (goroutines, clients).
type Cleaner interface {
	Cleanup() error
}

// HeaderInjector is implemented by plugins that write identity-bearing
// headers onto the upstream request (claims_to_headers, headers copied from
// an authorization service). The gateway collects the names of every
// instance in a config at load time and removes them, and their "_"
// spellings, from every client request on every route before any plugin
// runs, so a client cannot supply them on a route where the plugin is not
// configured. Names are returned in canonical form.
type HeaderInjector interface {
	InjectedHeaders() []string
}

// Phase orders plugins on a route: requests pass the phases in ascending
// order and responses come back through them in reverse.
type Phase int

// The documented phases. Within one phase, global plugins run before route
// plugins, each in config order.
const (
	// PhaseInit runs first: request IDs, CORS preflight answers.
	PhaseInit Phase = 100
	// PhaseAccess authenticates and authorises.
	PhaseAccess Phase = 200
	// PhaseAuthorize decides on the authenticated identity (acl); it runs
	// after every authentication plugin.
	PhaseAuthorize Phase = 250
	// PhaseRateLimit applies rate limits and quotas.
	PhaseRateLimit Phase = 300
	// PhaseFault injects faults (fault_injection): after authentication,
	// authorisation and rate limits, so an injected abort or delay never
	// lets a request past them.
	PhaseFault Phase = 350
	// PhaseCompress decodes compressed request bodies and compresses
	// responses (compression): after the phases above, so refused
	// requests are never decoded and signed bodies are checked as sent,
	// and before validation and transforms, so they read decoded request
	// bodies and, responses coming back in reverse order, produce the
	// body that is compressed last.
	PhaseCompress Phase = 360
	// PhaseValidate checks requests against an API description
	// (request_validation): after the phases above, so unauthenticated
	// or limited requests are refused before their bodies are read, and
	// before transformations, so it sees the request as the client sent
	// it.
	PhaseValidate Phase = 375
	// PhaseTransform rewrites requests and responses (headers, bodies).
	PhaseTransform Phase = 400
)

// Spec registers a plugin kind under a name.
type Spec struct {
	// Name is what configs write in `name:`.
	Name string
	// Phase places every instance of this plugin in the chain.
	Phase Phase
	// New returns a zero instance ready for its config to be decoded into it.
	New func() Plugin
}

// Context gives a plugin what it needs from the gateway during Provision
// without importing it.
type Context interface {
	// Route is the name of the route the instance belongs to.
	Route() string
	// Path is the YAML path of the plugin's spec, for error messages.
	Path() string
	// Logger is the process logger, tagged with route and plugin.
	Logger() *slog.Logger
	// Consumers is the consumer store of the config being built.
	Consumers() consumer.Store
	// TrustedProxies are the CIDRs whose forwarding headers are believed.
	TrustedProxies() []netip.Prefix
	// Shared returns the value the gateway holds under key for every
	// plugin instance, across routes and reloads, creating it with create
	// when nobody holds one (see SharedPool). create may block (dial,
	// fetch): it runs outside the pool's lock and only callers of the same
	// key wait for it. The plugin calls release once, from Cleanup.
	Shared(key string, create func() (io.Closer, error)) (value any, release func(), err error)
	// Covers reports whether a browser GET of target (a path, optionally
	// with "?query") reaches the route the instance is on, following the
	// gateway's routing precedence. host is the host to ask about; empty
	// means every host of the route. Plugins that answer on a fixed path
	// of their own (a login callback) check it at load time with this.
	Covers(host, target string) Coverage
	// Stats is the gateway's set of counters (served at the admin /stats
	// and /metrics). A plugin resolves its counters here once, in
	// Provision; at request time it only adds to them.
	Stats() *observe.Stats
	// Clock is the function the plugin reads the current time with:
	// time.Now in a gateway, a fake clock in tests. A plugin keeps it from
	// Provision.
	Clock() func() time.Time
	// RouteTimeout bounds the upstream exchange of the route the instance
	// is on: the route's timeout, else its upstream's request_timeout; 0
	// when there is none (or for a global plugin built on no route). A
	// plugin that holds requests back (fault_injection's delay) keeps it
	// from Provision so the wait counts against the same bound.
	RouteTimeout() time.Duration
	// ConfigDir is the directory of the config file being built, which
	// relative file names in a plugin's config are resolved against; ""
	// when the config did not come from a file (then they are relative
	// to the working directory).
	ConfigDir() string
}

// Coverage is the answer of Context.Covers.
type Coverage struct {
	// Covered is true when the request reaches the instance's route, and
	// also when the answer is unknown (outside a gateway, or while the
	// route table has errors of its own).
	Covered bool
	// Host is the host the answer is about ("" for any host).
	Host string
	// HostMismatch is true when host is none of the route's hosts.
	HostMismatch bool
	// Winner names the route that gets the request instead; empty when no
	// route matches it.
	Winner string
	// WinnerPlugins are the plugin specs the winning route runs (global
	// ones merged in), so a plugin can tell whether an equivalent instance
	// there answers the request in its place.
	WinnerPlugins []config.PluginSpec
	// Match describes the route's match conditions for messages, e.g.
	// "hosts [app.example.com], path_prefix /app".
	Match string
	// PathPrefix is the route's path_prefix, if it has one.
	PathPrefix string
	// Path is the target's path in the normal form requests are routed
	// and compared in (see the router's normalisation policy); empty when
	// unknown. A path not already in that form never equals a request's.
	Path string
}

var (
	regMu    sync.RWMutex
	registry = map[string]Spec{}
	// configTypes caches, per plugin name, the type its config decodes
	// into (reflect.Type): the admin API redacts plugin configs by the
	// `secret` struct tags of that type (see config.Redact).
	configTypes sync.Map
)

// Register adds a plugin kind; it is called from init functions only and
// panics on a duplicate or incomplete Spec (a programming error).
func Register(s Spec) {
	if s.Name == "" || s.New == nil {
		panic("plugin: Register needs Name and New")
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[s.Name]; dup {
		panic("plugin: duplicate registration of " + s.Name)
	}
	registry[s.Name] = s
}

// ConfigType returns the type a plugin's config is decoded into, whose
// fields tagged `secret:"..."` the admin API redacts; ok is false for an
// unknown name. It satisfies config.PluginTypes.
func ConfigType(name string) (reflect.Type, bool) {
	if t, ok := configTypes.Load(name); ok {
		return t.(reflect.Type), true
	}
	s, ok := Lookup(name)
	if !ok {
		return nil, false
	}
	t, _ := configTypes.LoadOrStore(name, reflect.TypeOf(s.New()))
	return t.(reflect.Type), true
}

// Lookup returns the registered Spec for name.
func Lookup(name string) (Spec, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	s, ok := registry[name]
	return s, ok
}

// Names lists the registered plugin names, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Instance is a provisioned plugin with its place in the chain.
type Instance struct {
	Spec   Spec
	Plugin Plugin
	// Path is the YAML path of the spec the instance was built from.
	Path string
	// Route is the name of the route the instance is on (Context.Route
	// at Provision).
	Route string
	// order keeps config order stable within a phase.
	order int
}

// RouteError marks an error that depends on the route an instance is on
// (its match, its place in the route table) rather than on the plugin's
// config alone. Provision returns one for such problems; New passes the
// mark on (wrapping the located config.Errors), so a global plugin that
// fails this way on one route is still built, and checked, on every
// other route, while any other failure of a global plugin is reported
// once.
type RouteError struct{ Err error }

func (e *RouteError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *RouteError) Unwrap() error { return e.Err }

// New builds one instance from a config spec: lookup, strict decode,
// Provision, Validate. On error every partially built resource is cleaned up.
func New(ps config.PluginSpec, ctx Context) (*Instance, error) {
	spec, ok := Lookup(ps.Name)
	if !ok {
		return nil, config.Errors{{Path: ps.Path + ".name", Msg: fmt.Sprintf("unknown plugin %q (available: %v)", ps.Name, Names())}}
	}
	p := spec.New()
	if err := config.DecodeStrict(&ps.Config, p, ps.Path+".config"); err != nil {
		return nil, err
	}
	if err := p.Provision(ctx); err != nil {
		cleanup(p)
		es := config.Errors{{Path: ps.Path + ".config", Msg: err.Error()}}
		if _, ok := errors.AsType[*RouteError](err); ok {
			return nil, &RouteError{Err: es}
		}
		return nil, es
	}
	if v, ok := p.(Validator); ok {
		if err := v.Validate(); err != nil {
			cleanup(p)
			return nil, config.Errors{{Path: ps.Path + ".config", Msg: err.Error()}}
		}
	}
	return &Instance{Spec: spec, Plugin: p, Path: ps.Path, Route: ctx.Route()}, nil
}

func cleanup(p Plugin) {
	if c, ok := p.(Cleaner); ok {
		_ = c.Cleanup()
	}
}

// Cleanup releases the instance's resources.
func (in *Instance) Cleanup() { cleanup(in.Plugin) }

// Merge combines global and route specs: a route spec replaces the global
// spec of the same name, and the rest keep config order (globals first).
func Merge(global, route []config.PluginSpec) []config.PluginSpec {
	if len(route) == 0 {
		return global
	}
	out := make([]config.PluginSpec, 0, len(global)+len(route))
	for _, g := range global {
		overridden := false
		for _, r := range route {
			if r.Name == g.Name {
				overridden = true
				break
			}
		}
		if !overridden {
			out = append(out, g)
		}
	}
	return append(out, route...)
}

// Chain wraps terminal in the instances, ordered by phase then config order,
// so the first instance of the lowest phase sees the request first.
func Chain(instances []*Instance, terminal http.Handler) http.Handler {
	sorted := make([]*Instance, len(instances))
	copy(sorted, instances)
	for i := range sorted {
		sorted[i].order = i
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		return sorted[i].Spec.Phase < sorted[j].Spec.Phase
	})
	h := terminal
	for i := len(sorted) - 1; i >= 0; i-- {
		h = sorted[i].Plugin.Wrap(h)
	}
	return h
}

// StaticContext is a plain Context with fixed values, for tools and tests
// that build plugins outside the gateway. Its zero value works: no
// consumers, no trusted proxies, a discarding logger, nothing shared
// (each Shared call creates a value of its own) unless Pool is set,
// private counters and time.Now.
type StaticContext struct {
	RouteName   string
	SpecPath    string
	Log         *slog.Logger
	Store       consumer.Store
	TrustedNets []netip.Prefix
	// Pool, when set, is where Shared values live, so instances built
	// with contexts holding the same pool share them.
	Pool *SharedPool
	// Coverage, when set, answers Covers; without it every target is
	// reported covered.
	Coverage func(host, target string) Coverage
	// Counters, when set, is what Stats returns, so a test can read the
	// counters the plugin resolved; without it each call returns a new,
	// private set.
	Counters *observe.Stats
	// Now, when set, is what Clock returns; without it, time.Now.
	Now func() time.Time
	// Timeout is what RouteTimeout returns.
	Timeout time.Duration
	// Dir is what ConfigDir returns.
	Dir string
}

// Route returns RouteName.
func (c StaticContext) Route() string { return c.RouteName }

// Path returns SpecPath.
func (c StaticContext) Path() string { return c.SpecPath }

// Logger returns Log, or a logger that discards everything.
func (c StaticContext) Logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Consumers returns Store, or an empty store.
func (c StaticContext) Consumers() consumer.Store {
	if c.Store == nil {
		s, _ := consumer.NewStore(nil)
		return s
	}
	return c.Store
}

// TrustedProxies returns TrustedNets.
func (c StaticContext) TrustedProxies() []netip.Prefix { return c.TrustedNets }

// Shared uses Pool, or without one creates an unshared value that release
// closes.
func (c StaticContext) Shared(key string, create func() (io.Closer, error)) (any, func(), error) {
	if c.Pool != nil {
		return c.Pool.Acquire(key, create)
	}
	v, err := create()
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return v, func() { once.Do(func() { _ = v.Close() }) }, nil
}

// Covers calls Coverage, or reports the target covered.
func (c StaticContext) Covers(host, target string) Coverage {
	if c.Coverage != nil {
		return c.Coverage(host, target)
	}
	return Coverage{Covered: true, Host: host}
}

// Stats returns Counters, or a new private set of counters.
func (c StaticContext) Stats() *observe.Stats {
	if c.Counters == nil {
		return observe.NewStats()
	}
	return c.Counters
}

// Clock returns Now, or time.Now.
func (c StaticContext) Clock() func() time.Time {
	if c.Now == nil {
		return time.Now
	}
	return c.Now
}

// NewFromYAML builds one instance of the named plugin from the YAML text of
// its config section, exactly as the gateway builds it from a config file.
// Tools and tests use it; ctx.Path() locates errors.
func NewFromYAML(name, src string, ctx Context) (*Instance, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		return nil, fmt.Errorf("plugin %s: config is not valid YAML: %w", name, err)
	}
	spec := config.PluginSpec{Name: name, Path: ctx.Path()}
	if len(doc.Content) > 0 {
		spec.Config = *doc.Content[0]
	}
	return New(spec, ctx)
}

// RouteTimeout returns Timeout.
func (c StaticContext) RouteTimeout() time.Duration { return c.Timeout }

// ConfigDir returns Dir.
func (c StaticContext) ConfigDir() string { return c.Dir }
