package proxy

import "sync"

// copyBufferSize is the size of the buffers that stream bodies.
const copyBufferSize = 32 << 10

var buffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// bufferPool lends the reverse proxy fixed-size copy buffers so streaming a body
// does not allocate 32 KiB per request.
type bufferPool struct{}

func (bufferPool) Get() []byte { return *(buffers.Get().(*[]byte)) }

func (bufferPool) Put(b []byte) {
	if cap(b) != copyBufferSize {
		return
	}
	b = b[:copyBufferSize]
	buffers.Put(&b)
}
