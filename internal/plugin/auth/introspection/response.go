package introspection

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/request"
)

// result is the outcome of introspecting one token, precomputed so that a
// cache hit costs a map lookup.
type result struct {
	active bool
	// reason is why an inactive result is refused when the endpoint said
	// active (issuer or audience mismatch); empty otherwise.
	reason     string
	scopeOK    bool
	consumer   *consumer.Consumer
	credential string
	headers    []headerValue
	// claims is the active response, shared read-only by every request
	// the result is cached for.
	claims  map[string]any
	expires time.Time
}

type headerValue struct {
	name  string
	value []string
}

// lookup returns the cached result for token or introspects it, sharing
// one call among concurrent requests for the same token.
func (p *Introspection) lookup(ctx context.Context, token string) (*result, error) {
	key := sha256.Sum256([]byte(token))
	if res, ok := p.cache.Get(key, p.now()); ok {
		return res, nil
	}
	// The call is shared by the concurrent lookups of this token and
	// detached from the first request's cancellation: the others must not
	// fail because that one went away. Each caller stops waiting when its
	// own request ends.
	ch := p.flight.DoChan(string(key[:]), func() (v any, err error) {
		// A panic would otherwise end the process (DoChan re-raises it
		// where it cannot be recovered); it fails this lookup instead.
		defer func() {
			if r := recover(); r != nil {
				v, err = nil, fmt.Errorf("introspection failed: %v", r)
			}
		}()
		// A call that finished between the cache miss and this one has
		// already stored its result.
		if res, ok := p.cache.Get(key, p.now()); ok {
			return res, nil
		}
		res, err := p.introspect(context.WithoutCancel(ctx), token)
		if err == nil {
			p.store(key, res)
		}
		return res, err
	})
	select {
	case r := <-ch:
		res, _ := r.Val.(*result)
		return res, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// store caches res for as long as its kind allows.
func (p *Introspection) store(key [32]byte, res *result) {
	ttl := p.negTTL
	if res.active {
		ttl = p.posTTL
	}
	if ttl <= 0 {
		return
	}
	now := p.now()
	exp := now.Add(ttl)
	if res.active && !res.expires.IsZero() && res.expires.Before(exp) {
		exp = res.expires
	}
	p.cache.Add(key, res, exp, now)
}

// introspect calls the endpoint for token.
func (p *Introspection) introspect(ctx context.Context, token string) (*result, error) {
	form := url.Values{"token": {token}}
	if p.TokenTypeHint != "" {
		form.Set("token_type_hint", p.TokenTypeHint)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.basicAuth != "" {
		req.Header.Set("Authorization", p.basicAuth)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		// The error text of a failed request names the URL but not the body,
		// so the token does not reach the log.
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		return nil, fmt.Errorf("endpoint answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if len(body) > maxResponseBytes {
		return nil, errors.New("response is too large")
	}
	return p.parse(body)
}

// parse turns an introspection response into a result.
func (p *Introspection) parse(body []byte) (*result, error) {
	claims, active, err := decodeResponse(body)
	if err != nil {
		return nil, err
	}
	res := &result{}
	if !active || !p.valid(claims, res) {
		return res, nil
	}
	res.active = true
	clientID, _ := claims["client_id"].(string)
	res.credential = clientID
	res.consumer = p.consumerOf(claims)
	scope, _ := claims["scope"].(string)
	res.scopeOK = hasScopes(scope, p.RequiredScopes)
	res.headers = p.claimHeaderValues(claims)
	res.claims = claims
	return res, nil
}

// decodeResponse decodes an introspection response: one JSON object with
// a boolean "active" member.
func decodeResponse(body []byte) (claims map[string]any, active bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, false, errors.New("response is not a JSON object")
	}
	if dec.More() {
		return nil, false, errors.New("response has data after the JSON object")
	}
	a, ok := claims["active"]
	if !ok {
		return nil, false, errors.New(`response has no "active" member`)
	}
	active, ok = a.(bool)
	if !ok {
		return nil, false, errors.New(`response member "active" is not a boolean`)
	}
	return claims, active, nil
}

// valid checks an active token's exp, nbf, iss and aud, setting res's
// expiry and, for a refused issuer or audience, its reason.
func (p *Introspection) valid(claims map[string]any, res *result) bool {
	now := p.now()
	if exp, ok := numericDate(claims["exp"]); ok {
		if !now.Before(exp) {
			return false
		}
		res.expires = exp
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && now.Before(nbf) {
		return false
	}
	if p.Issuer != "" {
		if iss, _ := claims["iss"].(string); iss != p.Issuer {
			res.reason = reasonIssuer
			return false
		}
	}
	if len(p.Audiences) > 0 && !hasAudience(claims["aud"], p.Audiences) {
		res.reason = reasonAudience
		return false
	}
	return true
}

// consumerOf is the consumer named by consumer_claim, or one synthesised
// from sub, client_id or username; nil when there is none.
func (p *Introspection) consumerOf(claims map[string]any) *consumer.Consumer {
	sub, _ := claims["sub"].(string)
	clientID, _ := claims["client_id"].(string)
	username, _ := claims["username"].(string)
	if p.ConsumerClaim != "" {
		if name, ok := claims[p.ConsumerClaim].(string); ok && name != "" {
			if c, ok := p.consumers.ByName(name); ok {
				return c
			}
		}
		return nil
	}
	id := sub
	if id == "" {
		id = clientID
	}
	if id == "" {
		id = username
	}
	if id == "" {
		return nil
	}
	name := username
	if name == "" {
		name = id
	}
	return &consumer.Consumer{ID: id, Name: name}
}

// claimHeaderValues renders the claims_to_headers values by the shared
// claim rule; a claim that cannot be rendered is logged and left out.
func (p *Introspection) claimHeaderValues(claims map[string]any) []headerValue {
	var out []headerValue
	for _, ch := range p.claimHeaders {
		v, err := request.RenderClaim(claims[ch.Claim])
		if err != nil {
			p.log.Warn("oauth2_introspection: claim not sent as a header", "claim", ch.Claim, "header", ch.Header, "error", err)
			continue
		}
		if v != "" {
			out = append(out, headerValue{name: ch.Header, value: []string{v}[:1:1]})
		}
	}
	return out
}

// hasAudience reports whether aud, a string or a list of strings, holds
// one of want.
func hasAudience(aud any, want []string) bool {
	switch a := aud.(type) {
	case string:
		return slices.Contains(want, a)
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok && slices.Contains(want, s) {
				return true
			}
		}
	}
	return false
}

// numericDate reads a JSON NumericDate (seconds since the epoch).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	if i, err := n.Int64(); err == nil {
		return time.Unix(i, 0), true
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, 0).Add(time.Duration(f * float64(time.Second))), true
}

// hasScopes reports whether the space-separated scope holds every required
// scope.
func hasScopes(scope string, required []string) bool {
	if len(required) == 0 {
		return true
	}
	have := strings.Fields(scope)
	for _, r := range required {
		if !slices.Contains(have, r) {
			return false
		}
	}
	return true
}
