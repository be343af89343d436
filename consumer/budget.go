package consumer

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// budget bounds the record bytes fetched but not yet processed, across all
// shards. A fetcher reserves an estimate before each GetRecords call (the size
// of its previous response, at least minReservation) and settles to the real
// size after it, so that at most one response per shard can exceed its
// reservation; the bytes are returned once the batch is processed.
type budget struct {
	sem  *semaphore.Weighted
	size int64
}

const minReservation = 64 << 10

func newBudget(size int64) *budget {
	return &budget{sem: semaphore.NewWeighted(size), size: size}
}

// acquire blocks until n bytes (capped at the whole budget) are available.
// It returns the amount actually held, to hand back to release.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(max(n, 0), b.size)
	if n == 0 {
		return 0, nil
	}
	if err := b.sem.Acquire(ctx, n); err != nil {
		return 0, err
	}
	return n, nil
}

// settle adjusts a reservation of held bytes to actual bytes: it returns the
// surplus at once, or takes the shortfall when it is available without
// waiting (the response is already in memory; blocking here could deadlock
// shards that each hold part of the budget). It returns the new amount held.
func (b *budget) settle(held, actual int64) int64 {
	actual = min(max(actual, 0), b.size)
	switch {
	case actual < held:
		b.sem.Release(held - actual)
		return actual
	case actual > held && b.sem.TryAcquire(actual-held):
		return actual
	}
	return held
}

func (b *budget) release(n int64) {
	if n > 0 {
		b.sem.Release(n)
	}
}
