package every

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Tick calls its function on the interval and returns once the context is
// done, calling it no more.
func TestTickRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		Tick(ctx, time.Millisecond, func(context.Context) {
			if calls.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Tick did not return after its context was cancelled")
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3 (none after the cancel)", n)
	}
}
