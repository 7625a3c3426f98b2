// Package every runs a background job on a fixed interval: the loop the
// processor's feedback pull and the exporter's service-graph flush share.
package every

import (
	"context"
	"time"
)

// Tick calls fn(ctx) every interval until ctx is done, then returns. The
// first call comes one interval after the start.
func Tick(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
