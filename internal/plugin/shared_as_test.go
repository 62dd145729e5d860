package plugin

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"
)

type otherCloser struct{}

func (otherCloser) Close() error { return nil }

func TestSharedAs(t *testing.T) {
	t.Parallel()
	ctx := StaticContext{Pool: NewSharedPool()}
	var closed atomic.Int32
	create := func() (closeCounter, error) { return closeCounter{&closed}, nil }
	a, ra, err := SharedAs(ctx, "k", create)
	if err != nil {
		t.Fatal(err)
	}
	b, rb, _ := SharedAs(ctx, "k", create)
	if a != b {
		t.Fatal("same key, different values")
	}
	if _, _, err := SharedAs(ctx, "k", func() (otherCloser, error) { return otherCloser{}, nil }); err == nil ||
		!strings.Contains(err.Error(), "not a") {
		t.Fatalf("type clash: err = %v", err)
	}
	ra()
	rb()
	if closed.Load() != 1 || ctx.Pool.Len() != 0 {
		t.Fatalf("closed %d, Len %d; want 1, 0 (the failed SharedAs must release)", closed.Load(), ctx.Pool.Len())
	}
	var _ io.Closer = a
}
