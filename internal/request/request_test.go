package request

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestNewID checks that generated IDs are 32 lowercase hex digits,
// valid as incoming IDs, and unique over many draws.
func TestNewID(t *testing.T) {
	t.Parallel()
	const n = 10000
	seen := make(map[string]struct{}, n)
	for range n {
		id := NewID()
		if !requestIDPattern.MatchString(id) {
			t.Fatalf("NewID() = %q, want 32 lowercase hex digits", id)
		}
		if !ValidID(id) {
			t.Fatalf("generated ID %q is not a valid request ID", id)
		}
		if _, dup := seen[id]; dup {
			t.Fatalf("duplicate ID %q after %d draws", id, len(seen))
		}
		seen[id] = struct{}{}
	}
}

// TestNewIDConcurrent checks that IDs drawn from many goroutines at
// once are still unique.
func TestNewIDConcurrent(t *testing.T) {
	t.Parallel()
	const goroutines, per = 8, 1000
	ids := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				ids[g] = append(ids[g], NewID())
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, l := range ids {
		for _, id := range l {
			if seen[id] {
				t.Fatalf("duplicate ID %q", id)
			}
			seen[id] = true
		}
	}
}

// TestValidID pins which incoming request IDs may be propagated: 1 to
// MaxIDLen characters from the documented safe set.
func TestValidID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		id   string
		want bool
	}{
		{desc: "empty", id: "", want: false},
		{desc: "single char", id: "a", want: true},
		{desc: "hex", id: "0123456789abcdef0123456789ABCDEF", want: true},
		{desc: "uuid", id: "123e4567-e89b-12d3-a456-426614174000", want: true},
		{desc: "all punctuation allowed", id: "a-b_c.d:e/f+g=h", want: true},
		{desc: "base64", id: "dGVzdA+/==", want: true},
		{desc: "max length", id: strings.Repeat("x", MaxIDLen), want: true},
		{desc: "over max length", id: strings.Repeat("x", MaxIDLen+1), want: false},
		{desc: "space", id: "a b", want: false},
		{desc: "tab", id: "a\tb", want: false},
		{desc: "CR LF injection", id: "abc\r\nX-Evil: 1", want: false},
		{desc: "NUL", id: "a\x00b", want: false},
		{desc: "quote", id: `a"b`, want: false},
		{desc: "comma", id: "a,b", want: false},
		{desc: "semicolon", id: "a;b", want: false},
		{desc: "angle brackets", id: "<script>", want: false},
		{desc: "non-ASCII", id: "idé", want: false},
		{desc: "DEL", id: "a\x7fb", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := ValidID(tc.id); got != tc.want {
				t.Fatalf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
}

// TestParams checks Add/Get/Reset of the fixed-capacity parameter list,
// including refusing to grow past MaxParams.
func TestParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		add     [][2]string
		wantN   int
		lookups map[string]string // key → expected value
		missing []string          // keys that must not be found
	}{
		{desc: "empty", wantN: 0, missing: []string{"id", ""}},
		{desc: "one", add: [][2]string{{"id", "42"}}, wantN: 1, lookups: map[string]string{"id": "42"}, missing: []string{"ID", "name"}},
		{desc: "empty value is found", add: [][2]string{{"rest", ""}}, wantN: 1, lookups: map[string]string{"rest": ""}},
		{desc: "several", add: [][2]string{{"org", "acme"}, {"repo", "portico"}, {"path", "a/b/c"}}, wantN: 3,
			lookups: map[string]string{"org": "acme", "repo": "portico", "path": "a/b/c"}},
		{desc: "duplicate key returns first", add: [][2]string{{"id", "1"}, {"id", "2"}}, wantN: 2, lookups: map[string]string{"id": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var p Params
			for _, kv := range tc.add {
				if !p.Add(kv[0], kv[1]) {
					t.Fatalf("Add(%q) = false", kv[0])
				}
			}
			if p.N != tc.wantN {
				t.Fatalf("N = %d, want %d", p.N, tc.wantN)
			}
			for k, want := range tc.lookups {
				if got, ok := p.Get(k); !ok || got != want {
					t.Errorf("Get(%q) = %q, %v; want %q, true", k, got, ok, want)
				}
			}
			for _, k := range tc.missing {
				if got, ok := p.Get(k); ok || got != "" {
					t.Errorf("Get(%q) = %q, %v; want \"\", false", k, got, ok)
				}
			}
			p.Reset()
			if p.N != 0 {
				t.Fatalf("N after Reset = %d", p.N)
			}
			for k := range tc.lookups {
				if _, ok := p.Get(k); ok {
					t.Errorf("Get(%q) found a value after Reset", k)
				}
			}
		})
	}
}

// TestParamsFull checks that the list takes exactly MaxParams entries, that
// the last one is retrievable, and that it refuses more without changing.
func TestParamsFull(t *testing.T) {
	t.Parallel()
	var p Params
	for i := range MaxParams {
		if !p.Add("k"+strconv.Itoa(i), "v"+strconv.Itoa(i)) {
			t.Fatalf("Add #%d = false before capacity", i)
		}
	}
	if p.Add("overflow", "x") {
		t.Fatal("Add past MaxParams = true")
	}
	if p.N != MaxParams {
		t.Fatalf("N = %d, want %d", p.N, MaxParams)
	}
	if _, ok := p.Get("overflow"); ok {
		t.Fatal("overflowing parameter was stored")
	}
	last := "k" + strconv.Itoa(MaxParams-1)
	if v, ok := p.Get(last); !ok || v != "v"+strconv.Itoa(MaxParams-1) {
		t.Fatalf("Get(%q) = %q, %v", last, v, ok)
	}
	p.Reset()
	if !p.Add("again", "1") {
		t.Fatal("Add after Reset = false")
	}
	if v, ok := p.Get("again"); !ok || v != "1" {
		t.Fatalf("Get after Reset+Add = %q, %v", v, ok)
	}
}

// TestParamsNoAllocs checks that filling and reading the list does not
// allocate.
func TestParamsNoAllocs(t *testing.T) {
	var p Params
	if a := testing.AllocsPerRun(100, func() {
		p.Reset()
		p.Add("id", "42")
		p.Add("name", "x")
		_, _ = p.Get("name")
	}); a != 0 {
		t.Fatalf("Params allocates %.1f times", a)
	}
}

// TestRecordContext checks that a record stored with WithRecord is returned
// by RecordOf, and that a request without one yields nil.
func TestRecordContext(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if RecordOf(r) != nil {
		t.Fatal("RecordOf on a plain request is not nil")
	}
	rec := &Record{RequestID: "abc"}
	r = r.WithContext(WithRecord(r.Context(), rec))
	if RecordOf(r) != rec {
		t.Fatal("RecordOf did not return the stored record")
	}
}

// TestRecordBodyAccessors checks BodyErr, BytesIn and Reset with and without
// a body.
func TestRecordBodyAccessors(t *testing.T) {
	t.Parallel()
	var rec Record
	if rec.BodyErr() != nil || rec.BytesIn() != 0 {
		t.Fatal("record without body reports an error or bytes")
	}
	boom := errors.New("boom")
	rec.Body = NewBody(io.NopCloser(io.MultiReader(strings.NewReader("abc"), &failReader{err: boom})), nil)
	_, _ = io.ReadAll(rec.Body)
	if rec.BytesIn() != 3 || !errors.Is(rec.BodyErr(), boom) {
		t.Fatalf("BytesIn = %d, BodyErr = %v; want 3, boom", rec.BytesIn(), rec.BodyErr())
	}
	rec.RequestID, rec.Status = "x", 200
	rec.Params.Add("a", "b")
	rec.Reset()
	if rec.Body != nil || rec.RequestID != "" || rec.Status != 0 || rec.Params.N != 0 {
		t.Fatalf("Reset left state behind: %+v", rec)
	}
}

// errorResponse is the body shape of WriteError.
type errorResponse struct {
	Error     *string `json:"error"`
	RequestID *string `json:"request_id"`
}

// TestWriteError checks that the error body is valid JSON carrying the
// message exactly, whatever characters it holds, with the record's request
// ID in the body and the X-Request-Id header, the caching and type headers,
// an exact Content-Length, and no stale Content-Encoding.
func TestWriteError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		status int
		msg    string
		id     string // "" means no record
	}{
		{desc: "plain", status: 502, msg: "upstream request failed", id: "0123456789abcdef0123456789abcdef"},
		{desc: "quotes and backslash", status: 400, msg: `bad "value" in \path\`, id: "req-1"},
		{desc: "newlines and tabs", status: 400, msg: "line1\nline2\r\n\tend", id: "req-2"},
		{desc: "unicode", status: 404, msg: "nicht gefunden: ünïcödé ✓ 日本語 🚀", id: "req-3"},
		{desc: "control and html chars", status: 500, msg: "\x00\x1f<script>&amp;</script>\u2028", id: "req-4"},
		{desc: "empty message", status: 503, msg: "", id: "req-5"},
		{desc: "no record", status: 429, msg: "too many requests", id: ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			var rec *Record
			if tc.id != "" {
				rec = &Record{RequestID: tc.id}
				r = r.WithContext(WithRecord(r.Context(), rec))
			}
			w := httptest.NewRecorder()
			w.Header().Set("Content-Encoding", "gzip")
			WriteError(w, r, tc.status, tc.msg)

			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d", w.Code, tc.status)
			}
			body := w.Body.Bytes()
			if !json.Valid(body) {
				t.Fatalf("body is not valid JSON: %q", body)
			}
			var got errorResponse
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("decode %q: %v", body, err)
			}
			if got.Error == nil || *got.Error != tc.msg {
				t.Fatalf("error = %v, want %q", got.Error, tc.msg)
			}
			if got.RequestID == nil || *got.RequestID != tc.id {
				t.Fatalf("request_id = %v, want %q", got.RequestID, tc.id)
			}
			h := w.Header()
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := h.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if cl := h.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length = %q, body is %d bytes", cl, len(body))
			}
			if ce := h.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding = %q, want none", ce)
			}
			if xr, ok := h["X-Request-Id"]; tc.id != "" && (len(xr) != 1 || xr[0] != tc.id) {
				t.Errorf("X-Request-Id = %v, want %q", xr, tc.id)
			} else if tc.id == "" && ok {
				t.Errorf("X-Request-Id = %v without a record", xr)
			}
			if rec != nil && rec.ErrorMsg != tc.msg {
				t.Errorf("record ErrorMsg = %q, want %q", rec.ErrorMsg, tc.msg)
			}
		})
	}
}

// failReader returns err on every read.
type failReader struct{ err error }

func (f *failReader) Read([]byte) (int, error) { return 0, f.err }

// closeTracker records Close calls on the wrapped body.
type closeTracker struct {
	io.Reader
	closed int
}

func (c *closeTracker) Close() error { c.closed++; return nil }

// TestBody checks byte counting, error recording (first non-EOF error
// only), and that onDone runs exactly once on EOF and never on an error.
func TestBody(t *testing.T) {
	t.Parallel()
	errA, errB := errors.New("reset by peer"), errors.New("second")
	tests := []struct {
		desc      string
		src       func() io.Reader
		wantBytes int64
		wantErr   error
		wantDone  int
	}{
		{desc: "empty body reaches EOF", src: func() io.Reader { return strings.NewReader("") }, wantDone: 1},
		{desc: "full body reaches EOF", src: func() io.Reader { return strings.NewReader("hello, world") }, wantBytes: 12, wantDone: 1},
		{desc: "large body", src: func() io.Reader { return strings.NewReader(strings.Repeat("x", 100000)) }, wantBytes: 100000, wantDone: 1},
		{desc: "error after some bytes", src: func() io.Reader {
			return io.MultiReader(strings.NewReader("abcd"), &failReader{err: errA})
		}, wantBytes: 4, wantErr: errA},
		{desc: "immediate error", src: func() io.Reader { return &failReader{err: errA} }, wantErr: errA},
		{desc: "unexpected EOF is an error", src: func() io.Reader {
			return io.MultiReader(strings.NewReader("ab"), &failReader{err: io.ErrUnexpectedEOF})
		}, wantBytes: 2, wantErr: io.ErrUnexpectedEOF},
		{desc: "max bytes error", src: func() io.Reader {
			return http.MaxBytesReader(nil, io.NopCloser(strings.NewReader("0123456789")), 4)
		}, wantBytes: 4, wantErr: &http.MaxBytesError{Limit: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			done := 0
			src := &closeTracker{Reader: tc.src()}
			b := NewBody(src, func() { done++ })
			_, err := io.Copy(io.Discard, b)
			// Reading again after the end must not run onDone again nor
			// replace the recorded error.
			_, _ = b.Read(make([]byte, 8))
			_, _ = b.Read(make([]byte, 8))
			if b.Bytes() != tc.wantBytes {
				t.Errorf("Bytes = %d, want %d", b.Bytes(), tc.wantBytes)
			}
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil || b.Err() != nil {
					t.Errorf("copy err %v, Err() = %v; want none", err, b.Err())
				}
			case *http.MaxBytesError:
				var mbe *http.MaxBytesError
				if !errors.As(b.Err(), &mbe) || mbe.Limit != want.Limit {
					t.Errorf("Err() = %v, want MaxBytesError limit %d", b.Err(), want.Limit)
				}
			default:
				if !errors.Is(b.Err(), want) || !errors.Is(err, want) {
					t.Errorf("Err() = %v (copy %v), want %v", b.Err(), err, want)
				}
			}
			if done != tc.wantDone {
				t.Errorf("onDone ran %d times, want %d", done, tc.wantDone)
			}
			if err := b.Close(); err != nil || src.closed != 1 {
				t.Errorf("Close = %v, underlying closed %d times", err, src.closed)
			}
		})
	}
	t.Run("first error wins", func(t *testing.T) {
		t.Parallel()
		fr := &failReader{err: errA}
		b := NewBody(io.NopCloser(fr), nil)
		_, _ = b.Read(make([]byte, 1))
		fr.err = errB
		_, _ = b.Read(make([]byte, 1))
		if !errors.Is(b.Err(), errA) {
			t.Fatalf("Err() = %v, want the first error", b.Err())
		}
	})
	t.Run("nil onDone", func(t *testing.T) {
		t.Parallel()
		b := NewBody(io.NopCloser(strings.NewReader("ok")), nil)
		if n, err := io.Copy(io.Discard, b); n != 2 || err != nil {
			t.Fatalf("copy = %d, %v", n, err)
		}
	})
}

// TestBodyDetach checks that Detach before EOF prevents onDone from ever
// running.
func TestBodyDetach(t *testing.T) {
	t.Parallel()
	done := 0
	b := NewBody(io.NopCloser(strings.NewReader("payload")), func() { done++ })
	if _, err := b.Read(make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	b.Detach()
	if _, err := io.Copy(io.Discard, b); err != nil {
		t.Fatal(err)
	}
	if done != 0 {
		t.Fatalf("onDone ran %d times after Detach", done)
	}
	if b.Bytes() != 7 {
		t.Fatalf("Bytes = %d, want 7", b.Bytes())
	}
}

// TestBodyConcurrentDetach checks that a transport goroutine reading the
// body while the handler detaches it is race-free and runs onDone at most
// once.
func TestBodyConcurrentDetach(t *testing.T) {
	t.Parallel()
	for range 50 {
		var mu sync.Mutex
		done := 0
		b := NewBody(io.NopCloser(strings.NewReader(strings.Repeat("z", 4096))), func() {
			mu.Lock()
			done++
			mu.Unlock()
		})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, b) }()
		go func() { defer wg.Done(); b.Detach(); _ = b.Err(); _ = b.Bytes() }()
		wg.Wait()
		if done > 1 {
			t.Fatalf("onDone ran %d times", done)
		}
		if b.Bytes() != 4096 {
			t.Fatalf("Bytes = %d", b.Bytes())
		}
	}
}
