package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portico-gw/portico/internal/observe"
)

// maxDocBytes bounds a JWKS or discovery document.
const maxDocBytes = 1 << 20

// Back-off of kid-triggered fetches after a failed fetch: the first retry
// may start kidRetryBase after the failure, doubling up to kidRetryMax
// (and never more than the minimum refresh interval). Only a successful
// fetch starts the full minimum interval, so keys published when a
// provider comes back are picked up within seconds.
const (
	kidRetryBase = 500 * time.Millisecond
	kidRetryMax  = 5 * time.Second
)

// remote keeps the keys of a JWKS URL (given, or found through OIDC
// discovery) fresh: a background refresher, rate-limited refreshes when a
// token names an unknown kid, one fetch at a time shared by every caller,
// and stale-if-error with a bounded age.
type remote struct {
	// issuer, when set, is discovered to find jwksURL.
	issuer  string
	jwksURL string

	client      *http.Client
	static      []*key
	algs        []string
	refresh     time.Duration
	minInterval time.Duration
	staleTTL    time.Duration
	log         *slog.Logger
	warn        *observe.DependencyWarner
	// now reads the time (time.Now unless the plugin's context has a
	// clock of its own).
	now func() time.Time

	state atomic.Pointer[remoteState]

	// flight shares the fetch in flight with every caller. fetching is
	// true from the start of a fetch until its bookkeeping is done, when
	// the fetch leaves flight (Forget), both under mu.
	flight   singleflight.Group
	mu       sync.Mutex
	fetching bool
	// kidNext is when an unknown kid may next start a fetch: minInterval
	// after a successful fetch, a short back-off after a failed one.
	kidNext time.Time
	// failures counts consecutive failed fetches.
	failures int
	closed   bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// remoteState is the last successfully fetched key set, merged with the
// static keys.
type remoteState struct {
	set     *keySet
	fetched time.Time
}

func newRemote(issuer, jwksURL string, client *http.Client, static []*key, algs []string, refresh, minInterval, staleTTL time.Duration, log *slog.Logger) *remote {
	r := &remote{
		issuer: strings.TrimSuffix(issuer, "/"), jwksURL: jwksURL,
		client: client, static: static, algs: algs,
		refresh: refresh, minInterval: minInterval, staleTTL: staleTTL, log: log,
		warn: observe.NewDependencyWarner(log, 0), now: time.Now,
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// start fetches once, synchronously (a failure is logged, not returned:
// the refresher keeps trying), then starts the background refresher.
func (r *remote) start() {
	if c := r.do(false); c != nil {
		<-c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.wg.Add(1)
	go r.loop()
}

// stop ends the refresher and waits for every fetch to return.
func (r *remote) stop() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	r.client.CloseIdleConnections()
}

// current returns the keys to verify with: the last fetched keys merged
// with the static ones while they are younger than staleTTL, else the
// static keys alone (fail closed for remote keys).
func (r *remote) current(static *keySet) *keySet {
	st := r.state.Load()
	if st == nil || r.now().Sub(st.fetched) > r.staleTTL {
		return static
	}
	return st.set
}

// refreshForKid refetches because a token named an unknown kid, at most
// once per minInterval after a successful fetch and after a short back-off
// after a failed one; concurrent callers share one fetch. It waits for the
// fetch (or ctx) and reports whether a fetch happened.
func (r *remote) refreshForKid(ctx context.Context) bool {
	c := r.do(true)
	if c == nil {
		return false
	}
	select {
	case <-c:
	case <-ctx.Done():
	}
	return true
}

// do joins the fetch in flight or starts one. A kid-triggered fetch is
// refused (nil) before kidNext: within minInterval of the last successful
// kid-triggered fetch, or within the back-off after a failed fetch.
func (r *remote) do(forKid bool) <-chan singleflight.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fetching {
		// Joins the fetch in flight: it cannot have left flight, since
		// that happens under mu together with fetching = false.
		return r.flight.DoChan("", nil)
	}
	if r.closed {
		return nil
	}
	now := r.now()
	if forKid && now.Before(r.kidNext) {
		return nil
	}
	r.fetching = true
	r.wg.Add(1)
	return r.flight.DoChan("", func() (any, error) {
		defer r.wg.Done()
		err := r.load(r.ctx)
		// Read while no other load can run (this one is still in flight).
		url := r.jwksURL
		if url == "" {
			url = r.issuer
		}
		r.mu.Lock()
		r.fetching = false
		r.flight.Forget("")
		if err != nil {
			r.failures++
			backoff := min(kidRetryBase<<min(r.failures-1, 10), kidRetryMax, r.minInterval)
			r.kidNext = r.now().Add(backoff)
		}
		recovered := err == nil && r.failures > 0
		if err == nil {
			r.failures = 0
			if forKid {
				r.kidNext = now.Add(r.minInterval)
			}
		}
		closed := r.closed
		r.mu.Unlock()
		if err != nil && !closed {
			r.warnFailure(url, err)
		}
		if recovered {
			r.log.Info("jwt: JWKS fetch succeeded again; remote keys are current", "url", url)
		}
		return nil, err
	})
}

// warnFailure logs a failed fetch at WARN, rate-limited, saying what it
// means for tokens.
func (r *remote) warnFailure(url string, err error) {
	msg := "jwt: JWKS fetch failed; keeping the cached keys"
	st := r.state.Load()
	switch {
	case st == nil:
		msg = "jwt: JWKS fetch failed; tokens signed by remote keys are refused until a fetch succeeds"
	case r.now().Sub(st.fetched) > r.staleTTL:
		msg = "jwt: JWKS fetch failed and the cached keys are past jwks_stale_ttl; remote keys are refused"
	}
	r.warn.Warn("jwks", msg, err, slog.String("url", url))
}

// loop refreshes every refresh interval (±10% jitter); after a failure it
// retries sooner, backing off from one second up to the refresh interval.
func (r *remote) loop() {
	defer r.wg.Done()
	failures := 0
	for {
		var d time.Duration
		if failures > 0 || r.state.Load() == nil {
			d = time.Second << min(failures, 10)
			d = min(d, r.refresh)
		} else {
			j := int64(r.refresh / 10)
			d = r.refresh
			if j > 0 {
				d += time.Duration(rand.Int64N(2*j+1) - j)
			}
		}
		t := time.NewTimer(d)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c := r.do(false)
		if c == nil {
			return
		}
		var res singleflight.Result
		select {
		case <-r.ctx.Done():
			return
		case res = <-c:
		}
		if res.Err != nil {
			failures++
		} else {
			failures = 0
		}
	}
}

// load fetches the key set (after discovery when needed) and installs it.
// Only one load runs at a time (see do).
func (r *remote) load(ctx context.Context) error {
	if r.jwksURL == "" {
		u, err := r.discover(ctx)
		if err != nil {
			return err
		}
		r.jwksURL = u
	}
	body, err := r.get(ctx, r.jwksURL)
	if err != nil {
		return err
	}
	keys, skipped, err := parseJWKS(body, "jwks_url", false)
	if err != nil {
		return err
	}
	for _, s := range skipped {
		r.log.Debug("jwt: JWKS key skipped", "reason", s)
	}
	all := make([]*key, 0, len(r.static)+len(keys))
	all = append(append(all, r.static...), keys...)
	r.state.Store(&remoteState{set: newKeySet(all, r.algs), fetched: r.now()})
	r.log.Debug("jwt: JWKS loaded", "url", r.jwksURL, "keys", len(keys))
	return nil
}

// discover reads {issuer}/.well-known/openid-configuration for jwks_uri.
func (r *remote) discover(ctx context.Context) (string, error) {
	body, err := r.get(ctx, r.issuer+"/.well-known/openid-configuration")
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("OIDC discovery: %v", err)
	}
	if strings.TrimSuffix(doc.Issuer, "/") != r.issuer {
		return "", fmt.Errorf("OIDC discovery: document names issuer %q, expected %q", doc.Issuer, r.issuer)
	}
	if !strings.HasPrefix(doc.JWKSURI, "https://") && !strings.HasPrefix(doc.JWKSURI, "http://") {
		return "", errors.New("OIDC discovery: jwks_uri is missing or not an http(s) URL")
	}
	return doc.JWKSURI, nil
}

// get fetches url and returns a body of at most maxDocBytes.
func (r *remote) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", url, err)
	}
	if len(b) > maxDocBytes {
		return nil, fmt.Errorf("GET %s: document larger than %d bytes", url, maxDocBytes)
	}
	return b, nil
}
