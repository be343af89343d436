package consumer_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

func TestMergeChildWaitsForASplitAndMergedParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Shard 0 is split (2, 3) and its children merged back (4); then 4
		// is merged with shard 1 (5). Shard 1 ends long before 4 has a
		// lease, which comes only once 2 and 3 end: 5 must still wait for
		// 4, or the keys of shard 0's range are processed out of order.
		stream := newStream(testStream, 2)
		putPlain(stream, "a", 40, 8)
		ids := stream.OpenShards()
		left, right, err := stream.Split(ids[0], nil)
		require.NoError(t, err)
		putPlain(stream, "b", 40, 8)
		merged, err := stream.Merge(left, right)
		require.NoError(t, err)
		putPlain(stream, "c", 40, 8)
		last, err := stream.Merge(merged, ids[1])
		require.NoError(t, err)
		putPlain(stream, "d", 40, 8)

		gate := make(chan struct{})
		col := newCollector()
		newProc := func(shardID string) RecordProcessor {
			return RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
				if shardID == ids[0] {
					select { // shard 0 is slow
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
		waitFor(t, time.Minute, "shard 1 processed to its end", func() bool {
			for _, l := range allLeases(t, store) {
				if l.Key == ids[1] && l.Finished() {
					return true
				}
			}
			return false
		})
		time.Sleep(30 * time.Second)
		col.mu.Lock()
		require.Zero(t, len(col.records[last]), "the last merge's child must wait for its parent %s", merged)
		col.mu.Unlock()
		close(gate)
		waitFor(t, time.Minute, "all 160", func() bool { return col.unique() == 160 })
		r.stop(t)
		assertKeyOrder(t, col)
	})
}
