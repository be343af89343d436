package consumer_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/efotest"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// fanOutKinesis is the consumer's Kinesis client in fan-out tests: the
// in-memory stream answers the polling calls, and a real *kinesis.Client
// calling an efotest server over that same stream, in memory, answers the
// enhanced fan-out calls.
type fanOutKinesis struct {
	*kcltest.Stream
	efo *kinesis.Client
}

func (k *fanOutKinesis) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	return k.efo.SubscribeToShard(ctx, in, optFns...)
}

func (k *fanOutKinesis) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	return k.efo.RegisterStreamConsumer(ctx, in, optFns...)
}

func (k *fanOutKinesis) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	return k.efo.DescribeStreamConsumer(ctx, in, optFns...)
}

func (k *fanOutKinesis) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return k.efo.DescribeStreamSummary(ctx, in, optFns...)
}

// newFanOut serves enhanced fan-out over stream. Call it inside the bubble
// of the test.
func newFanOut(stream *kcltest.Stream, opts efotest.Options) (*fanOutKinesis, *efotest.Server) {
	srv := efotest.NewServer(opts)
	srv.AddStream(testStream, stream)
	return &fanOutKinesis{Stream: stream, efo: efotest.NewClient(srv, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })}, srv
}

// fanOutConfig is testConfig reading through k with EnhancedFanOut.
func fanOutConfig(k *fanOutKinesis, store lease.Store, worker string, newProc func(string) RecordProcessor) Config {
	cfg := testConfig(k.Stream, store, worker, newProc)
	cfg.Kinesis = k
	cfg.Retrieval = EnhancedFanOut("")
	return cfg
}

// streamARN is the ARN of newStream(testStream, n).
var streamARN = newStream(testStream, 1).ARN()

// subscriptions returns the subscriptions the server received for shard.
func subscriptions(srv *efotest.Server, shard string) []efotest.Subscription {
	var out []efotest.Subscription
	for _, s := range srv.Subscriptions() {
		if s.ShardID == shard {
			out = append(out, s)
		}
	}
	return out
}

func TestFanOutReadsEveryRecordOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 4)
		putPlain(stream, "plain", 300, 40)
		putAggregated(t, stream, "agg", 1000, 50)
		k, srv := newFanOut(stream, efotest.Options{EventRecords: 25})
		col := newCollector()
		store := lease.NewMemoryStore()
		r := start(t, fanOutConfig(k, store, "w1", col.processor()))
		waitFor(t, time.Minute, "1300 records", func() bool { return col.unique() == 1300 })
		putPlain(stream, "later", 100, 40)
		waitFor(t, time.Minute, "1400 records", func() bool { return col.unique() == 1400 })
		r.stop(t)
		require.Zero(t, col.duplicates())
		assertKeyOrder(t, col)
		// The server takes one iterator per subscription: the consumer none.
		require.Equal(t, len(srv.Subscriptions()), stream.Calls(kcltest.OpGetShardIterator), "no polling with enhanced fan-out")
		require.Zero(t, srv.Open(), "every subscription closed by Run's return")
		for _, l := range allLeases(t, store) {
			recs := col.records[l.Key]
			require.Equal(t, recs[len(recs)-1].Position(), l.Checkpoint, "final checkpoint of %s", l.Key)
		}
		d, err := k.DescribeStreamConsumer(context.Background(), &kinesis.DescribeStreamConsumerInput{
			StreamARN: aws.String(streamARN), ConsumerName: aws.String("test-app")})
		require.NoError(t, err, "the consumer is registered under AppName")
		require.Equal(t, types.ConsumerStatusActive, d.ConsumerDescription.ConsumerStatus, "and never deregistered")
	})
}

// The last event of a closed shard ends it as the last GetRecords response
// does: ShardEnded, SHARD_END with the children, the children's leases, and
// a child starts only after all its parents.
func TestFanOutFollowsSplitsAndMergesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		k, _ := newFanOut(stream, efotest.Options{})
		store := lease.NewMemoryStore()
		col := newCollector()
		var mu sync.Mutex
		calls := map[string]int{}
		r := start(t, fanOutConfig(k, store, "w1", func(string) RecordProcessor {
			return &lifecycleProc{col: col, mu: &mu, calls: calls}
		}))
		putPlain(stream, "a", 200, 30)
		open := stream.OpenShards()
		_, _, err := stream.Split(open[0], new(big.Int).Lsh(big.NewInt(1), 126))
		require.NoError(t, err)
		putPlain(stream, "b", 200, 30)
		open = stream.OpenShards()
		_, err = stream.Merge(open[1], open[2])
		require.NoError(t, err)
		putAggregated(t, stream, "c", 400, 20)
		putPlain(stream, "d", 200, 30)
		waitFor(t, 2*time.Minute, "all records", func() bool { return col.unique() == 1000 })
		waitFor(t, time.Minute, "three shards ended", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return calls["ended"] == 3
		})
		r.stop(t)
		require.Zero(t, col.duplicates())
		assertKeyOrder(t, col)
		for _, id := range []string{"shardId-000000000000", "shardId-000000000002", "shardId-000000000003"} {
			l := leaseOf(t, store, id)
			require.True(t, l.Finished(), "%s: %v", id, l.Checkpoint)
			require.NotEmpty(t, l.ChildShardIDs, id)
		}
		require.Len(t, leaseOf(t, store, "shardId-000000000004").ParentShardIDs, 2)
	})
}

// A subscription that ends (after its lifetime, on an exception, or a
// broken connection) is followed by one that starts right after the last
// event handed over: every record once, none skipped.
func TestFanOutResubscribesWithNoGapAndNoDuplicate(t *testing.T) {
	faults := map[string]func(efotest.FaultPoint) error{
		"expiry": nil,
		"exception": func(p efotest.FaultPoint) error {
			if p.Op == efotest.EventOp && p.Event == 2 && p.Subscription%2 == 1 {
				return &types.InternalFailureException{Message: aws.String("internal")}
			}
			return nil
		},
		"disconnect": func(p efotest.FaultPoint) error {
			if p.Op == efotest.EventOp && p.Event == 3 && p.Subscription < 4 {
				return efotest.ErrDisconnect
			}
			return nil
		},
		"expire early": func(p efotest.FaultPoint) error {
			if p.Op == efotest.EventOp && p.Event == 1 && p.Subscription < 6 {
				return efotest.ErrExpire
			}
			return nil
		},
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stream := newStream(testStream, 1)
				// No empty events: every fault hits an event with records.
				k, srv := newFanOut(stream, efotest.Options{Lifetime: time.Minute, EventRecords: 7, Heartbeat: time.Hour, Fault: fault})
				col := newCollector()
				r := start(t, fanOutConfig(k, lease.NewMemoryStore(), "w1", col.processor()))
				// Records written over four lifetimes, in small groups.
				for i := range 40 {
					putPlain(stream, fmt.Sprintf("g%d", i), 5, 3)
					time.Sleep(7 * time.Second)
				}
				waitFor(t, time.Minute, "200 records", func() bool { return col.unique() == 200 })
				r.stop(t)
				require.Zero(t, col.duplicates())
				assertKeyOrder(t, col)
				subs := subscriptions(srv, "shardId-000000000000")
				require.GreaterOrEqual(t, len(subs), 4, "subscriptions")
				require.Equal(t, types.ShardIteratorTypeTrimHorizon, subs[0].Position.Type)
				for _, s := range subs[1:] {
					require.Equal(t, types.ShardIteratorTypeAfterSequenceNumber, s.Position.Type, "renewals continue after the last event")
				}
			})
		})
	}
}

// A subscription refused with ResourceInUseException (the shard's previous
// owner is still subscribed) is retried with backoff until it succeeds.
func TestFanOutRetriesResourceInUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 50, 5)
		var refused atomic.Int32
		k, srv := newFanOut(stream, efotest.Options{Fault: func(p efotest.FaultPoint) error {
			if p.Op == "SubscribeToShard" && p.Subscription <= 5 {
				refused.Add(1)
				return &types.ResourceInUseException{Message: aws.String("another subscription is open")}
			}
			return nil
		}})
		col := newCollector()
		r := start(t, fanOutConfig(k, lease.NewMemoryStore(), "w1", col.processor()))
		waitFor(t, time.Minute, "50 records", func() bool { return col.unique() == 50 })
		r.stop(t)
		require.EqualValues(t, 5, refused.Load())
		subs := subscriptions(srv, "shardId-000000000000")
		require.Len(t, subs, 6)
		for i := 1; i < len(subs); i++ {
			require.Equal(t, types.ShardIteratorTypeTrimHorizon, subs[i].Position.Type, "nothing read yet: the same start")
		}
	})
}

// A lease that is lost closes its subscription at once, even while the
// processor is busy and the stream has more to send.
func TestFanOutLeaseLostClosesTheSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 50, 5)
		k, srv := newFanOut(stream, efotest.Options{EventRecords: 5})
		store := lease.NewMemoryStore()
		var lost atomic.Int32
		var held atomic.Pointer[Batch]
		released := make(chan struct{})
		proc := &lossProc{lost: &lost, held: &held, release: released}
		r := start(t, fanOutConfig(k, store, "w1", func(string) RecordProcessor { return proc }))
		waitFor(t, time.Minute, "a batch in flight", func() bool { return held.Load() != nil })
		require.Equal(t, 1, srv.Open())
		l := leaseOf(t, store, "shardId-000000000000")
		_, err := store.Take(context.Background(), l, "intruder")
		require.NoError(t, err)
		waitFor(t, time.Minute, "LeaseLost", func() bool { return lost.Load() == 1 })
		synctest.Wait()
		require.Zero(t, srv.Open(), "the subscription is closed with the lease")
		close(released)
		r.stop(t)
	})
}

// Stuck processors stop the reading: a subscription takes an event only
// with budget for it and once the previous one is handed over, so the
// server encodes only a few events ahead per shard, and the batches held
// stay within MaxBufferedBytes even when that leaves shards waiting.
func TestFanOutBackpressureKeepsMemoryBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shards = 8
		stream := newStream(testStream, shards)
		payload := make([]byte, 100<<10)
		for i := range 40 * shards {
			if _, err := stream.Put(fmt.Sprintf("k%d", i), "", payload); err != nil {
				t.Fatal(err)
			}
		}
		k, srv := newFanOut(stream, efotest.Options{EventRecords: 3})
		gate := make(chan struct{})
		col := newCollector()
		var mu sync.Mutex
		busy := map[string]bool{}
		proc := RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			mu.Lock()
			busy[b.ShardID] = true
			mu.Unlock()
			select {
			case <-gate:
				col.add(b)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		cfg := fanOutConfig(k, lease.NewMemoryStore(), "w1", func(string) RecordProcessor { return proc })
		cfg.MaxBufferedBytes = 2 << 20
		r := start(t, cfg)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		mu.Lock()
		stuck := len(busy)
		mu.Unlock()
		t.Logf("events sent while stuck: %d, shards processing: %d, buffered %d", srv.Calls(efotest.EventOp), stuck, r.c.BufferedBytes())
		// Per shard, at most: one event in the processor, one taken and
		// waiting (for budget, or to be handed over), two held by the SDK's
		// goroutines; 4 events of 300 kB out of 14.
		require.LessOrEqual(t, srv.Calls(efotest.EventOp), 4*shards, "events sent while the processors are stuck")
		// 2 MiB holds six batches of 300 kB, not eight.
		require.Less(t, stuck, shards, "shards given a batch within the budget")
		require.LessOrEqual(t, r.c.BufferedBytes(), int64(2<<20))
		close(gate)
		waitFor(t, 5*time.Minute, "every record once the processors move", func() bool { return col.unique() == 40*shards })
		r.stop(t)
		require.Zero(t, r.c.BufferedBytes(), "every byte returned")
	})
}

// A worker that takes a shard over resumes AT the checkpoint, inside an
// aggregate, and skips the user records done, as polling does.
func TestFanOutResumesInsideAnAggregate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putAggregated(t, stream, "agg", 100, 100)
		k, srv := newFanOut(stream, efotest.Options{})
		store := lease.NewMemoryStore()
		col := newCollector()
		proc := RecordProcessorFunc(func(ctx context.Context, b *Batch) error {
			col.add(b)
			return b.CheckpointAt(ctx, b.Records[41])
		})
		cfg := fanOutConfig(k, store, "w1", func(string) RecordProcessor { return proc })
		cfg.ManualCheckpoint = true
		r := start(t, cfg)
		waitFor(t, time.Minute, "100 records", func() bool { return col.unique() == 100 })
		r.stop(t)
		cp := leaseOf(t, store, "shardId-000000000000").Checkpoint
		require.EqualValues(t, 41, cp.SubSequenceNumber)

		time.Sleep(10 * time.Second) // past the server's takeover delay
		col2 := newCollector()
		r2 := start(t, fanOutConfig(k, store, "w2", col2.processor()))
		waitFor(t, time.Minute, "58 records", func() bool { return col2.unique() == 58 })
		r2.stop(t)
		got := col2.records["shardId-000000000000"]
		require.EqualValues(t, 42, got[0].SubSequenceNumber)
		subs := subscriptions(srv, "shardId-000000000000")
		last := subs[len(subs)-1].Position
		require.Equal(t, types.ShardIteratorTypeAtSequenceNumber, last.Type)
		require.Equal(t, cp.SequenceNumber, aws.ToString(last.SequenceNumber))
	})
}

// MillisBehindLatest comes from the events.
func TestFanOutMillisBehindLatestFromEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 1)
		putPlain(stream, "x", 10, 5)
		time.Sleep(5 * time.Second)
		putPlain(stream, "y", 10, 5)
		time.Sleep(5 * time.Second)
		k, _ := newFanOut(stream, efotest.Options{EventRecords: 10})
		var mu sync.Mutex
		var behind []int64
		proc := RecordProcessorFunc(func(_ context.Context, b *Batch) error {
			mu.Lock()
			defer mu.Unlock()
			behind = append(behind, b.MillisBehindLatest)
			return nil
		})
		r := start(t, fanOutConfig(k, lease.NewMemoryStore(), "w1", func(string) RecordProcessor { return proc }))
		waitFor(t, time.Minute, "two batches", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(behind) == 2
		})
		r.stop(t)
		// The first event stops 5 s of records before the tip.
		require.Len(t, behind, 2)
		require.GreaterOrEqual(t, behind[0], int64(5000))
		require.Zero(t, behind[1])
	})
}

// Workers starting at once register the stream consumer once, wait until it
// is ACTIVE, and share it.
func TestFanOutRegistersOnceForManyWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 6)
		putPlain(stream, "x", 300, 30)
		// The three workers' first DescribeStreamConsumer all answer
		// ResourceNotFound, once all three have asked, so that all three
		// register. (Letting the server answer instead would race with
		// the first registration.)
		var describes atomic.Int32
		together := make(chan struct{})
		k, srv := newFanOut(stream, efotest.Options{ActivationDelay: 3 * time.Second, Fault: func(p efotest.FaultPoint) error {
			if p.Op != "DescribeStreamConsumer" {
				return nil
			}
			switch describes.Add(1) {
			case 1, 2:
				<-together
			case 3:
				close(together)
			default:
				return nil
			}
			return &types.ResourceNotFoundException{Message: aws.String("consumer not found")}
		}})
		store := lease.NewMemoryStore()
		col := newCollector()
		logs := &syncBuffer{}
		var rs []*running
		for i := range 3 {
			cfg := fanOutConfig(k, store, fmt.Sprintf("w%d", i), col.processor())
			cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
			rs = append(rs, start(t, cfg))
		}
		waitFor(t, time.Minute, "300 records", func() bool { return col.unique() == 300 })
		for _, r := range rs {
			r.stop(t)
		}
		require.Zero(t, col.duplicates())
		l, err := k.efo.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: aws.String(streamARN)})
		require.NoError(t, err)
		require.Len(t, l.Consumers, 1)
		require.Equal(t, 3, srv.Calls("RegisterStreamConsumer"), "all three tried")
		require.NotContains(t, logs.String(), "registration failed", "a worker that lost the race to register describes the consumer at once")
		for _, s := range srv.Subscriptions() {
			// Refusals because a shard's previous owner is still subscribed
			// are expected while the leases are balanced; none may say the
			// consumer was not ACTIVE yet.
			if s.Err != nil {
				require.NotContains(t, s.Err.Error(), "not ACTIVE", "no subscription before the consumer was ACTIVE")
			}
		}
	})
}

// EnhancedFanOutARN uses the consumer as it is: no registration calls.
func TestFanOutARNMakesNoRegistrationCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream(testStream, 2)
		putPlain(stream, "x", 100, 10)
		k, srv := newFanOut(stream, efotest.Options{})
		reg, err := k.efo.RegisterStreamConsumer(context.Background(), &kinesis.RegisterStreamConsumerInput{
			StreamARN: aws.String(streamARN), ConsumerName: aws.String("ops-made")})
		require.NoError(t, err)
		before := srv.Calls("DescribeStreamConsumer") + srv.Calls("RegisterStreamConsumer") + srv.Calls("DescribeStreamSummary")
		col := newCollector()
		cfg := fanOutConfig(k, lease.NewMemoryStore(), "w1", col.processor())
		cfg.Retrieval = EnhancedFanOutARN(aws.ToString(reg.Consumer.ConsumerARN))
		r := start(t, cfg)
		waitFor(t, time.Minute, "100 records", func() bool { return col.unique() == 100 })
		r.stop(t)
		after := srv.Calls("DescribeStreamConsumer") + srv.Calls("RegisterStreamConsumer") + srv.Calls("DescribeStreamSummary")
		require.Equal(t, before, after)
		for _, s := range srv.Subscriptions() {
			require.Equal(t, aws.ToString(reg.Consumer.ConsumerARN), s.ConsumerARN)
		}
	})
}

// A stream that does not exist fails Run, as with polling.
func TestFanOutMissingStreamFailsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := newStream("other-stream", 1)
		srv := efotest.NewServer(efotest.Options{})
		k := &fanOutKinesis{Stream: stream, efo: efotest.NewClient(srv, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })}
		c, err := New(fanOutConfig(k, lease.NewMemoryStore(), "w1", newCollector().processor()))
		require.NoError(t, err)
		err = c.Run(context.Background())
		var nf *types.ResourceNotFoundException
		require.ErrorAs(t, err, &nf)
	})
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// pollingOnly is a Kinesis client without the fan-out calls.
type pollingOnly struct{ KinesisAPI }

func TestFanOutConfigNamesWhatIsMissing(t *testing.T) {
	stream := newStream(testStream, 1)
	base := testConfig(stream, lease.NewMemoryStore(), "w1", newCollector().processor())
	cases := []struct {
		name string
		mod  func(*Config)
		want string // "" for no error
	}{
		{"polling needs nothing more", func(c *Config) { c.Kinesis = pollingOnly{stream}; c.Retrieval = Polling() }, ""},
		{"zero value is polling", func(c *Config) { c.Kinesis = pollingOnly{stream}; c.Retrieval = Retrieval{} }, ""},
		{"fan-out", func(c *Config) { c.Kinesis = pollingOnly{stream}; c.Retrieval = EnhancedFanOut("") },
			"RegisterStreamConsumer, DescribeStreamConsumer, DescribeStreamSummary (or set StreamARN), SubscribeToShard"},
		{"fan-out with a stream ARN", func(c *Config) {
			c.Kinesis, c.StreamName, c.StreamARN = pollingOnly{stream}, "", streamARN
			c.Retrieval = EnhancedFanOut("x")
		}, "RegisterStreamConsumer, DescribeStreamConsumer, SubscribeToShard,"},
		{"fan-out ARN", func(c *Config) {
			c.Kinesis = pollingOnly{stream}
			c.Retrieval = EnhancedFanOutARN(streamARN + "/consumer/x:1")
		}, "needs SubscribeToShard,"},
		{"bad name", func(c *Config) { c.Retrieval = EnhancedFanOut("no spaces") }, `"no spaces" is not a valid stream consumer name`},
		{"bad ARN", func(c *Config) { c.Retrieval = EnhancedFanOutARN("arn:nope") }, "is not a stream consumer ARN"},
		{"ARN of another stream", func(c *Config) {
			c.Retrieval = EnhancedFanOutARN(efotest.StreamARN("other") + "/consumer/x:1")
		}, "is not a consumer of stream test-stream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Kinesis = &fanOutKinesis{Stream: stream}
			tc.mod(&cfg)
			_, err := New(cfg)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.Contains(t, err.Error(), tc.want)
			require.True(t, strings.Contains(err.Error(), "Retrieval") || strings.Contains(err.Error(), "Kinesis"), err.Error())
		})
	}
}

func TestRetrievalString(t *testing.T) {
	require.Equal(t, "Polling", Polling().String())
	require.Equal(t, "EnhancedFanOut(app)", EnhancedFanOut("app").String())
	require.False(t, Polling().FanOut())
	require.True(t, EnhancedFanOutARN("arn").FanOut())
}
