package gateway

// Every bundled plugin registers itself in init; importing them here makes
// them available to every config the gateway builds.
import (
	_ "github.com/portico-gw/portico/internal/plugin/cors"
	_ "github.com/portico-gw/portico/internal/plugin/headers"
	_ "github.com/portico-gw/portico/internal/plugin/requestid"
)
