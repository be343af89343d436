package kcltest

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/gokcl/kcl/consumer"
)

// fanOutAPI is a Kinesis client with the calls of enhanced fan-out
// (consumer.EnhancedFanOut) besides consumer.KinesisAPI's, as
// *kinesis.Client has.
type fanOutAPI interface {
	consumer.KinesisAPI
	SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
	RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
	DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// gatedFanOut is gatedKinesis for a client that also has the enhanced
// fan-out calls, so that a worker reading with enhanced fan-out runs on the
// kit too. A subscription open when the worker crashes ends with it: Crash
// cancels the worker, which closes its subscriptions.
type gatedFanOut struct {
	gatedKinesis
	f fanOutAPI
}

// describerAPI is a Kinesis client with DescribeStreamSummary besides
// consumer.KinesisAPI's calls, as a multi-stream consumer needs (Stream and
// Account have it).
type describerAPI interface {
	consumer.KinesisAPI
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// gatedDescriber is gatedKinesis for a client that also has
// DescribeStreamSummary.
type gatedDescriber struct {
	gatedKinesis
	d describerAPI
}

func (k *gatedDescriber) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	if err := k.g.check(); err != nil {
		return nil, err
	}
	return k.d.DescribeStreamSummary(ctx, in, optFns...)
}

// gateKinesis wraps k, keeping the enhanced fan-out calls and
// DescribeStreamSummary if it has them.
func gateKinesis(k consumer.KinesisAPI, g *gate) consumer.KinesisAPI {
	if f, ok := k.(fanOutAPI); ok {
		return &gatedFanOut{gatedKinesis: gatedKinesis{k: k, g: g}, f: f}
	}
	if d, ok := k.(describerAPI); ok {
		return &gatedDescriber{gatedKinesis: gatedKinesis{k: k, g: g}, d: d}
	}
	return &gatedKinesis{k: k, g: g}
}

func (k *gatedFanOut) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	if err := k.g.check(); err != nil {
		return nil, err
	}
	return k.f.SubscribeToShard(ctx, in, optFns...)
}

func (k *gatedFanOut) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	if err := k.g.check(); err != nil {
		return nil, err
	}
	return k.f.RegisterStreamConsumer(ctx, in, optFns...)
}

func (k *gatedFanOut) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	if err := k.g.check(); err != nil {
		return nil, err
	}
	return k.f.DescribeStreamConsumer(ctx, in, optFns...)
}

func (k *gatedFanOut) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	if err := k.g.check(); err != nil {
		return nil, err
	}
	return k.f.DescribeStreamSummary(ctx, in, optFns...)
}
