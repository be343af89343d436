package consumer

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/internal/fakekinesis"
	"github.com/gokcl/kcl/lease"
	"github.com/gokcl/kcl/shardgraph"
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
		stream := fakekinesis.New(testStream, 2) // P = shard 0 (low half), A = shard 1
		key := hashIn(3, 8)                      // in P, then in B, then in C
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
		stream := fakekinesis.New(testStream, 2)
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

func TestLineageParentDone(t *testing.T) {
	// P → {X, B}; A + B → C. Q is a closed shard whose only child is P.
	shards := []shardgraph.Shard{
		{ID: "Q", EndingSequence: "1"},
		{ID: "P", ParentIDs: []string{"Q"}, EndingSequence: "2"},
		{ID: "A", EndingSequence: "3"},
		{ID: "X", ParentIDs: []string{"P"}},
		{ID: "B", ParentIDs: []string{"P"}, EndingSequence: "4"},
		{ID: "C", ParentIDs: []string{"B", "A"}},
	}
	g := shardgraph.New(shards)
	at := func(key string, finished bool) lease.Lease {
		l := lease.Lease{Key: key, Checkpoint: checkpoint.TrimHorizon}
		if finished {
			l.Checkpoint = checkpoint.ShardEnd
		}
		return l
	}
	tests := []struct {
		name          string
		g             *shardgraph.Graph
		leases        []lease.Lease
		child, parent string
		want          bool
	}{
		{"parent at SHARD_END", g, []lease.Lease{at("B", true), at("C", false)}, "C", "B", true},
		{"parent leased, not finished", g, []lease.Lease{at("B", false), at("C", false)}, "C", "B", false},
		{"no lease, its parent is leased", g, []lease.Lease{at("P", false), at("C", false)}, "C", "B", false},
		{"no lease, the other parent is leased", g, []lease.Lease{at("A", true), at("C", false)}, "C", "B", false},
		{"no lease, an ancestor of the start", g, []lease.Lease{at("P", false)}, "P", "Q", true},
		{"no lease, trimmed", shardgraph.New(shards[1:]), []lease.Lease{at("P", false)}, "P", "Q", true},
		{"no lease, child newer than the listing", shardgraph.New(shards[:5]), []lease.Lease{at("A", true), at("C", false)}, "C", "B", false},
		{"no listing yet", nil, []lease.Lease{at("C", false)}, "C", "B", false},
		{"no table scan yet", g, nil, "C", "B", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, newLineage(tt.g, tt.leases, nil).parentDone(tt.child, tt.parent))
		})
	}
}
