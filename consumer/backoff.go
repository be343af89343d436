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

// The backoff policies of the consumer's retry loops, in one place. They
// differ on purpose:
var (
	// fetchBackoff retries GetRecords and GetShardIterator: throttling
	// (5 reads a second per shard, shared with other applications) clears
	// within a second, so it starts short, and it is capped low so that a
	// shard is never left unread for long after a longer fault.
	fetchBackoff = backoff{base: 100 * time.Millisecond, max: 10 * time.Second}
	// workBackoff retries the processor's callbacks (a failed batch is
	// delivered again) and the lease-table writes at the end of a shard: a
	// failing processor usually waits on something of its own (a database,
	// a downstream service) and gains nothing from being called faster.
	workBackoff = backoff{base: 200 * time.Millisecond, max: 30 * time.Second}
	// syncBackoff retries a failed shard listing and lease creation, once
	// per consumer rather than per shard: ListShards is limited per stream,
	// shared by every worker of every application, and a listing can wait.
	syncBackoff = backoff{base: 500 * time.Millisecond, max: 30 * time.Second}
)

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
