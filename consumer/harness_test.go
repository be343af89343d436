package consumer_test

// The consumer's tests run the consumer on the in-memory stream of kcltest.
// kcltest imports consumer, so they are in the external test package, which
// dot-imports consumer to read as if inside it; export_test.go exposes the
// few internals they check.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// collector records what processors received, for assertions.
type collector struct {
	mu      sync.Mutex
	records map[string][]Record // by shard, in delivery order
	count   map[string]int      // deliveries per "sequence/sub"
	total   int
}

func newCollector() *collector {
	return &collector{records: map[string][]Record{}, count: map[string]int{}}
}

func (c *collector) add(b *Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range b.Records {
		c.records[b.ShardID] = append(c.records[b.ShardID], r)
		c.count[r.Position().String()]++
		c.total++
	}
}

func (c *collector) unique() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.count)
}

func (c *collector) duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total - len(c.count)
}

// byKey returns the data of every delivered record per partition key, in
// delivery order.
func (c *collector) byKey() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]string{}
	for _, recs := range c.records {
		for _, r := range recs {
			out[r.PartitionKey] = append(out[r.PartitionKey], string(r.Data))
		}
	}
	return out
}

func (c *collector) processor() func(string) RecordProcessor {
	return func(string) RecordProcessor {
		return RecordProcessorFunc(func(_ context.Context, b *Batch) error {
			c.add(b)
			return nil
		})
	}
}

const testStream = "test-stream"

// newStream returns an in-memory stream of the given name and number of
// shards, listed two shards a page so that the shard syncer pages.
func newStream(name string, shards int) *kcltest.Stream {
	return kcltest.NewStream(shards, kcltest.WithName(name), kcltest.WithShardsPerPage(2))
}

// testConfig is a Config with short intervals, on the given in-memory
// stream and lease store.
func testConfig(stream *kcltest.Stream, store lease.Store, worker string, newProc func(string) RecordProcessor) Config {
	return Config{
		StreamName:         testStream,
		AppName:            "test-app",
		WorkerID:           worker,
		Kinesis:            stream,
		LeaseStore:         store,
		NewProcessor:       newProc,
		InitialPosition:    TrimHorizon,
		FailoverTime:       3 * time.Second,
		ShardSyncInterval:  2 * time.Second,
		PollInterval:       100 * time.Millisecond,
		CheckpointInterval: 500 * time.Millisecond,
		ShutdownTimeout:    5 * time.Second,
		MaxRecords:         100,
		Logger:             testLogger(),
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("GOKCL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// running is a Consumer running as a kcltest.Worker.
type running struct {
	*kcltest.Worker
	c *Consumer
}

// start starts a worker; the test's cleanup stops it (before the bubble
// ends, after a failure).
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	w, err := kcltest.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	return &running{Worker: w, c: w.Consumer()}
}

// stop shuts the consumer down gracefully and waits for Run to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if err := r.Stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// waitFor is testenv.WaitFor.
var waitFor = testenv.WaitFor

// putPlain writes n plain records with partition keys key-0..key-(keys-1).
func putPlain(s *kcltest.Stream, prefix string, n, keys int) {
	for i := 0; i < n; i++ {
		if _, err := s.Put(fmt.Sprintf("key-%d", i%keys), "", []byte(fmt.Sprintf("%s-%d", prefix, i))); err != nil {
			panic(err) // the keys are valid
		}
	}
}

// putAggregated writes n user records in KPL aggregates of up to per
// records. The user records of one aggregate share its partition key, so
// they all belong to the shard the aggregate lands in (as they do when a KPL
// producer aggregates per shard).
func putAggregated(t *testing.T, s *kcltest.Stream, prefix string, n, per int) {
	t.Helper()
	for first := 0; first < n; first += per {
		pk := fmt.Sprintf("agg-%s-%d", prefix, first)
		var recs []deagg.UserRecord
		for i := first; i < min(first+per, n); i++ {
			recs = append(recs, deagg.UserRecord{PartitionKey: pk, Data: []byte(fmt.Sprintf("%s-%d", prefix, i))})
		}
		if _, err := s.PutAggregated(recs...); err != nil {
			t.Fatalf("aggregate of %d records: %v", per, err)
		}
	}
}

func leaseOf(t *testing.T, store lease.Store, key string) lease.Lease {
	t.Helper()
	leases, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.Key == key {
			return l
		}
	}
	t.Fatalf("no lease %s", key)
	return lease.Lease{}
}

func allLeases(t *testing.T, store lease.Store) []lease.Lease {
	t.Helper()
	leases, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return leases
}

// aggregatorForTest builds one aggregate.
type aggregatorForTest struct{ a deagg.Aggregator }

func (g *aggregatorForTest) add(t *testing.T, pk, data string) {
	t.Helper()
	if r, err := g.a.Add(pk, "", []byte(data)); err != nil || r != nil {
		t.Fatalf("aggregate did not stay whole: %v", err)
	}
}

func (g *aggregatorForTest) flush(t *testing.T) []byte {
	t.Helper()
	return g.a.Flush().Data
}
