package proxy

import (
	"net/http"
	"net/http/httputil"

	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/request"
)

// dropH2CUpgrade is the proxy's own guard against h2c upgrades (the gateway
// already removes them on arrival): an h2c upgrade answered with 101 would
// turn the connection into an HTTP/2 tunnel past every route and plugin.
// The outbound request goes on as a plain request.
func dropH2CUpgrade(out http.Header) {
	delete(out, "Http2-Settings")
	if up := out["Upgrade"]; len(up) > 0 && httpx.HasToken(up, "h2c") {
		delete(out, "Upgrade")
		delete(out, "Connection")
	}
}

// setForwarded writes X-Forwarded-For/-Proto/-Host and X-Request-Id on the
// outbound request. The reverse proxy has already removed the client's
// X-Forwarded-* and Forwarded headers; they are carried over (and appended
// to) only when the peer is a trusted proxy.
func setForwarded(pr *httputil.ProxyRequest, rec *request.Record) {
	in, out := pr.In.Header, pr.Out.Header
	if rec == nil {
		pr.SetXForwarded()
		return
	}
	peer := ""
	if rec.Peer.IsValid() {
		peer = rec.Peer.String()
	}
	proto := "http"
	if rec.TLS {
		proto = "https"
	}
	if rec.TrustedPeer {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			out["X-Forwarded-For"] = []string{joinComma(prior) + ", " + peer}
		} else {
			out["X-Forwarded-For"] = []string{peer}
		}
		if v := in["X-Forwarded-Proto"]; len(v) > 0 {
			out["X-Forwarded-Proto"] = v
		} else {
			out["X-Forwarded-Proto"] = protoValue(proto)
		}
		if v := in["X-Forwarded-Host"]; len(v) > 0 {
			out["X-Forwarded-Host"] = v
		} else {
			out["X-Forwarded-Host"] = []string{pr.In.Host}
		}
		if v := in["Forwarded"]; len(v) > 0 {
			out["Forwarded"] = v
		}
	} else {
		out["X-Forwarded-For"] = []string{peer}
		out["X-Forwarded-Proto"] = protoValue(proto)
		out["X-Forwarded-Host"] = []string{pr.In.Host}
		delete(out, "X-Real-Ip")
	}
	if rec.RequestID != "" {
		out["X-Request-Id"] = []string{rec.RequestID}
	}
}

var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// protoValue returns a shared, read-only header value for the scheme.
func protoValue(p string) []string {
	if p == "https" {
		return protoHTTPS[:1:1]
	}
	return protoHTTP[:1:1]
}

func joinComma(v []string) string {
	if len(v) == 1 {
		return v[0]
	}
	n := 0
	for _, s := range v {
		n += len(s) + 2
	}
	b := make([]byte, 0, n)
	for i, s := range v {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s...)
	}
	return string(b)
}
