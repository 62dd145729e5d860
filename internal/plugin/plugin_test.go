package plugin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// testCtx is a minimal provisioning Context.
type testCtx struct {
	StaticContext
	route, path string
}

func (c testCtx) Route() string        { return c.route }
func (c testCtx) Path() string         { return c.path }
func (c testCtx) Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

var nameSeq atomic.Int64

// uniqueName returns a registry name no other test uses.
func uniqueName(prefix string) string {
	return fmt.Sprintf("test.%s.%d", prefix, nameSeq.Add(1))
}

// noopPlugin passes requests through unchanged.
type noopPlugin struct{}

func (noopPlugin) Provision(Context) error             { return nil }
func (noopPlugin) Wrap(next http.Handler) http.Handler { return next }

func noopSpec(name string) Spec {
	return Spec{Name: name, Phase: PhaseInit, New: func() Plugin { return noopPlugin{} }}
}

// TestRegisterPanics checks that an incomplete or duplicate registration is
// refused with a panic and leaves the registry unchanged.
func TestRegisterPanics(t *testing.T) {
	t.Parallel()
	dup := uniqueName("dup")
	Register(noopSpec(dup))
	tests := []struct {
		desc string
		spec Spec
	}{
		{desc: "empty name", spec: Spec{New: func() Plugin { return noopPlugin{} }}},
		{desc: "nil New", spec: Spec{Name: uniqueName("nilnew")}},
		{desc: "duplicate name", spec: Spec{Name: dup, Phase: PhaseAccess, New: func() Plugin { return noopPlugin{} }}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Fatalf("Register(%+v) did not panic", tc.spec)
				}
				if tc.spec.Name != "" && tc.spec.Name != dup {
					if _, ok := Lookup(tc.spec.Name); ok {
						t.Fatalf("refused spec %q was registered", tc.spec.Name)
					}
				}
			}()
			Register(tc.spec)
		})
	}
	// The original registration survives a refused duplicate.
	if s, ok := Lookup(dup); !ok || s.Phase != PhaseInit {
		t.Fatalf("Lookup(%q) = %+v, %v after refused duplicate", dup, s, ok)
	}
}

// TestLookupAndNames checks that registered specs are found by name and
// listed, sorted, by Names, and that unknown names are not found.
func TestLookupAndNames(t *testing.T) {
	t.Parallel()
	a, b := uniqueName("names.b"), uniqueName("names.a")
	Register(Spec{Name: a, Phase: PhaseTransform, New: func() Plugin { return noopPlugin{} }})
	Register(Spec{Name: b, Phase: PhaseRateLimit, New: func() Plugin { return noopPlugin{} }})
	tests := []struct {
		desc      string
		name      string
		wantOK    bool
		wantPhase Phase
	}{
		{desc: "first", name: a, wantOK: true, wantPhase: PhaseTransform},
		{desc: "second", name: b, wantOK: true, wantPhase: PhaseRateLimit},
		{desc: "unknown", name: "test.never-registered", wantOK: false},
		{desc: "empty", name: "", wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s, ok := Lookup(tc.name)
			if ok != tc.wantOK {
				t.Fatalf("Lookup(%q) ok = %v", tc.name, ok)
			}
			if ok && (s.Name != tc.name || s.Phase != tc.wantPhase || s.New == nil) {
				t.Fatalf("Lookup(%q) = %+v", tc.name, s)
			}
		})
	}
	names := Names()
	if !slices.IsSorted(names) {
		t.Fatalf("Names() not sorted: %v", names)
	}
	for _, n := range []string{a, b} {
		if !slices.Contains(names, n) {
			t.Fatalf("Names() = %v, missing %q", names, n)
		}
	}
}

// TestRegistryConcurrent checks that registering and reading the registry
// from many goroutines is race-free.
func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := uniqueName("conc")
			Register(noopSpec(n))
			if _, ok := Lookup(n); !ok {
				t.Errorf("Lookup(%q) failed", n)
			}
			_ = Names()
		}()
	}
	wg.Wait()
}

func specs(names ...string) []config.PluginSpec {
	out := make([]config.PluginSpec, len(names))
	for i, n := range names {
		out[i] = config.PluginSpec{Name: n, Path: n}
	}
	return out
}

// TestMerge checks that route specs replace same-named global specs and
// that the result keeps config order with the remaining globals first.
func TestMerge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		global []config.PluginSpec
		route  []config.PluginSpec
		want   []string // Path of each merged spec, telling global from route
	}{
		{desc: "nothing", want: []string{}},
		{desc: "globals only", global: specs("g:cors", "g:auth"), want: []string{"g:cors", "g:auth"}},
		{desc: "route only", route: specs("r:cors"), want: []string{"r:cors"}},
		{desc: "globals then route", global: specs("g:a", "g:b"), route: specs("r:c", "r:d"), want: []string{"g:a", "g:b", "r:c", "r:d"}},
		{desc: "route overrides same name", global: specs("g:a", "g:b", "g:c"), route: specs("r:b"), want: []string{"g:a", "g:c", "r:b"}},
		{desc: "route overrides all", global: specs("g:a", "g:b"), route: specs("r:b", "r:a"), want: []string{"r:b", "r:a"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			// Spec names are the part after the "g:"/"r:" marker.
			for _, l := range [][]config.PluginSpec{tc.global, tc.route} {
				for i := range l {
					l[i].Name = l[i].Path[2:]
				}
			}
			globalBefore := slices.Clone(tc.global)
			got := Merge(tc.global, tc.route)
			paths := []string{}
			for _, s := range got {
				paths = append(paths, s.Path)
			}
			if !slices.Equal(paths, tc.want) {
				t.Fatalf("Merge = %v, want %v", paths, tc.want)
			}
			for i := range tc.global {
				if tc.global[i].Path != globalBefore[i].Path {
					t.Fatalf("Merge modified the global list: %v", tc.global)
				}
			}
		})
	}
}

// orderPlugin appends "name>" when a request passes down and "<name" when
// the response comes back up.
type orderPlugin struct {
	name string
	log  *[]string
}

func (p *orderPlugin) Provision(Context) error { return nil }
func (p *orderPlugin) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*p.log = append(*p.log, p.name+">")
		next.ServeHTTP(w, r)
		*p.log = append(*p.log, "<"+p.name)
	})
}

// TestChainOrder checks that instances run by phase then config order on
// the way down and in exact reverse on the way back up, and that Chain does
// not reorder the caller's slice.
func TestChainOrder(t *testing.T) {
	t.Parallel()
	type inst struct {
		name  string
		phase Phase
	}
	tests := []struct {
		desc      string
		instances []inst
		want      []string
	}{
		{desc: "no plugins", want: []string{"terminal"}},
		{desc: "single", instances: []inst{{"a", PhaseAccess}}, want: []string{"a>", "terminal", "<a"}},
		{desc: "sorted by phase", instances: []inst{{"xform", PhaseTransform}, {"rl", PhaseRateLimit}, {"auth", PhaseAccess}, {"rid", PhaseInit}},
			want: []string{"rid>", "auth>", "rl>", "xform>", "terminal", "<xform", "<rl", "<auth", "<rid"}},
		{desc: "config order within a phase", instances: []inst{{"x1", PhaseTransform}, {"i1", PhaseInit}, {"x2", PhaseTransform}, {"i2", PhaseInit}, {"i3", PhaseInit}},
			want: []string{"i1>", "i2>", "i3>", "x1>", "x2>", "terminal", "<x2", "<x1", "<i3", "<i2", "<i1"}},
		{desc: "custom phase between documented ones", instances: []inst{{"late", PhaseTransform}, {"mid", Phase(250)}, {"early", PhaseAccess}},
			want: []string{"early>", "mid>", "late>", "terminal", "<late", "<mid", "<early"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var log []string
			var ins []*Instance
			for _, in := range tc.instances {
				name := uniqueName("chain." + in.name)
				ins = append(ins, &Instance{
					Spec:   Spec{Name: name, Phase: in.phase, New: func() Plugin { return noopPlugin{} }},
					Plugin: &orderPlugin{name: in.name, log: &log},
				})
			}
			before := slices.Clone(ins)
			h := Chain(ins, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				log = append(log, "terminal")
				w.WriteHeader(http.StatusNoContent)
			}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != http.StatusNoContent {
				t.Fatalf("status = %d", w.Code)
			}
			if !slices.Equal(log, tc.want) {
				t.Fatalf("order = %v, want %v", log, tc.want)
			}
			if !slices.Equal(ins, before) {
				t.Fatal("Chain reordered the caller's slice")
			}
		})
	}
}

// TestChainShortCircuit checks that a plugin that answers itself stops the
// request from reaching later plugins and the terminal, while earlier
// plugins still see the response on the way back.
func TestChainShortCircuit(t *testing.T) {
	t.Parallel()
	var log []string
	deny := &denyPlugin{log: &log}
	ins := []*Instance{
		{Spec: Spec{Name: "after", Phase: PhaseTransform}, Plugin: &orderPlugin{name: "after", log: &log}},
		{Spec: Spec{Name: "deny", Phase: PhaseAccess}, Plugin: deny},
		{Spec: Spec{Name: "first", Phase: PhaseInit}, Plugin: &orderPlugin{name: "first", log: &log}},
	}
	h := Chain(ins, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log = append(log, "terminal")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusForbidden {
		t.Fatalf("status = %d, want 403", w.Code)
	}
	if want := []string{"first>", "deny", "<first"}; !slices.Equal(log, want) {
		t.Fatalf("order = %v, want %v", log, want)
	}
}

type denyPlugin struct{ log *[]string }

func (p *denyPlugin) Provision(Context) error { return nil }
func (p *denyPlugin) Wrap(http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*p.log = append(*p.log, "deny")
		w.WriteHeader(http.StatusForbidden)
	})
}

// lifecyclePlugin records its lifecycle calls and fails where told.
type lifecyclePlugin struct {
	Greeting string `yaml:"greeting"`
	Limit    int    `yaml:"limit"`

	provisionErr error
	validateErr  error
	provisioned  int
	validated    int
	cleaned      int
	ctxRoute     string
}

func (p *lifecyclePlugin) Provision(ctx Context) error {
	p.provisioned++
	p.ctxRoute = ctx.Route()
	return p.provisionErr
}
func (p *lifecyclePlugin) Validate() error                     { p.validated++; return p.validateErr }
func (p *lifecyclePlugin) Cleanup() error                      { p.cleaned++; return nil }
func (p *lifecyclePlugin) Wrap(next http.Handler) http.Handler { return next }

// yamlNode parses src into the mapping node a PluginSpec carries.
func yamlNode(t *testing.T, src string) yaml.Node {
	t.Helper()
	if src == "" {
		return yaml.Node{}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("bad YAML: %v", err)
	}
	return *doc.Content[0]
}

// TestNew checks the lifecycle New drives: lookup, strict decode,
// Provision, Validate, and that every failure names the spec's YAML path and
// cleans up an instance that got as far as Provision.
func TestNew(t *testing.T) {
	t.Parallel()
	const path = "routes[3].plugins[1]"
	tests := []struct {
		desc         string
		unknown      bool // use a name that is not registered
		config       string
		provisionErr error
		validateErr  error
		// wantErr lists substrings of the error; nil means success.
		wantErr       []string
		wantProvision int
		wantValidate  int
		wantCleanup   int
	}{
		{desc: "ok with config", config: "greeting: hi\nlimit: 5", wantProvision: 1, wantValidate: 1},
		{desc: "ok without config", wantProvision: 1, wantValidate: 1},
		{desc: "ok with null config", config: "null", wantProvision: 1, wantValidate: 1},
		{desc: "unknown plugin", unknown: true,
			wantErr: []string{path + ".name", "unknown plugin", "available:"}},
		{desc: "unknown config field", config: "greeting: hi\ncolour: red",
			wantErr: []string{path + ".config.colour", `unknown field "colour"`, "greeting", "limit"}},
		{desc: "wrongly typed field", config: "limit: many",
			wantErr: []string{path + ".config.limit", "integer"}},
		{desc: "config not a mapping", config: "[1, 2]",
			wantErr: []string{path + ".config", "mapping"}},
		{desc: "provision error cleans up", provisionErr: errors.New("cannot open key file"),
			wantErr: []string{path + ".config", "cannot open key file"}, wantProvision: 1, wantCleanup: 1},
		{desc: "validate error cleans up", validateErr: errors.New("limit must be positive"),
			wantErr: []string{path + ".config", "limit must be positive"}, wantProvision: 1, wantValidate: 1, wantCleanup: 1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			name := uniqueName("new")
			var made []*lifecyclePlugin
			var mu sync.Mutex
			Register(Spec{Name: name, Phase: PhaseAccess, New: func() Plugin {
				p := &lifecyclePlugin{provisionErr: tc.provisionErr, validateErr: tc.validateErr}
				mu.Lock()
				made = append(made, p)
				mu.Unlock()
				return p
			}})
			ps := config.PluginSpec{Name: name, Path: path, Config: yamlNode(t, tc.config)}
			if tc.unknown {
				ps.Name = name + ".missing"
			}
			in, err := New(ps, testCtx{route: "users", path: path})
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("New succeeded, want error containing %q", tc.wantErr)
				}
				if in != nil {
					t.Fatal("New returned an instance with an error")
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				var ce config.Errors
				if !errors.As(err, &ce) || len(ce) == 0 || !strings.HasPrefix(ce[0].Path, path) {
					t.Errorf("error %#v is not a config.Errors located under %s", err, path)
				}
				if tc.unknown && !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not list the available plugin %q", err, name)
				}
			} else if err != nil {
				t.Fatalf("New: %v", err)
			}
			if tc.unknown {
				if len(made) != 0 {
					t.Fatal("an unknown plugin was instantiated")
				}
				return
			}
			if len(made) != 1 {
				t.Fatalf("New made %d instances, want 1", len(made))
			}
			p := made[0]
			if p.provisioned != tc.wantProvision || p.validated != tc.wantValidate || p.cleaned != tc.wantCleanup {
				t.Fatalf("provision/validate/cleanup = %d/%d/%d, want %d/%d/%d",
					p.provisioned, p.validated, p.cleaned, tc.wantProvision, tc.wantValidate, tc.wantCleanup)
			}
			if err != nil {
				return
			}
			if in.Plugin != Plugin(p) || in.Path != path || in.Spec.Name != name || in.Spec.Phase != PhaseAccess {
				t.Fatalf("instance = %+v", in)
			}
			if p.ctxRoute != "users" {
				t.Errorf("Provision saw route %q", p.ctxRoute)
			}
			if tc.config == "greeting: hi\nlimit: 5" && (p.Greeting != "hi" || p.Limit != 5) {
				t.Errorf("decoded config = %q, %d", p.Greeting, p.Limit)
			}
			in.Cleanup()
			if p.cleaned != 1 {
				t.Errorf("Instance.Cleanup ran Cleanup %d times", p.cleaned)
			}
		})
	}
}

// TestInstanceCleanupWithoutCleaner checks that cleaning up a plugin that
// holds no resources is a no-op.
func TestInstanceCleanupWithoutCleaner(t *testing.T) {
	t.Parallel()
	name := uniqueName("nocleaner")
	Register(noopSpec(name))
	in, err := New(config.PluginSpec{Name: name, Path: "plugins[0]"}, testCtx{})
	if err != nil {
		t.Fatal(err)
	}
	in.Cleanup()
}
