//go:build integration

package lease_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/internal/testenv"
)

// TestIntegrationKCLGoldenReset: a reset of KCL items changes only the
// checkpoint, the counter, the owner switches, and removes the owner, the
// pending checkpoint and the KCL 3.x hand-off; everything else is kept.
func TestIntegrationKCLGoldenReset(t *testing.T) {
	client := testenv.DynamoDB(t)
	s, raw := goldenTable(t, client)
	ctx := testenv.Context(t, time.Minute)
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

	// A two-phase checkpoint in progress.
	reset, err := s.ResetCheckpoint(ctx, kclLeases["shardId-000000000006"], checkpoint.TrimHorizon)
	require.NoError(t, err)
	require.Empty(t, reset.Owner)
	requireRawChanges(t, raw["shardId-000000000006"], getItem(t, client, s.Table(), "shardId-000000000006"),
		map[string]types.AttributeValue{"leaseCounter": n("18"), "leaseOwner": nil,
			"checkpoint": str("TRIM_HORIZON"), "checkpointSubSequenceNumber": n("0"),
			"pendingCheckpoint": nil, "pendingCheckpointSubSequenceNumber": nil, "pendingCheckpointState": nil})

	// A KCL 3.x lease mid hand-off.
	_, err = s.ResetCheckpoint(ctx, kclLeases["shardId-000000000007"], checkpoint.At("49590338271490256608559692540925702759324208523137515618", 3))
	require.NoError(t, err)
	requireRawChanges(t, raw["shardId-000000000007"], getItem(t, client, s.Table(), "shardId-000000000007"),
		map[string]types.AttributeValue{"leaseCounter": n("5022"), "leaseOwner": nil, "checkpointOwner": nil,
			"checkpoint": str("49590338271490256608559692540925702759324208523137515618"), "checkpointSubSequenceNumber": n("3"),
			"ownerSwitchesSinceCheckpoint": n("0")})

	// A finished shard moved back keeps its children.
	_, err = s.ResetCheckpoint(ctx, kclLeases["shardId-000000000002"], checkpoint.TrimHorizon)
	require.NoError(t, err)
	requireRawChanges(t, raw["shardId-000000000002"], getItem(t, client, s.Table(), "shardId-000000000002"),
		map[string]types.AttributeValue{"leaseCounter": n("97"), "leaseOwner": nil, "checkpoint": str("TRIM_HORIZON")})
}
