package kclprom

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// BenchmarkPipeline is the consumer's BenchmarkPipeline (fetch →
// deaggregate → process → checkpoint, one shard of KPL aggregates of 100
// user records of 100 bytes, a no-op processor; one op is one user record),
// without hooks and with a Metrics in the consumer's Hooks, registered and
// scraped every 100ms as Prometheus would, so that the two can be compared:
//
//	go test -run '^$' -bench Pipeline -benchmem -count 6 . | benchstat -col /hooks -
func BenchmarkPipeline(b *testing.B) {
	b.Run("hooks=none", func(b *testing.B) { benchPipeline(b, false) })
	b.Run("hooks=prometheus", func(b *testing.B) { benchPipeline(b, true) })
}

func benchPipeline(b *testing.B, hooked bool) {
	const perAggregate = 100
	agg := buildAggregate(b, perAggregate, 100)
	aggregates := (b.N + perAggregate - 1) / perAggregate
	stream := kcltest.NewStream(1, kcltest.WithName("bench"), kcltest.WithResponseBytes(1<<30))
	for range aggregates {
		if _, err := stream.Put("pk", "", agg); err != nil {
			b.Fatal(err)
		}
	}
	// The shard's lease exists before the consumer starts, so that its first
	// scan takes it: otherwise the first scan can come before the shard
	// syncer made the lease, and the next one is TakerInterval later, which
	// a benchmark of a few thousand records would measure instead.
	store := lease.NewMemoryStore()
	if err := store.Create(context.Background(), lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon}); err != nil {
		b.Fatal(err)
	}
	want := int64(aggregates * perAggregate)
	var got atomic.Int64
	done := make(chan struct{})
	cfg := consumer.Config{
		StreamName: "bench", AppName: "bench", WorkerID: "bench", Kinesis: stream, LeaseStore: store,
		InitialPosition: consumer.TrimHorizon, FailoverTime: 3 * time.Second, PollInterval: 100 * time.Millisecond,
		CheckpointInterval: 500 * time.Millisecond, MaxRecords: 10000,
		NewProcessor: func(string) consumer.RecordProcessor {
			return consumer.RecordProcessorFunc(func(_ context.Context, batch *consumer.Batch) error {
				if got.Add(int64(len(batch.Records))) == want {
					close(done)
				}
				return nil
			})
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if hooked {
		m := New(Options{})
		reg := prometheus.NewRegistry()
		reg.MustRegister(m)
		cfg.Hooks = []consumer.Hook{m}
		go scrape(ctx, reg)
	}
	c, err := consumer.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	runErr := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { runErr <- c.Run(ctx) }()
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-runErr; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(want)/elapsed.Seconds(), "records/s")
}

// scrape gathers reg every 100ms until ctx is done.
func scrape(ctx context.Context, reg *prometheus.Registry) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = reg.Gather()
		}
	}
}

func buildAggregate(b *testing.B, n, size int) []byte {
	var a deagg.Aggregator
	data := make([]byte, size)
	for i := range n {
		if _, err := a.Add(fmt.Sprintf("key-%d", i), "", data); err != nil {
			b.Fatal(err)
		}
	}
	return a.Flush().Data
}

// BenchmarkHooksPerBatch measures what Metrics adds to one batch: the hook
// calls the consumer makes per GetRecords response and per ProcessRecords
// call. One op is one batch, whatever its size: the pipeline's batches hold
// up to 10,000 Kinesis records.
func BenchmarkHooksPerBatch(b *testing.B) {
	m := New(Options{})
	fetched := consumer.BatchFetched{Stream: "bench", Worker: "w1", Shard: "shardId-000000000000", Records: 100, Bytes: 1 << 20, Latency: time.Millisecond}
	processed := consumer.BatchProcessed{Stream: "bench", Worker: "w1", Shard: "shardId-000000000000", Records: 10000, Bytes: 1 << 20,
		Duration: time.Millisecond, Attempt: 1}
	b.ReportAllocs()
	for b.Loop() {
		m.OnBatchFetched(fetched)
		m.OnBatchProcessed(processed)
	}
}
