package main

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/lease"
)

func TestDecodeVmwareItem(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	r := decodeVmwareItem(map[string]types.AttributeValue{"ShardID": s("shardId-000000000001"), "Checkpoint": s("123"),
		"AssignedTo": s("w"), "LeaseTimeout": s("2026-11-30T03:00:00.5Z"), "ParentShardId": s("shardId-000000000000"), "ClaimRequest": s("w2")})
	require.Equal(t, vmwareRow{shardID: "shardId-000000000001", checkpoint: "123", assignedTo: "w", leaseTimeout: "2026-11-30T03:00:00.5Z",
		parent: "shardId-000000000000", claim: "w2"}, r)

	r = decodeVmwareItem(map[string]types.AttributeValue{"ShardID": s("x"), "Checkpoint": &types.AttributeValueMemberN{Value: "123"}})
	require.Equal(t, "attribute Checkpoint: want a string (S), found *types.AttributeValueMemberN", r.problem)
	r = decodeVmwareItem(map[string]types.AttributeValue{"Checkpoint": s("1")})
	require.Equal(t, "no ShardID", r.problem)
}

func TestVmwareRowHeld(t *testing.T) {
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	require.False(t, vmwareRow{}.held(now), "no owner")
	require.False(t, vmwareRow{assignedTo: "w", leaseTimeout: "2026-11-30T02:59:59.999999999Z"}.held(now), "timed out")
	require.True(t, vmwareRow{assignedTo: "w", leaseTimeout: "2026-11-30T03:00:00.000000001Z"}.held(now))
	require.True(t, vmwareRow{assignedTo: "w", leaseTimeout: "yesterday"}.held(now), "cannot tell: held")
	require.True(t, vmwareRow{assignedTo: "w"}.held(now), "cannot tell: held")
}

// planImport maps each kind of row: a plain record, an aggregate, SHARD_END
// after a split, no checkpoint, and rows it refuses.
func TestPlanImport(t *testing.T) {
	k := newStream(2)
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	inShard1 := new(big.Int).Add(half, big.NewInt(1)).String()
	plain := put(t, k, "1", []byte("plain"))
	var a deagg.Aggregator
	for i := range 7 {
		_, err := a.Add("k", inShard1, []byte(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	agg := put(t, k, inShard1, a.Flush().Data)
	left, right, err := k.Split("shardId-000000000001", new(big.Int).Add(half, new(big.Int).Lsh(big.NewInt(1), 126)))
	require.NoError(t, err)

	rows := []vmwareRow{
		{shardID: "shardId-000000000000", checkpoint: plain, assignedTo: "gone", leaseTimeout: "2020-01-01T00:00:00Z"},
		{shardID: "shardId-000000000001", checkpoint: agg},
		{shardID: left, checkpoint: "SHARD_END", parent: "shardId-000000000001"},
		{shardID: right, parent: "shardId-000000000001"},
	}
	shards, err := listShards(context.Background(), k, streamRef{name: testStream})
	require.NoError(t, err)
	items, err := planImport(context.Background(), k, streamRef{name: testStream}, rows, shards, nil)
	require.NoError(t, err)
	require.Len(t, items, 4)
	byShard := map[string]importItem{}
	for _, it := range items {
		byShard[it.Shard] = it
	}
	require.Empty(t, byShard["shardId-000000000000"].Result, "to be written")
	require.Equal(t, checkpoint.At(plain, 0), byShard["shardId-000000000000"].lease.Checkpoint)
	require.Empty(t, byShard["shardId-000000000000"].lease.Owner, "imported unowned")
	require.Equal(t, checkpoint.At(agg, 6), byShard["shardId-000000000001"].lease.Checkpoint, "after the 7 user records")
	require.Contains(t, byShard["shardId-000000000001"].Reason, "a KPL aggregate of 7 user records")
	require.Equal(t, checkpoint.ShardEnd, byShard[left].lease.Checkpoint)
	require.Equal(t, []string{"shardId-000000000001"}, byShard[left].lease.ParentShardIDs, "parents from the stream")
	require.NotEmpty(t, byShard[left].lease.StartingHashKey, "hash range from the stream")
	require.Equal(t, resultSkipped, byShard[right].Result)
	require.Contains(t, byShard[right].Reason, "no checkpoint")

	// Already imported, or another lease there.
	existing := []lease.Lease{
		{Key: "shardId-000000000000", Checkpoint: checkpoint.At(plain, 0)},
		{Key: "shardId-000000000001", Owner: "gokcl-1", Checkpoint: checkpoint.TrimHorizon},
	}
	items, err = planImport(context.Background(), k, streamRef{name: testStream}, rows, shards, existing)
	require.NoError(t, err)
	require.Equal(t, resultSkipped, items[0].Result)
	require.Contains(t, items[0].Reason, "already imported")
	require.Equal(t, resultRefused, items[1].Result)
	require.Contains(t, items[1].Reason, `already has a lease for this shard, at TRIM_HORIZON (owner "gokcl-1"): not overwritten`)

	// Rows it cannot map, and a shard of the stream with no row.
	bad := []vmwareRow{
		{shardID: "shardId-000000000000", checkpoint: "TRIM_HORIZON"},
		{shardID: "shardId-000000000001", checkpoint: "12x"},
		{shardID: "shardId-000000000005", checkpoint: "123"},
		{shardID: "a:b:c:shardId-000000000000", checkpoint: "123"},
		{shardID: "x", problem: "attribute Checkpoint: want a string (S), found N"},
		{shardID: left, checkpoint: plain}, // a record of shard 0
	}
	items, err = planImport(context.Background(), k, streamRef{name: testStream}, bad, shards, nil)
	require.NoError(t, err)
	reasons := map[string]string{}
	for _, it := range items {
		reasons[it.Shard] = it.Result + ": " + it.Reason
	}
	require.Equal(t, map[string]string{
		"shardId-000000000000":       `refused: checkpoint "TRIM_HORIZON" is neither a sequence number nor SHARD_END`,
		"shardId-000000000001":       `refused: checkpoint "12x" is neither a sequence number nor SHARD_END`,
		"shardId-000000000005":       "refused: the shard is not in the stream (another stream's table, or retention removed it): the checkpoint cannot be checked; delete the row from the source table if the shard is gone",
		"a:b:c:shardId-000000000000": `refused: ShardID "a:b:c:shardId-000000000000" is not a shard id`,
		"x":                          "refused: the row cannot be read: attribute Checkpoint: want a string (S), found N",
		left:                         "refused: sequence number " + plain + ": not a record of this shard: is the source table this stream's?",
		right:                        "skipped: no row in the source table: gokcl creates this lease when it starts",
	}, reasons)
}
