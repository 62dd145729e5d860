// Command portico is the Portico API gateway: `portico run` serves a config,
// `portico validate` checks one, `portico version` prints the build,
// `portico health` probes a running gateway, and `portico echo` runs the
// small echo backend used by the quick start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portico-gw/portico/examples"
	"github.com/portico-gw/portico/internal/admin"
	"github.com/portico-gw/portico/internal/buildinfo"
	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/echo"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/schema"
)

const usage = `Portico API gateway

Usage:
  portico run [--config FILE] [--listen ADDR] [--admin ADDR]
                                    serve (default: ./portico.yaml, else the bundled quick-start config);
                                    --listen/$PORTICO_LISTEN replace server.listen[0].addr,
                                    --admin/$PORTICO_ADMIN replace admin.listen
  portico validate --config FILE    check a config; prints every error with its line
  portico version                   print the version, commit, build date and Go version
  portico health [--admin URL]      exit 0 when the admin /healthz answers 200, else 1
  portico echo [--addr ADDR]        run the echo backend (default 127.0.0.1:9001)
  portico schema                    print the JSON Schema of the config file (for editors)
  portico routes [--admin URL] [--token T]     list the running routes (admin API)
  portico upstreams [--admin URL] [--token T]  show upstream target health (admin API)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, buildinfo.Get().String())
		return 0
	case "health":
		return cmdHealth(args[1:], stdout, stderr)
	case "echo":
		return cmdEcho(args[1:], stderr)
	case "schema":
		if _, err := stdout.Write(schema.JSON); err != nil {
			return 1
		}
		return 0
	case "routes":
		return cmdRoutes(args[1:], stdout, stderr)
	case "upstreams":
		return cmdUpstreams(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
	return 2
}

// loadConfig resolves the config to use: --config, ./portico.yaml, or the
// embedded quick start (reported by embedded=true).
func loadConfig(path string) (cfg *config.Config, file string, embedded bool, err error) {
	if path == "" {
		if _, statErr := os.Stat("portico.yaml"); statErr == nil {
			path = "portico.yaml"
		}
	}
	if path == "" {
		cfg, err = config.Parse(examples.Quickstart, "embedded:examples/quickstart.yaml", os.LookupEnv)
		return cfg, "", true, err
	}
	cfg, err = config.LoadAll(path)
	if err != nil && cfg != nil {
		// The parts of the file that decoded are built too, so one run
		// reports every mistake (decode, validation and build errors).
		err = gateway.NewRuntime(slog.New(slog.DiscardHandler)).Validate(cfg)
		return nil, path, false, err
	}
	return cfg, path, false, err
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func cmdRun(args []string, stderr io.Writer) int {
	path, ov, code := parseRunFlags(args, stderr)
	if code != 0 {
		return code
	}
	// Signals are caught from the start so an early SIGHUP cannot kill the
	// process with the default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	cfg, file, _, err := loadConfig(path)
	if err != nil {
		printErrors(stderr, "config", err)
		return 1
	}
	logger := newLogger(stderr, cfg.Log.Level)
	slog.SetDefault(logger)
	// Libraries that log on their own (standard log, grpc-go, OpenTelemetry,
	// quic-go through the standard log) write JSON lines through logger too.
	gateway.RouteLibraryLogs(logger)
	// The echo backend runs for the life of the process; a reload that
	// changes the echo setting is reported, not applied.
	var echoAddr string
	if cfg.Echo != nil {
		echoAddr = cfg.Echo.Listen
		stop, err := startEcho(echoAddr, logger)
		if err != nil {
			fmt.Fprintf(stderr, "start: echo.listen %s: %v\n", echoAddr, err)
			return 1
		}
		defer stop()
	}
	g := newGateway(logger, file, prepareConfig(ov, echoAddr, logger))
	if err := g.Start(cfg); err != nil {
		printErrors(stderr, "start", err)
		_ = g.Shutdown(context.Background())
		return 1
	}
	logger.Info("portico started", "version", g.BuildVersion, "config", cfg.Source)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return serveUntilStopped(g, watchConfig(ctx, g, file, logger), sigs, logger)
}

// parseRunFlags reads the flags of `portico run` together with the
// PORTICO_LISTEN and PORTICO_ADMIN overrides; a non-zero code is the exit
// status of a usage error (already reported).
func parseRunFlags(args []string, stderr io.Writer) (path string, ov config.Overrides, code int) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (default ./portico.yaml, else the bundled quick start)")
	listen := fs.String("listen", "", "replace the address of the first server.listen entry (default $PORTICO_LISTEN)")
	adminAddr := fs.String("admin", "", "replace admin.listen; \"off\" turns the admin API off (default $PORTICO_ADMIN)")
	if err := fs.Parse(args); err != nil {
		return "", ov, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "run: unexpected argument %q\n", fs.Arg(0))
		return "", ov, 2
	}
	ov, err := runOverrides(*listen, *adminAddr, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "run: %v\n", err)
		return "", ov, 2
	}
	return *cfgPath, ov, 0
}

// newGateway builds the gateway of `portico run` and wires the admin API
// to it: the admin package serves the gateway through its Manager
// interface, which the gateway satisfies without importing it.
func newGateway(logger *slog.Logger, file string, prepare func(*config.Config) error) *gateway.Gateway {
	g := gateway.New(logger)
	g.ConfigFile, g.BuildVersion = file, buildinfo.Version()
	g.Admin = admin.Handler(g)
	g.Runtime.Prepare = prepare
	return g
}

// The admin API serves a gateway through the interfaces it defines.
var _ admin.Manager = (*gateway.Gateway)(nil)

// prepareConfig returns the Runtime.Prepare of `portico run`: it applies
// the --listen/--admin overrides to every config and warns when a reload
// changes the echo setting, which needs a restart.
func prepareConfig(ov config.Overrides, echoAddr string, logger *slog.Logger) func(*config.Config) error {
	first := true
	return func(c *config.Config) error {
		if err := ov.Apply(c); err != nil {
			return err
		}
		var next string
		if c.Echo != nil {
			next = c.Echo.Listen
		}
		if !first && next != echoAddr {
			logger.Warn("the echo setting changed; restart portico to apply it", "running", echoAddr, "config", next)
		}
		first = false
		return nil
	}
}

// watchConfig reloads the config file when it changes, until ctx ends; it
// returns the reloader SIGHUP uses, nil for the embedded config.
func watchConfig(ctx context.Context, g *gateway.Gateway, file string, logger *slog.Logger) *gateway.Reloader {
	if file == "" {
		return nil
	}
	rl := g.NewReloader(file)
	go func() {
		if err := rl.Watch(ctx, 200*time.Millisecond); err != nil {
			logger.Warn("config file watching unavailable; reload with SIGHUP", "error", err)
		}
	}()
	return rl
}

// serveUntilStopped logs listener failures and reloads on SIGHUP until
// SIGTERM or SIGINT, then shuts the gateway down within the configured
// grace period and returns the exit status.
func serveUntilStopped(g *gateway.Gateway, rl *gateway.Reloader, sigs <-chan os.Signal, logger *slog.Logger) int {
	for {
		select {
		case err := <-g.Server.Errors():
			logger.Error("listener failed", "error", err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if rl == nil {
					logger.Warn("SIGHUP ignored: the embedded config cannot change")
					continue
				}
				_ = rl.Reload()
				continue
			}
			grace := g.Runtime.Current().Config().Server.ShutdownGrace.D()
			logger.Info("shutting down", "signal", sig.String(), "grace", grace.String())
			sctx, scancel := context.WithTimeout(context.Background(), grace)
			err := g.Shutdown(sctx)
			scancel()
			if err != nil {
				logger.Warn("grace period ended with requests still in flight", "error", err)
			}
			logger.Info("stopped")
			return 0
		}
	}
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file to check (default ./portico.yaml, else the bundled quick start)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, file, _, err := loadConfig(*path)
	if err == nil {
		err = gateway.NewRuntime(slog.New(slog.DiscardHandler)).Validate(cfg)
	}
	if err != nil {
		if file == "" {
			file = *path
		}
		n := printErrors(stderr, "invalid", err)
		if n > 1 && file != "" {
			fmt.Fprintf(stderr, "%s: %d errors\n", file, n)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid (%d routes, %d upstreams)\n", cfg.Source, len(cfg.Routes), len(cfg.Upstreams))
	return 0
}

// runOverrides combines the --listen/--admin flags with PORTICO_LISTEN and
// PORTICO_ADMIN (a flag wins over its variable) and checks the values.
func runOverrides(listen, adminAddr string, lookup func(string) (string, bool)) (config.Overrides, error) {
	listenName, adminName := "--listen", "--admin"
	if listen == "" {
		if v, ok := lookup("PORTICO_LISTEN"); ok && v != "" {
			listen, listenName = v, "PORTICO_LISTEN"
		}
	}
	if adminAddr == "" {
		if v, ok := lookup("PORTICO_ADMIN"); ok && v != "" {
			adminAddr, adminName = v, "PORTICO_ADMIN"
		}
	}
	ov := config.Overrides{Listen: listen, Admin: adminAddr}
	return ov, ov.Check(listenName, adminName)
}

// healthURL is the admin /healthz URL for --admin, else $PORTICO_ADMIN (an
// address that listens on every interface is reached on loopback), else the
// default admin address.
func healthURL(flagVal string, lookup func(string) (string, bool)) string {
	base := flagVal
	if base == "" {
		if v, ok := lookup("PORTICO_ADMIN"); ok && v != "" && v != "off" {
			if host, port, err := net.SplitHostPort(v); err == nil {
				if host == "" || host == "0.0.0.0" || host == "::" {
					host = "127.0.0.1"
				}
				base = net.JoinHostPort(host, port)
			}
		}
	}
	if base == "" {
		base = defaultAdmin
	}
	base = strings.TrimSuffix(base, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return base + "/healthz"
}

// cmdHealth checks a running gateway's liveness through the admin API; the
// container image's HEALTHCHECK runs it (the image has no curl).
func cmdHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("admin", "", "admin API base URL (default $PORTICO_ADMIN, else "+defaultAdmin+")")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	url := healthURL(*base, os.LookupEnv)
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "unhealthy: %v\n", err)
		return 1
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "unhealthy: GET %s: %s\n", url, resp.Status)
		return 1
	}
	fmt.Fprintf(stdout, "healthy: GET %s: %s\n", url, resp.Status)
	return 0
}

func cmdEcho(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9001", "listen address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := newLogger(stderr, "info")
	stop, err := startEcho(*addr, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	stop()
	return 0
}

func startEcho(addr string, logger *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: echo.Handler("echo"), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("echo backend listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// printErrors prints each error of a config.Errors on its own line and
// returns how many it printed.
func printErrors(w io.Writer, prefix string, err error) int {
	var es config.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			fmt.Fprintf(w, "%s: %s\n", prefix, e.Error())
		}
		return len(es)
	}
	fmt.Fprintf(w, "%s: %v\n", prefix, err)
	return 1
}
