// Command portico is the Portico API gateway: `portico run` serves a config,
// `portico validate` checks one, `portico version` prints the build, and
// `portico echo` runs the small echo backend used by the quick start.
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
	"syscall"
	"time"

	"github.com/portico-gw/portico/examples"
	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/echo"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/schema"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Portico API gateway

Usage:
  portico run [--config FILE]       serve (default: ./portico.yaml, else the bundled quick-start config)
  portico validate --config FILE    check a config; prints every error with its line
  portico version                   print the version
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
		fmt.Fprintf(stdout, "portico %s\n", version)
		return 0
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
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default ./portico.yaml, else the bundled quick start)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Signals are caught from the start so an early SIGHUP cannot kill the
	// process with the default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	cfg, file, embedded, err := loadConfig(*path)
	if err != nil {
		printErrors(stderr, "config", err)
		return 1
	}
	logger := newLogger(stderr, cfg.Log.Level)
	slog.SetDefault(logger)
	// Libraries that log on their own (standard log, grpc-go, OpenTelemetry,
	// quic-go through the standard log) write JSON lines through logger too.
	observe.RouteLibraryLogs(logger)
	if embedded {
		stop, err := startEcho("127.0.0.1:9001", logger)
		if err != nil {
			logger.Warn("quick-start echo backend not started; the /echo route will answer 502", "error", err)
		} else {
			defer stop()
		}
	}
	g := gateway.New(logger)
	g.ConfigFile, g.BuildVersion = file, version
	if err := g.Start(cfg); err != nil {
		printErrors(stderr, "start", err)
		_ = g.Shutdown(context.Background())
		return 1
	}
	logger.Info("portico started", "version", version, "config", cfg.Source)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rl *gateway.Reloader
	if file != "" {
		rl = g.NewReloader(file)
		go func() {
			if err := rl.Watch(ctx, 200*time.Millisecond); err != nil {
				logger.Warn("config file watching unavailable; reload with SIGHUP", "error", err)
			}
		}()
	}
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
