package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/buildinfo"
	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/control"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
)

// adminState is the gateway's side of the admin API.
type adminState struct {
	// mu serialises admin API writes with each other and with file
	// reloads, so a revision check and the apply that follows it are one
	// step.
	mu      sync.Mutex
	started time.Time
}

// RunningConfig returns the config in force, or nil before the first.
func (g *Gateway) RunningConfig() *config.Config {
	s := g.Runtime.Current()
	if s == nil {
		return nil
	}
	return s.cfg
}

// TargetStatus reports one target's health, ejection and load from the
// long-lived state shared by every snapshot that has the target.
func (g *Gateway) TargetStatus(upstream, url string) control.TargetStatus {
	st, release := g.Runtime.builder.States.Acquire(upstream + "|" + url)
	defer release()
	now := time.Now().UnixNano()
	return control.TargetStatus{
		Healthy:        st.Healthy(),
		Ejected:        st.Ejected(now),
		Available:      st.Available(now),
		InFlight:       st.Inflight(),
		EjectionsTotal: st.EjectionsTotal(),
	}
}

// Version describes the build and when the gateway started.
func (g *Gateway) Version() control.VersionInfo {
	v := g.BuildVersion
	if v == "" {
		v = buildinfo.Version()
	}
	return control.VersionInfo{Version: v, Started: g.adm.started}
}

// persistTo is the file admin changes are written back to ("" for none).
func (g *Gateway) persistTo(cfg *config.Config) string {
	if g.ConfigFile == "" || (cfg.Admin.Persist != nil && !*cfg.Admin.Persist) {
		return ""
	}
	return g.ConfigFile
}

// Update implements the admin API's Manager: check the revision, edit a
// copy of the unexpanded document, load and apply it like a file reload,
// then persist it (rolling back when the file cannot be written).
func (g *Gateway) Update(ifMatch func(revision string) bool, edit control.EditFunc) (string, error) {
	g.adm.mu.Lock()
	defer g.adm.mu.Unlock()
	old := g.RunningConfig()
	if old == nil {
		return "", errors.New("no configuration loaded")
	}
	if !ifMatch(old.Hash) {
		return "", &control.PreconditionFailedError{Current: old.Hash}
	}
	if old.RawRoot == nil {
		return "", &control.ConflictError{Msg: "the running config has no source document to edit"}
	}
	file := g.persistTo(old)
	if err := fileUnchanged(file, old.Hash); err != nil {
		return "", err
	}
	cfg, data, err := g.editedConfig(old, file, edit)
	if err != nil {
		return "", err
	}
	if err := g.Runtime.Apply(cfg); err != nil {
		g.adminLogger().Warn("admin: config change rejected; keeping the running config", "stage", "apply", "errors", err.Error())
		return "", err
	}
	if file != "" {
		if err := config.WriteFileAtomic(file, data); err != nil {
			if rerr := g.Runtime.Apply(old); rerr != nil {
				g.adminLogger().Error("admin: rolling back after a failed save also failed", "error", rerr)
			}
			g.Runtime.metrics.Reload(false, "")
			g.adminLogger().Error("admin: config change rolled back: could not save it", "stage", "persist", "file", file, "error", err)
			return "", &control.PersistError{Err: err}
		}
	}
	g.adminLogger().Info("admin: config changed", "revision", cfg.Hash, "persisted", file != "")
	return cfg.Hash, nil
}

// fileUnchanged refuses a change while the config file ("" for none)
// differs from the running config: edits made on disk that are not in force
// (an invalid file, or one whose reload is still pending) are never
// overwritten.
func fileUnchanged(file, runningHash string) error {
	if file == "" {
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return &control.ConflictError{Msg: fmt.Sprintf("cannot read the config file: %v", err)}
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != runningHash {
		return &control.ConflictError{Msg: "the config file " + file + " was changed on disk and is not the running config; fix or reload it first"}
	}
	return nil
}

// editedConfig applies edit to a copy of old's document and loads the
// result, building what decoded so the error lists every mistake at once.
// It returns the config and the document's bytes to persist. A result that
// does not load or build counts as a failed reload.
func (g *Gateway) editedConfig(old *config.Config, file string, edit control.EditFunc) (*config.Config, []byte, error) {
	doc := config.CloneNode(old.RawRoot)
	if err := edit(doc, old); err != nil {
		return nil, nil, err
	}
	data, err := config.MarshalDocument(doc)
	if err != nil {
		return nil, nil, err
	}
	source := old.Source
	if file != "" {
		source = file
	}
	cfg, err := config.ParseAll(data, source, os.LookupEnv)
	if err != nil && cfg != nil {
		err = g.Runtime.Validate(cfg)
	}
	if err != nil {
		// A config the running one cannot become is a failed reload, like
		// an invalid file (Apply counts its own failures).
		g.Runtime.metrics.Reload(false, "")
		g.adminLogger().Warn("admin: config change rejected; keeping the running config", "stage", "config", "errors", err.Error())
		return nil, nil, err
	}
	return cfg, data, nil
}

// NewReloader returns a Reloader for the gateway's config file that takes
// turns with admin API writes, so the two never interleave.
func (g *Gateway) NewReloader(path string) *Reloader {
	return &Reloader{Path: path, Runtime: g.Runtime, Logger: g.adminLogger(), Lock: &g.adm.mu}
}

func (g *Gateway) adminLogger() *slog.Logger {
	if g.logger == nil {
		return slog.Default()
	}
	return g.logger
}

// History lists the most recent applied config revisions, oldest first.
func (g *Gateway) History() []control.Revision {
	g.Runtime.applyMu.Lock()
	defer g.Runtime.applyMu.Unlock()
	out := make([]control.Revision, len(g.Runtime.history))
	for i, h := range g.Runtime.history {
		out[i] = control.Revision{Revision: h.hash, AppliedAt: h.at, Source: h.source, Routes: h.routes, Upstreams: h.upstreams}
	}
	return out
}

// Metrics is the runtime's registry, served at the admin /metrics.
func (g *Gateway) Metrics() *observe.Metrics { return g.Runtime.metrics }

// Stats are the runtime's counters, served at the admin /stats.
func (g *Gateway) Stats() *observe.Stats { return g.Runtime.stats }

// Plugins lists the registered plugin kinds, sorted by name.
func (g *Gateway) Plugins() []control.PluginKind {
	names := plugin.Names()
	out := make([]control.PluginKind, 0, len(names))
	for _, n := range names {
		s, _ := plugin.Lookup(n)
		out = append(out, control.PluginKind{Name: n, Phase: int(s.Phase)})
	}
	return out
}

// PluginConfigType resolves a plugin name to the type its config decodes
// into (see plugin.ConfigType).
func (g *Gateway) PluginConfigType(name string) (reflect.Type, bool) { return plugin.ConfigType(name) }
