package consumer_test

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// countingStore is a MemoryStore that counts its calls: each would be one
// DynamoDB request on a DynamoStore (a scan of a table this small is one
// page). It keeps the MemoryStore's optional interfaces (hand-offs, worker
// rows), so the lease manager behaves as on DynamoDB.
type countingStore struct {
	*lease.MemoryStore
	calls *storeCalls
}

// storeCalls counts a store's calls by operation.
type storeCalls struct {
	mu sync.Mutex
	by map[string]int64
}

func (c *storeCalls) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.by)
}

func (s countingStore) count(op string) {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	if s.calls.by == nil {
		s.calls.by = map[string]int64{}
	}
	s.calls.by[op]++
}

func (s countingStore) List(ctx context.Context) ([]lease.Lease, error) {
	s.count("List")
	return s.MemoryStore.List(ctx)
}

func (s countingStore) ListAll(ctx context.Context) ([]lease.Lease, []lease.Worker, error) {
	s.count("ListAll")
	return s.MemoryStore.ListAll(ctx)
}

func (s countingStore) Create(ctx context.Context, l lease.Lease) error {
	s.count("Create")
	return s.MemoryStore.Create(ctx, l)
}

func (s countingStore) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	s.count("Renew")
	return s.MemoryStore.Renew(ctx, l)
}

func (s countingStore) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	s.count("Take")
	return s.MemoryStore.Take(ctx, l, owner)
}

func (s countingStore) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	s.count("Release")
	return s.MemoryStore.Release(ctx, l)
}

func (s countingStore) UpdateCheckpoint(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	s.count("UpdateCheckpoint")
	return s.MemoryStore.UpdateCheckpoint(ctx, l)
}

func (s countingStore) Delete(ctx context.Context, key string) error {
	s.count("Delete")
	return s.MemoryStore.Delete(ctx, key)
}

func (s countingStore) Get(ctx context.Context, key string) (lease.Lease, error) {
	s.count("Get")
	return s.MemoryStore.Get(ctx, key)
}

func (s countingStore) HandOff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	s.count("HandOff")
	return s.MemoryStore.HandOff(ctx, l, to)
}

func (s countingStore) Heartbeat(ctx context.Context, id string) (lease.Worker, error) {
	s.count("Heartbeat")
	return s.MemoryStore.Heartbeat(ctx, id)
}

func (s countingStore) DeleteWorker(ctx context.Context, w lease.Worker) error {
	s.count("DeleteWorker")
	return s.MemoryStore.DeleteWorker(ctx, w)
}

// idleCost is what an idle application costs in the steady state.
type idleCost struct {
	kinesis, dynamo               map[string]float64 // requests per hour, by operation
	dynamoPerHour, kinesisPerHour float64
}

// The measurement's scale and windows, in virtual time.
const (
	costStreams = 100
	costWarmUp  = 3 * time.Minute  // every lease taken, every fetcher polling
	costWindow  = 10 * time.Minute // measured, then scaled to an hour
)

var kinesisOps = []kcltest.Op{kcltest.OpListShards, kcltest.OpGetShardIterator, kcltest.OpGetRecords, kcltest.OpDescribeStreamSummary}

// measureIdle runs start on an account of costStreams idle single-shard
// streams, and counts the requests of the window after the warm-up.
func measureIdle(t *testing.T, start func(t *testing.T, acct *kcltest.Account, calls *storeCalls) func()) idleCost {
	var cost idleCost
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		for i := range costStreams {
			mustCreate(t, acct, fmt.Sprintf("tenant-%03d", i), 1)
		}
		var dynamo storeCalls
		stop := start(t, acct, &dynamo)
		time.Sleep(costWarmUp)
		k0 := map[kcltest.Op]int{}
		for _, op := range kinesisOps {
			k0[op] = acct.Calls(op)
		}
		d0 := dynamo.snapshot()
		time.Sleep(costWindow)
		scale := float64(time.Hour) / float64(costWindow)
		cost.kinesis = map[string]float64{}
		for _, op := range kinesisOps {
			n := float64(acct.Calls(op)-k0[op]) * scale
			cost.kinesis[string(op)] = n
			cost.kinesisPerHour += n
		}
		cost.dynamo = map[string]float64{}
		for op, n := range dynamo.snapshot() {
			if n -= d0[op]; n > 0 {
				cost.dynamo[op] = float64(n) * scale
				cost.dynamoPerHour += float64(n) * scale
			}
		}
		stop()
	})
	return cost
}

// idleConfig is a worker's configuration with the consumer's defaults
// (PollInterval 1s, FailoverTime 10s, ShardSyncInterval 1m), as in
// production.
func idleConfig(store lease.Store, worker string) Config {
	return Config{
		AppName:    "tenants",
		WorkerID:   worker,
		LeaseStore: store,
		NewProcessor: func(string) RecordProcessor {
			return RecordProcessorFunc(func(context.Context, *Batch) error { return nil })
		},
	}
}

// TestMultiStreamIdleCost measures one worker holding 100 idle
// single-shard streams (one lease table) against 100 single-stream
// consumers in one process (100 tables): the Kinesis and DynamoDB requests
// per hour in the steady state, in virtual time. It prints FIGURE lines,
// and checks the targets on the counts: fewer requests in all, and
// no more DynamoDB requests per shard-hour than single-stream mode. (The
// heap is BenchmarkMultiStreamIdleHeap's.)
func TestMultiStreamIdleCost(t *testing.T) {
	multi := measureIdle(t, func(t *testing.T, acct *kcltest.Account, calls *storeCalls) func() {
		cfg := idleConfig(countingStore{MemoryStore: lease.NewMemoryStore(), calls: calls}, "w")
		cfg.Kinesis = acct
		for _, s := range acct.Streams() {
			cfg.Streams = append(cfg.Streams, StreamConfig{Name: s.Name()})
		}
		w, err := kcltest.Start(t.Context(), cfg)
		require.NoError(t, err)
		return func() { require.NoError(t, w.Stop()) }
	})
	single := measureIdle(t, func(t *testing.T, acct *kcltest.Account, calls *storeCalls) func() {
		var ws []*kcltest.Worker
		for _, s := range acct.Streams() {
			cfg := idleConfig(countingStore{MemoryStore: lease.NewMemoryStore(), calls: calls}, "w")
			cfg.Kinesis, cfg.StreamName = acct, s.Name()
			w, err := kcltest.Start(t.Context(), cfg)
			require.NoError(t, err)
			ws = append(ws, w)
		}
		return func() {
			for _, w := range ws {
				require.NoError(t, w.Stop())
			}
		}
	})
	for _, c := range []struct {
		name string
		cost idleCost
	}{{"multi-stream (1 worker, 100 streams, 1 table)", multi}, {"single-stream (100 consumers, 100 tables)", single}} {
		t.Logf("FIGURE %s: Kinesis %.0f/h %v; DynamoDB %.0f/h %v, %.1f per shard-hour",
			c.name, c.cost.kinesisPerHour, c.cost.kinesis, c.cost.dynamoPerHour, c.cost.dynamo, c.cost.dynamoPerHour/costStreams)
	}
	require.Less(t, multi.kinesisPerHour+multi.dynamoPerHour, single.kinesisPerHour+single.dynamoPerHour, "fewer requests in all")
	// Kinesis: the same polling and listing either way (each stream is
	// listed every ShardSyncInterval, each shard polled every
	// PollInterval); the counts differ only by where the window cuts.
	require.InEpsilon(t, single.kinesisPerHour, multi.kinesisPerHour, 0.01, "as many Kinesis requests")
	require.LessOrEqual(t, multi.dynamoPerHour/costStreams, single.dynamoPerHour/costStreams, "no more DynamoDB requests per shard-hour")
}

// BenchmarkMultiStreamIdleHeap reports the heap in use by one worker
// holding 100 idle single-shard streams, and (sub-benchmark single) by 100
// single-stream consumers of the same streams in one process, once every
// shard is polled.
func BenchmarkMultiStreamIdleHeap(b *testing.B) {
	run := func(b *testing.B, start func(acct *kcltest.Account) func() error) {
		for range b.N {
			acct := kcltest.NewAccount()
			for i := range costStreams {
				mustCreateB(b, acct, fmt.Sprintf("tenant-%03d", i))
			}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			stop := start(acct)
			for acct.Calls(kcltest.OpGetRecords) < 3*costStreams {
				time.Sleep(50 * time.Millisecond)
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(int64(ms.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heap-MB")
			b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
			if err := stop(); err != nil {
				b.Fatal(err)
			}
		}
	}
	fast := func(cfg Config) Config {
		cfg.PollInterval = 100 * time.Millisecond
		cfg.LeaseStore = lease.NewMemoryStore()
		return cfg
	}
	b.Run("multi", func(b *testing.B) {
		run(b, func(acct *kcltest.Account) func() error {
			cfg := fast(idleConfig(nil, "w"))
			cfg.Kinesis = acct
			for _, s := range acct.Streams() {
				cfg.Streams = append(cfg.Streams, StreamConfig{Name: s.Name()})
			}
			return runConsumer(b, cfg)
		})
	})
	b.Run("single", func(b *testing.B) {
		run(b, func(acct *kcltest.Account) func() error {
			var stops []func() error
			for _, s := range acct.Streams() {
				cfg := fast(idleConfig(nil, "w"))
				cfg.Kinesis, cfg.StreamName = acct, s.Name()
				stops = append(stops, runConsumer(b, cfg))
			}
			return func() error {
				for _, stop := range stops {
					if err := stop(); err != nil {
						return err
					}
				}
				return nil
			}
		})
	})
}

func runConsumer(b *testing.B, cfg Config) func() error {
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

func mustCreateB(b *testing.B, acct *kcltest.Account, name string) {
	if _, err := acct.CreateStream(name, 1); err != nil {
		b.Fatal(err)
	}
}
