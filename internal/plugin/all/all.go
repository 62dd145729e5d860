// Package all imports every bundled plugin, so that importing it registers
// them all: the gateway builds configs with them and the JSON Schema
// generator describes their configs. A new plugin package is added here.
package all

import (
	_ "github.com/portico-gw/portico/internal/plugin/acl"
	_ "github.com/portico-gw/portico/internal/plugin/auth/basicauth"
	_ "github.com/portico-gw/portico/internal/plugin/auth/forwardauth"
	_ "github.com/portico-gw/portico/internal/plugin/auth/hmacauth"
	_ "github.com/portico-gw/portico/internal/plugin/auth/introspection"
	_ "github.com/portico-gw/portico/internal/plugin/auth/jwt"
	_ "github.com/portico-gw/portico/internal/plugin/auth/keyauth"
	_ "github.com/portico-gw/portico/internal/plugin/auth/mtls"
	_ "github.com/portico-gw/portico/internal/plugin/auth/oidclogin"
	_ "github.com/portico-gw/portico/internal/plugin/bodytransform"
	_ "github.com/portico-gw/portico/internal/plugin/cache"
	_ "github.com/portico-gw/portico/internal/plugin/compression"
	_ "github.com/portico-gw/portico/internal/plugin/concurrency"
	_ "github.com/portico-gw/portico/internal/plugin/cors"
	_ "github.com/portico-gw/portico/internal/plugin/fault"
	_ "github.com/portico-gw/portico/internal/plugin/headers"
	_ "github.com/portico-gw/portico/internal/plugin/iprestriction"
	_ "github.com/portico-gw/portico/internal/plugin/quota"
	_ "github.com/portico-gw/portico/internal/plugin/ratelimit"
	_ "github.com/portico-gw/portico/internal/plugin/requestid"
	_ "github.com/portico-gw/portico/internal/plugin/sizelimit"
	_ "github.com/portico-gw/portico/internal/plugin/validate"
)
