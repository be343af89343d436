package consumer

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff produces exponentially growing delays with jitter: attempt n waits
// a random duration in [d/2, d] where d = min(max, base·2^(n-1)). Half of the
// delay is jitter, so workers that failed together do not retry together.
type backoff struct {
	base, max time.Duration
	attempt   int
}

func (b *backoff) next() time.Duration {
	b.attempt++
	d := b.base
	for i := 1; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.attempt = 0 }

// sleep waits d or until ctx is done, and reports whether the full delay
// passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
