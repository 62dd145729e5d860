package gateway

import "time"

// SetMaxDrain shortens the drain period after which a retired snapshot
// that still serves requests is reported (set before the reload).
func SetMaxDrain(rt *Runtime, d time.Duration) { rt.maxDrain = d }

// PoolActive is the pool-wide in-flight count of upstream name in the
// current snapshot (the state shared across reloads).
func PoolActive(rt *Runtime, name string) int64 {
	s := rt.Current()
	if s == nil || s.pools[name] == nil {
		return -1
	}
	return s.pools[name].State().Active()
}

// UpgradedConns is the number of tracked upgraded client connections.
func UpgradedConns(rt *Runtime) int { return rt.upgrades.Len() }
