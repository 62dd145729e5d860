package gateway

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/grpclog"

	"github.com/portico-gw/portico/internal/observe/tracing"
)

// Library log lines are rate limited per source: at most libLogBurst lines
// per libLogInterval, and the next line written carries how many were
// dropped, so a misbehaving peer (TLS scanners, a collector outage) cannot
// flood the process log.
const (
	libLogBurst    = 20
	libLogInterval = 10 * time.Second
)

// RouteLibraryLogs sends what third-party code logs through logger, so the
// process log stays one JSON object per line:
//
//   - the standard log package (net/http server errors such as TLS
//     handshake failures, quic-go, OpenTelemetry's internal logger) at WARN
//     with "logger":"log";
//   - grpc-go's grpclog (used by the OTLP/gRPC exporter): info at DEBUG,
//     warnings at WARN, errors at ERROR, with "logger":"grpc";
//   - OpenTelemetry's error handler (failed span exports and the like) as a
//     dependency failure at WARN, "dependency":"opentelemetry", at most one
//     line per 10 s (see tracing.RouteErrors).
//
// Call it once at start-up, after slog.SetDefault; logger must not itself
// write to the standard log package.
func RouteLibraryLogs(logger *slog.Logger) {
	if logger == nil {
		logger = slog.Default()
	}
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(&stdlogWriter{logger: logger.With("logger", "log"), lim: &lineLimiter{}})
	grpclog.SetLoggerV2(&grpcLogger{logger: logger.With("logger", "grpc"), lim: &lineLimiter{}})
	tracing.RouteErrors(logger)
}

// lineLimiter allows libLogBurst lines per libLogInterval.
type lineLimiter struct {
	mu      sync.Mutex
	start   time.Time
	n       int
	dropped int64
}

// allow reports whether a line may be written now and, if so, how many
// were dropped before it.
func (l *lineLimiter) allow(now time.Time) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= libLogInterval {
		l.start, l.n = now, 0
	}
	if l.n >= libLogBurst {
		l.dropped++
		return false, 0
	}
	l.n++
	d := l.dropped
	l.dropped = 0
	return true, d
}

func logLimited(logger *slog.Logger, lim *lineLimiter, level slog.Level, msg string) {
	ctx := context.Background()
	if !logger.Enabled(ctx, level) {
		return
	}
	ok, dropped := lim.allow(time.Now())
	if !ok {
		return
	}
	msg = strings.TrimRight(msg, "\r\n")
	if dropped > 0 {
		logger.LogAttrs(ctx, level, msg, slog.Int64("suppressed", dropped))
		return
	}
	logger.LogAttrs(ctx, level, msg)
}

// stdlogWriter receives the standard log package's output, one call per
// line.
type stdlogWriter struct {
	logger *slog.Logger
	lim    *lineLimiter
}

func (w *stdlogWriter) Write(p []byte) (int, error) {
	logLimited(w.logger, w.lim, slog.LevelWarn, string(p))
	return len(p), nil
}

// grpcLogger implements grpclog.LoggerV2 on slog.
type grpcLogger struct {
	logger *slog.Logger
	lim    *lineLimiter
}

func (g *grpcLogger) log(level slog.Level, msg string) { logLimited(g.logger, g.lim, level, msg) }

func (g *grpcLogger) Info(args ...any)   { g.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (g *grpcLogger) Infoln(args ...any) { g.log(slog.LevelDebug, fmt.Sprintln(args...)) }
func (g *grpcLogger) Infof(f string, args ...any) {
	g.log(slog.LevelDebug, fmt.Sprintf(f, args...))
}
func (g *grpcLogger) Warning(args ...any)   { g.log(slog.LevelWarn, fmt.Sprint(args...)) }
func (g *grpcLogger) Warningln(args ...any) { g.log(slog.LevelWarn, fmt.Sprintln(args...)) }
func (g *grpcLogger) Warningf(f string, args ...any) {
	g.log(slog.LevelWarn, fmt.Sprintf(f, args...))
}
func (g *grpcLogger) Error(args ...any)   { g.log(slog.LevelError, fmt.Sprint(args...)) }
func (g *grpcLogger) Errorln(args ...any) { g.log(slog.LevelError, fmt.Sprintln(args...)) }
func (g *grpcLogger) Errorf(f string, args ...any) {
	g.log(slog.LevelError, fmt.Sprintf(f, args...))
}

// Fatal logs unlimited at ERROR and exits, as grpclog requires.
func (g *grpcLogger) Fatal(args ...any) { g.fatal(fmt.Sprint(args...)) }
func (g *grpcLogger) Fatalln(args ...any) {
	g.fatal(fmt.Sprintln(args...))
}
func (g *grpcLogger) Fatalf(f string, args ...any) { g.fatal(fmt.Sprintf(f, args...)) }

func (g *grpcLogger) fatal(msg string) {
	g.logger.Error(strings.TrimRight(msg, "\r\n"), "fatal", true)
	os.Exit(1)
}

// V reports whether verbosity level l is logged: only 0 (grpc's default).
func (g *grpcLogger) V(l int) bool { return l <= 0 }
