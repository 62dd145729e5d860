package gateway

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/portico-gw/portico/internal/observe"
)

// flakyWriter fails while broken is set.
type flakyWriter struct {
	mu     sync.Mutex
	broken bool
	got    bytes.Buffer
}

func (f *flakyWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return 0, errors.New("no space left on device")
	}
	return f.got.Write(p)
}

// TestAccessLogWriteFailureIsLoggedAndRecovers: a failed access-log write is
// reported as a WARN dependency failure, and lines written after the output
// recovers are not lost to bufio's sticky error.
func TestAccessLogWriteFailureIsLoggedAndRecovers(t *testing.T) {
	t.Parallel()
	dst := &flakyWriter{broken: true}
	var logs bytes.Buffer
	var logMu sync.Mutex
	b := &bufferedOutput{w: nil, dst: dst, stop: make(chan struct{}), done: make(chan struct{}),
		warn: observe.NewDependencyWarner(slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logs}, nil)), 0)}
	b.w = newBufioFor(dst)
	_, _ = b.Write([]byte("line one\n"))
	b.flush()
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, `"dependency":"access_log"`) || !strings.Contains(out, "no space left") {
		t.Fatalf("no WARN line for the failed write: %s", out)
	}
	dst.mu.Lock()
	dst.broken = false
	dst.mu.Unlock()
	_, _ = b.Write([]byte("line two\n"))
	b.flush()
	dst.mu.Lock()
	defer dst.mu.Unlock()
	if got := dst.got.String(); got != "line two\n" {
		t.Fatalf("after recovery the output got %q", got)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
