package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

func TestReadsEveryRecordOfEveryShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 4)
		putPlain(stream, "plain", 300, 40)
		putAggregated(t, stream, "agg", 1000, 50)
		col := newCollector()
		r := start(t, testConfig(stream, lease.NewMemoryStore(), "w1", col.processor()))
		waitFor(t, time.Minute, "1300 records", func() bool { return col.unique() == 1300 })
		putPlain(stream, "later", 100, 40)
		waitFor(t, time.Minute, "1400 records", func() bool { return col.unique() == 1400 })
		r.stop(t)
		require.Zero(t, col.duplicates())
		assertKeyOrder(t, col)
	})
}

// assertKeyOrder checks that each partition key's records arrived in the
// order they were written (data "prefix-i" with increasing i per prefix).
func assertKeyOrder(t *testing.T, col *collector) {
	t.Helper()
	for key, data := range col.byKey() {
		last := map[string]int{}
		for _, d := range data {
			var prefix string
			var i int
			_, err := fmt.Sscanf(replaceDash(d), "%s %d", &prefix, &i)
			require.NoError(t, err, d)
			if prev, ok := last[prefix]; ok {
				require.Greater(t, i, prev, "key %s: %s-%d after %s-%d", key, prefix, i, prefix, prev)
			}
			last[prefix] = i
		}
	}
}

func replaceDash(s string) string {
	i := len(s) - 1
	for i >= 0 && s[i] != '-' {
		i--
	}
	return s[:i] + " " + s[i+1:]
}

func TestFollowsSplitsAndMergesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		store := lease.NewMemoryStore()
		col := newCollector()
		r := start(t, testConfig(stream, store, "w1", col.processor()))
		putPlain(stream, "a", 200, 30)
		open := stream.OpenShards()
		mid := new(big.Int).Lsh(big.NewInt(1), 126) // inside the first shard's range
		_, _, err := stream.Split(open[0], mid)
		require.NoError(t, err)
		putPlain(stream, "b", 200, 30)
		open = stream.OpenShards()              // shard 1, and the two children of shard 0
		_, err = stream.Merge(open[1], open[2]) // the split's two children
		require.NoError(t, err)
		putAggregated(t, stream, "c", 400, 20)
		putPlain(stream, "d", 200, 30)
		waitFor(t, 2*time.Minute, "all records", func() bool { return col.unique() == 1000 })
		r.stop(t)
		require.Zero(t, col.duplicates())
		assertKeyOrder(t, col)
		for _, id := range []string{"shardId-000000000000", "shardId-000000000002", "shardId-000000000003"} {
			l := leaseOf(t, store, id)
			require.True(t, l.Finished(), "%s: %v", id, l.Checkpoint)
			require.NotEmpty(t, l.ChildShardIDs, id)
		}
		merged := leaseOf(t, store, "shardId-000000000004")
		require.Len(t, merged.ParentShardIDs, 2)
	})
}

func TestProcessorErrorRetriesTheSameBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 50, 5)
		var mu sync.Mutex
		var attempts []int
		var firstSeqs []string
		col := newCollector()
		proc := RecordProcessorFunc(func(_ context.Context, b *Batch) error {
			mu.Lock()
			attempts = append(attempts, b.Attempt)
			firstSeqs = append(firstSeqs, b.Records[0].SequenceNumber)
			mu.Unlock()
			if b.Attempt < 3 {
				return errors.New("downstream unavailable")
			}
			col.add(b)
			return nil
		})
		cfg := testConfig(stream, lease.NewMemoryStore(), "w1", func(string) RecordProcessor { return proc })
		cfg.MaxRecords = 50
		r := start(t, cfg)
		waitFor(t, time.Minute, "50 records", func() bool { return col.unique() == 50 })
		r.stop(t)
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, []int{1, 2, 3}, attempts[:3])
		require.Equal(t, firstSeqs[0], firstSeqs[1])
		require.Equal(t, firstSeqs[0], firstSeqs[2])
		require.Zero(t, col.duplicates())
	})
}

func TestProcessorPanicIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 10, 5)
		col := newCollector()
		proc := RecordProcessorFunc(func(_ context.Context, b *Batch) error {
			if b.Attempt == 1 {
				panic("boom")
			}
			col.add(b)
			return nil
		})
		r := start(t, testConfig(stream, lease.NewMemoryStore(), "w1", func(string) RecordProcessor { return proc }))
		waitFor(t, time.Minute, "10 records", func() bool { return col.unique() == 10 })
		r.stop(t)
	})
}

func TestWorkersShareShardsEvenly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 6)
		store := lease.NewMemoryStore()
		col := newCollector()
		var rs []*running
		for i := range 3 {
			rs = append(rs, start(t, testConfig(stream, store, fmt.Sprintf("w%d", i), col.processor())))
		}
		owners := func() map[string]int {
			o := map[string]int{}
			for _, l := range allLeases(t, store) {
				o[l.Owner]++
			}
			return o
		}
		waitFor(t, time.Minute, "2 leases each", func() bool {
			o := owners()
			return len(o) == 3 && o["w0"] == 2 && o["w1"] == 2 && o["w2"] == 2
		})
		// Balanced can be a passing state while a steal is under way: wait
		// one failover time more, then the assignment must hold still.
		time.Sleep(3 * time.Second)
		require.Equal(t, map[string]int{"w0": 2, "w1": 2, "w2": 2}, owners())
		putPlain(stream, "x", 600, 60)
		waitFor(t, time.Minute, "600 records", func() bool { return col.unique() == 600 })
		// Steady state: another minute without owner changes or duplicates.
		before := allLeases(t, store)
		time.Sleep(time.Minute)
		after := allLeases(t, store)
		for i := range before {
			require.Equal(t, before[i].Owner, after[i].Owner, before[i].Key)
		}
		for _, r := range rs {
			r.stop(t)
		}
		require.Zero(t, col.duplicates())
	})
}

func TestGracefulShutdownCheckpointsAndReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putPlain(stream, "x", 100, 10)
		store := lease.NewMemoryStore()
		col := newCollector()
		calls := map[string]int{}
		var mu sync.Mutex
		newProc := func(string) RecordProcessor {
			return &lifecycleProc{col: col, mu: &mu, calls: calls}
		}
		r := start(t, testConfig(stream, store, "w1", newProc))
		waitFor(t, time.Minute, "100 records", func() bool { return col.unique() == 100 })
		r.stop(t)
		for _, l := range allLeases(t, store) {
			require.Empty(t, l.Owner, "lease %s released", l.Key)
			recs := col.records[l.Key]
			require.Equal(t, recs[len(recs)-1].Position(), l.Checkpoint, "final checkpoint of %s", l.Key)
		}
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, 2, calls["init"])
		require.Equal(t, 2, calls["shutdown"])
		require.Zero(t, calls["lost"])
	})
}

type lifecycleProc struct {
	col   *collector
	mu    *sync.Mutex
	calls map[string]int
}

func (p *lifecycleProc) note(what string) {
	p.mu.Lock()
	p.calls[what]++
	p.mu.Unlock()
}

func (p *lifecycleProc) ProcessRecords(_ context.Context, b *Batch) error {
	p.col.add(b)
	return nil
}
func (p *lifecycleProc) InitializeShard(context.Context, ShardInfo) error { p.note("init"); return nil }
func (p *lifecycleProc) ShardEnded(context.Context, ShardInfo) error      { p.note("ended"); return nil }
func (p *lifecycleProc) LeaseLost(context.Context, ShardInfo)             { p.note("lost") }
func (p *lifecycleProc) ShutdownRequested(context.Context, ShardInfo) error {
	p.note("shutdown")
	return nil
}

func TestRestartResumesInsideAnAggregate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putAggregated(t, stream, "agg", 100, 100) // one aggregate of 100 user records
		store := lease.NewMemoryStore()
		col := newCollector()
		// The first run checkpoints by hand after user record 41 only.
		proc := RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			col.add(b)
			return b.CheckpointAt(ctx, b.Records[41])
		})
		cfg := testConfig(stream, store, "w1", func(string) RecordProcessor { return proc })
		cfg.ManualCheckpoint = true
		r := start(t, cfg)
		waitFor(t, time.Minute, "100 records", func() bool { return col.unique() == 100 })
		r.stop(t)
		l := leaseOf(t, store, "shardId-000000000000")
		require.EqualValues(t, 41, l.Checkpoint.SubSequenceNumber)

		col2 := newCollector()
		r2 := start(t, testConfig(stream, store, "w2", col2.processor()))
		waitFor(t, time.Minute, "58 records", func() bool { return col2.unique() == 58 })
		r2.stop(t)
		got := col2.records["shardId-000000000000"]
		require.EqualValues(t, 42, got[0].SubSequenceNumber)
		require.EqualValues(t, 99, got[len(got)-1].SubSequenceNumber)
	})
}

func TestLeaseLostStopsTheShardAndRefusesCheckpoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 5, 5)
		store := lease.NewMemoryStore()
		var lost atomic.Int32
		var held atomic.Pointer[Batch]
		released := make(chan struct{})
		proc := &lossProc{lost: &lost, held: &held, release: released}
		cfg := testConfig(stream, store, "w1", func(string) RecordProcessor { return proc })
		r := start(t, cfg)
		waitFor(t, time.Minute, "a batch in flight", func() bool { return held.Load() != nil })
		// Another worker takes the lease behind our back.
		l := leaseOf(t, store, "shardId-000000000000")
		_, err := store.Take(context.Background(), l, "intruder")
		require.NoError(t, err)
		waitFor(t, time.Minute, "LeaseLost", func() bool { return lost.Load() == 1 })
		err = held.Load().Checkpoint(context.Background())
		require.ErrorIs(t, err, ErrLeaseLost)
		close(released)
		r.stop(t)
		require.Equal(t, "intruder", leaseOf(t, store, "shardId-000000000000").Owner)
	})
}

type lossProc struct {
	lost    *atomic.Int32
	held    *atomic.Pointer[Batch]
	release chan struct{}
}

func (p *lossProc) ProcessRecords(ctx context.Context, b *Batch) error {
	p.held.Store(b)
	select {
	case <-ctx.Done():
	case <-p.release:
	}
	return ctx.Err()
}
func (p *lossProc) LeaseLost(context.Context, ShardInfo) { p.lost.Add(1) }

func TestThrottlingAndExpiredIteratorsLoseNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putPlain(stream, "x", 500, 20)
		var n atomic.Int64
		stream.SetFault(func(op kcltest.Op) error {
			if op != kcltest.OpGetRecords {
				return nil
			}
			switch n.Add(1) % 7 {
			case 2:
				return kcltest.ThrottlingError()
			case 5:
				return kcltest.ExpiredIteratorError()
			}
			return nil
		})
		col := newCollector()
		cfg := testConfig(stream, lease.NewMemoryStore(), "w1", col.processor())
		cfg.MaxRecords = 25
		r := start(t, cfg)
		waitFor(t, 5*time.Minute, "500 records", func() bool { return col.unique() == 500 })
		r.stop(t)
		require.Zero(t, col.duplicates())
		assertKeyOrder(t, col)
	})
}

func TestLatestSkipsEarlierRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putPlain(stream, "old", 50, 10)
		store := lease.NewMemoryStore()
		col := newCollector()
		cfg := testConfig(stream, store, "w1", col.processor())
		cfg.InitialPosition = Latest
		r := start(t, cfg)
		waitFor(t, time.Minute, "leases at LATEST", func() bool {
			ls := allLeases(t, store)
			return len(ls) == 2 && ls[0].Owner == "w1" && ls[1].Owner == "w1"
		})
		time.Sleep(time.Second) // let the fetchers take their LATEST iterators
		putPlain(stream, "new", 30, 10)
		waitFor(t, time.Minute, "30 new records", func() bool { return col.unique() == 30 })
		r.stop(t)
		for _, data := range col.byKey() {
			for _, d := range data {
				require.Contains(t, d, "new-")
			}
		}
	})
}

func TestChildWaitsForBothParentsOfAMerge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putPlain(stream, "a", 40, 8)
		ids := stream.OpenShards()
		merged, err := stream.Merge(ids[0], ids[1])
		require.NoError(t, err)
		putPlain(stream, "b", 40, 8)
		// The second parent is slow: its processor blocks until released.
		gate := make(chan struct{})
		col := newCollector()
		newProc := func(shardID string) RecordProcessor {
			return RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
				if shardID == ids[1] {
					select {
					case <-gate:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				col.add(b)
				return nil
			})
		}
		store := lease.NewMemoryStore()
		r := start(t, testConfig(stream, store, "w1", newProc))
		waitFor(t, time.Minute, "first parent done", func() bool {
			for _, l := range allLeases(t, store) {
				if l.Key == ids[0] && l.Finished() {
					return true
				}
			}
			return false
		})
		time.Sleep(10 * time.Second)
		col.mu.Lock()
		require.Empty(t, col.records[merged], "the merge child must wait for its second parent")
		col.mu.Unlock()
		close(gate)
		waitFor(t, time.Minute, "all 80", func() bool { return col.unique() == 80 })
		r.stop(t)
		assertKeyOrder(t, col)
	})
}

func TestRunTwiceIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		store := lease.NewMemoryStore()
		r := start(t, testConfig(stream, store, "w1", newCollector().processor()))
		waitFor(t, time.Minute, "the first Run to hold the lease", func() bool {
			ls := allLeases(t, store)
			return len(ls) == 1 && ls[0].Owner == "w1"
		})
		require.ErrorIs(t, r.c.Run(context.Background()), ErrAlreadyRunning)
		r.stop(t)
	})
}

func TestMissingStreamFailsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream("other", 1)
		cfg := testConfig(stream, lease.NewMemoryStore(), "w1", newCollector().processor())
		c, err := New(cfg)
		require.NoError(t, err)
		err = c.Run(context.Background())
		var nf *types.ResourceNotFoundException
		require.ErrorAs(t, err, &nf)
	})
}

func TestCheckpointAheadIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 3, 3)
		errs := make(chan error, 1)
		proc := RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			ahead := b.Records[len(b.Records)-1]
			ahead.SequenceNumber = "9" + ahead.SequenceNumber
			select {
			case errs <- b.CheckpointAt(ctx, ahead):
			default:
			}
			return nil
		})
		r := start(t, testConfig(stream, lease.NewMemoryStore(), "w1", func(string) RecordProcessor { return proc }))
		require.ErrorIs(t, <-errs, ErrCheckpointAhead)
		r.stop(t)
	})
}

func TestDropMisroutedAggregatesDropsTheAggregateWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// After a split, an aggregate put with a stale shard map lands in
		// one child although some of its user records hash into the other:
		// the KPL then sends them all again, so the KCL drops the whole
		// aggregate, and so do we with DropMisroutedAggregates. Records
		// that belong stay.
		stream := newStream(testStream, 1)
		store := lease.NewMemoryStore()
		col := newCollector()
		cfg := testConfig(stream, store, "w1", col.processor())
		cfg.DropMisroutedAggregates = true
		r := start(t, cfg)
		mid := new(big.Int).Lsh(big.NewInt(1), 127)
		left, _, err := stream.Split("shardId-000000000000", mid)
		require.NoError(t, err)
		var agg aggregatorForTest
		for i := range 40 {
			agg.add(t, fmt.Sprintf("k%d", i), fmt.Sprintf("v-%d", i))
		}
		stream.Put("any", "1", agg.flush(t)) // explicitly into the left child
		stream.Put("after", "2", []byte("kept-0"))
		waitFor(t, time.Minute, "the record after the aggregate", func() bool { return col.unique() == 1 })
		r.stop(t)
		col.mu.Lock()
		defer col.mu.Unlock()
		require.Len(t, col.records[left], 1)
		require.Equal(t, "kept-0", string(col.records[left][0].Data))
		l := leaseOf(t, store, left)
		require.Equal(t, col.records[left][0].Position(), l.Checkpoint, "checkpointed past the dropped aggregate")
	})
}

func TestBufferedBytesStayWithinTheBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 8 shards of 2 MB each, read 300 kB per call, by processors that
		// are stuck: without a budget each fetcher would buffer 2-3 batches
		// (about 6 MB in all, 16-24 calls); with a 2 MiB budget the
		// fetchers stop once it is spent.
		const shards = 8
		stream := newStream(testStream, shards)
		payload := make([]byte, 100<<10)
		for i := range 20 * shards {
			stream.Put(fmt.Sprintf("k%d", i), "", payload)
		}
		gate := make(chan struct{})
		col := newCollector()
		proc := RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			select {
			case <-gate:
				col.add(b)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		cfg := testConfig(stream, lease.NewMemoryStore(), "w1", func(string) RecordProcessor { return proc })
		cfg.MaxRecords = 3
		cfg.MaxBufferedBytes = 2 << 20
		r := start(t, cfg)
		time.Sleep(20 * time.Second) // every shard leased, every fetcher blocked
		synctest.Wait()
		require.LessOrEqual(t, stream.Calls("GetRecords"), shards, "GetRecords calls while the processors are stuck")
		require.LessOrEqual(t, r.c.BufferedBytes(), int64(2<<20))
		close(gate)
		waitFor(t, 5*time.Minute, "every record once the processors move", func() bool { return col.unique() == 20*shards })
		r.stop(t)
		require.Zero(t, r.c.BufferedBytes(), "every byte returned")
	})
}

func TestTrimmedParentDoesNotBlockItsChildren(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A previous run left shard 0's lease mid-way; since then the shard
		// was split and retention removed it before it was read to its end.
		stream := newStream(testStream, 1)
		store := lease.NewMemoryStore()
		require.NoError(t, store.Create(context.Background(), lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon}))
		_, _, err := stream.Split("shardId-000000000000", new(big.Int).Lsh(big.NewInt(1), 127))
		require.NoError(t, err)
		stream.Trim("shardId-000000000000")
		putPlain(stream, "x", 50, 10)
		col := newCollector()
		r := start(t, testConfig(stream, store, "w1", col.processor()))
		waitFor(t, 2*time.Minute, "the children's records", func() bool { return col.unique() == 50 })
		r.stop(t)
		for _, l := range allLeases(t, store) {
			if l.Key == "shardId-000000000000" {
				require.True(t, l.Finished(), "the trimmed shard was finished (or its lease deleted)")
			}
		}
	})
}

func TestLeasesOfTrimmedFinishedShardsAreDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		store := lease.NewMemoryStore()
		putPlain(stream, "a", 10, 5)
		col := newCollector()
		r := start(t, testConfig(stream, store, "w1", col.processor()))
		_, _, err := stream.Split("shardId-000000000000", new(big.Int).Lsh(big.NewInt(1), 127))
		require.NoError(t, err)
		putPlain(stream, "b", 10, 5)
		waitFor(t, time.Minute, "20 records", func() bool { return col.unique() == 20 })
		require.True(t, leaseOf(t, store, "shardId-000000000000").Finished())
		stream.Trim("shardId-000000000000") // retention
		waitFor(t, time.Minute, "the parent's lease deleted", func() bool { return len(allLeases(t, store)) == 2 })
		putPlain(stream, "c", 10, 5)
		waitFor(t, time.Minute, "30 records", func() bool { return col.unique() == 30 })
		r.stop(t)
		require.Zero(t, col.duplicates())
	})
}

func TestFaultyNewProcessorIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 10, 5)
		col := newCollector()
		calls := 0
		newProc := func(shardID string) RecordProcessor {
			calls++
			switch calls {
			case 1:
				panic("factory not ready")
			case 2:
				return nil
			}
			return col.processor()(shardID)
		}
		r := start(t, testConfig(stream, lease.NewMemoryStore(), "w1", newProc))
		waitFor(t, time.Minute, "10 records", func() bool { return col.unique() == 10 })
		r.stop(t)
		require.Equal(t, 3, calls)
	})
}

func TestShardEndOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// At the end of a shard: ShardEnded, then the SHARD_END checkpoint
		// with the children, then the children's leases, then the release.
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 10, 5)
		left, right, err := stream.Split("shardId-000000000000", new(big.Int).Lsh(big.NewInt(1), 127))
		require.NoError(t, err)
		store := lease.NewMemoryStore()
		var mu sync.Mutex
		var seenAtEnd []lease.Lease
		newProc := func(shardID string) RecordProcessor {
			return &enderProc{onEnd: func() {
				mu.Lock()
				defer mu.Unlock()
				seenAtEnd = allLeases(t, store)
			}}
		}
		r := start(t, testConfig(stream, store, "w1", newProc))
		waitFor(t, time.Minute, "the children's leases", func() bool { return len(allLeases(t, store)) == 3 })
		waitFor(t, time.Minute, "the parent released", func() bool { return leaseOf(t, store, "shardId-000000000000").Owner == "" })
		r.stop(t)
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, seenAtEnd, 1, "ShardEnded comes before the children's leases")
		require.False(t, seenAtEnd[0].Finished(), "ShardEnded comes before the SHARD_END checkpoint")
		parent := leaseOf(t, store, "shardId-000000000000")
		require.True(t, parent.Finished())
		require.ElementsMatch(t, []string{left, right}, parent.ChildShardIDs)
		for _, id := range []string{left, right} {
			require.Equal(t, []string{"shardId-000000000000"}, leaseOf(t, store, id).ParentShardIDs)
		}
	})
}

type enderProc struct{ onEnd func() }

func (p *enderProc) ProcessRecords(context.Context, *Batch) error { return nil }
func (p *enderProc) ShardEnded(context.Context, ShardInfo) error {
	p.onEnd()
	return nil
}

// TestTrimmedParentChildrenStartAtTheirBeginning: an application started at
// Latest, stopped while a shard had records to read, and restarted after
// that shard was split and trimmed by retention: the children are reached
// through the trimmed parent's lease, so they start at their beginning, not
// at Latest (which would skip what was written to them meanwhile).
func TestTrimmedParentChildrenStartAtTheirBeginning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		store := lease.NewMemoryStore()
		require.NoError(t, store.Create(context.Background(), lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.Latest}))
		_, _, err := stream.Split("shardId-000000000000", new(big.Int).Lsh(big.NewInt(1), 127))
		require.NoError(t, err)
		stream.Trim("shardId-000000000000")
		putPlain(stream, "x", 50, 10)
		col := newCollector()
		cfg := testConfig(stream, store, "w1", col.processor())
		cfg.InitialPosition = Latest
		r := start(t, cfg)
		waitFor(t, 2*time.Minute, "the children's records", func() bool { return col.unique() == 50 })
		r.stop(t)
	})
}
