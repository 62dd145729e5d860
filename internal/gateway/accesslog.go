package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
)

// Outputs keeps access-log destinations open across reloads, one per path.
type Outputs struct {
	mu    sync.Mutex
	files map[string]io.Writer
}

// NewOutputs returns an empty set of outputs.
func NewOutputs() *Outputs { return &Outputs{files: map[string]io.Writer{}} }

// AccessLogger returns an slog logger writing access lines to the configured
// output in the configured format.
func (o *Outputs) AccessLogger(c config.AccessLog) (*slog.Logger, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.files[c.Output]
	if !ok {
		switch c.Output {
		case "stdout":
			w = os.Stdout
		case "stderr":
			w = os.Stderr
		default:
			f, err := os.OpenFile(c.Output, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, fmt.Errorf("cannot open access log: %v", err)
			}
			w = f
		}
		o.files[c.Output] = w
	}
	opts := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.MessageKey || a.Key == slog.LevelKey {
			return slog.Attr{}
		}
		return a
	}}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// logAccess writes one structured line for a finished request; trace_id and
// span_id are added when the request is traced.
func (s *Snapshot) logAccess(r *http.Request, rec *observe.Record) {
	client := ""
	if rec.ClientIP.IsValid() {
		client = rec.ClientIP.String()
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", rec.RequestID),
		slog.String("client_ip", client),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", rawPath(r)),
		slog.String("route", rec.Route),
		slog.String("upstream", rec.Upstream),
		slog.Int("status", rec.Status),
		slog.Int64("bytes_in", rec.BytesIn()),
		slog.Int64("bytes_out", rec.BytesOut),
		slog.Float64("duration_ms", msec(time.Since(rec.Start))),
		slog.Float64("upstream_ms", msec(rec.UpstreamDuration)),
		slog.String("error", rec.ErrorMsg),
		{}, {}, // trace_id, span_id
	}
	n := len(attrs) - 2
	if rec.Trace.On() {
		sc := rec.Trace.SpanContext()
		attrs[n] = slog.String("trace_id", sc.TraceID().String())
		attrs[n+1] = slog.String("span_id", sc.SpanID().String())
		n += 2
	}
	s.accessLog.LogAttrs(context.Background(), slog.LevelInfo, "", attrs[:n]...)
}

func msec(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
