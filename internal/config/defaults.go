package config

// Defaults for the safe edge limits; each is documented in the README.
const (
	DefaultListen                = ":8080"
	DefaultAdminListen           = "127.0.0.1:9901"
	DefaultMaxHeaderBytes        = 60 << 10
	DefaultMaxHeaderCount        = 100
	DefaultMaxURIBytes           = 8 << 10
	DefaultPathParams            = "reject"
	DefaultReadHeaderTimeout     = Duration(10e9)
	DefaultBodyReadTimeout       = Duration(60e9)
	DefaultIdleTimeout           = Duration(120e9)
	DefaultMaxBodyBytes          = 10 << 20
	DefaultMaxConnections        = 10000
	DefaultShutdownGrace         = Duration(30e9)
	DefaultConnectTimeout        = Duration(5e9)
	DefaultResponseHeaderTimeout = Duration(30e9)
	DefaultIdleConnTimeout       = Duration(90e9)
	DefaultMaxIdleConnsPerTarget = 256
	DefaultTLSHandshakeTimeout   = Duration(10e9)
	DefaultDNSRefresh            = Duration(30e9)
	DefaultBodyIdleTimeout       = Duration(60e9)
	DefaultMaxRespHeaderBytes    = 64 << 10
	DefaultMaxRespHeaderCount    = 100
)

// ApplyDefaults fills a retry policy's unset fields: one retry on connect
// failure, 64KiB replay buffer, a 20% budget with at least 3 concurrent
// retries, and Retry-After waits of at most 1s.
func (r *Retry) ApplyDefaults() {
	if r.Attempts == nil {
		one := 1
		r.Attempts = &one
	}
	if r.On == nil {
		r.On = []string{"connect_failure"}
	}
	setDefault(&r.BufferBytes, 64<<10)
	setDefault(&r.BudgetPercent, 20)
	setDefault(&r.MinRetryConcurrency, 3)
	setDefault(&r.MaxRetryAfter, Duration(1e9))
}

// ApplyDefaults fills every unset field with its documented default.
func (c *Config) ApplyDefaults() {
	c.Server.applyDefaults()
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Access.Output == "" {
		c.Log.Access.Output = "stdout"
	}
	if c.Log.Access.Format == "" {
		c.Log.Access.Format = "json"
	}
	if t := c.Tracing; t != nil {
		t.applyDefaults()
	}
	for _, u := range c.Upstreams {
		if u != nil {
			u.applyDefaults()
		}
	}
	for _, r := range c.Routes {
		if r != nil {
			r.applyDefaults()
		}
	}
}

func (s *Server) applyDefaults() {
	if len(s.Listen) == 0 {
		s.Listen = []Listener{{Addr: DefaultListen}}
	}
	for i := range s.Listen {
		if s.Listen[i].MaxConnections == 0 {
			s.Listen[i].MaxConnections = DefaultMaxConnections
		}
	}
	lim := &s.Limits
	setDefault(&lim.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&lim.MaxHeaderCount, DefaultMaxHeaderCount)
	setDefault(&lim.MaxURIBytes, DefaultMaxURIBytes)
	setDefault(&s.PathParams, DefaultPathParams)
	setDefault(&lim.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&lim.BodyReadTimeout, DefaultBodyReadTimeout)
	setDefault(&lim.IdleTimeout, DefaultIdleTimeout)
	setDefault(&lim.MaxBodyBytes, DefaultMaxBodyBytes)
	// A gRPC message may by default be as large as a request body.
	setDefault(&lim.MaxGRPCMessageBytes, lim.MaxBodyBytes)
	setDefault(&s.ShutdownGrace, DefaultShutdownGrace)
}

func (t *Tracing) applyDefaults() {
	setDefault(&t.Exporter, "none")
	switch t.Exporter {
	case "otlp_http":
		setDefault(&t.Endpoint, "localhost:4318")
	case "otlp_grpc":
		setDefault(&t.Endpoint, "localhost:4317")
	}
	setDefault(&t.Sampler, "parent_ratio")
	if t.Ratio == nil {
		one := 1.0
		t.Ratio = &one
	}
	setDefault(&t.ServiceName, "portico")
}

func (u *Upstream) applyDefaults() {
	setDefault(&u.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&u.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDefault(&u.IdleConnTimeout, DefaultIdleConnTimeout)
	setDefault(&u.MaxIdleConnsPerTarget, DefaultMaxIdleConnsPerTarget)
	setDefault(&u.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	setDefault(&u.DNSRefresh, DefaultDNSRefresh)
	setDefault(&u.BodyIdleTimeout, DefaultBodyIdleTimeout)
	setDefault(&u.MaxResponseHeaderBytes, DefaultMaxRespHeaderBytes)
	setDefault(&u.MaxResponseHeaderCount, DefaultMaxRespHeaderCount)
	for i := range u.Targets {
		setDefault(&u.Targets[i].Weight, 1)
	}
	if u.OutlierDetection == nil {
		u.OutlierDetection = &OutlierDetection{}
	}
	od := u.OutlierDetection
	setDefault(&od.ConsecutiveFailures, 5)
	setDefault(&od.BaseEjectionTime, Duration(10e9))
	setDefault(&od.MaxEjectionTime, Duration(300e9))
	setDefault(&od.MaxEjectionPercent, 50)
	if u.Retry == nil {
		u.Retry = &Retry{}
	}
	u.Retry.ApplyDefaults()
}

func (r *Route) applyDefaults() {
	if r.Respond != nil && r.Respond.Status == 0 {
		r.Respond.Status = 200
	}
	if r.Redirect != nil && r.Redirect.Status == 0 {
		r.Redirect.Status = 302
	}
	if r.Retry != nil {
		r.Retry.ApplyDefaults()
	}
	r.Mirror.applyDefaults()
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Defaults of active health checks (see HealthCheck.Times).
const (
	DefaultHealthInterval = Duration(5e9)
	DefaultHealthTimeout  = Duration(2e9)
)

// Times returns the check interval and timeout in force: each as set, and
// an unset one derived from the other so the two never contradict each
// other (the timeout is shorter than the interval). Unset both, they are 5s
// and 2s; an interval alone set gives a timeout of min(2s, interval/2), a
// timeout alone set gives an interval of max(5s, 2×timeout).
func (h *HealthCheck) Times() (interval, timeout Duration) {
	interval, timeout = h.Interval, h.Timeout
	switch {
	case interval == 0 && timeout == 0:
		return DefaultHealthInterval, DefaultHealthTimeout
	case timeout == 0:
		return interval, min(DefaultHealthTimeout, interval/2)
	case interval == 0:
		return max(DefaultHealthInterval, 2*timeout), timeout
	}
	return interval, timeout
}
