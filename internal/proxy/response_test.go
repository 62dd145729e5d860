package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/upstream"
)

// blockingBody returns data once, then blocks until closed.
type blockingBody struct {
	mu     sync.Mutex
	data   string
	closed chan struct{}
	once   sync.Once
}

func newBlockingBody(data string) *blockingBody {
	return &blockingBody{data: data, closed: make(chan struct{})}
}

func (b *blockingBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.data != "" {
		n := copy(p, b.data)
		b.data = b.data[n:]
		b.mu.Unlock()
		return n, nil
	}
	b.mu.Unlock()
	<-b.closed
	return 0, errors.New("read on closed body")
}

func (b *blockingBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

func TestBodyIdleTimeout(t *testing.T) {
	t.Parallel()
	st := &upstream.TargetState{}
	t.Run("stalled upstream", func(t *testing.T) {
		t.Parallel()
		src := newBlockingBody("partial")
		rec := &request.Record{}
		stalls := &observe.Counter{}
		st.Begin()
		body := wrapBody(src, st, nil, 50*time.Millisecond, rec, stalls)
		start := time.Now()
		got, err := io.ReadAll(body)
		if !errors.Is(err, errBodyIdle) || string(got) != "partial" {
			t.Fatalf("ReadAll = %q, %v; want the partial body and errBodyIdle", got, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("stall detected after %v", d)
		}
		if stalls.Value() != 1 || rec.ErrorMsg != "upstream body idle timeout" {
			t.Errorf("counter %d, error message %q", stalls.Value(), rec.ErrorMsg)
		}
		body.Close()
	})
	t.Run("slow client does not count", func(t *testing.T) {
		t.Parallel()
		stalls := &observe.Counter{}
		st.Begin()
		body := wrapBody(io.NopCloser(strings.NewReader("abcdef")), st, nil, 30*time.Millisecond, nil, stalls)
		buf := make([]byte, 2)
		for range 3 {
			if _, err := io.ReadFull(body, buf); err != nil {
				t.Fatalf("read: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // the client is slow: no read pending upstream
		}
		if _, err := body.Read(buf); err != io.EOF {
			t.Fatalf("last read: %v, want EOF", err)
		}
		if stalls.Value() != 0 {
			t.Errorf("counted %d stalls for a slow client", stalls.Value())
		}
		body.Close()
	})
	t.Run("no timer for upgraded connections or when off", func(t *testing.T) {
		t.Parallel()
		st.Begin()
		if b := wrapBody(io.NopCloser(strings.NewReader("")), st, nil, 0, nil, nil).(*endBody); b.timer != nil {
			t.Error("timer armed with the timeout off")
		}
		st.Begin()
		rw := wrapBody(struct{ io.ReadWriteCloser }{}, st, nil, time.Second, nil, nil)
		if b, ok := rw.(*endBodyRW); !ok || b.timer != nil {
			t.Errorf("upgraded body %T armed a timer", rw)
		}
		st.Begin()
		if b := wrapBody(http.NoBody, st, nil, time.Second, nil, nil).(*endBody); b.timer != nil {
			t.Error("timer armed for an empty body")
		}
	})
}

func TestInterimWriter(t *testing.T) {
	t.Parallel()
	rec := &interimRecorder{header: http.Header{}}
	w := &interimWriter{ResponseWriter: rec, maxFields: 3}
	h := w.Header()
	h["Link"] = []string{"</a>"}
	h["Connection"] = []string{"X-A, x-b"}
	h["X-A"] = []string{"1"}
	h["X-B"] = []string{"2"}
	h["Keep-Alive"] = []string{"timeout=5"}
	w.WriteHeader(http.StatusEarlyHints)
	if len(rec.sent) != 1 || rec.sent[0].Get("Link") != "</a>" || len(rec.sent[0]) != 1 {
		t.Fatalf("sent %v, want only Link", rec.sent)
	}
	clear(h)
	for _, k := range []string{"A", "B", "C", "D"} {
		h["Link-"+k] = []string{k}
	}
	w.WriteHeader(http.StatusEarlyHints)
	if len(rec.sent) != 1 || len(h) != 0 {
		t.Fatalf("an interim response over the count was sent: %v", rec.sent)
	}
	h["Connection"] = []string{"Upgrade"}
	h["Upgrade"] = []string{"websocket"}
	w.WriteHeader(http.StatusSwitchingProtocols)
	if len(rec.sent) != 2 || rec.sent[1].Get("Upgrade") != "websocket" {
		t.Fatalf("101 not passed through untouched: %v", rec.sent)
	}
}

type interimRecorder struct {
	header http.Header
	sent   []http.Header
}

func (r *interimRecorder) Header() http.Header         { return r.header }
func (r *interimRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (r *interimRecorder) WriteHeader(int)             { r.sent = append(r.sent, r.header.Clone()) }
