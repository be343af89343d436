package consumer_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/efotest"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// BenchmarkFanOutPipeline is BenchmarkPipeline through enhanced fan-out:
// the same shard of KPL aggregates of 100 user records of 100 bytes and
// no-op processor, but read from an in-process SubscribeToShard server
// through the real SDK (event-stream decoding, JSON and base64) over an
// in-memory transport. The server's encoding runs in the same process and
// is counted too. One op is one user record.
func BenchmarkFanOutPipeline(b *testing.B) {
	for _, per := range []int{10, 100} {
		b.Run(fmt.Sprintf("aggregates-per-event=%d", per), func(b *testing.B) {
			benchFanOutPipeline(b, per)
		})
	}
}

func benchFanOutPipeline(b *testing.B, perEvent int) {
	stream, want, proc, done := pipelineInput(b)
	k, _ := newFanOut(stream, efotest.Options{EventRecords: perEvent})
	cfg := fanOutConfig(k, lease.NewMemoryStore(), "bench", func(string) RecordProcessor { return proc })
	measurePipeline(b, cfg, want, done)
}

// totalMallocs is the number of heap allocations so far: allocs/op is
// rounded down to a whole number, allocs/record is not.
func totalMallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// BenchmarkPipelineThroughSDK is BenchmarkPipeline with the GetRecords
// responses decoded by the real SDK, as against Kinesis: the in-memory stream
// served by the in-process server over the in-memory transport. It is the
// polling figure to compare BenchmarkFanOutPipeline with at equal decoding
// cost (JSON and base64 in both). One op is one user record.
func BenchmarkPipelineThroughSDK(b *testing.B) {
	stream, want, proc, done := pipelineInput(b)
	srv := efotest.NewServer(efotest.Options{})
	srv.AddStream(testStream, stream)
	cfg := testConfig(stream, lease.NewMemoryStore(), "bench", func(string) RecordProcessor { return proc })
	cfg.Kinesis = efotest.NewClient(srv)
	cfg.MaxRecords = 10000
	measurePipeline(b, cfg, want, done)
}

// notifyingStream is the in-memory stream with change notification, so that
// the fan-out server pushes a record as soon as it is put, as Kinesis does.
type notifyingStream struct {
	*kcltest.Stream
	mu      sync.Mutex
	changed map[string]chan struct{}
}

func (s *notifyingStream) Changed(shard string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.changed[shard]
	if ch == nil {
		ch = make(chan struct{})
		s.changed[shard] = ch
	}
	return ch
}

func (s *notifyingStream) put(pk string, data []byte) error {
	res, err := s.Stream.Put(pk, "", data)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.changed[res.ShardID]; ch != nil {
		close(ch)
		delete(s.changed, res.ShardID)
	}
	return nil
}

// BenchmarkLatency measures put-to-process latency, median and 99th
// percentile, of two applications reading the same in-memory stream at
// once: one polling (default PollInterval), one with enhanced fan-out from
// the in-process server. One op is one record put (every 5 ms). The figures
// are the library's: Kinesis adds its own delay (about 70 ms for fan-out on
// AWS, up to 1 s for kinesis-local).
func BenchmarkLatency(b *testing.B) {
	stream := &notifyingStream{Stream: newStream(testStream, 2), changed: map[string]chan struct{}{}}
	srv := efotest.NewServer(efotest.Options{})
	srv.AddStream(testStream, stream)
	fo := &fanOutKinesis{Stream: stream.Stream, efo: efotest.NewClient(srv)}

	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	newProc := func(app string) func(string) RecordProcessor {
		return func(string) RecordProcessor {
			return RecordProcessorFunc(func(_ context.Context, batch *Batch) error {
				now := time.Now()
				mu.Lock()
				defer mu.Unlock()
				for _, r := range batch.Records {
					put := time.Unix(0, int64(binary.BigEndian.Uint64(r.Data)))
					lat[app] = append(lat[app], now.Sub(put))
				}
				return nil
			})
		}
	}
	polling := testConfig(stream.Stream, lease.NewMemoryStore(), "poll", newProc("polling"))
	polling.AppName, polling.PollInterval, polling.InitialPosition, polling.Logger = "polling", DefaultPollInterval, Latest, nil
	fanOut := fanOutConfig(fo, lease.NewMemoryStore(), "fan", newProc("fan-out"))
	fanOut.AppName, fanOut.InitialPosition, fanOut.Logger = "fan-out", Latest, nil

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, cfg := range []Config{polling, fanOut} {
		c, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			if err := c.Run(ctx); err != nil {
				b.Error(err)
			}
		})
	}
	// Both apps hold their shards and have read past LATEST.
	for stream.Calls(kcltest.OpGetRecords) < 4 || srv.Open() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)
	b.ResetTimer()
	for i := range b.N {
		var data [8]byte
		binary.BigEndian.PutUint64(data[:], uint64(time.Now().UnixNano()))
		if err := stream.put(fmt.Sprintf("k%d", i), data[:]); err != nil {
			b.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := min(len(lat["polling"]), len(lat["fan-out"]))
		mu.Unlock()
		if n == b.N || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, app := range []string{"polling", "fan-out"} {
		d := lat[app]
		if len(d) != b.N {
			b.Fatalf("%s processed %d of %d records", app, len(d), b.N)
		}
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2])/1e6, "p50-ms-"+app)
		b.ReportMetric(float64(d[len(d)*99/100])/1e6, "p99-ms-"+app)
	}
}

// BenchmarkIdleSubscriptions reports the heap in use by a worker holding
// 1,000 leases on idle shards through enhanced fan-out, once every shard
// has its subscription open. The in-process server's side of the 1,000
// subscriptions is in the same heap: BenchmarkIdleSubscriptionsServer
// measures it alone, for subtraction.
func BenchmarkIdleSubscriptions(b *testing.B) {
	const shards = 1000
	for range b.N {
		stream := newStream(testStream, shards)
		k, srv := newFanOut(stream, efotest.Options{Heartbeat: time.Hour, PollInterval: time.Second})
		cfg := fanOutConfig(k, lease.NewMemoryStore(), "idle", func(string) RecordProcessor {
			return RecordProcessorFunc(func(context.Context, *Batch) error { return nil })
		})
		cfg.Logger = nil
		c, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- c.Run(ctx) }()
		for srv.Open() < shards {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // every server polled its source once more
		reportHeap(b)
		cancel()
		if err := <-runErr; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleSubscriptionsServer is the server's share of
// BenchmarkIdleSubscriptions: the same 1,000 subscriptions opened by bare
// HTTP requests that read nothing, no consumer.
func BenchmarkIdleSubscriptionsServer(b *testing.B) {
	const shards = 1000
	for range b.N {
		stream := newStream(testStream, shards)
		srv := efotest.NewServer(efotest.Options{Heartbeat: time.Hour, PollInterval: time.Second})
		srv.AddStream(testStream, stream)
		reg, err := efotest.NewClient(srv).RegisterStreamConsumer(context.Background(), &kinesis.RegisterStreamConsumerInput{
			StreamARN: aws.String(stream.ARN()), ConsumerName: aws.String("bench")})
		if err != nil {
			b.Fatal(err)
		}
		rt := &efotest.Transport{Handler: srv}
		var bodies []io.Closer
		for _, shard := range stream.OpenShards() {
			body := fmt.Sprintf(`{"ConsumerARN":%q,"ShardId":%q,"StartingPosition":{"Type":"LATEST"}}`, aws.ToString(reg.Consumer.ConsumerARN), shard)
			req, _ := http.NewRequest(http.MethodPost, "http://efotest.invalid/", strings.NewReader(body))
			req.Header.Set("X-Amz-Target", "Kinesis_20131202.SubscribeToShard")
			resp, err := rt.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("subscribe %s: %v %v", shard, resp, err)
			}
			bodies = append(bodies, resp.Body)
		}
		time.Sleep(2 * time.Second)
		reportHeap(b)
		for _, body := range bodies {
			_ = body.Close()
		}
		for srv.Open() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func reportHeap(b *testing.B) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
}
