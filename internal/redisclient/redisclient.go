// Package redisclient builds Redis clients from Portico's config: a single
// server, a Redis Cluster, or a Sentinel-managed primary, with bounded
// timeouts so a slow Redis cannot stall requests. Plugins get clients
// through Shared, from the gateway's pool (plugin.Context.Shared): clients
// are shared by address and settings and reference-counted, so every plugin
// instance and every snapshot of one gateway that uses the same Redis
// shares one connection pool.
package redisclient

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/config"
)

// Config selects and tunes a Redis deployment. Exactly one of Addr, Cluster
// and Sentinel.Addrs is set.
type Config struct {
	// Addr is host:port of a single server.
	Addr string `yaml:"addr"`
	// Cluster lists seed addresses of a Redis Cluster.
	Cluster []string `yaml:"cluster"`
	// Sentinel names the master and lists sentinel addresses.
	Sentinel *Sentinel `yaml:"sentinel"`
	// Username and Password authenticate (usually "${ENV}").
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	// DB selects the database (single server and sentinel only).
	DB int `yaml:"db"`
	// TLS enables TLS to Redis.
	TLS bool `yaml:"tls"`
	// Timeout bounds each call as a whole: the wait for a pooled
	// connection, one dial attempt, the handshake and the command.
	// Default 100ms.
	Timeout config.Duration `yaml:"timeout"`
	// PoolSize is the maximum connections per node. Default 10 per CPU.
	PoolSize int `yaml:"pool_size"`
	// KeyPrefix is prepended to every key Portico writes. Default "portico:".
	KeyPrefix string `yaml:"key_prefix"`
}

// Sentinel configures a Sentinel-managed deployment.
type Sentinel struct {
	MasterName string   `yaml:"master_name"`
	Addrs      []string `yaml:"addrs"`
	Password   string   `yaml:"password" secret:"true"`
}

// Validate checks the config and fills defaults.
func (c *Config) Validate() error {
	n := 0
	if c.Addr != "" {
		n++
	}
	if len(c.Cluster) > 0 {
		n++
	}
	if c.Sentinel != nil {
		n++
		if c.Sentinel.MasterName == "" || len(c.Sentinel.Addrs) == 0 {
			return errors.New("redis.sentinel needs master_name and addrs")
		}
	}
	if n != 1 {
		return errors.New("redis: set exactly one of addr, cluster, sentinel")
	}
	if c.Addr != "" {
		if err := config.CheckDialAddr(c.Addr); err != nil {
			return fmt.Errorf("redis.addr: %w", err)
		}
	}
	for i, a := range c.Cluster {
		if err := config.CheckDialAddr(a); err != nil {
			return fmt.Errorf("redis.cluster[%d]: %w", i, err)
		}
	}
	if c.Sentinel != nil {
		for i, a := range c.Sentinel.Addrs {
			if err := config.CheckDialAddr(a); err != nil {
				return fmt.Errorf("redis.sentinel.addrs[%d]: %w", i, err)
			}
		}
	}
	if c.Timeout == 0 {
		c.Timeout = config.Duration(100 * time.Millisecond)
	}
	if c.Timeout < 0 {
		return errors.New("redis.timeout must be positive")
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "portico:"
	}
	return nil
}

func (c *Config) key() string {
	s := []string{c.Addr, strings.Join(c.Cluster, ","), c.Username, c.Password, fmt.Sprint(c.DB, c.TLS, c.Timeout, c.PoolSize)}
	if c.Sentinel != nil {
		addrs := append([]string(nil), c.Sentinel.Addrs...)
		sort.Strings(addrs)
		s = append(s, c.Sentinel.MasterName, strings.Join(addrs, ","), c.Sentinel.Password)
	}
	return strings.Join(s, "|")
}

// Client is a Redis client with its key prefix.
type Client struct {
	redis.UniversalClient
	// Prefix is the configured key prefix.
	Prefix string
}

// SharedFunc is how Shared reaches the pool that holds shared values:
// the Shared method of the plugin's context (plugin.Context.Shared).
type SharedFunc func(key string, create func() (io.Closer, error)) (value any, release func(), err error)

// Shared returns a client for c (validated first) and the func that
// releases it (call it once, from Cleanup). Every caller with identical
// connection settings shares one connection pool held by shared; the last
// release closes it. The key prefix is the caller's own.
func Shared(shared SharedFunc, c *Config) (*Client, func(), error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	v, release, err := shared("redis/"+c.key(), func() (io.Closer, error) { return New(c) })
	if err != nil {
		return nil, nil, err
	}
	cl, ok := v.(*Client)
	if !ok {
		release()
		return nil, nil, fmt.Errorf("redis: shared value is a %T, not a client", v)
	}
	return &Client{UniversalClient: cl.UniversalClient, Prefix: c.KeyPrefix}, release, nil
}

// New returns a client of its own for c (validated first); the caller
// closes it. Plugins use Shared instead.
func New(c *Config) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	installLogger()
	t := c.Timeout.D()
	opts := &redis.UniversalOptions{
		Username:     c.Username,
		Password:     c.Password,
		DB:           c.DB,
		DialTimeout:  t,
		ReadTimeout:  t,
		WriteTimeout: t,
		PoolTimeout:  t,
		PoolSize:     c.PoolSize,
		MaxRetries:   -1,
		// Deadlines of the caller's context bound every read and write:
		// without this go-redis applies ReadTimeout afresh after a wait
		// for a pooled connection, so a call could take twice the timeout.
		ContextTimeoutEnabled: true,
		// One dial attempt per call: go-redis's retries back off 100ms
		// each, which only spends the timeout of a call that fails anyway.
		DialerRetries:   1,
		DisableIdentity: true,
	}
	switch {
	case c.Addr != "":
		opts.Addrs = []string{c.Addr}
	case len(c.Cluster) > 0:
		opts.Addrs = c.Cluster
		opts.IsClusterMode = true
	default:
		opts.Addrs = c.Sentinel.Addrs
		opts.MasterName = c.Sentinel.MasterName
		opts.SentinelPassword = c.Sentinel.Password
	}
	if c.TLS {
		opts.TLSConfig = tlsConfig()
	}
	return &Client{UniversalClient: redis.NewUniversalClient(opts), Prefix: c.KeyPrefix}, nil
}
