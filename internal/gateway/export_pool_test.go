package gateway

import "github.com/portico-gw/portico/internal/plugin"

// SharedPool exposes the runtime's pool of values plugins share.
func SharedPool(rt *Runtime) *plugin.SharedPool { return rt.builder.Shared }
