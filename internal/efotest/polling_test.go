package efotest

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// listing is a memSource that lists two shards, one per page.
type listing struct{ *memSource }

func (l listing) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	sh := func(id string) types.Shard {
		return types.Shard{ShardId: aws.String(id), HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("9")},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
	}
	if in.NextToken == nil {
		return &kinesis.ListShardsOutput{Shards: []types.Shard{sh("parent")}, NextToken: aws.String("p2")}, nil
	}
	child := sh("left")
	child.ParentShardId = aws.String("parent")
	return &kinesis.ListShardsOutput{Shards: []types.Shard{child}}, nil
}

// The polling calls go to the source, through the SDK.
func TestPollingCallsThroughTheSDK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		src := listing{newMemSource("parent")}
		srv := NewServer(Options{})
		srv.AddStream("s", src)
		k := NewClient(srv)
		l1, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
		if err != nil || len(l1.Shards) != 1 || l1.NextToken == nil {
			t.Fatalf("first page: %+v, %v", l1, err)
		}
		l2, err := k.ListShards(ctx, &kinesis.ListShardsInput{NextToken: l1.NextToken})
		if err != nil || len(l2.Shards) != 1 || aws.ToString(l2.Shards[0].ParentShardId) != "parent" || l2.NextToken != nil {
			t.Fatalf("second page: %+v, %v", l2, err)
		}
		src.put("parent", "a", "b")
		src.close("parent", "left")
		it, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("parent"),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
		if err != nil || len(out.Records) != 1 || string(out.Records[0].Data) != "a" || out.NextShardIterator == nil || aws.ToInt64(out.MillisBehindLatest) != 1000 {
			t.Fatalf("first GetRecords: %+v, %v", out, err)
		}
		out, err = k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator})
		if err != nil || len(out.Records) != 1 || string(out.Records[0].Data) != "b" || out.NextShardIterator != nil ||
			len(out.ChildShards) != 1 || aws.ToString(out.ChildShards[0].ShardId) != "left" {
			t.Fatalf("last GetRecords: %+v, %v", out, err)
		}
	})
}
