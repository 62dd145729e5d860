package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/portico-gw/portico/internal/config"
)

// Gateway is a whole running Portico: the runtime, its client listeners and
// the admin listener. The CLI and the end-to-end tests both drive it.
type Gateway struct {
	Runtime *Runtime
	Server  *Server
	logger  *slog.Logger

	// ConfigFile is the file the config was loaded from ("" for none);
	// admin API changes are written back to it when admin.persist allows.
	ConfigFile string
	// BuildVersion is reported by the admin API's /version; "" means
	// buildinfo.Version(), what `portico version` prints.
	BuildVersion string
	// Admin serves the admin listener (admin.listen). The CLI sets it to
	// the admin API over this gateway before Start; nil keeps the admin
	// listener closed whatever the config says.
	Admin http.Handler

	admin   *http.Server
	adminLn net.Listener
	adm     adminState
}

// New returns a gateway that serves nothing until Start.
func New(logger *slog.Logger) *Gateway {
	rt := NewRuntime(logger)
	return &Gateway{Runtime: rt, Server: NewServer(rt, logger), logger: logger}
}

// Start applies the first config (opening its listeners) and starts the
// admin listener.
func (g *Gateway) Start(cfg *config.Config) error {
	g.adm.started = time.Now()
	if err := g.Runtime.Apply(cfg); err != nil {
		return err
	}
	if cfg.Admin.Listen == "off" || g.Admin == nil {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", cfg.Admin.Listen, err)
	}
	g.adminLn = ln
	g.admin = &http.Server{Handler: g.Admin, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		if err := g.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.logger.Error("admin listener failed", "error", err)
		}
	}()
	g.logger.Info("admin listening", "addr", ln.Addr().String())
	return nil
}

// AdminAddr is the bound admin address ("" when off).
func (g *Gateway) AdminAddr() string {
	if g.adminLn == nil {
		return ""
	}
	return g.adminLn.Addr().String()
}

// Ready reports whether a config is in force and its listeners are open.
func (g *Gateway) Ready() bool {
	s := g.Runtime.Current()
	if s == nil {
		return false
	}
	addrs := g.Server.Addrs()
	for _, l := range s.cfg.Server.Listen {
		if _, ok := addrs[l.Addr]; !ok {
			return false
		}
	}
	return true
}

// Info describes the config in force for the readiness endpoint, which
// anyone may call: counts only (the admin handler adds the config file's
// path for callers with the token).
func (g *Gateway) Info() map[string]any {
	s := g.Runtime.acquire()
	if s == nil {
		return nil
	}
	defer g.Runtime.unref(s)
	return map[string]any{"routes": len(s.routes), "upstreams": len(s.pools)}
}

// Shutdown stops accepting, drains in-flight requests until ctx ends, then
// releases every resource.
//
// Once ctx has ended, every client connection is closed, so the requests
// still running end within moments; the snapshots they hold are released
// when they do, waiting at most releaseMargin past ctx's deadline.
func (g *Gateway) Shutdown(ctx context.Context) error {
	err := g.Server.Shutdown(ctx)
	if g.admin != nil {
		if g.admin.Shutdown(ctx) != nil {
			_ = g.admin.Close()
		}
	}
	rctx, cancel := releaseContext(ctx)
	defer cancel()
	if rerr := g.Runtime.CloseContext(rctx); rerr != nil {
		g.logger.Warn("shutdown did not wait for every request to end", "error", rerr)
	}
	return err
}

// releaseMargin is how long Shutdown waits, past its deadline, for the
// requests of closed connections to unwind and release their snapshot.
const releaseMargin = time.Second

// releaseContext extends ctx's deadline to at least releaseMargin from now;
// without a deadline it waits as long as ctx does.
func releaseContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	if min := time.Now().Add(releaseMargin); d.Before(min) {
		d = min
	}
	return context.WithDeadline(context.WithoutCancel(ctx), d)
}

// Interface guards.
var _ http.Handler = (*Runtime)(nil)
