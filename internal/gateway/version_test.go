package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/request"
)

// testVersionSet compiles versions v1, v2 and 2024-06-01 read from from,
// below prefix, with def as the default ("" for none).
func testVersionSet(t testing.TB, prefix, def string, from ...string) *versionSet {
	t.Helper()
	vs := &versionSet{def: -1, prefix: prefix, strip: true, clock: time.Now}
	for _, n := range []string{"v1", "v2", "2024-06-01"} {
		vs.versions = append(vs.versions, apiVersion{name: n, upstream: "up-" + n})
	}
	for _, src := range from {
		s, _, err := compileVersionSource(src, prefix, "v1, v2, 2024-06-01")
		if err != nil {
			t.Fatal(err)
		}
		vs.sources = append(vs.sources, s)
	}
	vs.def = vs.index(def)
	vs.unknown, vs.required = "unknown", "required"
	return vs
}

// TestVersionOf checks the choice on requests made directly, including the
// cases end-to-end tests do not reach easily.
func TestVersionOf(t *testing.T) {
	vs := testVersionSet(t, "/api", "", "path", "header:API-Version", "media_type:application/vnd.acme")
	for _, tc := range []struct {
		path, header, accept string
		want                 string // version, or the status
		stripped             string
	}{
		{"/api/v1/x", "", "", "v1", "/api/x"},
		{"/api/2024-06-01", "", "", "2024-06-01", "/api"},
		{"/api/V1/x", "", "", "400", ""}, // names are case-sensitive; V1 looks like a version
		{"/api/v10/x", "", "", "400", ""},
		{"/api/x/v1", "v2", "", "v2", ""},
		{"/api", "v2", "", "v2", ""},
		{"/api/", "", "", "400", ""},
		{"/api/x", "", "application/vnd.acme.v2", "v2", ""},
		{"/api/x", "", "application/vnd.acme.v9+json, application/vnd.acme.2024-06-01+json", "2024-06-01", ""},
		{"/api/x", "", "application/vnd.acme.v9+json", "406", ""},
		{"/api/x", "", "application/vnd.acmex+json", "400", ""},
		{"/api/x", "", " , ;, application/vnd.acme.", "400", ""}, // an empty version is none
	} {
		r := httptest.NewRequest("GET", "http://x"+tc.path, nil)
		if tc.header != "" {
			r.Header.Set("API-Version", tc.header)
		}
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		i, byPath, status, _ := vs.versionOf(r, nil, tc.path)
		got := map[int]string{400: "400", 406: "406"}[status]
		if status == 0 {
			got = vs.versions[i].name
		}
		if got != tc.want {
			t.Errorf("%s (API-Version %q, Accept %q) = %s, want %s", tc.path, tc.header, tc.accept, got, tc.want)
			continue
		}
		if byPath != (tc.stripped != "") {
			t.Errorf("%s: byPath = %v", tc.path, byPath)
		} else if byPath {
			if s := vs.stripVersion(tc.path, got); s != tc.stripped {
				t.Errorf("strip %s = %s, want %s", tc.path, s, tc.stripped)
			}
		}
	}
}

// FuzzVersionOf: on any path, header and Accept value the choice does not
// panic, names a version or a 400/406 status, and a version the path gave
// strips to a path that, with the segment put back, is the original.
func FuzzVersionOf(f *testing.F) {
	for _, s := range [][3]string{
		{"/api/v1/x", "", ""}, {"/api", "v2", ""}, {"/api/v9", "", ""}, {"/api//v1", "", ""},
		{"/api/x", "", "application/vnd.acme.v1+json;q=1, */*"}, {"/", "", "application/vnd.acme."},
		{"/apiv1", "", ""}, {"/api/v1", "v2", "application/vnd.acme.v2"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	var sets []*versionSet
	for _, prefix := range []string{"", "/api"} {
		for _, def := range []string{"", "v1"} {
			sets = append(sets, testVersionSet(f, prefix, def, "path", "header:API-Version", "media_type:application/vnd.acme"))
		}
	}
	f.Fuzz(func(t *testing.T, path, header, accept string) {
		r := &http.Request{Header: http.Header{"Api-Version": {header}, "Accept": {accept}}}
		for _, set := range sets {
			i, byPath, status, msg := set.versionOf(r, nil, path)
			switch {
			case status == 0 && (i < 0 || i >= len(set.versions)):
				t.Fatalf("index %d of %d versions", i, len(set.versions))
			case status != 0 && (status != 400 && status != 406 || msg == ""):
				t.Fatalf("status %d, message %q", status, msg)
			case status != 0 && set.def >= 0 && msg == set.required:
				t.Fatal("version required with a default")
			case byPath:
				// The version is a whole segment right after the
				// prefix, and stripping removes just that segment.
				name := set.versions[i].name
				rest, ok := strings.CutPrefix(path, set.prefix+"/"+name)
				want := set.prefix + rest
				if want == "" {
					want = "/"
				}
				if stripped := set.stripVersion(path, name); !ok || rest != "" && rest[0] != '/' || stripped != want {
					t.Fatalf("path %q, version %s: stripped %q, want %q", path, name, stripped, want)
				}
			}
		}
	})
}

// BenchmarkVersionSelect measures choosing the version in front of a
// route's chain, per source, on requests with a record as the gateway
// serves them.
func BenchmarkVersionSelect(b *testing.B) {
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, tc := range []struct {
		name, prefix, path string
		from               []string
		header             []string
	}{
		{"path", "", "/v2/orders/7", []string{"path"}, nil},
		{"path_below_prefix", "/orders", "/orders/v2/7", []string{"path"}, nil},
		{"header", "/orders", "/orders/7", []string{"path", "header:API-Version"}, []string{"API-Version", "v2"}},
		{"query", "/orders", "/orders/7?version=v2", []string{"query:version"}, nil},
		{"media_type", "/orders", "/orders/7", []string{"media_type:application/vnd.acme"}, []string{"Accept", "application/vnd.acme.v2+json"}},
		{"default", "/orders", "/orders/7", []string{"path", "header:API-Version"}, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			vs := testVersionSet(b, tc.prefix, "v1", tc.from...)
			h := &versionSelect{set: vs, next: next}
			r := httptest.NewRequest("GET", "http://x"+tc.path, nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				r.Header.Set(tc.header[i], tc.header[i+1])
			}
			rec := &request.Record{}
			r = r.WithContext(request.WithRecord(r.Context(), rec))
			w := httptest.NewRecorder()
			path := r.URL.Path
			b.ReportAllocs()
			for b.Loop() {
				rec.Path = path
				h.ServeHTTP(w, r)
			}
			if rec.Version == "" {
				b.Fatal("no version chosen")
			}
		})
	}
}
