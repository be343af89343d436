package consumer_test

import (
	"context"
	"encoding/json"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/efotest"
	"github.com/gokcl/kcl/lease"
)

// shardOf returns the status of shard in st, or fails.
func shardOf(t *testing.T, st Status, shard string) ShardStatus {
	t.Helper()
	for _, s := range st.Shards {
		if s.ShardID == shard {
			return s
		}
	}
	t.Fatalf("shard %s not in the status: %+v", shard, st.Shards)
	return ShardStatus{}
}

// blockShard is a processor that blocks the batches of one shard until
// release is closed.
func blockShard(col *collector, blocked string, release <-chan struct{}) func(string) RecordProcessor {
	return func(shard string) RecordProcessor {
		return RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			if shard == blocked {
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			col.add(b)
			return nil
		})
	}
}

func TestStatusOfAConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putPlain(stream, "r", 40, 10)
		col := newCollector()
		release := make(chan struct{})
		cfg := testConfig(stream, lease.NewMemoryStore(), "w1", blockShard(col, shard0, release))
		c, err := New(cfg)
		require.NoError(t, err)
		before := c.Status()
		require.Equal(t, Status{Stream: testStream, App: "test-app", WorkerID: "w1", MaxBufferedBytes: DefaultMaxBufferedBytes,
			Shards: []ShardStatus{}, Problems: []string{"not running"}}, before)
		require.False(t, before.Healthy())

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			default: // stopped by the test
			}
		})
		waitFor(t, time.Minute, "shard 0 stuck in its processor", func() bool {
			st := c.Status()
			return len(st.Shards) == 2 && !shardOf(t, st, shard0).ProcessingSince.IsZero() && shardOf(t, st, shard1).RecordsProcessed > 0
		})
		st := c.Status()
		require.True(t, st.Running)
		require.True(t, st.Healthy(), st.Problems)
		require.Positive(t, st.BufferedBytes, "shard 0's batch is held")
		stuck := shardOf(t, st, shard0)
		require.Equal(t, ShardProcessing, stuck.State)
		require.Zero(t, stuck.RecordsProcessed)
		require.GreaterOrEqual(t, stuck.MillisBehindLatest, time.Since(stuck.ProcessingSince).Milliseconds(),
			"the batch's lag (0: it reached the newest record) plus the time since it was fetched, before processing began")
		require.False(t, stuck.LastRenewal.IsZero())
		require.False(t, st.LastTakerScan.IsZero())

		time.Sleep(10 * time.Second)
		st = c.Status()
		require.True(t, st.Healthy(), st.Problems)
		later := shardOf(t, st, shard0)
		require.Equal(t, stuck.MillisBehindLatest+10000, later.MillisBehindLatest, "a stuck processor's lag grows with time")
		require.Equal(t, stuck.ProcessingSince, later.ProcessingSince)
		free := shardOf(t, st, shard1)
		require.Zero(t, free.MillisBehindLatest, "a caught-up shard is at the tip")
		require.True(t, free.ProcessingSince.IsZero())
		require.Equal(t, ShardProcessing, free.State)
		require.False(t, free.Checkpoint.IsSentinel(), "checkpointed")
		require.Less(t, time.Since(free.LastRenewal), 2*time.Second)
		require.Less(t, time.Since(free.LastFetch), time.Second)

		close(release)
		waitFor(t, time.Minute, "every record", func() bool { return col.unique() == 40 })
		time.Sleep(time.Second)
		st = c.Status()
		require.Zero(t, shardOf(t, st, shard0).MillisBehindLatest, "caught up")
		require.Equal(t, int64(40), shardOf(t, st, shard0).RecordsProcessed+shardOf(t, st, shard1).RecordsProcessed)

		b, err := json.Marshal(st)
		require.NoError(t, err)
		require.Contains(t, string(b), `"state":"processing"`)

		cancel()
		require.NoError(t, <-done)
		done <- nil
		st = c.Status()
		require.False(t, st.Running)
		require.True(t, st.Stopping)
		require.Empty(t, st.Shards, "released")
		require.Equal(t, []string{"not running"}, st.Problems)
	})
}

// A child's lease held while its parent's is another worker's (which dies):
// the child waits for its parent.
func TestStatusWaitingForParents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "p", 5, 5)
		left, right, err := stream.Split(shard0, new(big.Int).Lsh(big.NewInt(1), 127))
		require.NoError(t, err)
		store := lease.NewMemoryStore()
		ctx := context.Background()
		require.NoError(t, store.Create(ctx, lease.Lease{Key: shard0, Owner: "ghost", Checkpoint: checkpoint.TrimHorizon}))
		for _, child := range []string{left, right} {
			require.NoError(t, store.Create(ctx, lease.Lease{Key: child, ParentShardIDs: []string{shard0}, Checkpoint: checkpoint.TrimHorizon}))
		}
		col := newCollector()
		r := start(t, testConfig(stream, store, "w1", col.processor()))
		// A worker is "starting" for a moment before it looks at its
		// parents: wait for the state rather than read it once.
		waitFor(t, time.Minute, "a child waiting for its parent", func() bool {
			for _, s := range r.c.Status().Shards {
				if s.State == ShardWaitingForParents {
					return true
				}
			}
			return false
		})
		for _, s := range r.c.Status().Shards {
			require.Contains(t, []string{left, right}, s.ShardID, "the parent is the ghost's for 3s")
			require.Contains(t, []ShardState{ShardStarting, ShardWaitingForParents}, s.State, s.ShardID)
		}
		waitFor(t, time.Minute, "the children processing after the parent", func() bool {
			st := r.c.Status()
			for _, s := range st.Shards {
				if s.State != ShardProcessing {
					return false
				}
			}
			return len(st.Shards) == 2 && col.unique() == 5
		})
	})
}

// faultyStore fails every write or scan while fail is set.
type faultyStore struct {
	lease.Store
	writes, scans atomic.Bool
}

var errUnreachable = &lease.ConfigError{Field: "test", Problem: "table unreachable"}

func (s *faultyStore) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if s.writes.Load() {
		return lease.Lease{}, errUnreachable
	}
	return s.Store.Renew(ctx, l)
}

func (s *faultyStore) UpdateCheckpoint(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if s.writes.Load() {
		return lease.Lease{}, errUnreachable
	}
	return s.Store.UpdateCheckpoint(ctx, l)
}

func (s *faultyStore) List(ctx context.Context) ([]lease.Lease, error) {
	if s.scans.Load() {
		return nil, errUnreachable
	}
	return s.Store.List(ctx)
}

func TestStatusReportsProblems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		store := &faultyStore{Store: lease.NewMemoryStore()}
		r := start(t, testConfig(stream, store, "w1", newCollector().processor()))
		waitFor(t, time.Minute, "the lease held", func() bool { return len(r.c.Status().Shards) == 1 })
		require.True(t, r.c.Status().Healthy())

		store.writes.Store(true)
		renew := time.Second // FailoverTime/3
		waitFor(t, time.Minute, "a renewal problem", func() bool { return !r.c.Status().Healthy() })
		st := r.c.Status()
		require.Len(t, st.Problems, 1)
		require.True(t, strings.HasPrefix(st.Problems[0], "lease "+shard0+" not renewed for "), st.Problems[0])
		require.Greater(t, time.Since(shardOf(t, st, shard0).LastRenewal), 2*renew)
		store.writes.Store(false)
		waitFor(t, time.Minute, "healthy again", func() bool { return r.c.Status().Healthy() })

		store.scans.Store(true)
		waitFor(t, time.Minute, "a scan problem", func() bool { return !r.c.Status().Healthy() })
		st = r.c.Status()
		require.Len(t, st.Problems, 1)
		require.True(t, strings.HasPrefix(st.Problems[0], "lease table not read for "), st.Problems[0])
		store.scans.Store(false)
		waitFor(t, time.Minute, "healthy again", func() bool { return r.c.Status().Healthy() })
	})
}

// With enhanced fan-out, Status takes the lag from the events: a processor
// stuck on an event 5 s behind shows a lag of at least that, growing.
func TestStatusWithFanOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 10, 5)
		time.Sleep(5 * time.Second)
		putPlain(stream, "y", 10, 5)
		time.Sleep(5 * time.Second)
		k, _ := newFanOut(stream, efotest.Options{EventRecords: 10})
		col := newCollector()
		release := make(chan struct{})
		r := start(t, fanOutConfig(k, lease.NewMemoryStore(), "w1", blockShard(col, shard0, release)))
		waitFor(t, time.Minute, "the first event in the processor", func() bool {
			st := r.c.Status()
			return len(st.Shards) == 1 && !st.Shards[0].ProcessingSince.IsZero()
		})
		s := r.c.Status().Shards[0]
		require.Equal(t, ShardProcessing, s.State)
		require.False(t, s.LastFetch.IsZero(), "the event's arrival")
		require.GreaterOrEqual(t, s.MillisBehindLatest, int64(5000))
		time.Sleep(2 * time.Second)
		require.GreaterOrEqual(t, r.c.Status().Shards[0].MillisBehindLatest, s.MillisBehindLatest+2000, "growing while stuck")
		close(release)
		waitFor(t, time.Minute, "20 records", func() bool { return col.unique() == 20 })
		waitFor(t, time.Minute, "caught up", func() bool { return r.c.Status().Shards[0].MillisBehindLatest == 0 })
		r.stop(t)
	})
}
