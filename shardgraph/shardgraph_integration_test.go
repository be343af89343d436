//go:build integration

package shardgraph

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/internal/testenv"
)

// TestIntegrationReshardLineage reshards a real stream (split, merge of
// adjacent open shards, split of a child), applies the same operations to the
// in-memory model, and checks that the Graph built from ListShards has the
// model's structure: parents in order, children, open and closed shards,
// start shards, coverage and the Ready waves.
func TestIntegrationReshardLineage(t *testing.T) {
	client := testenv.Kinesis(t)
	ctx := testenv.Context(t, 2*time.Minute)
	stream := testenv.CreateStream(t, client, 2)
	initial, _ := listShards(ctx, t, client, stream)
	require.Len(t, initial, 2)
	model := newHistoryFrom(initial)
	real := func(id string) string { return id } // model id -> listed id

	// Split the lower shard in the middle of its range.
	lower := model.open[0]
	lo, hi := model.split(lower, middle(model.shards[lower]))
	splitShard(ctx, t, client, stream, real(lower), model.shards[hi].HashKeyStart)
	real = matchIDs(ctx, t, client, stream, model)
	// Merge its upper child with the shard above it.
	above := model.open[slices.Index(model.open, hi)+1]
	model.merge(hi, above)
	mergeShards(ctx, t, client, stream, real(hi), real(above))
	real = matchIDs(ctx, t, client, stream, model)
	// Split the lower child again.
	_, loHi := model.split(lo, middle(model.shards[lo]))
	splitShard(ctx, t, client, stream, real(lo), model.shards[loHi].HashKeyStart)
	real = matchIDs(ctx, t, client, stream, model)

	listed, pages := listShards(ctx, t, client, stream)
	assert.Greater(t, pages, 1, "ListShards should have been paginated")
	require.Len(t, listed, 7)
	got := New(listed)
	want := New(rename(model.list(), real))

	require.NoError(t, got.Coverage())
	assert.Equal(t, want.Open(), got.Open(), "Open")
	assert.Equal(t, want.Closed(), got.Closed(), "Closed")
	for _, id := range append(want.Open(), want.Closed()...) {
		w, _ := want.Shard(id)
		g, _ := got.Shard(id)
		assert.Equal(t, w.ParentIDs, g.ParentIDs, "parents of %s, in Kinesis order", id)
		assert.Equal(t, want.Children(id), got.Children(id), "Children(%s)", id)
	}
	for _, pos := range []InitialPosition{Latest, TrimHorizon, AtTimestamp} {
		assert.Equal(t, want.StartShards(pos), got.StartShards(pos), "StartShards(%v)", pos)
	}
	gotWaves := waves(got)
	t.Logf("Ready waves: %v", gotWaves)
	assert.Equal(t, waves(want), gotWaves, "Ready waves")
	// the two original shards; the first split's children; the merge child
	// with the second split's children
	assert.Len(t, gotWaves, 3)
}

// newHistoryFrom models a stream whose open shards are given (closed ones
// are ignored): the starting point of a history replayed on a real stream.
// New shards are numbered after the highest id given, as Kinesis does.
func newHistoryFrom(shards []Shard) *history {
	h := &history{shards: make(map[string]*Shard)}
	for _, s := range shards {
		var n int
		if _, err := fmt.Sscanf(s.ID, "shardId-%d", &n); err == nil && n >= h.next {
			h.next = n + 1
		}
		if s.IsOpen() {
			c := s.clone()
			h.shards[s.ID] = &c
			h.open = append(h.open, s.ID)
		}
	}
	h.sortOpen()
	return h
}

// listShards lists every shard of the stream two at a time, following
// NextToken (the SDK has no ListShards paginator), and returns them converted
// with the number of pages.
func listShards(ctx context.Context, t *testing.T, client *kinesis.Client, stream string) ([]Shard, int) {
	t.Helper()
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream), MaxResults: aws.Int32(2)}
	pages := 0
	for {
		out, err := client.ListShards(ctx, in)
		require.NoError(t, err, "ListShards page %d of %s", pages+1, stream)
		pages++
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			break
		}
		// With a NextToken, the stream must not be named again.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(2)}
	}
	shards, err := FromKinesis(all)
	require.NoError(t, err)
	return shards, pages
}

func splitShard(ctx context.Context, t *testing.T, client *kinesis.Client, stream, shard string, key *big.Int) {
	t.Helper()
	_, err := client.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String(shard), NewStartingHashKey: aws.String(key.String())})
	require.NoError(t, err, "split %s at %v", shard, key)
	testenv.WaitStreamActive(t, client, stream)
}

func mergeShards(ctx context.Context, t *testing.T, client *kinesis.Client, stream, shard, adjacent string) {
	t.Helper()
	_, err := client.MergeShards(ctx, &kinesis.MergeShardsInput{
		StreamName: aws.String(stream), ShardToMerge: aws.String(shard), AdjacentShardToMerge: aws.String(adjacent)})
	require.NoError(t, err, "merge %s with %s", shard, adjacent)
	testenv.WaitStreamActive(t, client, stream)
}

// middle returns the first key of the upper half of the shard's range.
func middle(s *Shard) *big.Int {
	sum := new(big.Int).Add(s.HashKeyStart, s.HashKeyEnd)
	return sum.Rsh(sum, 1).Add(sum, big.NewInt(1))
}

// matchIDs lists the stream and pairs each model shard with the listed shard
// of the same hash key range (unique in this history), so that the test does
// not depend on how the server numbers new shards.
func matchIDs(ctx context.Context, t *testing.T, client *kinesis.Client, stream string, h *history) func(string) string {
	t.Helper()
	listed, _ := listShards(ctx, t, client, stream)
	names := make(map[string]string)
	for id, m := range h.shards {
		var found []string
		for _, l := range listed {
			if l.HashKeyStart.Cmp(m.HashKeyStart) == 0 && l.HashKeyEnd.Cmp(m.HashKeyEnd) == 0 {
				found = append(found, l.ID)
			}
		}
		require.Len(t, found, 1, "listed shards with the range of model shard %s (%v..%v)", id, m.HashKeyStart, m.HashKeyEnd)
		names[id] = found[0]
	}
	return func(id string) string { return names[id] }
}

// rename returns copies of the shards with ids (theirs and their parents')
// renamed.
func rename(shards []Shard, name func(string) string) []Shard {
	out := make([]Shard, 0, len(shards))
	for _, s := range shards {
		s = s.clone()
		s.ID = name(s.ID)
		for i, p := range s.ParentIDs {
			s.ParentIDs[i] = name(p)
		}
		out = append(out, s)
	}
	return out
}
