package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/efotest"
	"github.com/gokcl/kcl/lease"
)

// env is one run of the demo: the clients, the stream, the workers.
type env struct {
	o       options
	log     *slog.Logger
	kc      *kinesis.Client
	workerK *kinesis.Client // the workers' client
	dc      *dynamodb.Client
	stream  string
	table   *lease.DynamoStore
	tracker *tracker
	view    *view
	metrics *metricsServer

	mu      sync.Mutex
	workers map[string]*worker
}

// worker is one consumer running in this process.
type worker struct {
	id     string
	c      *consumer.Consumer
	cancel context.CancelFunc
	done   chan error
}

func newEnv(ctx context.Context, o options, logger *slog.Logger) (*env, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("demo", "demo", "")))
	if err != nil {
		return nil, err
	}
	e := &env{
		o:       o,
		log:     logger,
		kc:      kinesis.NewFromConfig(cfg, func(k *kinesis.Options) { k.BaseEndpoint = aws.String(o.kinesisURL) }),
		dc:      dynamodb.NewFromConfig(cfg, func(d *dynamodb.Options) { d.BaseEndpoint = aws.String(o.dynamoURL) }),
		stream:  fmt.Sprintf("gokcl-demo-%d", time.Now().Unix()),
		tracker: newTracker(o.records),
		workers: map[string]*worker{},
	}
	e.workerK = e.kc
	if o.fanOut {
		// The test server's SubscribeToShard needs help to be usable by
		// the SDK, and never ends a subscription at the end of a shard:
		// the wrapper supplies both (against AWS, use a plain client).
		e.workerK = kinesis.NewFromConfig(cfg, func(k *kinesis.Options) {
			k.BaseEndpoint = aws.String(o.kinesisURL)
			k.HTTPClient = &efotest.KinesisLocal{Next: k.HTTPClient, ShardEnds: e.kc}
		})
	}
	e.table, err = lease.NewDynamoStore(e.dc, e.stream)
	if err != nil {
		return nil, err
	}
	if e.metrics, err = newMetricsServer(o.metricsAddr, e); err != nil {
		return nil, err
	}
	e.view = newView(e)
	return e, nil
}

// play runs the whole scenario and returns its summary.
func (e *env) play(ctx context.Context) (*summary, error) {
	e.view.event(fmt.Sprintf("the workers' metrics: %s/metrics (Prometheus), their status: %s/status", e.metrics.url, e.metrics.url))
	if err := e.createStream(ctx); err != nil {
		return nil, err
	}
	for _, id := range []string{"worker-1", "worker-2", "worker-3"} {
		e.startWorker(id)
	}
	viewCtx, stopView := context.WithCancel(ctx)
	viewDone := make(chan struct{})
	go func() {
		defer close(viewDone)
		e.view.run(viewCtx)
	}()
	err := e.produce(ctx)
	if err == nil {
		err = e.drain(ctx)
	}
	stopView()
	<-viewDone
	e.view.render(context.Background(), true) // while the workers still hold their shards
	e.stopAll()
	s := e.tracker.summary()
	if s.unprocessed > 0 {
		// Stopped early: the checkpoints the workers left in the lease
		// table tell a record lost from one not processed yet.
		lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		leases, lerr := e.table.List(lctx)
		if lerr != nil {
			return &s, errors.Join(err, fmt.Errorf("read the lease table to tell lost records from unprocessed ones: %w", lerr))
		}
		s = e.tracker.classify(leases)
	}
	return &s, err
}

func (e *env) createStream(ctx context.Context) error {
	_, err := e.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(e.stream), ShardCount: aws.Int32(int32(e.o.shards))})
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	return e.waitActive(ctx)
}

func (e *env) waitActive(ctx context.Context) error {
	w := kinesis.NewStreamExistsWaiter(e.kc, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	return w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(e.stream)}, time.Minute)
}

// produce writes the records while resharding and restarting a worker at
// fixed points of the run.
func (e *env) produce(ctx context.Context) error {
	p, err := newProducer(ctx, e)
	if err != nil {
		return err
	}
	steps := []struct {
		at   float64
		name string
		do   func(context.Context) error
	}{
		{0.25, "split the busiest shard", p.split},
		{0.45, "stop worker-2 (graceful)", func(context.Context) error { e.stopWorker("worker-2"); return nil }},
		{0.60, "merge two adjacent shards", p.merge},
		{0.75, "restart worker-2", func(context.Context) error { e.startWorker("worker-2"); return nil }},
		{1.00, "", nil},
	}
	for _, s := range steps {
		if err := p.produceUntil(ctx, int(s.at*float64(e.o.records))); err != nil {
			return err
		}
		if s.do == nil {
			break
		}
		e.view.event(s.name)
		if err := s.do(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	e.view.event(fmt.Sprintf("produced all %d records", e.o.records))
	return nil
}

// drain waits until every produced record has been processed. It gives up
// only when no record has been processed for stallTimeout: a loaded machine
// (or test server) makes the workers slow, not wrong, so a fixed deadline
// would fail a run that is merely late.
func (e *env) drain(ctx context.Context) error {
	for e.tracker.summary().unprocessed > 0 {
		if e.tracker.sinceProgress() > stallTimeout {
			return errStalled
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	e.view.event("every record processed")
	return nil
}

func (e *env) startWorker(id string) {
	retrieval := consumer.Polling()
	if e.o.fanOut {
		retrieval = consumer.EnhancedFanOut("")
	}
	c, err := consumer.New(consumer.Config{
		StreamName:        e.stream,
		AppName:           e.stream,
		WorkerID:          id,
		Kinesis:           e.workerK,
		Retrieval:         retrieval,
		DynamoDB:          e.dc,
		InitialPosition:   consumer.TrimHorizon,
		ShardSyncInterval: 5 * time.Second,
		PollInterval:      200 * time.Millisecond,
		Logger:            e.log,
		Hooks:             []consumer.Hook{e.metrics.metrics},
		NewProcessor: func(string) consumer.RecordProcessor {
			return consumer.RecordProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
				e.tracker.record(b)
				return nil
			})
		},
	})
	if err != nil {
		panic(err) // the configuration above is fixed: a failure is a bug
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{id: id, c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- c.Run(ctx) }()
	e.mu.Lock()
	e.workers[id] = w
	e.mu.Unlock()
}

func (e *env) stopWorker(id string) {
	e.mu.Lock()
	w := e.workers[id]
	delete(e.workers, id)
	e.mu.Unlock()
	if w == nil {
		return
	}
	w.cancel()
	if err := <-w.done; err != nil {
		e.view.event(fmt.Sprintf("%s stopped with error: %v", id, err))
	}
}

// statuses returns the Status of every worker running, by worker id.
func (e *env) statuses() []consumer.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]consumer.Status, 0, len(e.workers))
	for _, w := range e.workers {
		out = append(out, w.c.Status())
	}
	slices.SortFunc(out, func(a, b consumer.Status) int { return strings.Compare(a.WorkerID, b.WorkerID) })
	return out
}

func (e *env) stopAll() {
	e.mu.Lock()
	var ids []string
	for id := range e.workers {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.stopWorker(id)
		}()
	}
	wg.Wait()
}

func (e *env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = e.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream)})
	_, _ = e.dc.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(e.stream)})
}

// openShards returns the open shards with their hash key ranges.
func (e *env) openShards(ctx context.Context) ([]shardRange, error) {
	var out []shardRange
	in := &kinesis.ListShardsInput{StreamName: aws.String(e.stream)}
	for {
		page, err := e.kc.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, s := range page.Shards {
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue
			}
			out = append(out, newShardRange(s))
		}
		if page.NextToken == nil {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}

type shardRange struct {
	id         string
	start, end *big.Int
}

func newShardRange(s types.Shard) shardRange {
	start, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
	end, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
	return shardRange{id: aws.ToString(s.ShardId), start: start, end: end}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
