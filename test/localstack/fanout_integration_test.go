//go:build integration

package localstack

import (
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/efotest"
	"github.com/gokcl/kcl/internal/testenv"
)

// Enhanced fan-out against kinesis-local, through efotest.KinesisLocal (the
// server never sends the initial-response event the SDK needs). The server
// pushes one event per subscription per second, never ends a subscription
// at a shard's end and refuses a new subscription for about 3 s after one
// closed: shard ends over fan-out are tested in package consumer, against
// efotest.Server.

// fanOutConfig is f.config reading with enhanced fan-out through k.
func (f *fixture) fanOutConfig(worker string, k *kinesis.Client) consumer.Config {
	cfg := f.config(worker)
	cfg.Kinesis = k
	cfg.Retrieval = consumer.EnhancedFanOut("")
	return cfg
}

// fanOutClient is a Kinesis client for kinesis-local's fan-out, whose
// subscriptions end after lifetime (0: the server's 5 minutes), counting
// SubscribeToShard calls.
func fanOutClient(t *testing.T, lifetime time.Duration, calls *counter) *kinesis.Client {
	return testenv.Kinesis(t, func(o *kinesis.Options) {
		o.HTTPClient = &counting{next: &efotest.KinesisLocal{Next: o.HTTPClient, Lifetime: lifetime}, calls: calls}
	})
}

// 1. One worker reads every record of a 4-shard stream, plain and
// aggregated, once; the stream consumer is registered under AppName and
// stays registered after the worker stops.
func TestIntegrationFanOutReadsEverything(t *testing.T) {
	f := newFixture(t, 4)
	k := fanOutClient(t, 0, nil)
	f.putPlain(200, 50)
	f.putAggregated(2000, 100)
	r := f.start(f.fanOutConfig("w1", k))
	waitFor(t, time.Minute, "2200 records", func() bool { return f.col.unique() == 2200 })
	f.putPlain(100, 50)
	waitFor(t, time.Minute, "2300 records", func() bool { return f.col.unique() == 2300 })
	r.stop(t)
	require.Empty(t, f.col.missing(2300))
	require.Zero(t, f.col.duplicates())
	require.Empty(t, f.col.outOfOrder())
	ctx := testenv.Context(t, time.Minute)
	sum, err := k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(f.stream)})
	require.NoError(t, err)
	l, err := k.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: sum.StreamDescriptionSummary.StreamARN})
	require.NoError(t, err)
	require.Len(t, l.Consumers, 1, "registered once, never deregistered")
	require.Equal(t, f.stream, aws.ToString(l.Consumers[0].ConsumerName))
}

// 2. Two workers share four shards, two each, through one stream consumer;
// every record once.
func TestIntegrationFanOutTwoWorkersShareShards(t *testing.T) {
	f := newFixture(t, 4)
	k := fanOutClient(t, 0, nil)
	w1 := f.start(f.fanOutConfig("w1", k))
	w2 := f.start(f.fanOutConfig("w2", k))
	waitFor(t, time.Minute, "2 leases each", func() bool {
		o := f.owners()
		return o["w1"] == 2 && o["w2"] == 2
	})
	f.putPlain(400, 40)
	waitFor(t, time.Minute, "400 records", func() bool { return f.col.unique() == 400 })
	w1.stop(t)
	w2.stop(t)
	require.Zero(t, f.col.duplicates())
	require.Empty(t, f.col.outOfOrder())
	f.col.mu.Lock()
	defer f.col.mu.Unlock()
	require.Len(t, f.col.byWorker, 2, "both workers processed records")
}

// 3. A worker crashes (its connections drop, nothing is released): the
// other takes its shards once the leases expire, subscribes once the server
// lets go of the dead subscriptions (ResourceInUseException until then),
// and nothing is lost.
func TestIntegrationFanOutCrashedWorkerIsResumed(t *testing.T) {
	f := newFixture(t, 4)
	const failover = 3 * time.Second
	crash := &cutter{}
	kCrash := testenv.Kinesis(t, func(o *kinesis.Options) {
		o.HTTPClient = &efotest.KinesisLocal{Next: crash.wrap(o.HTTPClient)}
	})
	dCrash := testenv.DynamoDB(t, func(o *dynamodb.Options) { o.HTTPClient = crash.wrap(o.HTTPClient) })
	cfg := f.fanOutConfig("doomed", kCrash)
	cfg.DynamoDB, cfg.FailoverTime = dCrash, failover
	doomed := f.start(cfg)
	waitFor(t, time.Minute, "doomed to hold every lease", func() bool { return f.owners()["doomed"] == 4 })

	cfg = f.fanOutConfig("w1", fanOutClient(t, 0, nil))
	cfg.FailoverTime = failover
	w1 := f.start(cfg)
	waitFor(t, time.Minute, "2 leases each", func() bool {
		o := f.owners()
		return o["doomed"] == 2 && o["w1"] == 2
	})
	f.putPlain(300, 30)
	waitFor(t, time.Minute, "doomed to process records", func() bool {
		f.col.mu.Lock()
		defer f.col.mu.Unlock()
		return f.col.byWorker["doomed"] > 0
	})
	crash.cut()
	doomed.cancel() // its Run returns; the cut connections release nothing
	waitFor(t, time.Minute, "w1 to own every lease", func() bool { return f.owners()["w1"] == 4 })
	f.putAggregated(300, 30)
	waitFor(t, time.Minute, "every record", func() bool { return len(f.col.missing(600)) == 0 })
	w1.stop(t)
	require.Empty(t, f.col.outOfOrder())
}

// 4. Subscriptions that end every few seconds (as AWS ends them every 5
// minutes) are renewed after the last event: every record once, none
// skipped, across many renewals.
func TestIntegrationFanOutResubscribesAcrossExpiry(t *testing.T) {
	f := newFixture(t, 2)
	var subs counter
	r := f.start(f.fanOutConfig("w1", fanOutClient(t, 3*time.Second, &subs)))
	// Records written over about 15 s, while subscriptions end every 3 s
	// (and kinesis-local refuses the renewals for a few seconds).
	for range 15 {
		f.putPlain(20, 10)
		time.Sleep(time.Second)
	}
	waitFor(t, time.Minute, "300 records", func() bool { return f.col.unique() == 300 })
	r.stop(t)
	require.Empty(t, f.col.missing(300))
	require.Zero(t, f.col.duplicates(), "a renewal starts after the last event: nothing twice")
	require.Empty(t, f.col.outOfOrder())
	require.GreaterOrEqual(t, subs.get(), 6, "subscriptions renewed (2 shards, 3 s lifetime, 15 s)")
}

// 5. Split and merge while two workers read with fan-out, kinesis-local's
// missing shard ends supplied by the wrapper (as in make demo FANOUT=1):
// every record, each key in order, parents before children.
func TestIntegrationFanOutSplitAndMerge(t *testing.T) {
	f := newFixture(t, 2)
	k := testenv.Kinesis(t, func(o *kinesis.Options) {
		o.HTTPClient = &efotest.KinesisLocal{Next: o.HTTPClient, ShardEnds: f.kc}
	})
	rs := []*running{f.start(f.fanOutConfig("w1", k)), f.start(f.fanOutConfig("w2", k))}
	ctx := testenv.Context(t, 2*time.Minute)
	f.putPlain(200, 40)
	shards := f.openShards(ctx)
	mid := new(big.Int).Lsh(big.NewInt(1), 126) // inside shard 0's range
	_, err := f.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(f.stream),
		ShardToSplit: aws.String(shards[0]), NewStartingHashKey: aws.String(mid.String())})
	require.NoError(t, err)
	testenv.WaitStreamActive(t, f.kc, f.stream)
	f.putPlain(200, 40)
	shards = f.openShards(ctx)
	_, err = f.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(f.stream),
		ShardToMerge: aws.String(shards[len(shards)-2]), AdjacentShardToMerge: aws.String(shards[len(shards)-1])})
	require.NoError(t, err)
	testenv.WaitStreamActive(t, f.kc, f.stream)
	f.putAggregated(200, 20)
	waitFor(t, 2*time.Minute, "600 records", func() bool { return f.col.unique() == 600 })
	for _, r := range rs {
		r.stop(t)
	}
	require.Empty(t, f.col.outOfOrder())
	finished := 0
	for _, l := range f.leases() {
		if l.Finished() {
			finished++
		}
	}
	require.Equal(t, 3, finished, "shard 0 and its two children reached SHARD_END")
}

// counter counts SubscribeToShard calls.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) add() {
	if c != nil {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
}

func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type counting struct {
	next  efotest.HTTPClient
	calls *counter
}

func (c *counting) Do(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".SubscribeToShard") {
		c.calls.add()
	}
	return c.next.Do(req)
}

// cutter simulates the death of a process on its HTTP clients: once cut,
// every call fails and every response body still open is closed, as the
// operating system closes a dead process's connections.
type cutter struct {
	mu     sync.Mutex
	dead   bool
	bodies []io.Closer
}

var errCut = errors.New("test: the process is dead")

func (c *cutter) wrap(next efotest.HTTPClient) efotest.HTTPClient {
	return doFunc(func(req *http.Request) (*http.Response, error) {
		c.mu.Lock()
		dead := c.dead
		c.mu.Unlock()
		if dead {
			return nil, errCut
		}
		resp, err := next.Do(req)
		if err != nil {
			return resp, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.dead {
			_ = resp.Body.Close()
			return nil, errCut
		}
		c.bodies = append(c.bodies, resp.Body)
		return resp, nil
	})
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dead = true
	for _, b := range c.bodies {
		_ = b.Close()
	}
}

type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(req *http.Request) (*http.Response, error) { return f(req) }
