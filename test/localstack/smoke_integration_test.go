//go:build integration

package localstack

import (
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/internal/testenv"
)

// TestIntegrationSmokeKinesis proves the Kinesis server works end to end
// through aws-sdk-go-v2: put and get a record, split a shard, see the children.
func TestIntegrationSmokeKinesis(t *testing.T) {
	client := testenv.Kinesis(t)
	ctx := testenv.Context(t, time.Minute)
	stream := testenv.CreateStream(t, client, 1)

	put, err := client.PutRecord(ctx, &kinesis.PutRecordInput{
		StreamName: aws.String(stream), PartitionKey: aws.String("pk"), Data: []byte("hello"),
	})
	require.NoError(t, err)

	it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: put.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	require.NoError(t, err)
	got, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	require.NoError(t, err)
	require.Len(t, got.Records, 1)
	require.Equal(t, "hello", string(got.Records[0].Data))
	require.Equal(t, aws.ToString(put.SequenceNumber), aws.ToString(got.Records[0].SequenceNumber))

	// Split the only shard in the middle of the hash key space.
	mid := new(big.Int).Lsh(big.NewInt(1), 127)
	_, err = client.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: put.ShardId, NewStartingHashKey: aws.String(mid.String()),
	})
	require.NoError(t, err)
	testenv.WaitStreamActive(t, client, stream)

	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	require.NoError(t, err)
	require.Len(t, shards.Shards, 3)
	var children []string
	for _, s := range shards.Shards {
		if aws.ToString(s.ParentShardId) == aws.ToString(put.ShardId) {
			children = append(children, aws.ToString(s.ShardId))
		}
	}
	require.Len(t, children, 2, "the split's children list the parent")

	// Reading the closed parent to its end reports the children.
	it, err = client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: put.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	require.NoError(t, err)
	iter := it.ShardIterator
	var ended *kinesis.GetRecordsOutput
	for i := 0; i < 10 && iter != nil; i++ {
		ended, err = client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		require.NoError(t, err)
		iter = ended.NextShardIterator
	}
	require.Nil(t, iter, "a closed shard ends with no next iterator")
	var reported []string
	for _, c := range ended.ChildShards {
		reported = append(reported, aws.ToString(c.ShardId))
	}
	slices.Sort(children)
	slices.Sort(reported)
	require.Equal(t, children, reported)
}

// TestIntegrationSmokeDynamoDB proves the DynamoDB server honours conditional
// writes, which the lease table relies on.
func TestIntegrationSmokeDynamoDB(t *testing.T) {
	client := testenv.DynamoDB(t)
	ctx := testenv.Context(t, time.Minute)
	table := testenv.Name(t)

	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}) })
	require.NoError(t, dynamodb.NewTableExistsWaiter(client).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, time.Minute))

	key := map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000000"}}
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]ddbtypes.AttributeValue{
			"leaseKey":     key["leaseKey"],
			"leaseCounter": &ddbtypes.AttributeValueMemberN{Value: "1"},
		},
		ConditionExpression: aws.String("attribute_not_exists(leaseKey)"),
	})
	require.NoError(t, err)

	update := func(expected string) error {
		_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(table),
			Key:                       key,
			UpdateExpression:          aws.String("SET leaseCounter = leaseCounter + :one"),
			ConditionExpression:       aws.String("leaseCounter = :expected"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": &ddbtypes.AttributeValueMemberN{Value: "1"}, ":expected": &ddbtypes.AttributeValueMemberN{Value: expected}},
		})
		return err
	}
	require.NoError(t, update("1"), "the counter is 1: the condition holds")
	err = update("1")
	var ccf *ddbtypes.ConditionalCheckFailedException
	require.True(t, errors.As(err, &ccf), "the counter is now 2: want ConditionalCheckFailedException, got %v", err)

	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	require.NoError(t, err)
	require.Equal(t, "2", out.Item["leaseCounter"].(*ddbtypes.AttributeValueMemberN).Value)
}

// TestIntegrationDynamoDBSurvivesAbortedRequests: a client that gives up on a
// request mid-body (an SDK call whose context expired) must not take the
// DynamoDB test server down; dynalite alone crashes on it, so emulators.sh
// starts it through dynalite-server.js.
func TestIntegrationDynamoDBSurvivesAbortedRequests(t *testing.T) {
	_, endpoint := testenv.Endpoints(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "http://"))
	require.NoError(t, err)
	_, err = conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n" +
		"X-Amz-Target: DynamoDB_20120810.ListTables\r\n\r\n{\"Lim"))
	require.NoError(t, err)
	require.NoError(t, conn.Close())

	client := testenv.DynamoDB(t)
	_, err = client.ListTables(testenv.Context(t, 10*time.Second), &dynamodb.ListTablesInput{})
	require.NoError(t, err, "the server still answers")
}
