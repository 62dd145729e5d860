package sizelimit

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

// TestSizeLimit: announced bodies over the limit get 413 before the next
// handler runs; streamed ones fail with a recorded MaxBytesError.
func TestSizeLimit(t *testing.T) {
	t.Parallel()
	in, err := plugin.NewFromYAML("request_size_limit", "{max_body_bytes: 1KiB}", plugin.StaticContext{SpecPath: "p"})
	if err != nil {
		t.Fatal(err)
	}
	var readErr error
	reached := false
	h := in.Plugin.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		_, readErr = io.ReadAll(r.Body)
	}))

	r := httptest.NewRequest("POST", "/", bytes.NewReader(make([]byte, 2048)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 413 || reached {
		t.Fatalf("announced large body: status %d, reached %v", w.Code, reached)
	}

	rec := &request.Record{RequestID: "t"}
	r = httptest.NewRequest("POST", "/", io.MultiReader(bytes.NewReader(make([]byte, 2048))))
	r.ContentLength = -1
	r = r.WithContext(request.WithRecord(r.Context(), rec))
	h.ServeHTTP(httptest.NewRecorder(), r)
	var mbe *http.MaxBytesError
	if !errors.As(readErr, &mbe) || !errors.As(rec.BodyErr(), &mbe) {
		t.Fatalf("streamed large body: read error %v, recorded %v", readErr, rec.BodyErr())
	}

	reached = false
	r = httptest.NewRequest("POST", "/", bytes.NewReader(make([]byte, 512)))
	h.ServeHTTP(httptest.NewRecorder(), r)
	if !reached || readErr != nil {
		t.Fatalf("small body: reached %v, error %v", reached, readErr)
	}
}

// TestSizeLimitConfig: a limit is required.
func TestSizeLimitConfig(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"{}", "{max_body_bytes: 0}", "{max_body_bytes: lots}"} {
		if _, err := plugin.NewFromYAML("request_size_limit", src, plugin.StaticContext{SpecPath: "p"}); err == nil {
			t.Errorf("config %s accepted", src)
		}
	}
}
