package gateway

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// newServerErrorLog returns the http.Server's ErrorLog. What net/http
// reports there — a handler panic with its stack, an Accept failure, a
// malformed HTTP/2 stream — is an error the operator must see, so it is
// logged at ERROR. TLS handshake failures are caused by clients: the
// endless EOFs, resets and timeouts of scanners and load-balancer probes
// go to DEBUG, other handshake failures (protocol version, unknown CA, a
// missing certificate) to WARN.
func newServerErrorLog(logger *slog.Logger) *log.Logger {
	return log.New(serverErrorLog{logger: logger}, "", 0)
}

type serverErrorLog struct{ logger *slog.Logger }

// Write logs one message; log.Logger calls it once per message.
func (l serverErrorLog) Write(p []byte) (int, error) {
	level := serverLogLevel(p)
	ctx := context.Background()
	if l.logger.Enabled(ctx, level) {
		l.logger.Log(ctx, level, strings.TrimRight(string(p), "\n"), "source", "http.Server")
	}
	return len(p), nil
}

// handshakeNoise are the endings of TLS handshake errors in which the peer
// simply went away.
var handshakeNoise = [...]string{
	": EOF",
	"connection reset by peer",
	"i/o timeout",
	"broken pipe",
	"use of closed network connection",
}

// serverLogLevel classifies one net/http error log message.
func serverLogLevel(p []byte) slog.Level {
	msg := bytes.TrimRight(p, "\r\n")
	if !bytes.HasPrefix(msg, []byte("http: TLS handshake error")) {
		return slog.LevelError
	}
	for _, s := range handshakeNoise {
		if bytes.HasSuffix(msg, []byte(s)) {
			return slog.LevelDebug
		}
	}
	return slog.LevelWarn
}
