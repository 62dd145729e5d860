package introspection

import (
	"io"
	"log/slog"
	"testing"
	"time"

	authclaims "github.com/portico-gw/portico/internal/plugin/auth/claims"
)

// FuzzParseResponse: an introspection response never panics the parser;
// an active result is only returned for a JSON object with "active": true,
// and claim headers never carry a control character.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"sub":"alice","scope":"read write","exp":4102444800,"aud":["api"],"iss":"https://idp"}`,
		`{"active":false}`, `{"active":"true"}`, `{}`, `[]`, `null`, `{"active":true} {}`, `{"active":true,"exp":1}`,
		`{"active":true,"nbf":4102444800}`, `{"active":true,"email":"a\nb","roles":["x","y"],"aud":"api"}`,
		`{"active":true,"exp":1e400}`, `{"active":true,"exp":"soon","client_id":"c","username":"u"}`,
	} {
		f.Add([]byte(s))
	}
	p := &Introspection{
		Issuer:    "https://idp",
		Audiences: []string{"api"},
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:       func() time.Time { return time.Unix(1_700_000_000, 0) },
		claimHeaders: []authclaims.Mapping{
			{Claim: "email", Header: "X-Email"}, {Claim: "roles", Header: "X-Roles"},
		},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := p.parse(body)
		if err != nil {
			if res != nil {
				t.Fatal("result with an error")
			}
			return
		}
		if !res.active {
			if res.consumer != nil || len(res.headers) != 0 {
				t.Fatalf("inactive result carries identity: %+v", res)
			}
			return
		}
		for _, h := range res.headers {
			for _, v := range h.value {
				for i := 0; i < len(v); i++ {
					if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
						t.Fatalf("header %s = %q has a control character", h.name, v)
					}
				}
			}
		}
	})
}
