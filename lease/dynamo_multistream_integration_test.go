//go:build integration

package lease_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/lease"
)

// multiGoldenTable fills a table with the KCL's multi-stream items (plus
// operatorNote) and returns the raw items by key.
func multiGoldenTable(t *testing.T) (*lease.DynamoStore, map[string]map[string]types.AttributeValue) {
	client := testenv.DynamoDB(t)
	s := newTable(t, client, client)
	raw := map[string]map[string]types.AttributeValue{}
	for _, item := range loadItems(t, kclMultiItems) {
		item["operatorNote"] = operatorNote
		raw[itemKey(item)] = item
	}
	putItems(t, client, s.Table(), slices.Collect(maps.Values(raw)))
	return s, raw
}

// TestIntegrationKCLMultiStreamGoldenList: a KCL multi-stream table lists
// as its leases, each with its stream and shard.
func TestIntegrationKCLMultiStreamGoldenList(t *testing.T) {
	s, _ := multiGoldenTable(t)
	got, err := s.List(testenv.Context(t, time.Minute))
	require.NoError(t, err)
	require.Len(t, got, len(kclMultiLeases))
	for _, l := range got {
		require.Equal(t, kclMultiLeases[l.Key], l, l.Key)
	}
}

// TestIntegrationKCLMultiStreamGoldenWrites: gokcl's writes to a KCL
// multi-stream lease change only the attributes they own, and keep the
// stream and shard the KCL reads.
func TestIntegrationKCLMultiStreamGoldenWrites(t *testing.T) {
	client := testenv.DynamoDB(t)
	s, raw := multiGoldenTable(t)
	ctx := testenv.Context(t, time.Minute)
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

	key := ordersID.LeaseKey("shardId-000000000001")
	taken, err := s.Take(ctx, kclMultiLeases[key], "gokcl-1")
	require.NoError(t, err)
	requireRawChanges(t, raw[key], getItem(t, client, s.Table(), key),
		map[string]types.AttributeValue{"leaseCounter": n("312"), "leaseOwner": str("gokcl-1"), "ownerSwitchesSinceCheckpoint": n("2")})
	before := getItem(t, client, s.Table(), key)

	taken.Checkpoint = checkpoint.ShardEnd
	taken.ChildShardIDs = []string{"shardId-000000000005"}
	checkpointed, err := s.UpdateCheckpoint(ctx, taken)
	require.NoError(t, err)
	require.Equal(t, ordersID, checkpointed.StreamID)
	require.Equal(t, "shardId-000000000001", checkpointed.ShardID)
	requireRawChanges(t, before, getItem(t, client, s.Table(), key),
		map[string]types.AttributeValue{"leaseCounter": n("313"), "checkpoint": str("SHARD_END"), "checkpointSubSequenceNumber": n("0"),
			"ownerSwitchesSinceCheckpoint": n("0"), "childShardIds": &types.AttributeValueMemberSS{Value: []string{"shardId-000000000005"}}})

	// KCL 3.x, mid hand-off: the release completes the hand-off to worker-c.
	key = paymentsID.LeaseKey("shardId-000000000001")
	_, err = s.Release(ctx, kclMultiLeases[key])
	require.NoError(t, err)
	requireRawChanges(t, raw[key], getItem(t, client, s.Table(), key),
		map[string]types.AttributeValue{"leaseCounter": n("5022"), "checkpointOwner": nil, "ownerSwitchesSinceCheckpoint": n("1")})

	require.NoError(t, s.Delete(ctx, auditID.LeaseKey("shardId-000000000007")))
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, got, len(kclMultiLeases)-1)
	require.Equal(t, raw["worker-c"], getItem(t, client, s.Table(), "worker-c"), "the worker metrics are untouched")
}

// TestIntegrationKCLMultiStreamGoldenCreate: the item gokcl creates for a
// multi-stream lease is the item the KCL creates for it.
func TestIntegrationKCLMultiStreamGoldenCreate(t *testing.T) {
	client := testenv.DynamoDB(t)
	s := newTable(t, client, client)
	ctx := testenv.Context(t, time.Minute)
	for _, item := range loadItems(t, kclMultiItems) {
		key := itemKey(item)
		if _, kcl3 := item["entityType"]; kcl3 {
			continue // KCL 3.x items carry attributes gokcl preserves but does not write
		}
		require.NoError(t, s.Create(ctx, kclMultiLeases[key]), key)
		require.Equal(t, sortedSets(item), sortedSets(getItem(t, client, s.Table(), key)), key)
	}
}
