package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// script evaluates every limit of one decision atomically on the Redis
// server, using the server's clock (TIME) so gateway clocks do not matter.
// Times are integer microseconds (exact in Lua's doubles for centuries).
//
// KEYS: one state key per limit.
// ARGV: n (tokens wanted), partial ("1": grant as many as available up to n,
// for leases; "0": all n or nothing), ret (unused lease tokens given back
// first), then for each limit: algorithm (1 GCRA, 2 sliding window), per,
// rate, burst, emission interval, and the window index the returned tokens
// were taken in (sliding window only).
//
// Returns: {granted, then per limit: remaining, reset, retry, window}.
var script = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local partial = ARGV[2] == '1'
local ret = tonumber(ARGV[3])
local ls = {}
for i = 1, #KEYS do
  local o = 3 + (i - 1) * 6
  local s = {alg = tonumber(ARGV[o + 1]), per = tonumber(ARGV[o + 2]), rate = tonumber(ARGV[o + 3]),
    burst = tonumber(ARGV[o + 4]), t = tonumber(ARGV[o + 5]), rwin = tonumber(ARGV[o + 6])}
  if s.alg == 1 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if ret > 0 then tat = tat - ret * s.t end
    if tat < now then tat = now end
    s.tat = tat
    s.avail = math.floor((now + s.burst * s.t - tat) / s.t)
  else
    local win = math.floor(now / s.per)
    local h = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
    local w = tonumber(h[1]) or win
    local cur = tonumber(h[2]) or 0
    local prev = tonumber(h[3]) or 0
    if w == win - 1 then prev = cur; cur = 0 elseif w ~= win then prev = 0; cur = 0 end
    if ret > 0 then
      if s.rwin == win then cur = math.max(cur - ret, 0) elseif s.rwin == win - 1 then prev = math.max(prev - ret, 0) end
    end
    s.win = win; s.cur = cur; s.prev = prev; s.elapsed = now - win * s.per
    local a = math.floor(s.rate - (prev * (s.per - s.elapsed) / s.per + cur) + 1e-9)
    if a > s.rate - cur then a = s.rate - cur end
    s.avail = a
  end
  if s.avail < 0 then s.avail = 0 end
  ls[i] = s
end
local grant = n
for i = 1, #KEYS do
  if partial then
    if ls[i].avail < grant then grant = ls[i].avail end
  elseif ls[i].avail < n then
    grant = 0
  end
end
local out = {grant}
for i = 1, #KEYS do
  local s = ls[i]
  local need = n
  if partial then need = 1 end
  local retry = 0
  if grant == 0 and s.avail < need then
    if s.alg == 1 then
      retry = s.tat + need * s.t - s.burst * s.t - now
    elseif need > s.rate then
      retry = s.per
    elseif s.cur + need <= s.rate and s.prev > 0 then
      retry = math.max(math.ceil(s.per - (s.rate - s.cur - need) * s.per / s.prev) - s.elapsed, 1)
    else
      retry = s.per - s.elapsed
      if s.cur > 0 then
        local e = s.per - (s.rate - need) * s.per / s.cur
        if e > 0 then retry = retry + math.ceil(e) end
      end
      if retry < 1 then retry = 1 end
    end
  end
  local reset
  if s.alg == 1 then
    local tat = s.tat + grant * s.t
    if grant > 0 or ret > 0 then
      if tat > now then
        redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
      else
        redis.call('DEL', KEYS[i])
      end
    end
    reset = tat - now
  else
    if grant > 0 or ret > 0 then
      redis.call('HSET', KEYS[i], 'w', s.win, 'c', s.cur + grant, 'p', s.prev)
      redis.call('PEXPIRE', KEYS[i], math.ceil(((s.win + 2) * s.per - now) / 1000))
    end
    reset = s.per - s.elapsed
  end
  out[#out + 1] = s.avail - grant
  out[#out + 1] = reset
  out[#out + 1] = retry
  out[#out + 1] = s.win or 0
end
return out
`)

// errBadReply reports a script answer of an unexpected shape.
var errBadReply = errors.New("rate_limit: unexpected reply from Redis script")

// redisResult is a decoded script answer.
type redisResult struct {
	granted int64
	// v holds remaining, reset and retry per limit (converted to ns).
	v [maxLimits]verdict
	// win is the sliding window index per limit, for lease returns.
	win [maxLimits]int64
}

// redisArgs are the script arguments of a decision; the per-limit part is
// precomputed at provision time.
func (p *RateLimit) scriptArgs(n int64, partial bool, ret int64, wins *[maxLimits]int64) []any {
	args := make([]any, 0, 3+6*len(p.specs))
	pa := "0"
	if partial {
		pa = "1"
	}
	args = append(args, n, pa, ret)
	for i := range p.specs {
		args = append(args, p.staticArgs[i]...)
		var w int64
		if wins != nil {
			w = wins[i]
		}
		args = append(args, w)
	}
	return args
}

// staticLimitArgs renders the fixed per-limit script arguments in µs.
func staticLimitArgs(l *limitSpec) []any {
	us := func(ns int64) string { return strconv.FormatInt(max(ns/1000, 1), 10) }
	// The emission interval is per/rate in µs, computed from per in µs so
	// rate·t never exceeds per.
	t := max((l.per/1000)/l.rate, 1)
	return []any{l.alg, us(l.per), l.rate, l.burst, t}
}

// redisKeys returns the state keys of one decision:
// <prefix>rl:<namespace>:<limit index>:{<key>}. The braces are a Redis
// Cluster hash tag: every key of one decision lives on the same node.
func (p *RateLimit) redisKeys(key string) []string {
	keys := make([]string, len(p.specs))
	for i := range keys {
		keys[i] = p.keyPrefixes[i] + key + "}"
	}
	return keys
}

// runScript runs the script bounded by the Redis timeout.
func (p *RateLimit) runScript(ctx context.Context, keys []string, args []any) (redisResult, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	vals, err := script.Run(ctx, p.client, keys, args...).Int64Slice()
	var res redisResult
	if err != nil {
		return res, err
	}
	if len(vals) != 1+4*len(p.specs) {
		return res, errBadReply
	}
	res.granted = vals[0]
	for i := range p.specs {
		o := 1 + 4*i
		res.v[i] = verdict{remaining: vals[o], reset: vals[o+1] * 1000, retry: vals[o+2] * 1000}
		res.win[i] = vals[o+3]
	}
	return res, nil
}

// redisExact decides one request with one script round trip.
func (p *RateLimit) redisExact(ctx context.Context, key string) (decision, error) {
	res, err := p.runScript(ctx, p.redisKeys(key), p.exactArgs)
	if err != nil {
		return decision{}, err
	}
	return summarize(res.v[:len(p.specs)], res.granted > 0), nil
}

// leaseStore holds this node's leases, one per key.
//
// A lease is a batch of tokens taken from Redis with one script call (from
// every limit of the request at once). Requests are served from it locally
// until it is spent or its TTL passes; then the next request returns the
// unused tokens and takes a new lease in the same round trip. Leases left
// unused are returned by a background sweep, so idle keys do not lose
// tokens for longer than about two TTLs.
type leaseStore struct {
	shards   [numShards]leaseShard
	perShard int
}

type leaseShard struct {
	mu sync.Mutex
	m  map[uint64]*lease
	_  [40]byte
}

type lease struct {
	mu   sync.Mutex
	keys []string
	// tokens left in the current lease, valid until expires.
	tokens  int64
	expires int64
	// wins are the sliding window indexes the lease was taken in.
	wins [maxLimits]int64
	// taken is when the lease was granted; remaining, reset and idx are
	// the most restrictive limit's values Redis reported then.
	taken     int64
	remaining int64
	reset     int64
	idx       int
	// deniedUntil caches a denial: until then requests are refused
	// without asking Redis.
	deniedUntil int64
	lastUse     int64
	// refilling is closed when the refill in flight finishes (nil when
	// none is): one refill per key at a time.
	refilling chan struct{}
}

func newLeaseStore(maxKeys int) *leaseStore {
	s := &leaseStore{perShard: max(maxKeys/numShards, 1)}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]*lease)
	}
	return s
}

// get returns the lease entry of key, creating it with mkKeys when absent.
func (s *leaseStore) get(h uint64, mkKeys func() []string) *lease {
	sh := &s.shards[h%numShards]
	sh.mu.Lock()
	l, ok := sh.m[h]
	if !ok {
		if len(sh.m) >= s.perShard {
			for k, o := range sh.m {
				if len(sh.m) < s.perShard {
					break
				}
				o.mu.Lock()
				busy := o.tokens > 0 || o.refilling != nil
				o.mu.Unlock()
				if !busy {
					delete(sh.m, k)
				}
			}
			for k := range sh.m {
				if len(sh.m) < s.perShard {
					break
				}
				delete(sh.m, k)
			}
		}
		l = &lease{keys: mkKeys(), idx: -1}
		sh.m[h] = l
	}
	sh.mu.Unlock()
	return l
}

// redisLease decides one request from the key's lease, refilling it from
// Redis when it is spent or expired.
func (p *RateLimit) redisLease(ctx context.Context, h uint64, mkKeys func() []string) (decision, error) {
	l := p.leases.get(h, mkKeys)
	for {
		now := p.clock()
		l.mu.Lock()
		l.lastUse = now
		if l.tokens > 0 && now < l.expires {
			l.tokens--
			d := l.view(now)
			l.mu.Unlock()
			return d, nil
		}
		if now < l.deniedUntil {
			d := decision{idx: max(l.idx, 0), retry: time.Duration(l.deniedUntil - now)}
			d.reset = d.retry
			l.mu.Unlock()
			return d, nil
		}
		if ch := l.refilling; ch != nil {
			l.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return decision{}, ctx.Err()
			}
		}
		ch := make(chan struct{})
		l.refilling = ch
		ret, wins := l.tokens, l.wins
		l.tokens = 0
		l.mu.Unlock()

		res, err := p.runScript(ctx, l.keys, p.scriptArgs(p.leaseSize, true, ret, &wins))

		now = p.clock()
		l.mu.Lock()
		l.refilling = nil
		close(ch)
		if err != nil {
			// The returned tokens are lost: Redis keeps counting them
			// until they recover (under-admission, never over-admission).
			l.mu.Unlock()
			return decision{}, err
		}
		if res.granted == 0 {
			d := summarize(res.v[:len(p.specs)], false)
			l.deniedUntil = now + min(int64(d.retry), int64(p.leaseTTL))
			l.idx = d.idx
			l.mu.Unlock()
			return d, nil
		}
		s := summarize(res.v[:len(p.specs)], true)
		l.tokens = res.granted - 1
		l.expires = now + int64(p.leaseTTL)
		l.wins = res.win
		l.taken, l.remaining, l.reset, l.idx = now, s.remaining, int64(s.reset), s.idx
		d := l.view(now)
		l.mu.Unlock()
		return d, nil
	}
}

// view is the decision for a request served from the lease: remaining is
// what Redis reported at grant time plus the tokens still held here.
func (l *lease) view(now int64) decision {
	return decision{
		allowed:   true,
		idx:       l.idx,
		remaining: l.remaining + l.tokens,
		reset:     time.Duration(max(l.reset-(now-l.taken), 0)),
	}
}

// returnIdle gives back the unused tokens of expired leases and forgets
// leases unused for a while. It runs in the background.
func (p *RateLimit) returnIdle(ctx context.Context, all bool) {
	now := p.clock()
	type ret struct {
		keys []string
		n    int64
		wins [maxLimits]int64
	}
	var rets []ret
	for i := range p.leases.shards {
		sh := &p.leases.shards[i]
		sh.mu.Lock()
		for k, l := range sh.m {
			l.mu.Lock()
			if l.refilling == nil && l.tokens > 0 && (all || now >= l.expires) {
				rets = append(rets, ret{keys: l.keys, n: l.tokens, wins: l.wins})
				l.tokens = 0
			}
			if l.refilling == nil && l.tokens == 0 && now-l.lastUse > 2*int64(p.leaseTTL) && now >= l.deniedUntil {
				delete(sh.m, k)
			}
			l.mu.Unlock()
		}
		sh.mu.Unlock()
	}
	for _, r := range rets {
		if ctx.Err() != nil {
			return
		}
		_, _ = p.runScript(ctx, r.keys, p.scriptArgs(0, true, r.n, &r.wins))
	}
}

// leaseSweeper runs returnIdle every lease TTL until stop is closed, then
// returns every outstanding token.
func (p *RateLimit) leaseSweeper(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(p.leaseTTL)
	defer t.Stop()
	for {
		select {
		case <-stop:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			p.returnIdle(ctx, true)
			cancel()
			return
		case <-t.C:
			p.returnIdle(context.Background(), false)
		}
	}
}

// redisKeyPrefixes precomputes "<prefix>rl:<namespace>:<i>:{".
func redisKeyPrefixes(prefix, namespace string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%srl:%s:%d:{", prefix, escapeString(namespace), i)
	}
	return out
}
