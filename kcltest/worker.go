package kcltest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/lease"
)

// ErrCrashed is what every Kinesis and lease store call of a Worker returns
// once it has crashed: the process is gone.
var ErrCrashed = errors.New("kcltest: the worker crashed")

// Config returns a consumer.Config for one worker of an application on
// stream and store, with intervals short enough for a test in real time:
// FailoverTime 2s (a crashed worker's leases are taken over 2 to 3 seconds
// later), TakerInterval 250ms (new and released leases, such as the children
// of a shard just read to its end, are taken within it), ShardSyncInterval
// 1s, PollInterval 50ms, CheckpointInterval 100ms and ShutdownTimeout 5s;
// InitialPosition is TrimHorizon, so that the records written before the
// worker starts are processed, and AppName is "kcltest". Change any field
// before Start. Inside a testing/synctest bubble the consumer's own
// defaults cost no real time either.
func Config(stream *Stream, store lease.Store, workerID string, newProcessor func(shardID string) consumer.RecordProcessor) consumer.Config {
	cfg := baseConfig(store, workerID, newProcessor)
	cfg.StreamName, cfg.Kinesis = stream.Name(), stream
	return cfg
}

// baseConfig is Config without a stream.
func baseConfig(store lease.Store, workerID string, newProcessor func(shardID string) consumer.RecordProcessor) consumer.Config {
	return consumer.Config{
		AppName:            "kcltest",
		WorkerID:           workerID,
		LeaseStore:         store,
		NewProcessor:       newProcessor,
		InitialPosition:    consumer.TrimHorizon,
		FailoverTime:       2 * time.Second,
		TakerInterval:      250 * time.Millisecond,
		ShardSyncInterval:  time.Second,
		PollInterval:       50 * time.Millisecond,
		CheckpointInterval: 100 * time.Millisecond,
		ShutdownTimeout:    5 * time.Second,
	}
}

// MultiStreamConfig returns Config's configuration for a multi-stream
// worker of the account's streams of the given names (consumer.Config.Streams,
// each at the consumer's InitialPosition, TrimHorizon); the Kinesis client
// is the account. Set DiscoverStreams instead of Streams to discover them.
func MultiStreamConfig(account *Account, store lease.Store, workerID string, newProcessor func(shardID string) consumer.RecordProcessor, streams ...string) consumer.Config {
	cfg := baseConfig(store, workerID, newProcessor)
	cfg.Kinesis = account
	for _, name := range streams {
		cfg.Streams = append(cfg.Streams, consumer.StreamConfig{Name: name})
	}
	return cfg
}

// Worker is a consumer.Consumer running in a goroutine of its own, as one
// worker process of an application, with a switch to crash it. Its methods
// are safe for concurrent use.
type Worker struct {
	c      *consumer.Consumer
	gate   *gate
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
	err    error         // Run's error; set before done is closed
}

// Start makes a consumer from cfg with consumer.New and runs it until ctx
// is cancelled, Stop or Crash is called, or Run fails. It returns New's
// error. Pass the test's context (t.Context()) so that a test that fails
// half-way still stops its workers.
//
// A cfg.Kinesis that also has the calls of enhanced fan-out
// (SubscribeToShard, RegisterStreamConsumer, DescribeStreamConsumer,
// DescribeStreamSummary), or DescribeStreamSummary alone (a multi-stream
// consumer's, as Stream and Account have it), keeps them through the
// wrapper.
//
// The consumer sees cfg.Kinesis, cfg.LeaseStore (set one: Start does not
// reach DynamoDB) and cfg.NewProcessor (or NewShardProcessor) through wrappers that Crash switches
// off. The wrapped processors forward every optional interface of
// consumer.RecordProcessor (ShardInitializer, ShardEnder, LeaseLoser,
// ShutdownNotifiee), answering nil for those the processor lacks, which the
// consumer treats as it treats their absence.
func Start(ctx context.Context, cfg consumer.Config) (*Worker, error) {
	g := newGate()
	if cfg.Kinesis != nil {
		cfg.Kinesis = gateKinesis(cfg.Kinesis, g)
	}
	if cfg.LeaseStore == nil {
		return nil, errors.New("kcltest: Start needs Config.LeaseStore, such as lease.NewMemoryStore()")
	}
	cfg.LeaseStore = gateStore(cfg.LeaseStore, g)
	if cfg.NewProcessor != nil {
		cfg.NewProcessor = g.newProcessor(cfg.NewProcessor)
	}
	if cfg.NewShardProcessor != nil {
		cfg.NewShardProcessor = g.newShardProcessor(cfg.NewShardProcessor)
	}
	c, err := consumer.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Worker{c: c, gate: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.err = c.Run(ctx)
	}()
	return w, nil
}

// ID returns the worker's id in the lease table.
func (w *Worker) ID() string { return w.c.WorkerID() }

// Consumer returns the consumer the worker runs.
func (w *Worker) Consumer() *consumer.Consumer { return w.c }

// Stop shuts the worker down gracefully, as cancelling Run's context does
// (the batches in flight finish, checkpoints are written, leases released),
// waits for Run to return and returns its error. After Crash it returns nil.
// Idempotent.
func (w *Worker) Stop() error {
	w.cancel()
	<-w.done
	return w.Err()
}

// Crash stops the worker as a killed process stops: from the moment Crash
// is called every Kinesis and lease store call the worker makes fails with
// ErrCrashed, so it writes nothing more (no checkpoint, no release: its
// leases stay owned until they expire, after FailoverTime, and other workers
// take them); no callback of the processors or NewProcessor starts any
// more, and the contexts of the callbacks in flight are cancelled. Crash
// returns once Run has returned, so the callbacks in flight must honour
// their context. Idempotent.
func (w *Worker) Crash() {
	w.gate.crash()
	w.cancel()
	<-w.done
}

// Done returns a channel closed once Run has returned: after Stop or Crash,
// after the context given to Start was cancelled, or after Run failed.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Err returns Run's error once Done is closed (nil before, and nil after a
// crash).
func (w *Worker) Err() error {
	select {
	case <-w.done:
	default:
		return nil
	}
	if w.gate.crashed() {
		return nil
	}
	return w.err
}

// gate is a worker's life: once crashed, the wrappers refuse everything.
type gate struct {
	dead   atomic.Bool
	ctx    context.Context // cancelled at the crash
	cancel context.CancelFunc
	once   sync.Once
}

func newGate() *gate {
	ctx, cancel := context.WithCancel(context.Background())
	return &gate{ctx: ctx, cancel: cancel}
}

func (g *gate) crash() {
	g.once.Do(func() {
		g.dead.Store(true)
		g.cancel()
	})
}

func (g *gate) crashed() bool { return g.dead.Load() }

// check returns ErrCrashed once the worker crashed.
func (g *gate) check() error {
	if g.dead.Load() {
		return ErrCrashed
	}
	return nil
}

// callbackContext returns ctx, also cancelled at the crash.
func (g *gate) callbackContext(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(g.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}
