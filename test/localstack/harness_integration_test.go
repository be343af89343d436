//go:build integration

package localstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/lease"
)

// fixture is one stream and its lease table on the test servers.
type fixture struct {
	t      *testing.T
	kc     *kinesis.Client
	dc     *dynamodb.Client
	stream string
	table  *lease.DynamoStore
	col    *collector
	next   int // next record id to produce
}

func newFixture(t *testing.T, shards int32) *fixture {
	kc, dc := testenv.Kinesis(t), testenv.DynamoDB(t)
	stream := testenv.CreateStream(t, kc, shards)
	table, err := lease.NewDynamoStore(dc, stream)
	require.NoError(t, err)
	// Created here so that the test can read it before a consumer runs;
	// the consumers find it and use it as it is.
	require.NoError(t, table.EnsureTable(testenv.Context(t, time.Minute), lease.TableOptions{}))
	t.Cleanup(func() {
		_, _ = dc.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(stream)})
	})
	return &fixture{t: t, kc: kc, dc: dc, stream: stream, table: table, col: newCollector()}
}

// config returns a consumer configuration with short intervals.
func (f *fixture) config(worker string) consumer.Config {
	return consumer.Config{
		StreamName:        f.stream,
		AppName:           f.stream,
		WorkerID:          worker,
		Kinesis:           f.kc,
		DynamoDB:          f.dc,
		InitialPosition:   consumer.TrimHorizon,
		FailoverTime:      3 * time.Second,
		ShardSyncInterval: 2 * time.Second,
		PollInterval:      100 * time.Millisecond,
		ShutdownTimeout:   10 * time.Second,
		Logger:            testLogger(worker),
		NewProcessor:      f.col.processor(worker),
	}
}

func testLogger(worker string) *slog.Logger {
	if os.Getenv("GOKCL_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("w", worker)
}

// running is a consumer running in this process.
type running struct {
	id     string
	cancel context.CancelFunc
	done   chan error
}

func (f *fixture) start(cfg consumer.Config) *running {
	c, err := consumer.New(cfg)
	require.NoError(f.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{id: cfg.WorkerID, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	f.t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(t, err, "Run of %s", r.id)
		r.done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("Run of %s did not return within 30s of cancellation", r.id)
	}
}

// putPlain writes n plain records "<id>" with partition key "key-<id mod keys>".
func (f *fixture) putPlain(n, keys int) {
	var entries []types.PutRecordsRequestEntry
	for range n {
		entries = append(entries, types.PutRecordsRequestEntry{
			PartitionKey: aws.String(fmt.Sprintf("key-%d", f.next%keys)), Data: []byte(strconv.Itoa(f.next))})
		f.next++
	}
	f.put(entries)
}

// putAggregated writes n user records "<id>" in aggregates of per records,
// each aggregate with its own partition key "agg-<first id>", routed to the
// shard of that key (as a KPL producer aggregating per shard does).
func (f *fixture) putAggregated(n, per int) {
	var entries []types.PutRecordsRequestEntry
	for done := 0; done < n; {
		var a deagg.Aggregator
		pk := fmt.Sprintf("agg-%d", f.next)
		for i := 0; i < per && done < n; i++ {
			_, err := a.Add(pk, "", []byte(strconv.Itoa(f.next)))
			require.NoError(f.t, err)
			f.next++
			done++
		}
		r := a.Flush()
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(r.PartitionKey), Data: r.Data})
	}
	f.put(entries)
}

func (f *fixture) put(entries []types.PutRecordsRequestEntry) {
	ctx := testenv.Context(f.t, time.Minute)
	for len(entries) > 0 {
		chunk := entries[:min(len(entries), 250)]
		out, err := f.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: chunk})
		require.NoError(f.t, err)
		require.Zero(f.t, aws.ToInt32(out.FailedRecordCount))
		entries = entries[len(chunk):]
	}
}

func (f *fixture) leases() []lease.Lease {
	ls, err := f.table.List(testenv.Context(f.t, time.Minute))
	require.NoError(f.t, err)
	return ls
}

func (f *fixture) owners() map[string]int {
	out := map[string]int{}
	for _, l := range f.leases() {
		if !l.Finished() {
			out[l.Owner]++
		}
	}
	return out
}

// waitFor is testenv.WaitFor.
var waitFor = testenv.WaitFor

// collector records every processed record id, per worker and shard.
type collector struct {
	mu        sync.Mutex
	count     map[int]int
	dups      int
	outOrder  []string
	lastByKey map[string]int
	byWorker  map[string]int
}

func newCollector() *collector {
	return &collector{count: map[int]int{}, lastByKey: map[string]int{}, byWorker: map[string]int{}}
}

func (c *collector) processor(worker string) func(string) consumer.RecordProcessor {
	return func(string) consumer.RecordProcessor {
		return consumer.RecordProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
			c.add(worker, b.ShardID, b.Records)
			return nil
		})
	}
}

func (c *collector) add(worker, shard string, recs []consumer.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		id, err := strconv.Atoi(string(r.Data))
		if err != nil {
			continue
		}
		c.count[id]++
		c.byWorker[worker]++
		if c.count[id] > 1 {
			c.dups++
			continue
		}
		if last, ok := c.lastByKey[r.PartitionKey]; ok && id < last {
			c.outOrder = append(c.outOrder, fmt.Sprintf("%s: %d after %d (shard %s)", r.PartitionKey, id, last, shard))
		}
		c.lastByKey[r.PartitionKey] = id
	}
}

func (c *collector) unique() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.count)
}

// missing lists the ids in [0, n) never processed.
func (c *collector) missing(n int) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i := range n {
		if c.count[i] == 0 {
			out = append(out, i)
		}
	}
	return out
}

func (c *collector) duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dups
}

func (c *collector) outOfOrder() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.outOrder...)
}

// parseWorkerLine reads a line printed by examples/worker.
func parseWorkerLine(line string) (shard, key string, id int, ok bool) {
	parts := strings.Fields(line)
	if len(parts) != 4 {
		return "", "", 0, false
	}
	id, err := strconv.Atoi(parts[3])
	return parts[0], parts[2], id, err == nil
}
