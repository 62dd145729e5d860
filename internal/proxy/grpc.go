package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/portico-gw/portico/internal/request"
)

// GRPCMessageTooLarge is the request body error of a gRPC call that sent a
// message over the per-message limit. It maps to 413, which a gRPC client
// receives as RESOURCE_EXHAUSTED.
type GRPCMessageTooLarge struct {
	Size, Limit int64
}

func (e *GRPCMessageTooLarge) Error() string {
	return "grpc message of " + strconv.FormatInt(e.Size, 10) + " bytes over the limit of " + strconv.FormatInt(e.Limit, 10)
}

// msgGRPCTooLarge is the client-facing message of GRPCMessageTooLarge.
const msgGRPCTooLarge = "grpc message too large"

// LimitGRPCMessages bounds each message of a gRPC request body instead of
// its total: a gRPC stream may carry any number of messages for as long as
// it lives, but each length-prefixed message (1 flag byte, 4 bytes of
// big-endian length, the payload) must be at most limit bytes. A read that
// completes a larger message's prefix returns the bytes before that prefix
// (bytes of the prefix that came in earlier reads have been passed on); the
// next read fails with *GRPCMessageTooLarge, before any of the payload is
// passed on.
func LimitGRPCMessages(rc io.ReadCloser, limit int64) io.ReadCloser {
	return &grpcLimitReader{rc: rc, limit: limit}
}

type grpcLimitReader struct {
	rc    io.ReadCloser
	limit int64
	hdr   [5]byte // prefix of the next message, hn bytes of it read
	hn    int
	left  int64 // payload bytes of the current message still to come
	err   error
}

func (g *grpcLimitReader) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.rc.Read(p)
	if m, over := g.scan(p[:n]); over {
		g.err = &GRPCMessageTooLarge{Size: int64(uint32(g.hdr[1])<<24 | uint32(g.hdr[2])<<16 | uint32(g.hdr[3])<<8 | uint32(g.hdr[4])), Limit: g.limit}
		if m > 0 {
			return m, nil
		}
		return 0, g.err
	}
	return n, err
}

// scan follows the message framing through b. When a prefix announces a
// message over the limit it returns how many bytes of b precede that
// prefix, and true.
func (g *grpcLimitReader) scan(b []byte) (int, bool) {
	i := 0
	start := 0 // where in b the prefix being read began
	for i < len(b) {
		if g.left > 0 {
			k := int64(len(b) - i)
			if k > g.left {
				k = g.left
			}
			i += int(k)
			g.left -= k
			continue
		}
		if g.hn == 0 {
			start = i
		}
		g.hdr[g.hn] = b[i]
		g.hn++
		i++
		if g.hn == len(g.hdr) {
			g.hn = 0
			size := int64(uint32(g.hdr[1])<<24 | uint32(g.hdr[2])<<16 | uint32(g.hdr[3])<<8 | uint32(g.hdr[4]))
			if size > g.limit {
				return start, true
			}
			g.left = size
		}
	}
	return 0, false
}

func (g *grpcLimitReader) Close() error { return g.rc.Close() }

// endGRPCOnAbort runs deferred around the reverse proxy for gRPC calls. When the
// reverse proxy aborts a call whose response has started because the client sent
// a message over the limit, the call ends with trailers (grpc-status 8,
// RESOURCE_EXHAUSTED, and a message) instead of a bare stream reset. Other
// aborts continue.
func endGRPCOnAbort(w http.ResponseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	rec := request.RecordOf(r)
	var tooLarge *GRPCMessageTooLarge
	if p != http.ErrAbortHandler || rec == nil || !errors.As(rec.BodyErr(), &tooLarge) {
		panic(p)
	}
	h := w.Header()
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(request.GRPCCode(http.StatusRequestEntityTooLarge)))
	h.Set(http.TrailerPrefix+"Grpc-Message", msgGRPCTooLarge)
	rec.ErrorMsg = msgGRPCTooLarge
}

// Interface guards.
var (
	_ io.ReadCloser = (*grpcLimitReader)(nil)
	_ error         = (*GRPCMessageTooLarge)(nil)
)
