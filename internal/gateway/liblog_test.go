package gateway

import (
	"errors"
	"io"
	"log"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"google.golang.org/grpc/grpclog"

	"github.com/portico-gw/portico/internal/observe/tracing"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
)

// TestRouteLibraryLogs: the standard log package, grpclog and the
// OpenTelemetry error handler all end up as JSON lines of the process
// logger, at the documented levels. Not parallel: it changes process-wide
// loggers (restored at the end).
func TestRouteLibraryLogs(t *testing.T) {
	buf := &logbuf.Buffer{}
	RouteLibraryLogs(slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	t.Cleanup(func() {
		log.SetOutput(os.Stderr)
		log.SetFlags(log.LstdFlags)
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
		tracing.RouteErrors(slog.New(slog.NewTextHandler(io.Discard, nil)))
	})

	log.Printf("http: TLS handshake error from %s: EOF", "192.0.2.1:5555")
	grpclog.Info("grpc info is debug")
	grpclog.Warningf("grpc warning %d", 1)
	grpclog.Errorln("grpc error")
	otel.Handle(errors.New("traces export: connection refused"))
	otel.Handle(errors.New("traces export: connection refused"))

	lines := buf.Lines(t)
	want := []struct{ level, msg, key, val string }{
		{"WARN", "http: TLS handshake error from 192.0.2.1:5555: EOF", "logger", "log"},
		{"WARN", "grpc warning 1", "logger", "grpc"},
		{"ERROR", "grpc error", "logger", "grpc"},
		{"WARN", "tracing export failed", "dependency", "opentelemetry"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d: %v", len(lines), len(want), lines)
	}
	for i, w := range want {
		l := lines[i]
		if l["level"] != w.level || l["msg"] != w.msg || l[w.key] != w.val {
			t.Errorf("line %d = %v, want %+v", i, l, w)
		}
	}
	if lines[3]["error"] != "traces export: connection refused" {
		t.Errorf("otel line = %v", lines[3])
	}
}

// TestLineLimiter: a burst is cut at libLogBurst lines per interval and the
// first line of the next interval reports how many were dropped.
func TestLineLimiter(t *testing.T) {
	t.Parallel()
	var l lineLimiter
	now := time.Unix(1000, 0)
	allowed := 0
	for range 100 {
		if ok, _ := l.allow(now); ok {
			allowed++
		}
	}
	if allowed != libLogBurst {
		t.Fatalf("allowed %d of a burst of 100, want %d", allowed, libLogBurst)
	}
	ok, dropped := l.allow(now.Add(libLogInterval))
	if !ok || dropped != 100-libLogBurst {
		t.Fatalf("next interval: ok=%v dropped=%d", ok, dropped)
	}
	if _, d := l.allow(now.Add(libLogInterval)); d != 0 {
		t.Fatalf("dropped reported twice: %d", d)
	}
}
