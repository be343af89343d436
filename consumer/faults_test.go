package consumer

import (
	"context"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/internal/fakekinesis"
	"github.com/gokcl/kcl/lease"
)

// slowShutdownProc blocks in ShutdownRequested until its context is
// cancelled, past ShutdownTimeout.
type slowShutdownProc struct{ col *collector }

func (p *slowShutdownProc) ProcessRecords(_ context.Context, b *Batch) error {
	p.col.add(b)
	return nil
}

func (p *slowShutdownProc) ShutdownRequested(ctx context.Context, _ ShardInfo) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestShutdownOverrunStillCheckpointsAndReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := fakekinesis.New(testStream, 1)
		putPlain(stream, "x", 30, 5)
		store := lease.NewMemoryStore()
		col := newCollector()
		cfg := testConfig(stream, store, "w1", func(string) RecordProcessor { return &slowShutdownProc{col: col} })
		cfg.CheckpointInterval = time.Hour // the last checkpoint is deferred, not written
		r := start(t, cfg)
		waitFor(t, time.Minute, "30 records", func() bool { return col.unique() == 30 })
		r.stop(t)
		l := leaseOf(t, store, "shardId-000000000000")
		require.Empty(t, l.Owner, "the lease is released although ShutdownRequested overran ShutdownTimeout")
		recs := col.records[l.Key]
		require.Equal(t, recs[len(recs)-1].Position(), l.Checkpoint, "the last processed record is checkpointed")
	})
}

// endLossProc records its callbacks; its ProcessRecords blocks until the
// lease is lost, then reports success (the records were handled).
type endLossProc struct {
	inFlight chan struct{}
	mu       sync.Mutex
	calls    []string
}

func (p *endLossProc) note(what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, what)
}

func (p *endLossProc) got() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

func (p *endLossProc) ProcessRecords(ctx context.Context, _ *Batch) error {
	p.note("process")
	close(p.inFlight)
	<-ctx.Done()
	return nil
}

func (p *endLossProc) ShardEnded(context.Context, ShardInfo) error {
	p.note("ended")
	return nil
}

func (p *endLossProc) LeaseLost(context.Context, ShardInfo) { p.note("lost") }

func TestShardEndedIsNotCalledAfterTheLeaseIsLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The lease is lost while the shard's last batch is processed.
		stream := fakekinesis.New(testStream, 1)
		putPlain(stream, "x", 10, 5)
		parent := "shardId-000000000000"
		_, _, err := stream.Split(parent, new(big.Int).Lsh(big.NewInt(1), 127))
		require.NoError(t, err)
		store := lease.NewMemoryStore()
		proc := &endLossProc{inFlight: make(chan struct{})}
		newProc := func(shardID string) RecordProcessor {
			if shardID == parent {
				return proc
			}
			return RecordProcessorFunc(func(context.Context, *Batch) error { return nil })
		}
		r := start(t, testConfig(stream, store, "w1", newProc))
		<-proc.inFlight
		_, err = store.Take(context.Background(), leaseOf(t, store, parent), "intruder")
		require.NoError(t, err)
		waitFor(t, time.Minute, "LeaseLost", func() bool { return slices.Contains(proc.got(), "lost") })
		r.stop(t)
		require.Equal(t, []string{"process", "lost"}, proc.got())
	})
}

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
		col := newCollector()
		c, err := New(testConfig(fakekinesis.New(testStream, 1), store, "w1", col.processor()))
		require.NoError(t, err)
		require.NoError(t, c.setup(ctx))
		c.hardCtx = ctx
		c.co = newCoordinator(c) // its loop does not run: no worker starts by itself
		mctx, stopManager := context.WithCancel(ctx)
		managerDone := make(chan error, 1)
		go func() { managerDone <- c.mgr.Run(mctx) }()
		waitFor(t, time.Minute, "the lease held", func() bool { _, ok := c.mgr.Lease(key); return ok })
		store.hanging.Store(true)
		time.Sleep(c.mgr.Config().RenewInterval) // a renewal is under way, and hangs
		stopManager()                            // its renewer now waits for that renewal
		time.Sleep(c.cfg.FailoverTime)           // past the lease's deadline
		l, held := c.mgr.Lease(key)
		require.True(t, held, "the drop timer has not fired")

		wctx, lose := context.WithCancelCause(ctx)
		defer lose(nil)
		w := newShardWorker(wctx, c, l, make(chan struct{}))
		w.proc = col.processor()(key)
		b := &fetchedBatch{records: []Record{{Data: []byte("late"), SequenceNumber: "7"}}, res: convertResult{last: checkpoint.At("7", 0)}}
		handled := make(chan error, 1)
		go func() { handled <- w.handle(wctx, b) }()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Zero(t, col.unique(), "a batch delivered after the lease's deadline")
		lose(errLeaseLost) // as OnLost does, once the drop timer fires
		require.ErrorIs(t, <-handled, ErrLeaseLost)
		require.Zero(t, col.unique())
		unhang()
		require.NoError(t, <-managerDone)
	})
}
