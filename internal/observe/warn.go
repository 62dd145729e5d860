package observe

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DependencyWarner logs failures of a dependency (Redis, an identity
// provider, an authorizer…) as structured WARN lines, at most one line per
// key per interval, so an outage cannot flood the log. Each line carries the
// number of failures suppressed since the previous line for that key.
// It is safe for concurrent use; the success path costs nothing.
type DependencyWarner struct {
	logger   *slog.Logger
	interval time.Duration
	keys     sync.Map // string → *warnState
}

type warnState struct {
	next       atomic.Int64 // unix nanos before which lines are suppressed
	suppressed atomic.Int64
}

// DefaultWarnInterval is how often one dependency failure key may log.
const DefaultWarnInterval = 10 * time.Second

// NewDependencyWarner returns a warner writing to logger (slog.Default when
// nil), one line per key per interval (DefaultWarnInterval when <= 0).
func NewDependencyWarner(logger *slog.Logger, interval time.Duration) *DependencyWarner {
	if logger == nil {
		logger = slog.Default()
	}
	if interval <= 0 {
		interval = DefaultWarnInterval
	}
	return &DependencyWarner{logger: logger, interval: interval}
}

// Warn logs msg at WARN with attrs and a "dependency" attribute, unless a
// line for the same dependency and msg was written less than the interval
// ago; then it only counts the failure. err may be nil.
func (d *DependencyWarner) Warn(dependency, msg string, err error, attrs ...slog.Attr) {
	if d == nil {
		return
	}
	key := dependency + "\x00" + msg
	v, ok := d.keys.Load(key)
	if !ok {
		v, _ = d.keys.LoadOrStore(key, new(warnState))
	}
	st := v.(*warnState)
	now := time.Now().UnixNano()
	next := st.next.Load()
	if now < next || !st.next.CompareAndSwap(next, now+int64(d.interval)) {
		st.suppressed.Add(1)
		return
	}
	all := make([]slog.Attr, 0, len(attrs)+3)
	all = append(all, slog.String("dependency", dependency))
	if err != nil {
		all = append(all, slog.String("error", err.Error()))
	}
	all = append(all, attrs...)
	if n := st.suppressed.Swap(0); n > 0 {
		all = append(all, slog.Int64("suppressed", n))
	}
	d.logger.LogAttrs(context.Background(), slog.LevelWarn, msg, all...)
}
