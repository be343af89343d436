package consumer_test

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

// hashIn returns an explicit hash key: 2^128 * num / den, for placing records
// in a chosen shard of the fake stream.
func hashIn(num, den int64) string {
	k := new(big.Int).Lsh(big.NewInt(1), 128)
	k.Mul(k, big.NewInt(num))
	k.Div(k, big.NewInt(den))
	return k.String()
}

// gatedProcessor returns a NewProcessor whose processors add to col, those
// of the shard gated only once gate is closed.
func gatedProcessor(col *orderedCollector, gated string, gate <-chan struct{}) func(string) RecordProcessor {
	return func(shardID string) RecordProcessor {
		return RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			if shardID == gated {
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
}

// orderedCollector is a collector that also keeps the data of every record
// in the order of delivery, across shards.
type orderedCollector struct {
	*collector
	order []string // guarded by collector.mu
}

func newOrderedCollector() *orderedCollector { return &orderedCollector{collector: newCollector()} }

func (c *orderedCollector) add(b *Batch) {
	c.collector.add(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range b.Records {
		c.order = append(c.order, string(r.Data))
	}
}

// requireOrder checks that the records "prefix-i" were delivered in
// increasing i for each prefix, across all shards.
func (c *orderedCollector) requireOrder(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	last := map[string]int{}
	for _, d := range c.order {
		var prefix string
		var i int
		_, err := fmt.Sscanf(replaceDash(d), "%s %d", &prefix, &i)
		require.NoError(t, err, d)
		if prev, ok := last[prefix]; ok {
			require.Greater(t, i, prev, "%s-%d delivered after %s-%d", prefix, i, prefix, prev)
		}
		last[prefix] = i
	}
}

func TestMergeChildWaitsForAParentNotLeasedYet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// P splits into X and B, then A and B merge into C, all before the
		// consumer starts (it is behind, as after UpdateShardCount). One key
		// goes P → B → C. A ends long before B has a lease (B's parent P
		// is slow): C must still wait for B.
		stream := newStream(testStream, 2) // P = shard 0 (low half), A = shard 1
		key := hashIn(3, 8)                // in P, then in B, then in C
		put := func(from, to int) {
			for i := from; i < to; i++ {
				stream.Put("k", key, []byte(fmt.Sprintf("x-%d", i)))
			}
		}
		put(0, 10)
		stream.Put("a", hashIn(3, 4), []byte("a-0")) // A's own record
		p, a := "shardId-000000000000", "shardId-000000000001"
		_, b, err := stream.Split(p, new(big.Int).Lsh(big.NewInt(1), 126))
		require.NoError(t, err)
		put(10, 20)
		c, err := stream.Merge(a, b)
		require.NoError(t, err)
		put(20, 30)

		gate := make(chan struct{})
		col := newOrderedCollector()
		store := lease.NewMemoryStore()
		r := start(t, testConfig(stream, store, "w1", gatedProcessor(col, p, gate)))
		waitFor(t, time.Minute, "A processed to its end", func() bool {
			for _, l := range allLeases(t, store) {
				if l.Key == a && l.Finished() {
					return true
				}
			}
			return false
		})
		time.Sleep(30 * time.Second) // several taker and sync cycles
		col.mu.Lock()
		early := len(col.records[c])
		col.mu.Unlock()
		require.Zero(t, early, "records of the merge child C delivered while its parent B was not processed")
		close(gate)
		waitFor(t, 2*time.Minute, "all 31 records", func() bool { return col.unique() == 31 })
		r.stop(t)
		col.requireOrder(t)
		require.Zero(t, col.duplicates())
	})
}

func TestLatestStartIsNotBlockedByParentsOfTheOpenShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Resharded before the application started at LATEST: the closed
		// parents are in the listing but are never leased, and must not
		// block the open shards.
		stream := newStream(testStream, 2)
		putPlain(stream, "old", 20, 10)
		_, _, err := stream.Split("shardId-000000000000", new(big.Int).Lsh(big.NewInt(1), 126))
		require.NoError(t, err)
		open := stream.OpenShards()
		_, err = stream.Merge(open[0], open[2]) // shard 1 and the split's right child
		require.NoError(t, err)
		store := lease.NewMemoryStore()
		col := newCollector()
		cfg := testConfig(stream, store, "w1", col.processor())
		cfg.InitialPosition = Latest
		r := start(t, cfg)
		waitFor(t, time.Minute, "the open shards leased", func() bool {
			n := 0
			for _, l := range allLeases(t, store) {
				if l.Owner == "w1" {
					n++
				}
			}
			return n == 2
		})
		time.Sleep(time.Second) // let the fetchers take their LATEST iterators
		putPlain(stream, "new", 30, 10)
		waitFor(t, time.Minute, "30 new records", func() bool { return col.unique() == 30 })
		r.stop(t)
		require.Len(t, allLeases(t, store), 2, "no lease for the closed shards")
	})
}

func TestRootMissedByAPartialFirstSyncIsLeased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A first sync created R1's lease but not R2's (throttled); R1 was
		// then processed to its end and its merge child M leased. R2 has
		// no lease while a descendant has one: it must be leased still, and
		// processed before M.
		stream := newStream(testStream, 2)
		r1, r2 := "shardId-000000000000", "shardId-000000000001"
		for i := range 10 {
			stream.Put("k", hashIn(3, 4), []byte(fmt.Sprintf("x-%d", i))) // in R2, then in M
		}
		m, err := stream.Merge(r1, r2)
		require.NoError(t, err)
		for i := 10; i < 20; i++ {
			stream.Put("k", hashIn(3, 4), []byte(fmt.Sprintf("x-%d", i)))
		}
		store := lease.NewMemoryStore()
		ctx := context.Background()
		require.NoError(t, store.Create(ctx, lease.Lease{Key: r1, Checkpoint: checkpoint.ShardEnd, ChildShardIDs: []string{m}}))
		require.NoError(t, store.Create(ctx, lease.Lease{Key: m, Checkpoint: checkpoint.TrimHorizon, ParentShardIDs: []string{r1, r2}}))
		col := newOrderedCollector()
		r := start(t, testConfig(stream, store, "w1", func(string) RecordProcessor {
			return RecordProcessorFunc(func(_ context.Context, b *Batch) error { col.add(b); return nil })
		}))
		waitFor(t, 2*time.Minute, "R2's and M's 20 records", func() bool { return col.unique() == 20 })
		r.stop(t)
		col.requireOrder(t)
	})
}

// failingCreates is a lease store whose Create fails, as DynamoDB throttling
// would, for one key while fail returns true.
type failingCreates struct {
	*lease.MemoryStore
	key  string
	fail func() bool
}

func (s *failingCreates) Create(ctx context.Context, l lease.Lease) error {
	if l.Key == s.key && s.fail() {
		return fmt.Errorf("create lease %s: throttled", l.Key)
	}
	return s.MemoryStore.Create(ctx, l)
}

func TestLeaseCreationContinuesPastAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putPlain(stream, "x", 40, 20)
		began := time.Now()
		store := &failingCreates{MemoryStore: lease.NewMemoryStore(), key: "shardId-000000000000",
			fail: func() bool { return time.Since(began) < time.Minute }}
		col := newCollector()
		r := start(t, testConfig(stream, store, "w1", col.processor()))
		waitFor(t, 30*time.Second, "the second shard leased and read although the first one's lease cannot be created yet", func() bool {
			col.mu.Lock()
			defer col.mu.Unlock()
			return len(col.records["shardId-000000000001"]) > 0
		})
		waitFor(t, 2*time.Minute, "all 40 records once the first lease is created", func() bool { return col.unique() == 40 })
		r.stop(t)
	})
}
