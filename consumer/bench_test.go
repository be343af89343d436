package consumer_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// BenchmarkPipeline measures user records per second through the whole
// consumer (fetch → deaggregate → process → checkpoint) on the in-memory
// stream and lease store: one shard of KPL aggregates of 100 user records of
// 100 bytes, a no-op processor. One op is one user record.
func BenchmarkPipeline(b *testing.B) {
	stream, want, proc, done := pipelineInput(b)
	cfg := testConfig(stream, lease.NewMemoryStore(), "bench", func(string) RecordProcessor { return proc })
	cfg.MaxRecords = 10000
	measurePipeline(b, cfg, want, done)
}

// pipelineInput returns what the pipeline benchmarks read: one shard of KPL
// aggregates of 100 user records of 100 bytes, at least b.N user records in
// all (want), and a no-op processor that closes done once it has processed
// them all. The stream's responses hold up to 10000 aggregates (100 MB):
// 10 MiB responses, 5 a second, would measure the service's limits rather
// than the consumer.
func pipelineInput(b *testing.B) (stream *kcltest.Stream, want int64, proc RecordProcessor, done <-chan struct{}) {
	const perAggregate = 100
	agg := buildAggregate(b, perAggregate, 100)
	aggregates := (b.N + perAggregate - 1) / perAggregate
	stream = kcltest.NewStream(1, kcltest.WithName(testStream), kcltest.WithResponseBytes(1<<30))
	for range aggregates {
		if _, err := stream.Put("pk", "", agg); err != nil {
			b.Fatal(err)
		}
	}
	want = int64(aggregates * perAggregate)
	var got atomic.Int64
	all := make(chan struct{})
	proc = RecordProcessorFunc(func(_ context.Context, batch *Batch) error {
		if got.Add(int64(len(batch.Records))) == want {
			close(all)
		}
		return nil
	})
	return stream, want, proc, all
}

// measurePipeline runs a consumer of cfg (without logs) until done, timing
// it, and reports the heap allocations per user record (allocs/op is
// rounded down to a whole number, allocs/record is not) and the user
// records per second.
func measurePipeline(b *testing.B, cfg Config, want int64, done <-chan struct{}) {
	cfg.Logger = nil
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	mallocs := totalMallocs()
	start := time.Now()
	go func() { runErr <- c.Run(ctx) }()
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(totalMallocs()-mallocs)/float64(want), "allocs/record")
	cancel()
	if err := <-runErr; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(want)/elapsed.Seconds(), "records/s")
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

// BenchmarkIdleShards reports the heap in use by a worker holding 1,000
// leases on idle shards, once every shard's fetcher is polling.
func BenchmarkIdleShards(b *testing.B) {
	const shards = 1000
	for range b.N {
		stream := newStream(testStream, shards)
		store := lease.NewMemoryStore()
		cfg := testConfig(stream, store, "idle", func(string) RecordProcessor {
			return RecordProcessorFunc(func(context.Context, *Batch) error { return nil })
		})
		cfg.Logger = nil
		cfg.PollInterval = time.Second
		c, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- c.Run(ctx) }()
		for stream.Calls("GetRecords") < 2*shards {
			time.Sleep(50 * time.Millisecond)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		cancel()
		if err := <-runErr; err != nil {
			b.Fatal(err)
		}
	}
}
