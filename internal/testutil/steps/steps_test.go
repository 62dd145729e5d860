package steps

import (
	"sync/atomic"
	"testing"
)

func TestParallel(t *testing.T) {
	var ran atomic.Int32
	t.Run("group", func(t *testing.T) {
		Parallel(t,
			Step{Name: "one", Run: func(t *testing.T) { ran.Add(1) }},
			Step{Name: "two", Run: func(t *testing.T) { ran.Add(1) }},
		)
	})
	if got := ran.Load(); got != 2 {
		t.Errorf("%d steps ran, want 2", got)
	}
}
