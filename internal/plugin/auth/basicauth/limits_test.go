package basicauth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/request"
)

// TestFailureCache: a failed slow check is remembered, so the same wrong
// password is refused without hashing again until failure_cache_ttl.
func TestFailureCache(t *testing.T) {
	t.Parallel()
	p, h := mustBuild(t, "failure_cache_ttl: 10s", testStore(t))
	clock := time.Unix(1_700_000_000, 0)
	p.now = func() time.Time { return clock }
	for range 5 {
		if w := do(h, basic("bob", "wrong")); w.Code != 401 {
			t.Fatalf("status %d, want 401", w.Code)
		}
	}
	if n := p.slowChecks.Load(); n != 1 {
		t.Fatalf("slow checks for 5 identical failures = %d, want 1", n)
	}
	// The right password is not affected by the remembered failure.
	if w := do(h, basic("bob", bcryptPass)); w.Code != 200 {
		t.Fatalf("right password: status %d", w.Code)
	}
	clock = clock.Add(11 * time.Second)
	if w := do(h, basic("bob", "wrong")); w.Code != 401 {
		t.Fatalf("status %d", w.Code)
	}
	if n := p.slowChecks.Load(); n != 3 {
		t.Fatalf("slow checks after the failure expired = %d, want 3", n)
	}
}

func TestFailureCacheDisabled(t *testing.T) {
	t.Parallel()
	p, h := mustBuild(t, "failure_cache_ttl: 0", testStore(t))
	for range 3 {
		if w := do(h, basic("bob", "wrong")); w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := p.slowChecks.Load(); n != 3 {
		t.Fatalf("slow checks = %d, want 3", n)
	}
}

// blockingChecks replaces the slow check with one that blocks until
// released, so tests control how many checks run at once.
type blockingChecks struct {
	entered chan struct{}
	release chan struct{}
}

func blockChecks(p *BasicAuth) *blockingChecks {
	b := &blockingChecks{entered: make(chan struct{}, 100), release: make(chan struct{})}
	p.checkHash = func(hash, pass string) bool {
		b.entered <- struct{}{}
		<-b.release
		return checkHash(hash, pass)
	}
	return b
}

// TestHashChecksPerUser: beyond max_hash_checks_per_user running checks
// for one username, a request is answered 429 with Retry-After, without
// hashing; another username is not affected.
func TestHashChecksPerUser(t *testing.T) {
	t.Parallel()
	p, h := mustBuild(t, "max_hash_checks_per_user: 2\nmax_hash_checks: 10", testStore(t))
	b := blockChecks(p)
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for i := range 2 {
		wg.Go(func() { codes <- do(h, basic("bob", fmt.Sprint("guess-", i))).Code })
	}
	<-b.entered
	<-b.entered
	w := do(h, basic("bob", "guess-3"))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("third concurrent check: status %d, Retry-After %q; want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if n := p.slowChecks.Load(); n != 2 {
		t.Fatalf("slow checks = %d, want 2 (the refused one must not hash)", n)
	}
	// Another user still gets a check.
	wg.Go(func() { codes <- do(h, basic("carol", argonPass)).Code })
	<-b.entered
	close(b.release)
	wg.Wait()
	close(codes)
	var got []int
	for c := range codes {
		got = append(got, c)
	}
	if len(got) != 3 {
		t.Fatalf("codes %v", got)
	}
	// Slots are given back.
	if w := do(h, basic("bob", bcryptPass)); w.Code != 200 {
		t.Fatalf("after the burst: status %d", w.Code)
	}
}

// TestHashChecksTotal: max_hash_checks bounds the checks of all users.
func TestHashChecksTotal(t *testing.T) {
	t.Parallel()
	p, h := mustBuild(t, "max_hash_checks: 1", testStore(t))
	b := blockChecks(p)
	done := make(chan int)
	go func() { done <- do(h, basic("bob", "x")).Code }()
	<-b.entered
	r := httptest.NewRequest(http.MethodGet, "http://example.com/x", nil)
	r.Header.Set("Authorization", basic("carol", "y"))
	rec := &request.Record{}
	r = r.WithContext(request.WithRecord(r.Context(), rec))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", w.Code)
	}
	if rec.AuthFailure != reasonThrottled {
		t.Fatalf("auth_failure = %q, want %q", rec.AuthFailure, reasonThrottled)
	}
	close(b.release)
	if c := <-done; c != 401 {
		t.Fatalf("first: status %d", c)
	}
}

// TestHashBurst measures the hash computations of a burst of concurrent
// requests for one known username: identical wrong passwords cost at most
// max_hash_checks_per_user hashes, and distinct ones never run more than
// that many at once.
func TestHashBurst(t *testing.T) {
	t.Parallel()
	for _, distinct := range []bool{false, true} {
		t.Run(fmt.Sprint("distinct=", distinct), func(t *testing.T) {
			t.Parallel()
			p, h := mustBuild(t, "max_hash_checks_per_user: 2", testStore(t))
			const burst = 64
			var wg sync.WaitGroup
			var mu sync.Mutex
			codes := map[int]int{}
			start := make(chan struct{})
			for i := range burst {
				pass := "wrong"
				if distinct {
					pass = fmt.Sprint("wrong-", i)
				}
				wg.Go(func() {
					<-start
					c := do(h, basic("bob", pass)).Code
					mu.Lock()
					codes[c]++
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()
			n := p.slowChecks.Load()
			t.Logf("burst of %d: %d hash computations, statuses %v, peak concurrent checks %d", burst, n, codes, p.limits.peak.Load())
			if codes[401]+codes[429] != burst {
				t.Fatalf("statuses %v, want only 401 and 429", codes)
			}
			if peak := p.limits.peak.Load(); peak > 2 {
				t.Fatalf("peak concurrent checks %d, bound 2", peak)
			}
			if !distinct && n > 2 {
				t.Fatalf("identical wrong passwords cost %d hashes, want at most 2", n)
			}
			// Afterwards a repeated wrong password costs nothing.
			before := p.slowChecks.Load()
			for range 10 {
				do(h, basic("bob", "wrong"))
			}
			if d := p.slowChecks.Load() - before; d > 1 {
				t.Fatalf("10 repeats cost %d hashes", d)
			}
		})
	}
}

// TestTwoAuthorizationHeaders: two Authorization header lines are refused
// with 400, even with anonymous, and never reach the upstream.
func TestTwoAuthorizationHeaders(t *testing.T) {
	t.Parallel()
	for _, cfg := range []string{"", "anonymous: guest"} {
		_, h := mustBuild(t, cfg, testStore(t))
		r := httptest.NewRequest(http.MethodGet, "http://example.com/x", nil)
		r.Header.Add("Authorization", basic("alice", clearPass))
		r.Header.Add("Authorization", basic("mallory", "x"))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 400 || w.Header().Get("X-Got-Consumer") != "" {
			t.Fatalf("%q: status %d, consumer %q; want 400 and no upstream", cfg, w.Code, w.Header().Get("X-Got-Consumer"))
		}
	}
}

// TestReasons: each failure records its specific reason, never a secret.
func TestReasons(t *testing.T) {
	t.Parallel()
	_, h := mustBuild(t, "", testStore(t))
	for _, tc := range []struct{ authz, want string }{
		{"", "missing"},
		{"Basic !!!", reasonMalformed},
		{basic("nobody", "x"), reasonUnknownUser},
		{basic("alice", "wrong"), reasonBadPassword},
		{basic("bob", "wrong"), reasonBadPassword},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://example.com/x", nil)
		if tc.authz != "" {
			r.Header.Set("Authorization", tc.authz)
		}
		rec := &request.Record{}
		r = r.WithContext(request.WithRecord(r.Context(), rec))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 401 || rec.AuthFailure != tc.want {
			t.Errorf("%q: status %d, reason %q; want 401 %q", tc.authz, w.Code, rec.AuthFailure, tc.want)
		}
	}
}
