package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/internal/fakekinesis"
	"github.com/gokcl/kcl/internal/testenv"
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

// testConfig is a Config with short intervals, on the given fake stream and
// lease store.
func testConfig(stream *fakekinesis.Stream, store lease.Store, worker string, newProc func(string) RecordProcessor) Config {
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

// running is a Consumer running in a goroutine of the test.
type running struct {
	c      *Consumer
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { // after a failure: stop before the bubble ends
		cancel()
		r.done <- <-r.done
	})
	return r
}

// stop cancels the consumer and waits for Run to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	err := <-r.done
	r.done <- nil // for the cleanup
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// waitFor is testenv.WaitFor.
var waitFor = testenv.WaitFor

// putPlain writes n plain records with partition keys key-0..key-(keys-1).
func putPlain(s *fakekinesis.Stream, prefix string, n, keys int) {
	for i := 0; i < n; i++ {
		s.Put(fmt.Sprintf("key-%d", i%keys), "", []byte(fmt.Sprintf("%s-%d", prefix, i)))
	}
}

// putAggregated writes n user records in KPL aggregates of up to per
// records. The user records of one aggregate share its partition key, so
// they all belong to the shard the aggregate lands in (as they do when a KPL
// producer aggregates per shard).
func putAggregated(t *testing.T, s *fakekinesis.Stream, prefix string, n, per int) {
	t.Helper()
	for first := 0; first < n; first += per {
		var agg deagg.Aggregator
		pk := fmt.Sprintf("agg-%s-%d", prefix, first)
		for i := first; i < min(first+per, n); i++ {
			if r, err := agg.Add(pk, "", []byte(fmt.Sprintf("%s-%d", prefix, i))); err != nil || r != nil {
				t.Fatalf("aggregate of %d records did not stay whole: %v", per, err)
			}
		}
		r := agg.Flush()
		s.Put(r.PartitionKey, r.ExplicitHashKey, r.Data)
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

func testDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
