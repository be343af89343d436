package kclcw

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// A real consumer on kcltest's stream, with a Publisher in its hooks,
// sending to the recording server: RecordsProcessed adds up per shard.
func TestPublisherOfARunningConsumer(t *testing.T) {
	stream := kcltest.NewStream(2, kcltest.WithName("orders"))
	perShard := map[string]int{}
	for i := range 100 {
		res, err := stream.Put(fmt.Sprintf("key-%d", i%7), "", []byte(fmt.Sprintf("record-%d", i)))
		require.NoError(t, err)
		perShard[res.ShardID]++
	}
	s := newServer(t)
	p := newPublisher(t, s, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	published := make(chan error, 1)
	go func() { published <- p.Run(ctx) }()
	var processed atomic.Int64
	w, err := kcltest.Start(t.Context(), consumer.Config{
		StreamName: "orders", AppName: "billing", WorkerID: "w1",
		Kinesis: stream, LeaseStore: lease.NewMemoryStore(), InitialPosition: consumer.TrimHorizon,
		PollInterval: 50 * time.Millisecond,
		Hooks:        []consumer.Hook{p},
		NewProcessor: func(string) consumer.RecordProcessor {
			return consumer.RecordProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
				processed.Add(int64(len(b.Records)))
				return nil
			})
		},
	})
	require.NoError(t, err)
	testenv.WaitFor(t, time.Minute, "every record", func() bool { return processed.Load() == 100 })
	require.NoError(t, w.Stop())
	cancel()
	require.NoError(t, <-published)

	got := s.data()
	for shard, n := range perShard {
		require.Equal(t, float64(n), got["RecordsProcessed Operation=ProcessTask,ShardId="+shard].Sum, shard)
		require.Contains(t, got, "MillisBehindLatest Operation=ProcessTask,ShardId="+shard)
		require.Contains(t, got, "KinesisDataFetcher.getRecords.Time Operation=ProcessTask,ShardId="+shard)
	}
	require.Contains(t, got, "TakenLeases Operation=TakeLeases,WorkerIdentifier=w1")
	require.Contains(t, got, "MillisBehindLatest Operation=ApplicationTracker")
}
