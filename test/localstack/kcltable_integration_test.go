//go:build integration

package localstack

import (
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

	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/internal/testenv"
)

// 6. An application moving from the Java KCL: gokcl starts on a lease table
// written in the KCL's format and resumes at its checkpoints, one after a
// plain record, one inside an aggregate, one held by a KCL worker that is
// gone (gokcl takes it once it expires).
func TestIntegrationResumesFromJavaKCLTable(t *testing.T) {
	f := newFixture(t, 2)
	ctx := testenv.Context(t, 2*time.Minute)
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	keyIn := []string{"1", new(big.Int).Add(half, big.NewInt(1)).String()} // explicit hash keys of shards 0 and 1

	// Shard 0: plain records 0..19. Shard 1: one aggregate of 40 user
	// records (ids 100..139) then plain records 140..149.
	var entries []types.PutRecordsRequestEntry
	for i := range 20 {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("p"),
			ExplicitHashKey: aws.String(keyIn[0]), Data: []byte(strconv.Itoa(i))})
	}
	var a deagg.Aggregator
	for i := 100; i < 140; i++ {
		_, err := a.Add("agg", keyIn[1], []byte(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	agg := a.Flush()
	entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(agg.PartitionKey),
		ExplicitHashKey: aws.String(agg.ExplicitHashKey), Data: agg.Data})
	for i := 140; i < 150; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("q"),
			ExplicitHashKey: aws.String(keyIn[1]), Data: []byte(strconv.Itoa(i))})
	}
	out, err := f.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: entries})
	require.NoError(t, err)
	require.Zero(t, aws.ToInt32(out.FailedRecordCount))
	seqOfRecord9 := aws.ToString(out.Records[9].SequenceNumber)
	seqOfAggregate := aws.ToString(out.Records[20].SequenceNumber)

	// The items exactly as the Java KCL 2.x writes them.
	s := func(v string) ddb.AttributeValue { return &ddb.AttributeValueMemberS{Value: v} }
	n := func(v string) ddb.AttributeValue { return &ddb.AttributeValueMemberN{Value: v} }
	items := []map[string]ddb.AttributeValue{
		{ // held by a KCL worker that died: gokcl must wait for it to expire
			"leaseKey": s("shardId-000000000000"), "leaseOwner": s("ip-10-0-0-1.ec2.internal:4a1c5b6e-8a5e-4f0e-9a44-1c2d3e4f5a6b"),
			"leaseCounter": n("1234"), "ownerSwitchesSinceCheckpoint": n("0"),
			"checkpoint": s(seqOfRecord9), "checkpointSubSequenceNumber": n("0"),
			"startingHashKey": s("0"), "endingHashKey": s(new(big.Int).Sub(half, big.NewInt(1)).String()),
		},
		{ // unowned, checkpointed after user record 29 of the aggregate (id 129)
			"leaseKey": s("shardId-000000000001"), "leaseCounter": n("77"), "ownerSwitchesSinceCheckpoint": n("2"),
			"checkpoint": s(seqOfAggregate), "checkpointSubSequenceNumber": n("29"),
			"startingHashKey": s(half.String()), "endingHashKey": s("340282366920938463463374607431768211455"),
		},
	}
	for _, item := range items {
		_, err := f.dc.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.stream), Item: item})
		require.NoError(t, err)
	}

	r := f.start(f.config("gokcl"))
	// 10 plain records after record 9, 10 user records after 129, 10 plain.
	waitFor(t, time.Minute, "30 records", func() bool { return f.col.unique() == 30 })
	time.Sleep(time.Second) // nothing more may arrive
	r.stop(t)
	require.Equal(t, 30, f.col.unique())
	for id := range f.col.count {
		ok := (id >= 10 && id < 20) || (id >= 130 && id < 150)
		require.True(t, ok, "record %d was before a KCL checkpoint", id)
	}
	require.Zero(t, f.col.duplicates())
}
