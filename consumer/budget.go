package consumer

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// budget bounds the record bytes fetched but not yet processed, across all
// shards: payload bytes plus the Record values describing them. A fetcher
// reserves, before each GetRecords call, the most the response can hold for
// the Limit it sends (see sizer), and settles to the real size after it, so
// the bound holds before the bytes arrive; the bytes are returned once the
// batch is processed.
//
// Only a fetcher holding nothing waits for budget; one that holds a batch
// already (in the processor) reads ahead only while the budget is less than
// half used, and otherwise waits for its own batch to be processed. So a
// stuck processor holds at most two batches and never queues for more ahead
// of shards that have nothing.
type budget struct {
	sem   *semaphore.Weighted
	size  int64
	inUse atomic.Int64 // bytes held now, for tests and logs
}

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
	b.inUse.Add(n)
	return n, nil
}

// tryReadAhead takes n bytes (capped at the whole budget) for a read-ahead
// if they are available now and the budget stays at most half used, so that
// read-aheads never take the room shards with nothing buffered need.
func (b *budget) tryReadAhead(n int64) (int64, bool) {
	n = min(max(n, 0), b.size)
	if b.inUse.Load()+n > b.size/2 || (n > 0 && !b.sem.TryAcquire(n)) {
		return 0, false
	}
	b.inUse.Add(n)
	return n, true
}

// settle adjusts a reservation of held bytes to actual bytes: it returns the
// surplus at once. A shortfall (only from a server sending more than
// Kinesis allows) is taken when it is available without waiting (the
// response is already in memory; blocking here could deadlock shards that
// each hold part of the budget). It returns the new amount held.
func (b *budget) settle(held, actual int64) int64 {
	actual = min(max(actual, 0), b.size)
	switch {
	case actual < held:
		b.release(held - actual)
		return actual
	case actual > held && b.sem.TryAcquire(actual-held):
		b.inUse.Add(actual - held)
		return actual
	}
	return held
}

func (b *budget) release(n int64) {
	if n > 0 {
		b.inUse.Add(-n)
		b.sem.Release(n)
	}
}
