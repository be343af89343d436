package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// A worker that prints every record. In production, Kinesis is a
// *kinesis.Client and the leases live in DynamoDB (set DynamoDB to a
// *dynamodb.Client instead of LeaseStore); here the in-memory stream of
// package kcltest and an in-memory lease store stand in for them.
func Example() {
	stream := kcltest.NewStream(2, kcltest.WithName("orders"))
	for i := range 4 {
		if _, err := stream.Put(fmt.Sprintf("customer-%d", i), "", []byte(fmt.Sprintf("order %d", i))); err != nil {
			fmt.Println(err)
			return
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	var seen []string
	c, err := consumer.New(consumer.Config{
		StreamName:      "orders",
		AppName:         "billing",
		Kinesis:         stream,
		LeaseStore:      lease.NewMemoryStore(),
		InitialPosition: consumer.TrimHorizon,
		FailoverTime:    time.Second, // short, for the example
		NewProcessor: func(shardID string) consumer.RecordProcessor {
			return consumer.RecordProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range b.Records {
					seen = append(seen, fmt.Sprintf("%s: %s", r.PartitionKey, r.Data))
				}
				if len(seen) == 4 {
					stop() // graceful shutdown: checkpoint, release, return
				}
				return nil // checkpointed after the batch
			})
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Run(ctx); err != nil {
		fmt.Println(err)
	}
	slices.Sort(seen)
	for _, s := range seen {
		fmt.Println(s)
	}
	// Output:
	// customer-0: order 0
	// customer-1: order 1
	// customer-2: order 2
	// customer-3: order 3
}

// A worker of several streams, one per tenant, through one lease table:
// each processor is told its stream. Here the streams are fixed (Streams);
// DiscoverStreams finds them while the worker runs.
func Example_severalStreams() {
	account := kcltest.NewAccount() // several in-memory streams, as Kinesis has them
	for _, tenant := range []string{"acme", "globex"} {
		s, err := account.CreateStream("events-"+tenant, 1)
		if err != nil {
			fmt.Println(err)
			return
		}
		if _, err := s.Put("k", "", []byte("signed up")); err != nil {
			fmt.Println(err)
			return
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	var seen []string
	c, err := consumer.New(consumer.Config{
		Streams: []consumer.StreamConfig{
			{Name: "events-acme", InitialPosition: consumer.TrimHorizon},
			{Name: "events-globex", InitialPosition: consumer.TrimHorizon},
		},
		AppName:      "tenants",
		Kinesis:      account,
		LeaseStore:   lease.NewMemoryStore(),
		FailoverTime: time.Second, // short, for the example
		NewShardProcessor: func(shard consumer.ShardInfo) consumer.RecordProcessor {
			return consumer.RecordProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range b.Records {
					seen = append(seen, fmt.Sprintf("%s %s: %s", shard.Stream.Name, shard.ShardID, r.Data))
				}
				if len(seen) == 2 {
					stop()
				}
				return nil
			})
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Run(ctx); err != nil {
		fmt.Println(err)
	}
	slices.Sort(seen)
	for _, s := range seen {
		fmt.Println(s)
	}
	// Output:
	// events-acme shardId-000000000000: signed up
	// events-globex shardId-000000000000: signed up
}
