package request

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestRenderClaim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		want      string
		err       error
	}{
		{"missing", ``, "", nil},
		{"null", `null`, "", nil},
		{"empty string", `""`, "", nil},
		{"empty array", `[]`, "", nil},
		{"only empty strings", `["",""]`, "", nil},
		{"string", `"alice@example.test"`, "alice@example.test", nil},
		{"string with tab", `"a\tb"`, "a\tb", nil},
		{"string with comma", `"Doe, Jane"`, "Doe, Jane", nil},
		{"unicode", `"Zoë"`, "Zoë", nil},
		{"integer", `1700000000`, "1700000000", nil},
		{"big integer", `123456789012345678901234567890`, "123456789012345678901234567890", nil},
		{"negative", `-42`, "-42", nil},
		{"fraction", `1.5`, "1.5", nil},
		{"exponent integer", `1e3`, "1000", nil},
		{"exponent float", `1.7e+09`, "1700000000", nil},
		{"integral float", `2.0`, "2", nil},
		{"small", `1e-7`, "0.0000001", nil},
		{"true", `true`, "true", nil},
		{"false", `false`, "false", nil},
		{"groups", `["dev","admins"]`, "dev, admins", nil},
		{"mixed scalars", `["a",2,true]`, "a, 2, true", nil},
		{"empty element skipped", `["a","","b"]`, "a, b", nil},
		{"comma element", `["Doe, Jane","x"]`, `["Doe, Jane","x"]`, nil},
		{"quote element", `["say \"hi\"","x"]`, `["say \"hi\"","x"]`, nil},
		{"nested array", `[["x"]]`, `[["x"]]`, nil},
		{"array with object", `["a",{"k":"v"}]`, `["a",{"k":"v"}]`, nil},
		{"array with null", `["a",null]`, `["a",null]`, nil},
		{"object", `{"k": "v", "n": [1, 2]}`, `{"k":"v","n":[1,2]}`, nil},
		{"object no html escape", `{"h":"<a&b>"}`, `{"h":"<a&b>"}`, nil},
		{"empty object", `{}`, `{}`, nil},
		{"object escapes newline", `{"k":"a\nb"}`, `{"k":"a\nb"}`, nil},
		{"CRLF injection", `"x\r\nX-Admin: true"`, "", ErrClaimControl},
		{"LF", `"a\nb"`, "", ErrClaimControl},
		{"NUL", `"a\u0000b"`, "", ErrClaimControl},
		{"DEL", "\"a\u007fb\"", "", ErrClaimControl},
		{"ESC", `"a\u001bb"`, "", ErrClaimControl},
		{"CTL in list", `["a","b\r\nc"]`, "", ErrClaimControl},
		{"DEL in object", "{\"k\":\"a\u007f\"}", "", ErrClaimControl},
	}
	for _, tc := range tests {
		got, err := RenderClaimJSON(json.RawMessage(tc.raw))
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: RenderClaimJSON(%s) = %q, %v; want %q, %v", tc.name, tc.raw, got, err, tc.want, tc.err)
		}
	}
}

// TestRenderGoValues covers values decoded without UseNumber (float64) and
// built in Go.
func TestRenderGoValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    any
		want string
	}{
		{float64(1e21), "1000000000000000000000"},
		{float64(1700000000), "1700000000"},
		{float64(0.25), "0.25"},
		{int64(7), "7"},
		{[]any{"dev", float64(3)}, "dev, 3"},
		{map[string]any{"a": float64(1)}, `{"a":1}`},
	} {
		if got, err := RenderClaim(tc.v); got != tc.want || err != nil {
			t.Errorf("RenderClaim(%#v) = %q, %v; want %q", tc.v, got, err, tc.want)
		}
	}
	if _, err := RenderClaim(make(chan int)); !errors.Is(err, ErrClaimUnsupported) {
		t.Errorf("chan: err %v", err)
	}
}

func FuzzRenderJSON(f *testing.F) {
	for _, s := range []string{
		`"a"`, `1`, `1e3`, `-1.5e-300`, `true`, `null`, `""`, `[]`, `["dev","admins"]`, `["a,b"]`,
		`[["x"]]`, `{"k":"v"}`, `"a\r\nb"`, `"\u0000"`, "\"\x7f\"", `{"k":"\u007f"}`, `[1,"x",false]`,
		`123456789012345678901234567890`, `1e400`, `[`, `"\ud800"`, "\"\xff\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := RenderClaimJSON(json.RawMessage(raw))
		if err != nil && got != "" {
			t.Fatalf("error %v with value %q", err, got)
		}
		if hasCTL(got) {
			t.Fatalf("RenderClaimJSON(%q) = %q holds a control character", raw, got)
		}
	})
}
