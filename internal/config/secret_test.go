package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestRedactUserinfo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://user:pw@host/x":            "https://REDACTED@host/x",
		"http://tok@host":                   "http://REDACTED@host",
		"redis://:pw@10.0.0.1:6379/0":       "redis://REDACTED@10.0.0.1:6379/0",
		"https://a:b@c@host:1?q=x@y#f@g":    "https://REDACTED@host:1?q=x@y#f@g",
		"https://host/path@x":               "https://host/path@x",
		"https://host?u=a@b":                "https://host?u=a@b",
		"plain user@example.org":            "plain user@example.org",
		"":                                  "",
		"x://":                              "x://",
		"HTTP://U:P@H":                      "HTTP://REDACTED@H",
		"text https://u:p%zz@h/ bad escape": "text https://REDACTED@h/ bad escape",
	} {
		if got := RedactUserinfo(in); got != want {
			t.Errorf("RedactUserinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRedactUserinfo: the result never keeps what sat between "://" and
// the last "@" of the authority, and never panics.
func FuzzRedactUserinfo(f *testing.F) {
	for _, s := range []string{"https://u:p@h/x", "http://@", "://@", "a://b@c@d/e@f", "https://h/p", "://", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := RedactUserinfo(s)
		i := strings.Index(s, "://")
		if i < 0 {
			if out != s {
				t.Fatalf("changed %q to %q", s, out)
			}
			return
		}
		auth := s[i+3:]
		if j := strings.IndexAny(auth, "/?#"); j >= 0 {
			auth = auth[:j]
		}
		at := strings.LastIndexByte(auth, '@')
		if at < 0 {
			if out != s {
				t.Fatalf("changed %q to %q", s, out)
			}
			return
		}
		if want := s[:i+3] + Redacted + s[i+3+at:]; out != want {
			t.Fatalf("RedactUserinfo(%q) = %q, want %q", s, out, want)
		}
	})
}

func TestCheckServiceURL(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"https://idp.example/x", "http://127.0.0.1:9000/auth?x=1"} {
		if _, err := CheckServiceURL("url", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for raw, want := range map[string]string{
		"":                          "url is required",
		"auth:9000":                 "not an http or https URL",
		"ftp://x/":                  "not an http or https URL",
		"https://":                  "not an http or https URL",
		"https://u:pw-s3cr3t@h/":    "not in the URL",
		"https://tok-s3cr3t@h":      "not in the URL",
		"https://u:pw-s3cr3t@h:bad": "not in the URL",
		"https://:pw-s3cr3t@h":      "not in the URL",
	} {
		_, err := CheckServiceURL("url", raw)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "url") {
			t.Errorf("%q: error %v, want %q", raw, err, want)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%q: error repeats the credentials: %v", raw, err)
		}
	}
}

type redactInner struct {
	Key   string            `yaml:"key" secret:"true"`
	Plain string            `yaml:"plain"`
	Hdrs  map[string]string `yaml:"hdrs" secret:"sensitive"`
}

type redactEmbedded struct {
	Pass string `yaml:"pass" secret:"true"`
}

type redactSample struct {
	redactEmbedded `yaml:",inline"`
	Token          string                  `yaml:"token" secret:"true"`
	Untagged       string                  // yaml name "untagged"
	List           []redactInner           `yaml:"list"`
	ByName         map[string]*redactInner `yaml:"by_name"`
	Values         map[string]string       `yaml:"values" secret:"values"`
	Many           []string                `yaml:"many" secret:"true"`
	Plugins        []PluginSpec            `yaml:"plugins"`
	URL            string                  `yaml:"url"`
	Skip           string                  `yaml:"-"`
}

type redactPlugin struct {
	Secret string `yaml:"client_secret" secret:"true"`
	Other  string `yaml:"other"`
}

func TestRedact(t *testing.T) {
	t.Parallel()
	doc := map[string]any{
		"pass": "p-s3cr3t", "token": "t-s3cr3t", "untagged": "visible-1", "url": "https://u:url-s3cr3t@h/x",
		"list":    []any{map[string]any{"key": "k-s3cr3t", "plain": "visible-2", "hdrs": map[string]any{"X-Api-Key": "h-s3cr3t", "X-Env": "visible-3"}}},
		"by_name": map[string]any{"a": map[string]any{"key": "k2-s3cr3t", "plain": "visible-4"}},
		"values":  map[string]any{"Authorization": "v-s3cr3t", "X-Anything": "v2-s3cr3t"},
		"many":    []any{"m1-s3cr3t", "m2-s3cr3t"},
		"plugins": []any{
			map[string]any{"name": "known", "config": map[string]any{"client_secret": "c-s3cr3t", "other": "visible-5"}},
			map[string]any{"name": "unknown", "config": map[string]any{"nested": map[string]any{"Password": "u-s3cr3t", "x": "visible-6"}}},
		},
		"empty_secret_kept": "",
	}
	types := func(name string) (reflect.Type, bool) {
		if name == "known" {
			return reflect.TypeOf(&redactPlugin{}), true
		}
		return nil, false
	}
	out := Redact(reflect.TypeOf(&redactSample{}), doc, types)
	b, _ := json.Marshal(out)
	s := string(b)
	if strings.Contains(s, "s3cr3t") {
		t.Errorf("secret left: %s", s)
	}
	for i := 1; i <= 6; i++ {
		if v := "visible-" + string(rune('0'+i)); !strings.Contains(s, v) {
			t.Errorf("lost %s: %s", v, s)
		}
	}
	for _, k := range []string{`"X-Api-Key":"REDACTED"`, `"Authorization":"REDACTED"`, `"url":"https://REDACTED@h/x"`, `"many":["REDACTED","REDACTED"]`} {
		if !strings.Contains(s, k) {
			t.Errorf("want %s in %s", k, s)
		}
	}
}

func TestSensitiveName(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token", "client_secret", "PASSWORD", "X-Session-Id", "api_key"} {
		if !SensitiveName(n) {
			t.Errorf("%s not sensitive", n)
		}
	}
	for _, n := range []string{"X-Env", "Accept", "Content-Type", "X-Frame-Options", "user"} {
		if SensitiveName(n) {
			t.Errorf("%s sensitive", n)
		}
	}
}
