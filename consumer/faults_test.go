package consumer_test

import (
	"context"
	"errors"
	"math/big"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	. "github.com/gokcl/kcl/consumer"
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
		stream := newStream(testStream, 1)
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

// TestShutdownOverrunInBatchStillCheckpointsIt: the batch in flight at
// shutdown overruns ShutdownTimeout; its processor, its context cancelled,
// reports it processed all the same: the final checkpoint covers it, so
// the next owner does not process it again.
func TestShutdownOverrunInBatchStillCheckpointsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 10, 5)
		store := lease.NewMemoryStore()
		col := newCollector()
		stuck := make(chan struct{})
		var last Record
		proc := RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			if col.unique() < 10 {
				col.add(b)
				return nil
			}
			last = b.Records[len(b.Records)-1]
			close(stuck)
			<-ctx.Done() // past ShutdownTimeout
			return nil   // and yet done
		})
		cfg := testConfig(stream, store, "w1", func(string) RecordProcessor { return proc })
		cfg.CheckpointInterval = time.Hour // checkpoints deferred, not written
		r := start(t, cfg)
		waitFor(t, time.Minute, "10 records", func() bool { return col.unique() == 10 })
		putPlain(stream, "y", 5, 5)
		<-stuck
		r.stop(t)
		l := leaseOf(t, store, "shardId-000000000000")
		require.Empty(t, l.Owner, "released")
		require.Equal(t, last.Position(), l.Checkpoint, "the batch that overran, processed, is checkpointed")
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
		stream := newStream(testStream, 1)
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

// endFailProc processes records, fails ShardEnded until told otherwise, and
// records its callbacks.
type endFailProc struct {
	endLossProc
	failing chan struct{} // closed at the first failing ShardEnded
	once    sync.Once
}

func (p *endFailProc) ProcessRecords(context.Context, *Batch) error {
	p.note("process")
	return nil
}

func (p *endFailProc) ShardEnded(context.Context, ShardInfo) error {
	p.note("ended")
	p.once.Do(func() { close(p.failing) })
	return errors.New("not now")
}

func (p *endFailProc) ShutdownRequested(context.Context, ShardInfo) error {
	p.note("shutdown")
	return nil
}

// A shard interrupted while it is ending (ShardEnded keeps failing) is not
// finished: a graceful shutdown releases it at its last checkpoint (the
// next owner ends it), and a lost lease is reported as such.
func TestInterruptedWhileEnding(t *testing.T) {
	for _, how := range []string{"shutdown", "lease lost"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stream := newStream(testStream, 1)
				putPlain(stream, "x", 10, 5)
				parent := "shardId-000000000000"
				left, right, err := stream.Split(parent, nil)
				require.NoError(t, err)
				store := lease.NewMemoryStore()
				proc := &endFailProc{failing: make(chan struct{})}
				newProc := func(shardID string) RecordProcessor {
					if shardID == parent {
						return proc
					}
					return RecordProcessorFunc(func(context.Context, *Batch) error { return nil })
				}
				r := start(t, testConfig(stream, store, "w1", newProc))
				<-proc.failing
				if how == "shutdown" {
					r.stop(t)
					require.Equal(t, "shutdown", proc.got()[len(proc.got())-1])
					l := leaseOf(t, store, parent)
					require.Empty(t, l.Owner, "released")
					require.False(t, l.Finished(), "not at SHARD_END: ShardEnded never succeeded")
				} else {
					_, err = store.Take(context.Background(), leaseOf(t, store, parent), "intruder")
					require.NoError(t, err)
					waitFor(t, time.Minute, "LeaseLost", func() bool { return slices.Contains(proc.got(), "lost") })
					r.stop(t)
					require.Equal(t, "lost", proc.got()[len(proc.got())-1])
					require.NotContains(t, proc.got(), "shutdown")
					l := leaseOf(t, store, parent)
					require.Equal(t, "intruder", l.Owner)
					require.False(t, l.Finished())
				}
				for _, child := range []string{left, right} {
					for _, l := range allLeases(t, store) {
						require.NotEqual(t, child, l.Key, "no child lease before the parent ends")
					}
				}
			})
		})
	}
}
