package gateway

// Every bundled plugin registers itself in init; importing them all here
// makes them available to every config the gateway builds.
import _ "github.com/portico-gw/portico/internal/plugin/all"
