package config

import (
	"strings"
	"testing"
)

const versionHead = `upstreams:
  a: {targets: [{url: "http://127.0.0.1:1"}]}
  b: {targets: [{url: "http://127.0.0.1:2"}]}
routes:
  - name: api
    match: {path_prefix: /api}
`

// TestVersionsParse: a valid versions route decodes, strip_path defaults
// to true, version plugins get their YAML paths and the route uses each
// version's upstream.
func TestVersionsParse(t *testing.T) {
	c, err := Parse([]byte(versionHead+`    versions:
      from: [path, header:API-Version, query:v, cookie:ver, media_type:application/vnd.acme]
      default: v2
      list:
        - name: v1
          upstream: a
          plugins: [{name: headers, config: {}}]
          deprecated: {date: 2026-06-01, sunset: "2027-01-01T12:00:00+01:00", link: "https://x.test/v1", gone_after_sunset: true}
        - {name: v2, upstream: b}
`), "test", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	v := c.Routes[0].Versions
	if !v.Strip() || len(v.From) != 5 || v.Default != "v2" || len(v.List) != 2 {
		t.Fatalf("versions = %+v", v)
	}
	if got := v.List[0].Plugins[0].Path; got != "routes[0].versions.list[0].plugins[0]" {
		t.Errorf("version plugin path = %q", got)
	}
	if !c.Routes[0].UsesUpstream("a") || !c.Routes[0].UsesUpstream("b") || c.Routes[0].UsesUpstream("c") {
		t.Error("UsesUpstream does not follow the versions' upstreams")
	}
	if s, _ := ParseVersionDate(v.List[0].Deprecated.Sunset); s.Format("2006-01-02T15:04:05Z07:00") != "2027-01-01T11:00:00Z" {
		t.Errorf("sunset = %v, want 2027-01-01T11:00:00Z", s)
	}
}

// TestVersionsErrors: each mistake is reported at its path with a clear
// message.
func TestVersionsErrors(t *testing.T) {
	for _, tc := range []struct {
		desc, route string
		want        []string
	}{
		{"with upstream", "    upstream: a\n    versions: {from: [path], list: [{name: v1, upstream: a}]}\n",
			[]string{"routes[0]: route must have exactly one action: upstream, split, versions, respond or redirect"}},
		{"with split", "    split: {variants: [{upstream: a, weight: 1}]}\n    versions: {from: [path], list: [{name: v1, upstream: a}]}\n",
			[]string{"exactly one action"}},
		{"with respond", "    respond: {status: 200}\n    versions: {from: [path], list: [{name: v1, upstream: a}]}\n",
			[]string{"exactly one action"}},
		{"empty from", "    versions: {list: [{name: v1, upstream: a}]}\n",
			[]string{"routes[0].versions.from: from needs at least one source"}},
		{"unknown source", "    versions: {from: [path, host], list: [{name: v1, upstream: a}]}\n",
			[]string{`routes[0].versions.from[1]: unknown version source "host"`}},
		{"bad header name", "    versions: {from: [\"header:API Version\"], list: [{name: v1, upstream: a}]}\n",
			[]string{`routes[0].versions.from[0]: header name "API Version" is not a valid token`}},
		{"empty query name", "    versions: {from: [\"query:\"], list: [{name: v1, upstream: a}]}\n",
			[]string{`routes[0].versions.from[0]: query parameter name "" must be non-empty`}},
		{"duplicate source", "    versions: {from: [path, path], list: [{name: v1, upstream: a}]}\n",
			[]string{`routes[0].versions.from[1]: source "path" is already from[0]`}},
		{"bad media type", "    versions: {from: [\"media_type:application/vnd.acme+json\"], list: [{name: v1, upstream: a}]}\n",
			[]string{`routes[0].versions.from[0]: media type "application/vnd.acme+json" must be a type/subtype without +suffix`}},
		{"media type without subtype", "    versions: {from: [\"media_type:vnd.acme\"], list: [{name: v1, upstream: a}]}\n",
			[]string{`routes[0].versions.from[0]: media type "vnd.acme"`}},
		{"no versions", "    versions: {from: [path]}\n", []string{"routes[0].versions.list: versions need at least one version"}},
		{"unknown default", "    versions: {from: [path], default: v3, list: [{name: v1, upstream: a}, {name: v2, upstream: b}]}\n",
			[]string{`routes[0].versions.default: default "v3" is not one of the versions (v1, v2)`}},
		{"duplicate name", "    versions: {from: [path], list: [{name: v1, upstream: a}, {name: v1, upstream: b}]}\n",
			[]string{`routes[0].versions.list[1].name: version "v1" is already list[0]`}},
		{"bad name", "    versions: {from: [path], list: [{name: \"v 1/x\", upstream: a}]}\n",
			[]string{`routes[0].versions.list[0].name: version name "v 1/x" must be 1 to 64 letters, digits`}},
		{"missing upstream", "    versions: {from: [path], list: [{name: v1}]}\n",
			[]string{"routes[0].versions.list[0].upstream: version upstream is required"}},
		{"undefined upstream", "    versions: {from: [path], list: [{name: v1, upstream: nope}]}\n",
			[]string{`routes[0].versions.list[0].upstream: upstream "nope" is not defined (defined: a, b)`}},
		{"plugin without name", "    versions: {from: [path], list: [{name: v1, upstream: a, plugins: [{config: {}}]}]}\n",
			[]string{"routes[0].versions.list[0].plugins[0].name: plugin name is required"}},
		{"bad date", "    versions: {from: [path], list: [{name: v1, upstream: a, deprecated: {date: 01/06/2026}}]}\n",
			[]string{`routes[0].versions.list[0].deprecated.date: "01/06/2026" is not a date (2026-06-01) or an RFC 3339 time`}},
		{"missing date", "    versions: {from: [path], list: [{name: v1, upstream: a, deprecated: {sunset: 2027-01-01}}]}\n",
			[]string{"routes[0].versions.list[0].deprecated.date: deprecation date is required"}},
		{"bad sunset", "    versions: {from: [path], list: [{name: v1, upstream: a, deprecated: {date: 2026-06-01, sunset: soon}}]}\n",
			[]string{`routes[0].versions.list[0].deprecated.sunset: "soon" is not a date`}},
		{"sunset before date", "    versions: {from: [path], list: [{name: v1, upstream: a, deprecated: {date: 2026-06-01, sunset: 2026-01-01}}]}\n",
			[]string{"routes[0].versions.list[0].deprecated.sunset: sunset 2026-01-01 is before the deprecation date 2026-06-01"}},
		{"gone without sunset", "    versions: {from: [path], list: [{name: v1, upstream: a, deprecated: {date: 2026-06-01, gone_after_sunset: true}}]}\n",
			[]string{"routes[0].versions.list[0].deprecated.gone_after_sunset: gone_after_sunset needs a sunset date"}},
		{"bad link", "    versions: {from: [path], list: [{name: v1, upstream: a, deprecated: {date: 2026-06-01, link: \"docs/v1>\"}}]}\n",
			[]string{`routes[0].versions.list[0].deprecated.link: link "docs/v1>" must be an absolute http or https URL`}},
		{"unknown field", "    versions: {from: [path], list: [{name: v1, upstream: a, deprecated: {date: 2026-06-01, sunsett: x}}]}\n",
			[]string{`routes[0].versions.list[0].deprecated.sunsett: unknown field "sunsett"`}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse([]byte(versionHead+tc.route), "test", env(nil))
			if err == nil {
				t.Fatal("Parse succeeded, want error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err.Error(), w)
				}
			}
		})
	}
}

// TestVersionsPathSourceNeedsPrefix: the path source reads the segment
// after match.path_prefix, so an exact path or a regex is refused with it.
func TestVersionsPathSourceNeedsPrefix(t *testing.T) {
	for _, match := range []string{"{path: /api/x}", "{path_regex: ^/api}"} {
		_, err := Parse([]byte(`upstreams:
  a: {targets: [{url: "http://127.0.0.1:1"}]}
routes:
  - name: api
    match: `+match+`
    versions: {from: [path], list: [{name: v1, upstream: a}]}
`), "test", env(nil))
		if err == nil || !strings.Contains(err.Error(), "routes[0].versions.from[0]: the path source needs match.path_prefix") {
			t.Errorf("match %s: error %v", match, err)
		}
	}
}
