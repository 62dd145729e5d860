// Package quota implements the "quota" plugin: a number of requests each
// consumer (or any request key, see internal/reqkey) may make per calendar
// day or month, counted in Redis so that every gateway node shares the
// counts and they survive gateway restarts.
//
// A period starts at local midnight (day) or at 00:00 on the 1st (month) in
// the consumer's time zone, taken from the consumer's metadata when present
// and from the plugin's time_zone otherwise. Each request of a consumer runs
// one Lua script on the key <prefix>quota:<route>:<request key>:<period
// start yyyy-mm-dd>, where the request key is rendered as reqkey.Key.Append
// writes it (for the default key, the consumer ID): it counts the request unless the quota is already used up and,
// when it creates the key, sets it to expire one day after the period ends.
// The expiry is sent as a TTL computed from the gateway's clock rather than
// as an absolute time, so a Redis server whose clock is off cannot expire
// counts early. Requests refused by the quota are not counted. Redis failures either let requests through
// (fail_open, the default) or refuse them with 503 (fail_closed), in both
// cases within redis.timeout.
package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // zone names work on hosts without a zoneinfo database

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

// Name is the plugin's name in configs.
const Name = "quota"

// Response headers sent with every counted request and every refusal.
const (
	HeaderLimit     = "X-Quota-Limit"
	HeaderRemaining = "X-Quota-Remaining"
	HeaderReset     = "X-Quota-Reset"
)

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: plugin.PhaseRateLimit, New: func() plugin.Plugin { return new(Quota) }})
}

// Quota is the configuration of one "quota" instance.
type Quota struct {
	// Limit is the number of requests per key per period.
	Limit int64 `yaml:"limit"`
	// Key is what the requests are counted by, in the request-key grammar
	// (README "Request keys"): one part or a list. Default consumer. A
	// part with no value stands for the client IP; but while the key has
	// a consumer part, a request without an authenticated consumer is
	// decided by on_anonymous instead. The consumer's metadata (limit,
	// time zone) applies while the key has a consumer part.
	Key config.StringList `yaml:"key"`
	// Period is "day" or "month".
	Period string `yaml:"period"`
	// Redis is where the counts are kept (required).
	Redis *redisclient.Config `yaml:"redis"`
	// TimeZone is the IANA zone periods are aligned to for consumers without
	// one in their metadata. Default "UTC".
	TimeZone string `yaml:"time_zone"`
	// TimeZoneMetadataKey is the consumer metadata key holding the
	// consumer's own zone. Default "time_zone".
	TimeZoneMetadataKey string `yaml:"time_zone_metadata_key"`
	// QuotaLimitMetadataKey is the consumer metadata key holding a
	// per-consumer limit that replaces Limit. Default "quota".
	QuotaLimitMetadataKey string `yaml:"quota_limit_metadata_key"`
	// OnAnonymous decides for requests without an authenticated consumer
	// when the key has a consumer part: "deny" (the default, 403) or
	// "allow" (passed on, not counted).
	OnAnonymous string `yaml:"on_anonymous"`
	// OnRedisError decides when Redis fails or is too slow: "fail_open"
	// (the default, the request passes uncounted) or "fail_closed" (503).
	OnRedisError string `yaml:"on_redis_error"`

	key        reqkey.Key
	byConsumer bool
	month      bool
	loc        *time.Location
	allowAnon  bool
	failClosed bool
	timeout    time.Duration
	keyBase    string // <prefix>quota:<route>:
	client     *redisclient.Client
	relClient  func()
	log        *slog.Logger
	errors     *observe.Counter
	refused    *observe.Counter
	zones      zoneCache
	warner     *observe.DependencyWarner
	// now is the clock; tests replace it.
	now func() time.Time
}

// Provision parses the settings and opens the shared Redis client. It does
// not contact Redis: a Redis that is down at start-up is handled per request
// like any other Redis failure.
func (p *Quota) Provision(ctx plugin.Context) error {
	p.log = ctx.Logger()
	p.warner = observe.NewDependencyWarner(p.log, 0)
	if p.now == nil {
		p.now = ctx.Clock()
	}
	switch p.Period {
	case "day":
	case "month":
		p.month = true
	case "":
		return errors.New("period: required (day or month)")
	default:
		return fmt.Errorf("period: %q is not day or month", p.Period)
	}
	if p.Limit < 1 {
		return errors.New("limit: required, at least 1")
	}
	if len(p.Key) == 0 {
		p.Key = config.StringList{"consumer"}
	}
	k, err := reqkey.Parse(p.Key)
	if err != nil {
		return err
	}
	p.key, p.byConsumer = k, k.UsesConsumer()
	if p.TimeZone == "" {
		p.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return fmt.Errorf("time_zone: unknown zone %q", p.TimeZone)
	}
	p.loc = loc
	if p.TimeZoneMetadataKey == "" {
		p.TimeZoneMetadataKey = "time_zone"
	}
	if p.QuotaLimitMetadataKey == "" {
		p.QuotaLimitMetadataKey = "quota"
	}
	switch p.OnAnonymous {
	case "", "deny":
		p.OnAnonymous = "deny"
	case "allow":
		p.allowAnon = true
	default:
		return fmt.Errorf("on_anonymous: %q is not allow or deny", p.OnAnonymous)
	}
	switch p.OnRedisError {
	case "", "fail_open":
		p.OnRedisError = "fail_open"
	case "fail_closed":
		p.failClosed = true
	default:
		return fmt.Errorf("on_redis_error: %q is not fail_open or fail_closed", p.OnRedisError)
	}
	if p.Redis == nil {
		return errors.New("redis: required")
	}
	cl, release, err := redisclient.Shared(ctx.Shared, p.Redis)
	if err != nil {
		return err
	}
	p.client, p.relClient = cl, release
	p.timeout = p.Redis.Timeout.D()
	p.keyBase = cl.Prefix + "quota:" + ctx.Route() + ":"
	route := fmt.Sprintf("route=%q", ctx.Route())
	p.errors = ctx.Stats().Counter("portico_quota_redis_errors_total", route)
	p.refused = ctx.Stats().Counter("portico_quota_refused_total", route)
	return nil
}

// Cleanup releases the Redis client.
func (p *Quota) Cleanup() error {
	if p.relClient != nil {
		p.relClient()
		p.client, p.relClient = nil, nil
	}
	return nil
}

// script counts one request against KEYS[1] unless ARGV[2] requests are
// already counted, and makes a new key expire in ARGV[1] seconds. It returns
// the count including this request, or ARGV[2]+1 when refused.
var script = redis.NewScript(`
local limit = tonumber(ARGV[2])
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= limit then
	return limit + 1
end
n = redis.call('INCR', KEYS[1])
if n == 1 then
	redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return n
`)

// period returns the bounds of the period that contains now in loc.
func (p *Quota) period(now time.Time, loc *time.Location) (start, end time.Time) {
	t := now.In(loc)
	y, m, d := t.Date()
	if p.month {
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// Wrap returns the handler that counts each request against its consumer.
func (p *Quota) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := request.RecordOf(r)
		limit, loc := p.Limit, p.loc
		if p.byConsumer {
			if _, ok := reqkey.Consumer(rec); !ok {
				if p.allowAnon {
					next.ServeHTTP(w, r)
					return
				}
				request.WriteError(w, r, http.StatusForbidden, "quota requires an authenticated consumer")
				return
			}
			limit, loc = p.consumerSettings(rec.Consumer)
		}
		now := p.now()
		start, end := p.period(now, loc)
		var buf [192]byte
		b := append(buf[:0], p.keyBase...)
		b = p.key.Append(b, r, rec)
		b = append(b, ':')
		b = start.AppendFormat(b, time.DateOnly)
		key := string(b)
		left := ceilSeconds(end.Sub(now))
		ttl := left + 86400

		ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
		n, err := script.Run(ctx, p.client, []string{key}, ttl, limit).Int64()
		cancel()
		if err != nil {
			if r.Context().Err() != nil {
				if rec != nil {
					rec.Status, rec.ErrorMsg = 499, "client closed request"
				}
				return
			}
			p.errors.Inc()
			p.warn(err)
			if p.failClosed {
				request.WriteError(w, r, http.StatusServiceUnavailable, "quota unavailable")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		reset := strconv.FormatInt(left, 10)
		h := w.Header()
		h.Set(HeaderLimit, strconv.FormatInt(limit, 10))
		h.Set(HeaderRemaining, strconv.FormatInt(max(limit-n, 0), 10))
		h.Set(HeaderReset, reset)
		if n > limit {
			p.refused.Inc()
			h.Set("Retry-After", reset)
			request.WriteError(w, r, http.StatusTooManyRequests, "quota exceeded")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// consumerSettings returns the limit and time zone for consumer c: its
// metadata's when set and valid, else the plugin's.
func (p *Quota) consumerSettings(c *consumer.Consumer) (int64, *time.Location) {
	limit, loc := p.Limit, p.loc
	if v, ok := c.Metadata[p.QuotaLimitMetadataKey]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			limit = n
		}
	}
	if name := c.Metadata[p.TimeZoneMetadataKey]; name != "" {
		if l := p.zones.get(name, p.log); l != nil {
			loc = l
		}
	}
	return limit, loc
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// warn logs a Redis failure as a structured WARN line with
// "dependency":"redis", at most once per interval (observe.DependencyWarner).
func (p *Quota) warn(err error) {
	action := "passing requests uncounted"
	if p.failClosed {
		action = "refusing requests with 503"
	}
	p.warner.Warn("redis", "quota: redis unavailable, "+action, err, slog.String("on_redis_error", p.OnRedisError))
}

// maxZones bounds the zone cache; names beyond it are loaded per request.
const maxZones = 1024

// zoneCache maps the zone names found in consumer metadata to locations. An
// unknown name maps to nil and is logged once.
type zoneCache struct {
	m sync.Map // string → *time.Location (nil: unknown)
	n atomic.Int32
}

func (z *zoneCache) get(name string, log *slog.Logger) *time.Location {
	if v, ok := z.m.Load(name); ok {
		return v.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	if z.n.Load() < maxZones {
		if _, loaded := z.m.LoadOrStore(name, loc); !loaded {
			z.n.Add(1)
			if loc == nil {
				log.Warn("quota: unknown time zone in consumer metadata; using the plugin's", "time_zone", name)
			}
		}
	}
	return loc
}

// Interface guards.
var (
	_ plugin.Plugin  = (*Quota)(nil)
	_ plugin.Cleaner = (*Quota)(nil)
)
