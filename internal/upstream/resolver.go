package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// lookupFunc resolves a host name to its addresses.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// systemLookup resolves through net.DefaultResolver.
func systemLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// resolveRetry bounds how often a failing re-resolution is retried while
// the previous addresses stay in use.
const resolveRetry = 5 * time.Second

// resolver is the dialer of one upstream transport. Target host names are
// resolved through a cache whose entries are refreshed once older than ttl;
// a failed refresh keeps the previous addresses. New connections rotate over
// the addresses of a host and fall back to the next one when a connect
// fails. Re-resolution only affects connections dialed afterwards: pooled
// connections stay open until they idle out or the target closes them.
//
// Dials happen only when the transport has no reusable connection, so the
// cache is never consulted per request. A fresh entry is read without
// locking; only a missing or stale entry takes the entry's lock.
type resolver struct {
	upstream string
	ttl      time.Duration
	lookup   lookupFunc
	logger   *slog.Logger
	dialer   *net.Dialer
	now      func() time.Time

	hosts sync.Map // host name -> *hostEntry
}

// hostEntry caches the addresses of one host name.
type hostEntry struct {
	cur  atomic.Pointer[hostAddrs]
	next atomic.Uint64 // rotation counter
	mu   sync.Mutex    // held while resolving
}

// hostAddrs is one resolution result.
type hostAddrs struct {
	addrs []netip.Addr
	// expires is when the addresses are due for re-resolution.
	expires time.Time
}

func newResolver(upstream string, ttl time.Duration, lookup lookupFunc, logger *slog.Logger) *resolver {
	if lookup == nil {
		lookup = systemLookup
	}
	if logger == nil {
		logger = slog.Default()
	}
	if ttl <= 0 {
		ttl = defaultDNSRefresh
	}
	return &resolver{
		upstream: upstream,
		ttl:      ttl,
		lookup:   lookup,
		logger:   logger,
		dialer:   &net.Dialer{KeepAlive: dialKeepAlive},
		now:      time.Now,
	}
}

// DialContext dials addr ("host:port"). IP literals are dialed directly;
// host names go through the cache.
func (r *resolver) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return r.dialer.DialContext(ctx, network, addr)
	}
	e, err := r.addrs(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := e.cur.Load().addrs
	start := e.next.Add(1) - 1
	var errs []error
	for i := range ips {
		ip := ips[(start+uint64(i))%uint64(len(ips))]
		c, err := r.dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("dial %s: %w", addr, errors.Join(errs...))
}

// addrs returns the cache entry of host with current (or, when a refresh
// fails or is already under way, the previous) addresses.
func (r *resolver) addrs(ctx context.Context, host string) (*hostEntry, error) {
	v, ok := r.hosts.Load(host)
	if !ok {
		v, _ = r.hosts.LoadOrStore(host, &hostEntry{})
	}
	e := v.(*hostEntry)
	cur := e.cur.Load()
	if cur != nil && r.now().Before(cur.expires) {
		return e, nil
	}
	if cur != nil {
		// Stale: one dialer refreshes, the others use the previous
		// addresses instead of waiting for it.
		if !e.mu.TryLock() {
			return e, nil
		}
	} else {
		e.mu.Lock()
	}
	defer e.mu.Unlock()
	cur = e.cur.Load()
	if cur != nil && r.now().Before(cur.expires) {
		return e, nil
	}
	ips, err := r.lookup(ctx, host)
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("no addresses for %s", host)
	}
	if err != nil {
		if cur == nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		if ctx.Err() != nil {
			// The dial was abandoned; the next dial retries.
			return e, nil
		}
		r.logger.Warn("upstream DNS refresh failed; keeping previous addresses",
			"upstream", r.upstream, "host", host, "addresses", len(cur.addrs), "error", err)
		retry := min(r.ttl, resolveRetry)
		e.cur.Store(&hostAddrs{addrs: cur.addrs, expires: r.now().Add(retry)})
		return e, nil
	}
	out := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		out[i] = ip.Unmap()
	}
	e.cur.Store(&hostAddrs{addrs: out, expires: r.now().Add(r.ttl)})
	return e, nil
}
