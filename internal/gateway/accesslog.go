package gateway

import (
	"bufio"
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
	"github.com/portico-gw/portico/internal/request"
)

// Outputs keeps access-log destinations open across reloads, one per path.
// Lines are buffered and written out every flushInterval (or when the
// buffer fills), so a busy gateway does not pay a write system call per
// request; Close flushes what is left.
type Outputs struct {
	mu    sync.Mutex
	files map[string]*bufferedOutput
}

// NewOutputs returns an empty set of outputs.
func NewOutputs() *Outputs { return &Outputs{files: map[string]*bufferedOutput{}} }

// flushInterval bounds how long an access-log line may wait in the buffer.
const flushInterval = 200 * time.Millisecond

// bufferedOutput is a buffered writer flushed by a background ticker.
type bufferedOutput struct {
	mu   sync.Mutex
	w    *bufio.Writer
	dst  io.Writer
	stop chan struct{}
	done chan struct{}
	// warn reports failed writes (disk full, closed pipe), rate limited.
	warn *observe.DependencyWarner
}

func newBufferedOutput(dst io.Writer) *bufferedOutput {
	b := &bufferedOutput{w: newBufioFor(dst), dst: dst, stop: make(chan struct{}), done: make(chan struct{}),
		warn: observe.NewDependencyWarner(nil, 0)}
	go b.loop()
	return b
}

// Write buffers one record (slog handlers write each record in one call).
func (b *bufferedOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func newBufioFor(dst io.Writer) *bufio.Writer { return bufio.NewWriterSize(dst, 64<<10) }

// flush writes the buffer out. A failed write is logged (rate limited) and
// the buffered lines are dropped, so later lines are written once the
// output recovers (a bufio.Writer otherwise keeps failing forever).
func (b *bufferedOutput) flush() {
	b.mu.Lock()
	err := b.w.Flush()
	if err != nil {
		b.w.Reset(b.dst)
	}
	b.mu.Unlock()
	if err != nil {
		b.warn.Warn("access_log", "access log write failed; lines dropped", err)
	}
}

func (b *bufferedOutput) loop() {
	defer close(b.done)
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.flush()
		case <-b.stop:
			b.flush()
			return
		}
	}
}

// Close flushes every output and stops the flushers.
func (o *Outputs) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, b := range o.files {
		close(b.stop)
		<-b.done
		if f, ok := b.dst.(*os.File); ok && f != os.Stdout && f != os.Stderr {
			_ = f.Close()
		}
		delete(o.files, name)
	}
}

// AccessLogger returns an slog logger writing access lines to the configured
// output in the configured format.
func (o *Outputs) AccessLogger(c config.AccessLog) (*slog.Logger, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.files[c.Output]
	if !ok {
		var dst io.Writer
		switch c.Output {
		case "stdout":
			dst = os.Stdout
		case "stderr":
			dst = os.Stderr
		default:
			f, err := os.OpenFile(c.Output, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil, fmt.Errorf("cannot open access log: %v", err)
			}
			dst = f
		}
		w = newBufferedOutput(dst)
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
func (s *Snapshot) logAccess(r *http.Request, rec *request.Record) {
	client := ""
	if rec.ClientIP.IsValid() {
		client = rec.ClientIP.String()
	}
	consumer := ""
	if rec.Consumer != nil {
		consumer = rec.Consumer.Name
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", rec.RequestID),
		slog.String("client_ip", client),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", rawPath(r)),
		slog.String("user_agent", r.Header.Get("User-Agent")),
		slog.String("route", rec.Route),
		slog.String("upstream", rec.Upstream),
		slog.String("upstream_addr", rec.UpstreamAddr),
		slog.Int("attempts", rec.Attempts),
		slog.Int("status", rec.Status),
		slog.Int64("bytes_in", rec.BytesIn()),
		slog.Int64("bytes_out", rec.BytesOut),
		slog.Float64("duration_ms", msec(time.Since(rec.Start))),
		slog.Float64("upstream_ms", msec(rec.UpstreamDuration)),
		slog.String("error", rec.ErrorMsg),
		slog.String("consumer", consumer),
		slog.String("auth_failure", rec.AuthFailure),
		{}, {}, {}, {}, // version, query, trace_id, span_id
	}
	n := len(attrs) - 4
	if rec.Version != "" {
		attrs[n] = slog.String("version", rec.Version)
		n++
	}
	if s.accessQuery {
		attrs[n] = slog.String("query", r.URL.RawQuery)
		n++
	}
	if rec.Trace.On() {
		sc := rec.Trace.SpanContext()
		attrs[n] = slog.String("trace_id", sc.TraceID().String())
		attrs[n+1] = slog.String("span_id", sc.SpanID().String())
		n += 2
	}
	s.accessLog.LogAttrs(context.Background(), slog.LevelInfo, "", attrs[:n]...)
}

func msec(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
