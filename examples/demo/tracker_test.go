package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

// A record never processed is lost only if its shard's checkpoint passed
// it; otherwise it was only not processed yet.
func TestTrackerTellsLostFromNotProcessedYet(t *testing.T) {
	tr := newTracker(8)
	tr.produced([]int{0, 1, 2}, "shard-a", "100") // one aggregate: sub 0, 1, 2
	tr.produced([]int{3}, "shard-a", "200")
	tr.produced([]int{4, 5}, "shard-b", "300")
	tr.produced([]int{6}, "shard-c", "400")
	tr.produced([]int{7}, "shard-d", "500")
	tr.record(&consumer.Batch{ShardID: "shard-a", Records: []consumer.Record{{Data: []byte("0"), PartitionKey: "k"}}})
	tr.record(&consumer.Batch{ShardID: "shard-b", Records: []consumer.Record{{Data: []byte("4"), PartitionKey: "j"}}})

	s := tr.summary()
	require.Equal(t, summary{produced: 8, processed: 2, unprocessed: 6}, s, "without the table, nothing counts as lost")

	s = tr.classify([]lease.Lease{
		{Key: "shard-a", Checkpoint: checkpoint.At("100", 1)}, // passed 1, not 2 or 3
		{Key: "shard-b", Checkpoint: checkpoint.ShardEnd},     // passed 5
		{Key: "shard-c", Checkpoint: checkpoint.TrimHorizon},  // passed nothing
		// shard-d: no lease yet
	})
	require.Equal(t, summary{produced: 8, processed: 2, lost: 2, unprocessed: 4}, s)
	require.Equal(t, "produced 8, processed 2, lost 2, duplicates 0, out of order 0, not processed yet 4", s.line())
}
