package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
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
	// Lock, if set, is held during each attempt; the admin API shares it so
	// its writes and reloads never interleave.
	Lock sync.Locker
	// MaxDelay bounds how long Watch lets a burst of file changes postpone
	// a reload: the file is read at most MaxDelay after the first change of
	// a burst, however often it keeps changing. 0 means DefaultMaxDelay.
	MaxDelay time.Duration

	// onWatching, if set, is called once Watch watches the directory.
	onWatching func()
}

// DefaultMaxDelay is the longest a stream of file changes postpones a
// reload when Reloader.MaxDelay is not set.
const DefaultMaxDelay = time.Second

// Reload performs one reload attempt now.
func (rl *Reloader) Reload() error {
	if rl.Lock != nil {
		rl.Lock.Lock()
		defer rl.Lock.Unlock()
	}
	return rl.reload(nil)
}

// reloadIfChanged reloads unless the file holds exactly the running
// revision, as it does after the admin API wrote its change back.
func (rl *Reloader) reloadIfChanged() {
	if rl.Lock != nil {
		rl.Lock.Lock()
		defer rl.Lock.Unlock()
	}
	data, err := os.ReadFile(rl.Path)
	if err == nil {
		if s := rl.Runtime.Current(); s != nil {
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) == s.cfg.Hash {
				rl.Logger.Debug("config file unchanged; nothing to reload", "file", rl.Path)
				return
			}
		}
	}
	_ = rl.reload(data)
}

// reload applies data (read from the file when nil). Every failure, at
// whatever stage, is logged and counted in portico_config_reloads_total
// {result="failure"} (Runtime.Apply counts its own build and listener
// failures; the stages before it are counted here).
func (rl *Reloader) reload(data []byte) error {
	start := time.Now()
	var cfg *config.Config
	var err error
	if data == nil {
		cfg, err = config.LoadAll(rl.Path)
	} else {
		cfg, err = config.ParseAll(data, rl.Path, os.LookupEnv)
	}
	if err != nil && cfg != nil {
		// Build what decoded, so the log lists every mistake at once.
		err = rl.Runtime.Validate(cfg)
	}
	stage := "apply"
	if err != nil {
		stage = loadStage(err)
		rl.Runtime.metrics.Reload(false, "")
	} else {
		err = rl.Runtime.Apply(cfg)
	}
	if err != nil {
		rl.Logger.Warn("config reload rejected; keeping the running config", "file", rl.Path, "stage", stage, "errors", err.Error())
	} else {
		rl.Logger.Info("config reloaded", "file", rl.Path, "routes", len(cfg.Routes), "took", time.Since(start).String())
	}
	if rl.OnResult != nil {
		rl.OnResult(err)
	}
	return err
}

// loadStage names what failed in config.Load or config.Parse: "read" (the
// file), or "config" (YAML syntax, schema or validation).
func loadStage(err error) string {
	var es config.Errors
	if errors.As(err, &es) {
		return "config"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "read"
	}
	return "config"
}

// Watch reloads whenever the file changes until ctx ends. It watches the
// file's directory so editors that replace the file (rename over it) and
// Kubernetes ConfigMap symlink swaps are seen too. A burst of changes
// causes one reload, debounce after the last change, but never later than
// MaxDelay after the first: a file that keeps changing is still reloaded
// (its latest content) about once per MaxDelay.
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
	if rl.onWatching != nil {
		rl.onWatching()
	}
	maxDelay := rl.MaxDelay
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		fire     <-chan time.Time
		deadline time.Time // of the burst in progress; zero when none
	)
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
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(maxDelay)
			}
			timer.Reset(max(min(debounce, deadline.Sub(now)), 0))
			fire = timer.C
		case <-fire:
			fire, deadline = nil, time.Time{}
			rl.reloadIfChanged()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			rl.Logger.Warn("config watcher error", "error", err)
		}
	}
}
