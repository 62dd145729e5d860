// Package config defines Portico's declarative configuration: the YAML schema as
// plain Go data, strict loading with line-numbered errors, ${ENV} expansion,
// defaults and validation. It holds no runtime behaviour; the gateway compiles a
// validated Config into an immutable snapshot.
package config

import (
	"go.yaml.in/yaml/v3"
)

// Config is the whole gateway configuration as read from one YAML file.
type Config struct {
	// Server configures the client-facing listeners and their limits.
	Server Server `yaml:"server"`
	// Admin configures the admin listener (health, readiness).
	Admin Admin `yaml:"admin"`
	// Log configures the access log and the process log level.
	Log Log `yaml:"log"`
	// Upstreams are named pools of backend targets that routes proxy to.
	Upstreams map[string]*Upstream `yaml:"upstreams"`
	// Routes are matched against every request; the most specific match wins.
	Routes []*Route `yaml:"routes"`
	// Consumers are the API clients the auth plugins know, with their
	// credentials.
	Consumers []*Consumer `yaml:"consumers"`
	// Plugins are global plugins, run for every route before the route's own
	// plugins of the same phase. A route plugin with the same name replaces the
	// global one for that route.
	Plugins []PluginSpec `yaml:"plugins"`
	// Tracing configures OpenTelemetry tracing; absent or exporter "none"
	// turns it off.
	Tracing *Tracing `yaml:"tracing"`
	// Echo, when set, runs the built-in echo backend inside the gateway
	// process: it answers every request with a JSON description of it
	// (method, path, query, headers, body). The quick start proxies to it.
	// Absent: off. It starts with the process; a reload that changes it is
	// logged as needing a restart.
	Echo *Echo `yaml:"echo"`

	// Root is the parsed YAML document the Config was decoded from; it lets
	// later checks (plugins, cross references) report a line for a path.
	Root *yaml.Node `yaml:"-"`
	// RawRoot is a copy of the document before ${ENV} expansion: what the
	// admin API edits and writes back, so secrets stay out of the file.
	RawRoot *yaml.Node `yaml:"-"`
	// Source names where the config came from (a file path or "embedded").
	Source string `yaml:"-"`
	// Hash is the hex SHA-256 of the source document, identifying a revision.
	Hash string `yaml:"-"`

	// problems are the decode and validation errors of a config returned by
	// ParseAll; a config with problems is never served (see problems.go).
	problems Errors
}

// Echo configures the built-in echo backend.
type Echo struct {
	// Listen is the echo backend's host:port. It must be a loopback address
	// (127.0.0.1, ::1 or localhost): the echo backend reflects every request
	// header, credentials included. Required.
	Listen string `yaml:"listen"`
}

// Server configures client-facing listeners.
type Server struct {
	// Listen lists the addresses to accept client traffic on. Default: ":8080".
	Listen []Listener `yaml:"listen"`
	// Limits bound what one client can make the gateway hold.
	Limits Limits `yaml:"limits"`
	// TrustedProxies are CIDRs (or single IPs) of peers whose X-Forwarded-*
	// headers are believed. From any other peer those headers are replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// UnderscoresInHeaders lets request header fields whose names contain
	// "_" through. Default false: they are dropped on arrival, because many
	// backends read "X_User" as "X-User" (nginx's underscores_in_headers
	// off). The underscore form of an identity or injected header name, of
	// a forwarding header from an untrusted peer and of an X-Portico-* name
	// is always dropped.
	UnderscoresInHeaders bool `yaml:"underscores_in_headers"`
	// MethodOverride applies X-HTTP-Method-Override, X-HTTP-Method,
	// X-Method-Override or a "_method" query parameter to POST requests on
	// arrival, before routing, so route matching, plugins (acl) and the
	// upstream all see the overridden method (GET, HEAD, PUT, PATCH, DELETE
	// or OPTIONS; anything else, or two different values, is 400). The
	// override headers are removed; the query string is left as sent.
	// Default false: the override headers are removed from every request,
	// and a request with a "_method" query parameter is refused with 400.
	// With it on, "_method" on a method other than POST is refused too.
	MethodOverride bool `yaml:"method_override"`
	// ShutdownGrace is how long SIGTERM waits for in-flight requests, streams
	// and upgraded connections (WebSockets); at its end WebSockets get a 1001
	// close frame and every connection is closed. Default 30s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// PathParams decides what happens to a request whose path has a
	// parameter in a segment ("/admin;x=1/secret", also "%3B"), which
	// servlet-style backends strip while the routes see another path:
	// "reject" (default) answers 400; "strip" removes the parameters from
	// every segment before routing and forwards the stripped path; "allow"
	// routes and forwards the path as received.
	PathParams string `yaml:"path_params"`
}

// Listener is one client-facing socket, plain or TLS.
type Listener struct {
	// Addr is host:port; ":8080" listens on every interface. The port is
	// a number from 1 to 65535, or 0 for a free port the system picks.
	Addr string `yaml:"addr"`
	// TLS, when set, terminates TLS here; the SNI name picks the certificate
	// and ALPN offers HTTP/2 and HTTP/1.1.
	TLS *TLS `yaml:"tls"`
	// HTTP3 also serves HTTP/3 (QUIC) on the same port over UDP; TLS
	// listeners only. TCP responses then advertise it with Alt-Svc.
	HTTP3 bool `yaml:"http3"`
	// H2C accepts HTTP/2 with prior knowledge on a plain-text listener (what
	// gRPC clients speak without TLS). Default true; TLS listeners always
	// offer HTTP/2 through ALPN.
	H2C *bool `yaml:"h2c"`
	// MaxConnections caps concurrently open client connections on this
	// listener; further connections wait in the kernel backlog. Default 10000;
	// 0 means the default, -1 means unlimited.
	MaxConnections int `yaml:"max_connections"`
}

// TLS configures TLS termination on a listener.
type TLS struct {
	// Certificates are tried by SNI name; the first one is the default.
	Certificates []Certificate `yaml:"certificates"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// ClientCAFile is a PEM bundle of CAs that sign client certificates
	// (mutual TLS; the mtls plugin maps them to consumers).
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is "request" (default with client_ca_file: a certificate is
	// asked for and verified if given; routes enforce it with the mtls
	// plugin) or "require" (the handshake fails without a valid one).
	ClientAuth string `yaml:"client_auth"`
}

// Certificate is a PEM certificate chain and its private key.
type Certificate struct {
	// CertFile is the PEM certificate chain, leaf first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the leaf certificate.
	KeyFile string `yaml:"key_file"`
}

// Limits are the safe edge defaults; every one can be overridden.
type Limits struct {
	// MaxHeaderBytes bounds the request line plus headers. Default 60KiB; 431
	// beyond (a JSON error with Connection: close). A head more than 4KiB over
	// the limit is cut off while it is read, with a plain-text 431.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// MaxHeaderCount bounds the number of request header fields, counting
	// every field received (also those the gateway drops, such as
	// X-Forwarded-For from an untrusted peer). Default 100; 431 beyond.
	MaxHeaderCount int `yaml:"max_header_count"`
	// MaxURIBytes bounds the request target (path and query). Default 8KiB;
	// 414 beyond. A target too long for max_header_bytes gets 431.
	MaxURIBytes Size `yaml:"max_uri_bytes"`
	// ReadHeaderTimeout bounds reading the request headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// BodyReadTimeout bounds reading the whole request body. Default 60s.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
	// IdleTimeout closes idle keep-alive client connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxBodyBytes bounds request bodies; 413 beyond. Default 10MiB; -1 unlimited.
	// gRPC calls (content-type application/grpc…) are long-lived streams:
	// max_grpc_message_bytes bounds each of their messages instead.
	MaxBodyBytes Size `yaml:"max_body_bytes"`
	// MaxGRPCMessageBytes bounds each message (length-prefixed frame) a
	// gRPC client sends; a larger one ends the call with RESOURCE_EXHAUSTED.
	// Default: max_body_bytes (10MiB unless set); -1 unlimited.
	MaxGRPCMessageBytes Size `yaml:"max_grpc_message_bytes"`
}

// Admin configures the admin listener and its API.
type Admin struct {
	// Listen is the admin address (host:port, port 1-65535 or 0 for a free
	// port). Default "127.0.0.1:9901"; "off" disables it.
	Listen string `yaml:"listen"`
	// Token, when set, is the bearer token every admin endpoint except
	// /healthz, /readyz and /openapi.json requires (usually
	// "${PORTICO_ADMIN_TOKEN}"). It is required when Listen is not a
	// loopback address.
	Token string `yaml:"token" secret:"true"`
	// Persist writes successful admin API changes back to the config file.
	// Default true when the gateway runs from a file.
	Persist *bool `yaml:"persist"`
	// AllowedHosts are extra names (or IPs) the admin API answers to in the
	// Host header, besides localhost, 127.0.0.0/8 and [::1] (any port).
	// Without a token, or whenever this list is set, a request for any other
	// Host gets 403, which defeats DNS-rebinding pages.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// Log configures logging.
type Log struct {
	// Level of the process log: debug, info (default), warn, error.
	Level string `yaml:"level"`
	// Access configures the per-request access log.
	Access AccessLog `yaml:"access"`
}

// AccessLog configures the one-line-per-request access log.
type AccessLog struct {
	// Output is "stdout" (default), "stderr", "off" or a file path.
	Output string `yaml:"output"`
	// Format is "json" (default) or "text".
	Format string `yaml:"format"`
	// Query adds the request's raw query string to each line as "query".
	// Off by default: query strings often carry secrets (API keys, tokens,
	// signatures), which would then be written to the log.
	Query bool `yaml:"query"`
}

// Tracing configures OpenTelemetry tracing: a server span per request and a
// client span per upstream attempt, exported over OTLP.
type Tracing struct {
	// Exporter is "otlp_http", "otlp_grpc" or "none" (default: tracing off).
	Exporter string `yaml:"exporter"`
	// Endpoint is the collector's host:port. Default "localhost:4318" for
	// otlp_http, "localhost:4317" for otlp_grpc.
	Endpoint string `yaml:"endpoint"`
	// Insecure sends spans in plain text instead of TLS.
	Insecure bool `yaml:"insecure"`
	// Sampler is "always", "never", "ratio" (a share of traces by trace ID)
	// or "parent_ratio" (default: follow the incoming traceparent's sampled
	// flag, else ratio).
	Sampler string `yaml:"sampler"`
	// Ratio is the share of traces sampled, 0 to 1. Default 1.
	Ratio *float64 `yaml:"ratio"`
	// ServiceName is the service.name resource attribute. Default "portico".
	ServiceName string `yaml:"service_name"`
	// Headers are sent with every export request (e.g. authorization). Their
	// values are secrets: the admin API never returns them.
	Headers map[string]string `yaml:"headers" secret:"values"`
}

// Upstream is a named pool of backend targets.
type Upstream struct {
	// Targets are the backends; requests are spread by weight.
	Targets []Target `yaml:"targets"`
	// ConnectTimeout bounds dialing a target. Default 5s.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// ResponseHeaderTimeout bounds waiting for the response headers once the
	// request is written. Default 30s; 504 beyond.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	// IdleConnTimeout closes idle pooled connections. Default 90s.
	IdleConnTimeout Duration `yaml:"idle_conn_timeout"`
	// MaxIdleConnsPerTarget bounds the keep-alive pool per target. Default 256.
	MaxIdleConnsPerTarget int `yaml:"max_idle_conns_per_target"`
	// TLSHandshakeTimeout bounds the TLS handshake with a target. Default 10s.
	TLSHandshakeTimeout Duration `yaml:"tls_handshake_timeout"`
	// RequestTimeout bounds a whole exchange (all attempts, response body
	// included) unless the route sets its own timeout. Default: none.
	RequestTimeout Duration `yaml:"request_timeout"`
	// BodyIdleTimeout bounds each wait for the next bytes of a response
	// body (a route may override it). An upstream that stalls longer has
	// its response aborted: the client's connection (HTTP/1.1) or stream
	// (HTTP/2) is cut before the end, the upstream connection is closed
	// (an HTTP/2 upstream's stream is reset), and the access log says
	// "upstream body idle timeout". Time the
	// gateway spends writing to a slow client does not count; upgraded
	// (WebSocket) connections are exempt. Default 60s.
	BodyIdleTimeout Duration `yaml:"body_idle_timeout"`
	// MaxResponseHeaderBytes bounds the size of a response's header block,
	// interim (1xx) blocks included. Default 64KiB; 502 beyond.
	MaxResponseHeaderBytes Size `yaml:"max_response_header_bytes"`
	// MaxResponseHeaderCount bounds the number of header fields of a
	// response. Default 100; 502 beyond. An interim (1xx) response over it
	// is not forwarded.
	MaxResponseHeaderCount int `yaml:"max_response_header_count"`

	// Balancer is the selection policy: round_robin, weighted_round_robin
	// (default), least_request, random, consistent_hash or ewma.
	Balancer string `yaml:"balancer"`
	// HashOn is the consistent_hash key.
	HashOn *HashOn `yaml:"hash_on"`
	// SlowStart ramps a recovered or new target's share up over this window.
	SlowStart Duration `yaml:"slow_start"`
	// DNSRefresh is how often target host names are re-resolved. Default 30s.
	DNSRefresh Duration `yaml:"dns_refresh"`
	// Protocol to speak to targets: "http1" (default), "http2" (HTTP/2 over
	// TLS via ALPN, falling back to HTTP/1.1), "h2c" (HTTP/2 over plain TCP,
	// prior knowledge; what gRPC backends need).
	Protocol string `yaml:"protocol"`
	// TLS configures https:// targets.
	TLS *UpstreamTLS `yaml:"tls"`
	// HealthCheck enables active health checks.
	HealthCheck *HealthCheck `yaml:"health_check"`
	// OutlierDetection configures passive health checks. Default: on.
	OutlierDetection *OutlierDetection `yaml:"outlier_detection"`
	// Retry configures retries; a route may override it. Default: one retry
	// on connect failure for idempotent requests.
	Retry *Retry `yaml:"retry"`
	// Limits are the circuit-breaker thresholds.
	Limits *UpstreamLimits `yaml:"limits"`
	// DebugHeader adds X-Portico-Upstream (the target host:port) to responses.
	DebugHeader bool `yaml:"debug_header"`
}

// HashOn selects the consistent-hash key; exactly one field is set. A
// request without the key (an absent header or cookie…) gets a random
// target.
type HashOn struct {
	// Header hashes on the value of this request header.
	Header string `yaml:"header"`
	// Cookie hashes on the value of this cookie.
	Cookie string `yaml:"cookie"`
	// ClientIP hashes on the client address (trusted-proxy aware).
	ClientIP bool `yaml:"client_ip"`
	// Path hashes on the request path.
	Path bool `yaml:"path"`
	// Key hashes on a request key (README "Request keys"): one part or a
	// list, e.g. [consumer, header:X-Tenant]. Unlike elsewhere, a request
	// with a part that has no value gets a random target.
	Key StringList `yaml:"key"`
}

// UpstreamTLS configures TLS to https:// targets.
type UpstreamTLS struct {
	// CAFile is a PEM bundle to verify targets with; default: system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the SNI and verification name.
	ServerName string `yaml:"server_name"`
	// CertFile is a PEM client certificate for mutual TLS (with key_file).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of cert_file.
	KeyFile string `yaml:"key_file"`
	// InsecureSkipVerify disables verification (logged as a warning).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// HealthCheck configures active health checks.
type HealthCheck struct {
	// Type is "http" (default), "tcp" or "grpc" (grpc.health.v1).
	Type string `yaml:"type"`
	// Path is the HTTP path to GET. Default "/healthz".
	Path string `yaml:"path"`
	// Host is the Host header of HTTP checks; default the target's.
	Host string `yaml:"host"`
	// Service is the gRPC service name to check ("" = the server).
	Service string `yaml:"service"`
	// Interval between checks of one target. Default 5s, or twice the
	// timeout when a timeout of 2.5s or more is set.
	Interval Duration `yaml:"interval"`
	// Timeout of one check; it must be shorter than the interval. Default
	// 2s, or half the interval when an interval of 4s or less is set.
	Timeout Duration `yaml:"timeout"`
	// Jitter adds up to this much random delay to each interval. Default 10% of interval.
	Jitter Duration `yaml:"jitter"`
	// ExpectedStatuses are HTTP statuses that count as healthy. Default 200-399.
	ExpectedStatuses []int `yaml:"expected_statuses"`
	// HealthyThreshold consecutive successes mark a target healthy. Default 2.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold consecutive failures mark it unhealthy. Default 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
}

// OutlierDetection configures passive health checks (ejection).
type OutlierDetection struct {
	// Disabled turns passive checks off.
	Disabled bool `yaml:"disabled"`
	// ConsecutiveFailures (connect failures and 5xx) that eject a target. Default 5.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// BaseEjectionTime is the first ejection's length; each further one adds it again. Default 10s.
	BaseEjectionTime Duration `yaml:"base_ejection_time"`
	// MaxEjectionTime caps an ejection. Default 300s.
	MaxEjectionTime Duration `yaml:"max_ejection_time"`
	// MaxEjectionPercent of the pool that may be ejected at once. Default 50.
	MaxEjectionPercent int `yaml:"max_ejection_percent"`
}

// Retry configures retries of failed attempts.
type Retry struct {
	// Attempts is the number of retries after the first try. Default 1; 0 disables.
	Attempts *int `yaml:"attempts"`
	// PerTryTimeout bounds each attempt up to the response headers. Default: none.
	PerTryTimeout Duration `yaml:"per_try_timeout"`
	// On lists what is retried: connect_failure, reset, timeout, and status
	// codes such as 502, 503, 504. Default [connect_failure].
	On []string `yaml:"on"`
	// NonIdempotent allows retrying POST/PATCH and other non-idempotent methods.
	NonIdempotent bool `yaml:"non_idempotent"`
	// BufferBytes is how much request body is kept for replay; larger bodies
	// are not retried. Default 64KiB.
	BufferBytes Size `yaml:"buffer_bytes"`
	// BudgetPercent caps retries in flight at this share of requests in flight. Default 20.
	BudgetPercent int `yaml:"budget_percent"`
	// MinRetryConcurrency retries are always allowed regardless of the budget. Default 3.
	MinRetryConcurrency int `yaml:"min_retry_concurrency"`
	// MaxRetryAfter is the longest Retry-After a retry waits for. Default 1s.
	MaxRetryAfter Duration `yaml:"max_retry_after"`
}

// UpstreamLimits are circuit-breaker thresholds; beyond them requests get 503 at once.
type UpstreamLimits struct {
	// MaxRequests in flight to the whole upstream. Default 0 (unlimited).
	MaxRequests int `yaml:"max_requests"`
	// MaxPending requests waiting for a connection when MaxConnections are busy. Default 0 (unlimited).
	MaxPending int `yaml:"max_pending"`
	// MaxConnections per target. Default 0 (unlimited).
	MaxConnections int `yaml:"max_connections"`
}

// Target is one backend address.
type Target struct {
	// URL is scheme://host:port, optionally with a base path that is prefixed
	// to every proxied path.
	URL string `yaml:"url"`
	// Weight is the relative share of requests. Default 1.
	Weight int `yaml:"weight"`
}

// Route maps matching requests to exactly one action: an upstream, a split
// across upstreams, API versions, a direct response or a redirect.
type Route struct {
	// Name identifies the route in logs and errors; it must be unique.
	Name string `yaml:"name"`
	// Priority breaks ties between equally specific routes; higher wins.
	Priority int `yaml:"priority"`
	// Match selects the requests this route handles.
	Match Match `yaml:"match"`
	// Upstream names the pool to proxy to.
	Upstream string `yaml:"upstream"`
	// Split sends requests to one of several upstreams by rules and
	// weights (canary, A/B); use it instead of upstream.
	Split *Split `yaml:"split"`
	// Versions serves several versions of an API, each on its own upstream
	// with its own plugins, chosen from the path, a header, a query
	// parameter or the Accept media type; use it instead of upstream.
	Versions *Versions `yaml:"versions"`
	// Respond answers directly without an upstream.
	Respond *Respond `yaml:"respond"`
	// Redirect answers with a redirect.
	Redirect *Redirect `yaml:"redirect"`
	// Rewrite changes the path and Host header sent upstream.
	Rewrite *Rewrite `yaml:"rewrite"`
	// Timeout bounds the whole upstream exchange (headers and body) for this
	// route. Default: the upstream's request_timeout.
	Timeout Duration `yaml:"timeout"`
	// BodyIdleTimeout overrides the upstream's body_idle_timeout for this
	// route. Default: the upstream's.
	BodyIdleTimeout Duration `yaml:"body_idle_timeout"`
	// Retry overrides the upstream's retry policy for this route.
	Retry *Retry `yaml:"retry"`
	// Mirror sends a copy of a sample of this route's requests to another
	// upstream (shadow traffic); see Mirror.
	Mirror *Mirror `yaml:"mirror"`
	// AllowEncodedSlash lets paths that contain encoded "/ \ NUL ; % ? #"
	// (%2F, %5C, %00, %3B, %25, %3F, %23) reach this route; they are kept
	// encoded. By default such requests get 400.
	AllowEncodedSlash bool `yaml:"allow_encoded_slash"`
	// Upgrades lists the protocols a client may switch to with an HTTP/1.1
	// Upgrade on this route (protocol names as in the Upgrade header,
	// compared case-insensitively). Default ["websocket"]; [] allows none.
	// "h2c" is never allowed. A request asking for any other protocol is
	// forwarded as a plain request without Upgrade, HTTP2-Settings and the
	// Connection header.
	Upgrades []string `yaml:"upgrades"`
	// Plugins run for this route only, after global plugins of the same phase.
	Plugins []PluginSpec `yaml:"plugins"`
}

// Match is the set of conditions a request must meet; all given ones must hold.
type Match struct {
	// Hosts are exact names or "*.example.org" wildcards (one or more labels).
	// Empty matches any host.
	Hosts []string `yaml:"hosts"`
	// Path matches exactly; "{name}" segments capture one segment and
	// "{name...}" as the last segment captures the rest.
	Path string `yaml:"path"`
	// PathPrefix matches the path itself and anything below it, on segment
	// boundaries ("/users" matches "/users" and "/users/1", not "/usersx").
	PathPrefix string `yaml:"path_prefix"`
	// PathRegex is an RE2 expression matched against the normalised path.
	PathRegex string `yaml:"path_regex"`
	// Methods, when set, restricts the HTTP methods.
	Methods []string `yaml:"methods"`
	// Headers must all be present with exactly these values. Values of
	// credential-like names (see SensitiveName) are redacted by the admin API.
	Headers map[string]string `yaml:"headers" secret:"sensitive"`
	// Query parameters must all be present with exactly these values (values
	// of credential-like names are redacted by the admin API).
	Query map[string]string `yaml:"query" secret:"sensitive"`
}

// Respond is a direct response.
type Respond struct {
	// Status is the HTTP status, 100 to 599.
	Status int `yaml:"status"`
	// Body is the response body, sent as given.
	Body string `yaml:"body"`
	// Headers of the response; values of credential-like names (such as
	// Set-Cookie) are redacted by the admin API.
	Headers map[string]string `yaml:"headers" secret:"sensitive"`
}

// Redirect answers with a Location header built from the request.
type Redirect struct {
	// URL, when set, is the full target; otherwise the request URL is kept with
	// the Scheme, Host and Path given here replaced.
	URL string `yaml:"url"`
	// Scheme replaces the request's scheme ("https").
	Scheme string `yaml:"scheme"`
	// Host replaces the request's host (and port).
	Host string `yaml:"host"`
	// Path replaces the request's path.
	Path string `yaml:"path"`
	// Status is 301, 302 (default), 303, 307 or 308.
	Status int `yaml:"status"`
	// DropQuery removes the query string from the target.
	DropQuery bool `yaml:"drop_query"`
}

// Rewrite changes the request before it goes upstream.
type Rewrite struct {
	// StripPrefix removes this prefix from the path ("/users/1" → "/1").
	StripPrefix string `yaml:"strip_prefix"`
	// ReplacePrefix replaces the matched path_prefix with this value.
	ReplacePrefix *string `yaml:"replace_prefix"`
	// Regex rewrites the path with an RE2 expression and $1-style replacement.
	Regex *RegexRewrite `yaml:"regex"`
	// Host is the Host header policy: "preserve" (default: the client's),
	// "upstream" (the target's host:port) or any literal host.
	Host string `yaml:"host"`
	// Path replaces the path with a template of literal path text and
	// {name} parameters of match.path ("/v2/accounts/{id}"); not with
	// strip_prefix, replace_prefix or regex.
	Path string `yaml:"path"`
	// Prefix is prepended to the upstream path after the other path
	// rewrites ("/internal": "/users/1" → "/internal/users/1").
	Prefix string `yaml:"prefix"`
	// Query removes, renames, sets and adds query parameters.
	Query *QueryRewrite `yaml:"query"`
}

// RegexRewrite rewrites the path with regexp.ReplaceAllString semantics.
type RegexRewrite struct {
	// Pattern is an RE2 expression matched against the path.
	Pattern string `yaml:"pattern"`
	// Replacement replaces the match; $1 or ${1} insert a group.
	Replacement string `yaml:"replacement"`
}

// PluginSpec names a plugin and carries its still-undecoded configuration;
// the plugin decodes it strictly into its own type at load time.
type PluginSpec struct {
	// Name is the plugin to run, such as "cors", "jwt" or "rate_limit".
	Name string `yaml:"name"`
	// Config is the plugin's settings, decoded strictly into its own type.
	Config yaml.Node `yaml:"config"`
	// Path is the YAML path of this spec (e.g. "routes[2].plugins[0]"), set by Load.
	Path string `yaml:"-"`
}
