// Package control is the vocabulary the admin API and the gateway runtime
// it manages share: the types of the admin package's Controller and
// Manager interfaces and the errors of a config change. It lets the
// gateway satisfy those interfaces without importing the admin package and
// the admin package serve a gateway without importing it or the plugin
// registry; the CLI wires the two together. It imports only config.
package control

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// TargetStatus is the runtime state of one upstream target.
type TargetStatus struct {
	Healthy        bool  `json:"healthy"`
	Ejected        bool  `json:"ejected"`
	Available      bool  `json:"available"`
	InFlight       int64 `json:"in_flight"`
	EjectionsTotal int64 `json:"ejections_total"`
}

// VersionInfo describes the running build.
type VersionInfo struct {
	Version string
	Started time.Time
}

// Revision is one applied config, for the revision history.
type Revision struct {
	Revision  string    `json:"revision"`
	AppliedAt time.Time `json:"applied_at"`
	Source    string    `json:"source"`
	Routes    int       `json:"routes"`
	Upstreams int       `json:"upstreams"`
}

// PluginKind is one registered plugin and the phase it runs in.
type PluginKind struct {
	Name  string `json:"name"`
	Phase int    `json:"phase"`
}

// EditFunc changes doc, a copy of the running config's YAML document
// before ${ENV} expansion; cur is the running config it was loaded as.
type EditFunc func(doc *yaml.Node, cur *config.Config) error

// PreconditionFailedError is returned by an update when If-Match does not
// name the running revision.
type PreconditionFailedError struct{ Current string }

func (e *PreconditionFailedError) Error() string {
	return "the config has changed: the running revision is " + e.Current
}

// ConflictError is returned by an update when the change cannot be made
// safely, e.g. the config file was edited on disk and not yet loaded.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

// PersistError is returned by an update when the new config was applied
// but could not be written back to the config file; the previous config is
// back in force.
type PersistError struct{ Err error }

func (e *PersistError) Error() string {
	return "config applied but not saved (rolled back): " + e.Err.Error()
}

func (e *PersistError) Unwrap() error { return e.Err }
