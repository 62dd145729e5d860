package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/reqkey"
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

// callRedis runs the script and feeds the outcome to the breaker: a
// failure (unless the caller went away) is counted, logged (rate-limited)
// and opens the breaker; a success closes it.
func (p *RateLimit) callRedis(ctx context.Context, keys []string, args []any) (redisResult, error) {
	res, err := p.runScript(ctx, keys, args)
	if err != nil {
		if ctx.Err() == nil {
			p.redisFailed(err)
		}
		return res, err
	}
	p.redisOK()
	return res, nil
}

// redisOK records a successful Redis call: it closes the breaker.
func (p *RateLimit) redisOK() {
	if p.downUntil.Load() != 0 {
		p.downUntil.Store(0)
		p.backoff.Store(0)
		p.probing.Store(false)
	}
}

// redisFailed records a failed Redis call: it counts it, logs it at WARN at
// most once per interval, and opens the breaker: for retryRedisMin after a
// failure while closed, for twice the last time (at most retryRedisMax)
// after a failure while open (a failed probe).
func (p *RateLimit) redisFailed(err error) {
	p.errCount.Inc()
	wait := max(time.Duration(p.backoff.Load()), retryRedisMin)
	if p.probing.Swap(false) {
		wait = min(2*wait, retryRedisMax)
	}
	p.backoff.Store(int64(wait))
	p.downUntil.Store(p.clock() + int64(wait))
	p.warner.Warn("redis", "rate_limit: redis unavailable; applying on_redis_error", err,
		slog.String("on_redis_error", p.failure), slog.String("redis_mode", p.RedisMode))
}

// mayCallRedis is the breaker: it reports whether a request may call Redis
// now. After a failure Redis is not asked for a while (see redisFailed);
// then one request at a time probes it (the others keep the failure
// policy) until a call succeeds.
func (p *RateLimit) mayCallRedis(now int64) bool {
	du := p.downUntil.Load()
	if du == 0 {
		return true
	}
	// The probe holds the breaker for up to one timeout (its own call);
	// its outcome then closes it or opens it again.
	if now < du || !p.downUntil.CompareAndSwap(du, now+int64(p.timeout)+int64(retryRedisMin)) {
		return false
	}
	p.probing.Store(true)
	return true
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
	res, err := p.callRedis(ctx, p.redisKeys(key), p.exactArgs)
	if err != nil {
		return decision{}, err
	}
	return summarize(res.v[:len(p.specs)], res.granted > 0), nil
}

// warmUpTimeout bounds the background warm-up of a new instance.
const warmUpTimeout = 5 * time.Second

// warmUp loads the script into Redis and opens a pooled connection in the
// background, so the first requests do not pay the dial, the handshake and
// the script upload within their Redis timeout. A failure here is not
// recorded: the requests find out for themselves.
func (p *RateLimit) warmUp(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ctx, cancel := context.WithTimeout(context.Background(), warmUpTimeout)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	_ = script.Load(ctx, p.client).Err()
}

// redisKeyPrefixes precomputes "<prefix>rl:<namespace>:<i>:{".
func redisKeyPrefixes(prefix, namespace string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%srl:%s:%d:{", prefix, reqkey.Escape(namespace), i)
	}
	return out
}
