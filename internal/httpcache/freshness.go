package httpcache

import (
	"net/http"
	"strings"
	"time"
)

// Meta is what the cache keeps, next to the header and body, to decide
// about a stored response. Freshness fills it when the response is stored
// and again after a 304 updates it.
type Meta struct {
	// ResponseTime is when the response was received (response_time of
	// RFC 9111 §4.2.3); RequestTime when the request that produced it was
	// sent (request_time).
	ResponseTime time.Time
	RequestTime  time.Time
	// Lifetime is the freshness lifetime (§4.2.1), after the Policy.
	Lifetime time.Duration
	// InitialAge is the corrected initial age (§4.2.3).
	InitialAge time.Duration

	// From the response's Cache-Control: they govern stale serving.
	NoCache              bool // revalidate on every use
	MustRevalidate       bool // must-revalidate, proxy-revalidate or s-maxage: never serve stale
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
}

// Age is the current age of the stored response at now (§4.2.3):
// corrected_initial_age + resident_time.
func (m *Meta) Age(now time.Time) time.Duration {
	resident := now.Sub(m.ResponseTime)
	if resident < 0 {
		resident = 0
	}
	return m.InitialAge + resident
}

// Fresh reports whether the stored response is fresh at now (§4.2).
func (m *Meta) Fresh(now time.Time) bool {
	return m.Lifetime > m.Age(now)
}

// Freshness computes the Meta of a response with header h, received at
// responseTime for a request sent at requestTime, under policy p.
//
// The directives are ResponseDirectives': a targeted field such as
// CDN-Cache-Control replaces Cache-Control and Expires. The lifetime is,
// in order (§4.2.1, for a shared cache): s-maxage, max-age,
// Expires − Date (an invalid or repeated Expires means already expired; a
// missing or invalid Date means responseTime), else the heuristic lifetime
// when p allows it. p.TTL then caps or replaces it (see TTLMode).
// The initial age follows §4.2.3: max(apparent_age, Age + response_delay).
func Freshness(h http.Header, requestTime, responseTime time.Time, p *Policy) Meta {
	if p == nil {
		p = &defaultPolicy
	}
	cc, useExpires := ResponseDirectives(h, p)
	date, ok := parseDate(h["Date"])
	if !ok {
		date = responseTime
	}
	m := Meta{
		ResponseTime:   responseTime,
		RequestTime:    requestTime,
		NoCache:        cc.NoCache,
		MustRevalidate: cc.MustRevalidate || cc.ProxyRevalidate || cc.SMaxAge >= 0,
	}
	if cc.StaleWhileRevalidate > 0 {
		m.StaleWhileRevalidate = seconds(cc.StaleWhileRevalidate)
	}
	if cc.StaleIfError >= 0 {
		m.StaleIfError = seconds(cc.StaleIfError)
	} else if p.StaleIfError > 0 && !m.NoCache && !m.MustRevalidate {
		m.StaleIfError = p.StaleIfError
	}
	m.Lifetime = lifetime(cc, useExpires, h, date, p)
	m.InitialAge = initialAge(h, date, requestTime, responseTime)
	return m
}

func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

func lifetime(cc CacheControl, useExpires bool, h http.Header, date time.Time, p *Policy) time.Duration {
	if p.TTL > 0 && p.Mode == TTLReplace {
		return p.TTL
	}
	var life time.Duration
	switch {
	case cc.SMaxAge >= 0:
		life = seconds(cc.SMaxAge)
	case cc.MaxAge >= 0:
		life = seconds(cc.MaxAge)
	case useExpires && h["Expires"] != nil:
		if exp, ok := parseDate(h["Expires"]); ok && exp.After(date) {
			life = exp.Sub(date)
		}
	default:
		lm, _ := parseDate(h["Last-Modified"])
		life = p.heuristicLifetime(date, lm)
	}
	if p.TTL > 0 && life > p.TTL {
		life = p.TTL
	}
	return life
}

// parseDate parses a single HTTP-date field line (RFC 9110 §5.6.7) in one
// of its three formats, strictly: the fixed-length fields must have their
// exact widths (time.Parse alone accepts one-digit hours and doubled
// spaces). More than one line, or an unparsable one, is invalid.
func parseDate(vs []string) (time.Time, bool) {
	if len(vs) != 1 {
		return time.Time{}, false
	}
	v := vs[0]
	var layout string
	switch {
	case len(v) == len(http.TimeFormat) && v[3] == ',':
		layout = http.TimeFormat
	case len(v) == len(time.ANSIC) && v[3] == ' ':
		layout = time.ANSIC
	default:
		// RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT".
		i := strings.IndexByte(v, ',')
		if i < 0 || len(v)-i != len(", 06-Nov-94 08:49:37 GMT") {
			return time.Time{}, false
		}
		layout = time.RFC850
	}
	t, err := time.Parse(layout, v)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// ParseAge reads the Age header (RFC 9111 §5.1): the first element of the
// first line, delta-seconds; anything invalid is ignored (ok false).
func ParseAge(vs []string) (time.Duration, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	v := vs[0]
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	n, ok := parseDelta(strings.Trim(v, " \t"))
	if !ok {
		return 0, false
	}
	return seconds(n), true
}

func initialAge(h http.Header, date, requestTime, responseTime time.Time) time.Duration {
	apparent := responseTime.Sub(date)
	if apparent < 0 {
		apparent = 0
	}
	ageValue, _ := ParseAge(h["Age"])
	delay := responseTime.Sub(requestTime)
	if delay < 0 {
		delay = 0
	}
	return max(apparent, ageValue+delay)
}

// AgeValue formats the Age header value of a response served at now from
// the stored response m: whole seconds, capped at 2^31 (§5.1).
func AgeValue(m *Meta, now time.Time) string {
	s := int64(m.Age(now) / time.Second)
	if s > MaxDelta {
		s = MaxDelta
	}
	return itoa(s)
}

func itoa(n int64) string {
	if n >= 0 && n < 100 {
		return smallInts[n]
	}
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}

var smallInts = func() (a [100]string) {
	for i := range a {
		a[i] = string(rune('0'+i/10)) + string(rune('0'+i%10))
		if i < 10 {
			a[i] = string(rune('0' + i))
		}
	}
	return
}()
