package plugin

import (
	"fmt"
	"io"

	"github.com/portico-gw/portico/internal/usage"
)

// SharedPool holds the long-lived values plugin instances share across
// routes and across reloads, reference-counted by key (see usage.Pool for
// the contract): the first Shared call for a key creates the value, later
// calls get the same value, and the value is closed when the last holder
// releases it. Because a reload builds the new snapshot (acquiring) before
// the old one is cleaned up (releasing), a value in use by both lives on.
//
// The gateway's Runtime owns one pool and hands it to plugins through
// Context.Shared; plugins never keep package-global registries. Keys are
// namespaced by convention as "<plugin name>/<what>".
type SharedPool = usage.Pool[io.Closer]

// NewSharedPool returns an empty pool.
func NewSharedPool() *SharedPool { return usage.New[io.Closer](nil) }

// SharedAs is ctx.Shared typed: it returns the value under key as a T,
// creating it with create when nobody holds one, and fails (releasing its
// reference) if another plugin holds a value of a different type under key.
func SharedAs[T io.Closer](ctx Context, key string, create func() (T, error)) (T, func(), error) {
	var zero T
	v, release, err := ctx.Shared(key, func() (io.Closer, error) { return create() })
	if err != nil {
		return zero, nil, err
	}
	t, ok := v.(T)
	if !ok {
		release()
		return zero, nil, fmt.Errorf("shared value %q is a %T, not a %T", key, v, zero)
	}
	return t, release, nil
}
