package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// grpcFrames builds a gRPC body of messages with the given payload sizes.
func grpcFrames(sizes ...int) []byte {
	var b []byte
	for _, n := range sizes {
		b = append(b, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		b = append(b, bytes.Repeat([]byte{'m'}, n)...)
	}
	return b
}

// grpcReference returns how many bytes of body are passed on when it is
// read in reads of step bytes, and whether a message is over limit: the
// bytes before the oversized message's prefix, and those of the prefix
// that came in earlier reads than the one completing it.
func grpcReference(body []byte, limit int64, step int) (int, bool) {
	i := 0
	for len(body)-i >= 5 {
		n := int64(binary.BigEndian.Uint32(body[i+1 : i+5]))
		if n > limit {
			return max(i, (i+4)/step*step), true
		}
		i += 5 + int(min(n, int64(len(body)-i-5)))
	}
	return len(body), false
}

// readLimited reads body through LimitGRPCMessages in reads of at most
// step bytes.
func readLimited(body []byte, limit int64, step int) ([]byte, error) {
	r := LimitGRPCMessages(io.NopCloser(&stepReader{b: body, step: step}), limit)
	return io.ReadAll(r)
}

type stepReader struct {
	b    []byte
	step int
}

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.step)], s.b)
	s.b = s.b[n:]
	return n, nil
}

func TestLimitGRPCMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		body  []byte
		limit int64
		pass  int // bytes passed on
		over  bool
	}{
		{"empty", nil, 10, 0, false},
		{"messages under the limit, total over it", grpcFrames(10, 10, 10, 10), 10, 60, false},
		{"empty messages", grpcFrames(0, 0), 0, 10, false},
		{"first message over", grpcFrames(11), 10, 0, true},
		{"later message over", grpcFrames(3, 10, 11, 1), 10, 23, true},
		{"4 GiB length", append([]byte{0, 0xff, 0xff, 0xff, 0xff}, 'x'), 1 << 30, 0, true},
		{"truncated prefix", grpcFrames(3)[:7], 10, 7, false},
	}
	for _, tc := range tests {
		for _, step := range []int{1, 2, 4, 5, 6, 32 << 10} {
			got, err := readLimited(tc.body, tc.limit, step)
			var tooLarge *GRPCMessageTooLarge
			if isOver := errors.As(err, &tooLarge); isOver != tc.over || (!tc.over && err != nil) {
				t.Errorf("%s (reads of %d): error %v, want over=%v", tc.desc, step, err, tc.over)
			}
			want := tc.pass
			if tc.over {
				want, _ = grpcReference(tc.body, tc.limit, step)
			}
			if len(got) != want || !bytes.Equal(got, tc.body[:want]) {
				t.Errorf("%s (reads of %d): passed %d bytes, want the first %d", tc.desc, step, len(got), want)
			}
			if tc.over && want > tc.pass+4 {
				t.Errorf("%s (reads of %d): %d bytes of the oversized message passed on", tc.desc, step, want-tc.pass)
			}
		}
	}
	// The error carries the sizes; the client-facing message is fixed.
	_, err := readLimited(grpcFrames(2048), 1024, 1<<20)
	var tooLarge *GRPCMessageTooLarge
	if !errors.As(err, &tooLarge) || tooLarge.Size != 2048 || tooLarge.Limit != 1024 {
		t.Fatalf("error %#v, want sizes 2048 over 1024", err)
	}
	if err := iotest.TestReader(LimitGRPCMessages(io.NopCloser(bytes.NewReader(grpcFrames(1, 2, 3))), 3), grpcFrames(1, 2, 3)); err != nil {
		t.Error(err)
	}
}

// FuzzLimitGRPCMessages checks the reader against a whole-body reference
// parse, for any body, limit and read size.
func FuzzLimitGRPCMessages(f *testing.F) {
	f.Add(grpcFrames(3, 10, 11, 1), uint16(10), uint8(3))
	f.Add(grpcFrames(0, 0, 5), uint16(0), uint8(1))
	f.Add([]byte{0, 0, 0, 0}, uint16(1), uint8(7))
	f.Fuzz(func(t *testing.T, body []byte, limit uint16, step uint8) {
		got, err := readLimited(body, int64(limit), int(step)+1)
		wantN, wantOver := grpcReference(body, int64(limit), int(step)+1)
		var tooLarge *GRPCMessageTooLarge
		if errors.As(err, &tooLarge) != wantOver || (!wantOver && err != nil) {
			t.Fatalf("error %v, want over=%v", err, wantOver)
		}
		if !bytes.Equal(got, body[:wantN]) {
			t.Fatalf("passed %d bytes, want %d", len(got), wantN)
		}
	})
}
