//go:build integration

package efotest

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/internal/testenv"
)

// The wrapper against the real kinesis-local: records flow over
// SubscribeToShard, a second subscriber gets a typed ResourceInUseException,
// and Lifetime ends a subscription cleanly.
func TestIntegrationKinesisLocalSubscribeToShard(t *testing.T) {
	k := testenv.Kinesis(t, func(o *kinesis.Options) {
		o.HTTPClient = &KinesisLocal{Next: o.HTTPClient, Lifetime: 3 * time.Second}
	})
	ctx := testenv.Context(t, time.Minute)
	name := testenv.CreateStream(t, k, 1)
	sum, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := k.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
		StreamARN: sum.StreamDescriptionSummary.StreamARN, ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "consumer ACTIVE", func() bool {
		d, err := k.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: reg.Consumer.ConsumerARN})
		return err == nil && d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive
	})
	put, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	in := &kinesis.SubscribeToShardInput{ConsumerARN: reg.Consumer.ConsumerARN, ShardId: put.ShardId,
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}}
	out, err := k.SubscribeToShard(ctx, in, ownCodec)
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	es := out.GetStream()
	defer es.Close()
	ev := next(t, es)
	if got := data(ev); !equal(got, []string{"hello"}) || aws.ToString(ev.ContinuationSequenceNumber) != aws.ToString(put.SequenceNumber) {
		t.Errorf("first event %q continuing from %s, want hello and %s", got, aws.ToString(ev.ContinuationSequenceNumber), aws.ToString(put.SequenceNumber))
	}

	_, err = k.SubscribeToShard(ctx, in, ownCodec)
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Errorf("second subscription: %v, want ResourceInUseException", err)
	}

	for ev := range es.Events() {
		if e := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value; len(e.Records) > 0 {
			t.Errorf("records %q again", data(&e))
		}
	}
	if err := es.Err(); err != nil {
		t.Errorf("subscription ended with %v, want a clean end after its lifetime", err)
	}
}
