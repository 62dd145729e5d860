package gateway

import (
	"time"

	"github.com/portico-gw/portico/internal/config"
)

// routeTimeout is the bound the forwarder of route rc applies to its
// upstream exchange: the route's timeout, else its upstream's
// request_timeout; 0 for none or for no route (plugin.Context.RouteTimeout).
func routeTimeout(cfg *config.Config, rc *config.Route) time.Duration {
	if rc == nil {
		return 0
	}
	if rc.Timeout > 0 {
		return rc.Timeout.D()
	}
	if u := cfg.Upstreams[rc.Upstream]; u != nil {
		return u.RequestTimeout.D()
	}
	return 0
}
