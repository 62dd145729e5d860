package gateway

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/portico-gw/portico/internal/config"
)

// Reloader re-reads a config file and applies it to a Runtime. A config that
// fails to load or build is logged with every error and the running one
// stays in force.
type Reloader struct {
	Path    string
	Runtime *Runtime
	Logger  *slog.Logger
	// OnResult, if set, is called after each attempt (nil error on success).
	OnResult func(error)
}

// Reload performs one reload attempt now.
func (rl *Reloader) Reload() error {
	start := time.Now()
	cfg, err := config.Load(rl.Path)
	if err == nil {
		err = rl.Runtime.Apply(cfg)
	}
	if err != nil {
		rl.Logger.Error("config reload rejected; keeping the running config", "file", rl.Path, "errors", err.Error())
	} else {
		rl.Logger.Info("config reloaded", "file", rl.Path, "routes", len(cfg.Routes), "took", time.Since(start).String())
	}
	if rl.OnResult != nil {
		rl.OnResult(err)
	}
	return err
}

// Watch reloads whenever the file changes until ctx ends. It watches the
// file's directory so editors that replace the file (rename over it) and
// Kubernetes ConfigMap symlink swaps are seen too. Bursts of events within
// the debounce window cause one reload.
func (rl *Reloader) Watch(ctx context.Context, debounce time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	abs, err := filepath.Abs(rl.Path)
	if err != nil {
		return err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		return err
	}
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Clean(ev.Name)
			if name != abs && filepath.Base(name) != "..data" {
				continue
			}
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove|fsnotify.Chmod) == 0 {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(debounce)
			} else {
				timer.Reset(debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			_ = rl.Reload()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			rl.Logger.Warn("config watcher error", "error", err)
		}
	}
}
