package gateway

import "github.com/portico-gw/portico/internal/upstream"

// PoolStateOf is the state object of upstream name's pool in the current
// snapshot (nil when there is none); reloads keep it.
func PoolStateOf(rt *Runtime, name string) *upstream.PoolState {
	s := rt.Current()
	if s == nil || s.pools[name] == nil {
		return nil
	}
	return s.pools[name].State()
}
