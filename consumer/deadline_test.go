package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/lease"
)

// hangingRenewals is a lease store whose renewals hang, ignoring their
// context, once hanging is set and until hang is closed.
type hangingRenewals struct {
	*lease.MemoryStore
	hanging atomic.Bool
	hang    chan struct{}
}

func (s *hangingRenewals) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if s.hanging.Load() {
		<-s.hang
	}
	return s.MemoryStore.Renew(ctx, l)
}

func TestNoDeliveryPastTheLeaseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A worker resumed after a pause longer than its lease: the lease
		// manager still holds the lease (its drop timer has not fired), but
		// the lease was last renewed more than 90% of FailoverTime ago.
		// Here the renewer is held up by a renewal that hangs while the
		// manager stops, so nothing drops the lease on time.
		ctx := context.Background()
		key := "shardId-000000000000"
		store := &hangingRenewals{MemoryStore: lease.NewMemoryStore(), hang: make(chan struct{})}
		unhang := sync.OnceFunc(func() { close(store.hang) })
		defer unhang()
		require.NoError(t, store.Create(ctx, lease.Lease{Key: key, Checkpoint: checkpoint.TrimHorizon}))
		var delivered atomic.Int32
		count := func(string) RecordProcessor {
			return RecordProcessorFunc(func(_ context.Context, b *Batch) error {
				delivered.Add(int32(len(b.Records)))
				return nil
			})
		}
		cfg := validConfig()
		cfg.LeaseStore, cfg.NewProcessor, cfg.WorkerID, cfg.FailoverTime = store, count, "w1", 3*time.Second
		c, err := New(cfg)
		require.NoError(t, err)
		require.NoError(t, c.setup(ctx))
		c.hardCtx = ctx
		c.co = newCoordinator(c) // its loop does not run: no worker starts by itself
		c.co.streams[c.single.info.ID] = c.single
		mctx, stopManager := context.WithCancel(ctx)
		managerDone := make(chan error, 1)
		go func() { managerDone <- c.mgr.Run(mctx) }()
		testenv.WaitFor(t, time.Minute, "the lease held", func() bool { _, ok := c.mgr.Lease(key); return ok })
		store.hanging.Store(true)
		time.Sleep(c.mgr.Config().RenewInterval) // a renewal is under way, and hangs
		stopManager()                            // its renewer now waits for that renewal
		time.Sleep(c.cfg.FailoverTime)           // past the lease's deadline
		l, held := c.mgr.Lease(key)
		require.True(t, held, "the drop timer has not fired")

		wctx, lose := context.WithCancelCause(ctx)
		defer lose(nil)
		w := newShardWorker(wctx, c, c.single, l, make(chan struct{}))
		w.proc = count(key)
		b := &fetchedBatch{records: []Record{{Data: []byte("late"), SequenceNumber: "7"}}, res: convertResult{last: checkpoint.At("7", 0)}}
		handled := make(chan error, 1)
		go func() { handled <- w.handle(wctx, b) }()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Zero(t, delivered.Load(), "a batch delivered after the lease's deadline")
		lose(errLeaseLost) // as OnLost does, once the drop timer fires
		require.ErrorIs(t, <-handled, ErrLeaseLost)
		require.Zero(t, delivered.Load())
		unhang()
		require.NoError(t, <-managerDone)
	})
}
