package redisclient

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/observe"
)

// go-redis writes its internal messages (dial failures, pool trouble,
// Sentinel and Cluster events) as plain-text lines on stderr, which would
// break a JSON log. installLogger routes them, once per process, through
// the process's slog logger instead: each becomes a structured WARN line
// with "dependency":"redis", rate-limited per message kind by an
// observe.DependencyWarner (one line per kind per interval, with the count
// of lines suppressed since the last one).
var installLogger = sync.OnceFunc(func() {
	redis.SetLogger(newLibLogger(slog.New(defaultHandler{}), 0))
})

// libLogger adapts go-redis's logging interface to a DependencyWarner.
type libLogger struct{ w *observe.DependencyWarner }

// newLibLogger returns a go-redis logger writing to l, one line per message
// kind per interval (observe.DefaultWarnInterval when <= 0).
func newLibLogger(l *slog.Logger, interval time.Duration) libLogger {
	return libLogger{w: observe.NewDependencyWarner(l, interval)}
}

// Printf logs one go-redis message. The message of the line is the format
// with its verbs blanked (a fixed set of kinds, so rate limiting keys stay
// bounded); the formatted text is in "detail".
func (l libLogger) Printf(_ context.Context, format string, v ...any) {
	l.w.Warn("redis", "redis client: "+kind(format), nil, slog.String("detail", fmt.Sprintf(format, v...)))
}

// kind is format without its "redis: " prefix and with every verb replaced
// by "_".
func kind(format string) string {
	format = strings.TrimPrefix(format, "redis: ")
	var b strings.Builder
	b.Grow(len(format))
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		// Skip flags, width, precision and the verb letter.
		for i+1 < len(format) && strings.IndexByte("+-# 0123456789.*[]", format[i+1]) >= 0 {
			i++
		}
		if i+1 < len(format) {
			i++
		}
		b.WriteByte('_')
	}
	return b.String()
}

// defaultHandler sends every record to slog.Default's handler at the time
// of the call, so go-redis lines follow the logger the process installs
// after the first Redis client was made.
type defaultHandler struct{}

func (defaultHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return slog.Default().Handler().Enabled(ctx, l)
}

func (defaultHandler) Handle(ctx context.Context, r slog.Record) error {
	return slog.Default().Handler().Handle(ctx, r)
}

func (defaultHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return slog.Default().Handler().WithAttrs(as)
}

func (defaultHandler) WithGroup(name string) slog.Handler {
	return slog.Default().Handler().WithGroup(name)
}
