package requestid

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
)

type seen struct {
	recID  string
	header http.Header
}

// coreID is the request ID of the gateway record in TestRequestID.
const coreID = "core-id"

// requestIDCase is one request of TestRequestID and the ID it must carry.
type requestIDCase struct {
	desc   string
	config string
	// record: whether the request carries a gateway record whose ID is
	// coreID; the core mirrored it into X-Request-Id when set.
	record bool
	reqHdr map[string]string
	// wantID: the exact ID expected; "new" means a freshly generated one.
	wantID string
	// wantHeader: the header the ID is expected under, upstream and echoed.
	wantHeader string
	noEcho     bool
	// wantXRequestID: expected X-Request-Id on the upstream request when
	// it differs from wantHeader ("" means not checked).
	wantXRequestID string
}

func TestRequestID(t *testing.T) {
	// Table test: its length is the table of cases.
	t.Parallel()
	tests := []requestIDCase{
		{
			desc:       "defaults keep the core ID and echo it",
			config:     "",
			record:     true,
			reqHdr:     map[string]string{"X-Request-Id": coreID},
			wantID:     coreID,
			wantHeader: "X-Request-Id",
		},
		{
			desc:       "defaults without a record take a valid incoming ID",
			config:     "echo: true",
			reqHdr:     map[string]string{"X-Request-Id": "client-1"},
			wantID:     "client-1",
			wantHeader: "X-Request-Id",
		},
		{
			desc:       "defaults without a record replace an invalid incoming ID",
			config:     "",
			reqHdr:     map[string]string{"X-Request-Id": "bad id"},
			wantID:     "new",
			wantHeader: "X-Request-Id",
		},
		{
			desc:       "trust_incoming false overwrites the core ID",
			config:     "trust_incoming: false",
			record:     true,
			reqHdr:     map[string]string{"X-Request-Id": coreID},
			wantID:     "new",
			wantHeader: "X-Request-Id",
		},
		{
			desc:       "echo false",
			config:     "echo: false",
			record:     true,
			reqHdr:     map[string]string{"X-Request-Id": coreID},
			wantID:     coreID,
			wantHeader: "X-Request-Id",
			noEcho:     true,
		},
		{
			desc:           "custom header read from the client",
			config:         "header: x-correlation-id",
			record:         true,
			reqHdr:         map[string]string{"X-Request-Id": coreID, "X-Correlation-Id": "corr-7"},
			wantID:         "corr-7",
			wantHeader:     "X-Correlation-Id",
			wantXRequestID: "corr-7",
		},
		{
			desc:       "custom header missing generates",
			config:     "header: X-Correlation-Id",
			record:     true,
			reqHdr:     map[string]string{"X-Request-Id": coreID},
			wantID:     "new",
			wantHeader: "X-Correlation-Id",
		},
		{
			desc:       "custom header invalid generates",
			config:     "header: X-Correlation-Id",
			record:     true,
			reqHdr:     map[string]string{"X-Correlation-Id": strings.Repeat("a", request.MaxIDLen+1)},
			wantID:     "new",
			wantHeader: "X-Correlation-Id",
		},
		{
			desc:       "custom header without a record",
			config:     "header: X-Correlation-Id",
			reqHdr:     map[string]string{"X-Correlation-Id": "corr-8"},
			wantID:     "corr-8",
			wantHeader: "X-Correlation-Id",
		},
		{
			desc:       "custom header, trust_incoming false",
			config:     "{header: X-Correlation-Id, trust_incoming: false}",
			record:     true,
			reqHdr:     map[string]string{"X-Correlation-Id": "corr-9"},
			wantID:     "new",
			wantHeader: "X-Correlation-Id",
		},
	}
	plugintest.RunCases(t, tests, func(tc requestIDCase) string { return tc.desc }, checkRequestID)
}

// checkRequestID sends tc's request through the plugin built from
// tc.config and checks the ID the upstream saw and the one echoed.
func checkRequestID(t *testing.T, tc requestIDCase) {
	in := plugintest.MustBuild[plugin.Plugin](t, "request_id", tc.config)
	var got seen
	h := in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := request.RecordOf(r); rec != nil {
			got.recID = rec.RequestID
		}
		got.header = r.Header.Clone()
		w.Header().Set(tc.wantHeader, "from-upstream")
		w.WriteHeader(http.StatusOK)
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for k, v := range tc.reqHdr {
		r.Header.Set(k, v)
	}
	var rec *request.Record
	if tc.record {
		rec = &request.Record{RequestID: coreID}
		r = r.WithContext(request.WithRecord(r.Context(), rec))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	id := got.header.Get(tc.wantHeader)
	switch tc.wantID {
	case "new":
		if len(id) != 32 || id == coreID || id == tc.reqHdr[tc.wantHeader] {
			t.Errorf("upstream %s = %q, want a fresh ID", tc.wantHeader, id)
		}
	default:
		if id != tc.wantID {
			t.Errorf("upstream %s = %q, want %q", tc.wantHeader, id, tc.wantID)
		}
	}
	if vals := got.header.Values(tc.wantHeader); len(vals) != 1 {
		t.Errorf("upstream %s has %d values, want 1", tc.wantHeader, len(vals))
	}
	if tc.record && got.recID != id {
		t.Errorf("record ID = %q, want %q", got.recID, id)
	}
	if tc.wantXRequestID != "" {
		if x := got.header.Get("X-Request-Id"); x != tc.wantXRequestID {
			t.Errorf("upstream X-Request-Id = %q, want %q", x, tc.wantXRequestID)
		}
	}
	echo := w.Result().Header.Values(tc.wantHeader)
	switch {
	case tc.noEcho:
		if len(echo) != 1 || echo[0] != "from-upstream" {
			t.Errorf("echo disabled: response %s = %q, want the upstream's value", tc.wantHeader, echo)
		}
	case len(echo) != 1 || echo[0] != id:
		t.Errorf("response %s = %q, want [%q]", tc.wantHeader, echo, id)
	}
}

func TestEchoWithoutWrite(t *testing.T) {
	t.Parallel()
	in := plugintest.MustBuild[plugin.Plugin](t, "request_id", "")
	w := httptest.NewRecorder()
	in.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if got := w.Result().Header.Get("X-Request-Id"); len(got) != 32 {
		t.Errorf("X-Request-Id = %q, want a generated ID", got)
	}
}

func TestStreaming(t *testing.T) {
	t.Parallel()
	in := plugintest.MustBuild[plugin.Plugin](t, "request_id", "header: X-Trace-Id")
	h := plugintest.Streaming(t, in.Wrap, func(r *http.Request) { r.Header.Set("X-Trace-Id", "trace-42") })
	if got := h.Get("X-Trace-Id"); got != "trace-42" {
		t.Errorf("X-Trace-Id = %q, want trace-42", got)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	plugintest.ExpectErrors(t, "request_id", []plugintest.ConfigError{
		{Desc: "unknown field", Config: "headers: X-A", Want: []string{"routes[0].plugins[0].config.headers", "unknown field"}},
		{Desc: "invalid header name", Config: "header: 'X Id'", Want: []string{"config: header:", `"X Id" is not a valid header name`}},
		{Desc: "reserved header", Config: "header: host", Want: []string{"header:", "Host cannot carry"}},
		{Desc: "non-bool trust_incoming", Config: "trust_incoming: maybe", Want: []string{"config.trust_incoming", "true or false"}},
		{Desc: "non-bool echo", Config: "echo: 1", Want: []string{"config.echo", "true or false"}},
	})
}

func BenchmarkRequestID(b *testing.B) {
	for _, bc := range []struct{ desc, config string }{
		{"default", ""},
		{"custom header", "header: X-Correlation-Id"},
		{"no echo", "echo: false"},
	} {
		b.Run(bc.desc, func(b *testing.B) {
			in := plugintest.MustBuild[plugin.Plugin](b, "request_id", bc.config)
			h := in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusOK)
			}))
			const id = "0123456789abcdef0123456789abcdef"
			rec := &request.Record{}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r = r.WithContext(request.WithRecord(r.Context(), rec))
			corr := []string{"corr-1"}
			core := []string{id}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rec.RequestID = id
				r.Header["X-Request-Id"] = core
				r.Header["X-Correlation-Id"] = corr
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
