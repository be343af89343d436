//go:build integration

package main

import (
	"context"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/internal/testenv"
)

// import of a vmware-go-kcl-v2 table, written with that library's exact
// attribute names and sentinels, after a split: gokcl resumes exactly after
// each checkpoint (after the whole aggregate, as vmware-go-kcl does), keeps
// the finished parent finished, and starts the child vmware-go-kcl never
// checkpointed from its beginning. Refusals first: the source application
// still running, and a row it cannot map.
func TestIntegrationImportVmwareTable(t *testing.T) {
	a := newAppWithoutTable(t, 2)
	ctx := testenv.Context(t, 2*time.Minute)
	s0, s1, s2, s3 := shardID(0), shardID(1), shardID(2), shardID(3)
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	quarter := new(big.Int).Lsh(big.NewInt(1), 126)
	keyS0, keyS1 := "1", new(big.Int).Add(half, big.NewInt(1)).String()
	keyS2, keyS3 := keyS1, new(big.Int).Add(new(big.Int).Add(half, quarter), big.NewInt(1)).String()

	// Shard 0: records 0..19. Shard 1: an aggregate of 100..139, then 140..149.
	seq0 := a.putTo(keyS0, 0, 20)
	a.putAggregate(keyS1, 100, 140)
	a.putTo(keyS1, 140, 150)
	// Split shard 1 in two: shard 2 gets 200..209, an aggregate of 210..219,
	// then 220..229; shard 3 gets 300..309.
	_, err := a.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(a.stream), ShardToSplit: aws.String(s1),
		NewStartingHashKey: aws.String(new(big.Int).Add(half, quarter).String())})
	require.NoError(t, err)
	testenv.WaitStreamActive(t, a.kc, a.stream)
	a.putTo(keyS2, 200, 210)
	seqAgg := a.putAggregate(keyS2, 210, 220)
	a.putTo(keyS2, 220, 230)
	a.putTo(keyS3, 300, 310)

	// The vmware-go-kcl-v2 checkpoint table (clientlibrary/checkpoint).
	source := a.stream + "-vmware"
	_, err = a.dc.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(source),
		AttributeDefinitions: []ddb.AttributeDefinition{{AttributeName: aws.String("ShardID"), AttributeType: ddb.ScalarAttributeTypeS}},
		KeySchema:            []ddb.KeySchemaElement{{AttributeName: aws.String("ShardID"), KeyType: ddb.KeyTypeHash}},
		BillingMode:          ddb.BillingModePayPerRequest,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = a.dc.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(source)})
	})
	require.NoError(t, dynamodb.NewTableExistsWaiter(a.dc).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(source)}, time.Minute))
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	s := func(v string) ddb.AttributeValue { return &ddb.AttributeValueMemberS{Value: v} }
	put := func(item map[string]ddb.AttributeValue) {
		_, err := a.dc.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(source), Item: item})
		require.NoError(t, err)
	}
	// Crashed while holding shard 0: its lease timed out an hour ago.
	put(map[string]ddb.AttributeValue{"ShardID": s(s0), "Checkpoint": s(seq0[9]), "AssignedTo": s("vm-worker-1"), "LeaseTimeout": s(past)})
	put(map[string]ddb.AttributeValue{"ShardID": s(s1), "Checkpoint": s("SHARD_END"), "LeaseTimeout": s(past)})
	// Still held: the application is running.
	put(map[string]ddb.AttributeValue{"ShardID": s(s2), "Checkpoint": s(seqAgg), "ParentShardId": s(s1),
		"AssignedTo": s("vm-worker-2"), "LeaseTimeout": s(future)})
	// Taken, never checkpointed.
	put(map[string]ddb.AttributeValue{"ShardID": s(s3), "ParentShardId": s(s1), "LeaseTimeout": s(past)})

	args := []string{"import", "-app", a.stream, "-stream", a.stream, "-from", "vmware", "-source-table", source}
	r := gokcl(t, args...)
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, "still holds "+s2)

	put(map[string]ddb.AttributeValue{"ShardID": s(s2), "Checkpoint": s(seqAgg), "ParentShardId": s(s1), "LeaseTimeout": s(past)})
	put(map[string]ddb.AttributeValue{"ShardID": s("shardId-000000000009"), "Checkpoint": s("garbage")})
	r = gokcl(t, args...)
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stdout, `checkpoint "garbage" is neither a sequence number nor SHARD_END`)
	require.Contains(t, r.stderr, "refused 1 row; nothing written")
	_, err = a.dc.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(source),
		Key: map[string]ddb.AttributeValue{"ShardID": s("shardId-000000000009")}})
	require.NoError(t, err)

	var rep importReport
	gokclJSON(t, &rep, append(args, "-dry-run")...)
	require.True(t, rep.CreateTable)
	_, err = a.dc.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(a.stream)})
	require.True(t, isNotFound(err), "a dry run creates no table: %v", err)

	gokclJSON(t, &rep, args...)
	results := map[string]string{}
	for _, it := range rep.Items {
		results[it.Shard] = it.Result
	}
	require.Equal(t, map[string]string{s0: resultDone, s1: resultDone, s2: resultDone, s3: resultSkipped}, results)
	leases := a.leases()
	require.Len(t, leases, 3)
	require.Equal(t, checkpoint.At(seq0[9], 0), leases[s0].Checkpoint)
	require.Empty(t, leases[s0].Owner)
	require.Equal(t, checkpoint.ShardEnd, leases[s1].Checkpoint)
	require.Equal(t, []string{s2, s3}, leases[s1].ChildShardIDs)
	require.Equal(t, checkpoint.At(seqAgg, 9), leases[s2].Checkpoint, "after the aggregate's 10 user records")
	require.Equal(t, []string{s1}, leases[s2].ParentShardIDs)

	// Importing again changes nothing.
	gokclJSON(t, &rep, args...)
	for _, it := range rep.Items {
		require.Equal(t, resultSkipped, it.Result, it.Shard)
	}

	// gokcl resumes: after record 9, after the aggregate, all of shard 3.
	cfg := a.config("gokcl", 3*time.Second)
	w := a.start(cfg)
	var want []int
	for _, r := range [][2]int{{10, 20}, {220, 230}, {300, 310}} {
		for id := r[0]; id < r[1]; id++ {
			want = append(want, id)
		}
	}
	waitFor(t, time.Minute, "the records after the checkpoints", func() bool { return len(a.col.processed()) >= len(want) })
	time.Sleep(2 * time.Second) // nothing else may arrive
	w.stop()
	got := a.col.processed()
	require.Len(t, got, len(want), "processed %v", got)
	for _, id := range want {
		require.Equal(t, 1, got[id], "record %d", id)
	}
}

// putTo writes the records "<id>" for ids [from, to) with the explicit hash
// key, and returns their sequence numbers.
func (a *app) putTo(hashKey string, from, to int) []string {
	var entries []types.PutRecordsRequestEntry
	for id := from; id < to; id++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(hashKey),
			Data: []byte(strconv.Itoa(id))})
	}
	return a.putEntries(entries)
}

// putAggregate writes one KPL aggregate of the user records [from, to) with
// the explicit hash key, and returns its sequence number.
func (a *app) putAggregate(hashKey string, from, to int) string {
	var agg deagg.Aggregator
	for id := from; id < to; id++ {
		_, err := agg.Add("agg", hashKey, []byte(strconv.Itoa(id)))
		require.NoError(a.t, err)
	}
	rec := agg.Flush()
	return a.putEntries([]types.PutRecordsRequestEntry{{PartitionKey: aws.String(rec.PartitionKey),
		ExplicitHashKey: aws.String(rec.ExplicitHashKey), Data: rec.Data}})[0]
}
