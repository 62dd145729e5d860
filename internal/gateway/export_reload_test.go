package gateway

// OnWatching sets a function Watch calls once it watches the directory.
func OnWatching(rl *Reloader, f func()) { rl.onWatching = f }
