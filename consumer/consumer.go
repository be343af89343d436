package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gokcl/kcl/lease"
)

// Consumer consumes one stream, or several (see Config.Streams), as one
// worker of an application. Run as many Consumers (in as many processes) as
// you like with the same AppName: they share the shards through the lease
// table.
type Consumer struct {
	cfg     Config
	stream  string // StreamName, or StreamARN
	log     *slog.Logger
	hooks   hooks
	stats   shardStats // of the shard workers running, for Status
	started atomic.Bool

	running, stopping atomic.Bool // for Status
	ready             atomic.Bool // set once the fields below are, for Status
	mgrSince          time.Time   // when Run started its lease manager, for Status

	// Set by Run before any goroutine starts, read-only afterwards.
	store   lease.Store
	mgr     *lease.Manager
	budget  *budget
	co      *coordinator
	hardCtx context.Context // cancelled when a shutdown overruns ShutdownTimeout
	single  *stream         // the stream of a single-stream consumer
}

// New validates cfg, fills in its defaults and returns a Consumer. It does no
// I/O and never panics; an invalid field gives a *ConfigError (matching
// ErrInvalidConfig) that names the field.
func New(cfg Config) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Consumer{cfg: cfg, stream: cfg.stream(), log: cfg.logger().With("worker", cfg.WorkerID), hooks: newHooks(cfg.Hooks)}, nil
}

// WorkerID returns the id this worker writes in the lease table.
func (c *Consumer) WorkerID() string { return c.cfg.WorkerID }

// Run consumes the stream until ctx is cancelled, then shuts down gracefully:
// it stops fetching, lets each batch in flight finish, calls
// ShutdownRequested, writes the final checkpoints and releases the leases, so
// that other workers take the shards at their next scan of the lease table,
// starting where this one stopped. (A lease another worker had asked for is
// handed to that worker.) When that overruns
// ShutdownTimeout, the processors' contexts are cancelled, and the final
// checkpoints and releases are still written (bounded by two renewal
// intervals); Run returns once every goroutine it started has exited, so
// processors must honour their context.
//
// With enhanced fan-out, Run first registers the stream consumer if needed
// and waits until it is ACTIVE (see EnhancedFanOut).
//
// A multi-stream consumer (Config.Streams or DiscoverStreams) starts each
// stream once it is described (and, with enhanced fan-out, its stream
// consumer ACTIVE), adds and removes streams as discovery says, and stops
// each one it removes as it stops every one at shutdown.
//
// Run returns nil after a cancellation. It returns an error at once when it
// cannot start: the lease table cannot be created or has another schema,
// the stream does not exist, or the stream consumer cannot be registered
// (permission refused). (A multi-stream consumer logs a stream that does
// not exist, or a registration refused, and tries again later.) Later
// faults (throttling, network errors, a stream deleted while running) are
// logged and retried with backoff, not returned. Run may be called once,
// even if it failed.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	c.running.Store(true)
	c.hooks.consumerStarted(c)
	defer c.hooks.consumerStopped(c)
	defer c.running.Store(false)
	if err := c.setup(ctx); err != nil {
		return err
	}
	if c.single != nil && c.cfg.Retrieval.FanOut() {
		arn, err := c.fanOutConsumer(ctx, c.log, c.cfg.StreamName, c.cfg.StreamARN)
		if err != nil {
			if ctx.Err() != nil {
				return nil // cancelled while registering
			}
			return err
		}
		c.single.consumerARN = arn
	}
	// Status shows the lease manager from here on: a fan-out worker is not
	// reading the table while it waits for its stream consumer, and must
	// not look stuck meanwhile.
	c.mgrSince = time.Now()
	c.ready.Store(true)
	hardCtx, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	c.hardCtx = hardCtx
	c.co = newCoordinator(c)

	// The manager outlives the workers, even after a hard cancellation, so
	// that it can release what they leave behind.
	mgrCtx, mgrCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer mgrCancel()
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- c.mgr.Run(mgrCtx) }()

	c.log.Info("consumer starting", "table", c.cfg.TableName, "initial_position", c.cfg.InitialPosition.String(),
		"retrieval", c.cfg.Retrieval.String())
	err := c.co.run(ctx, mgrDone)

	// Shut down in order: no new leases; workers finish, checkpoint and
	// release; then the manager stops renewing (and releases whatever a
	// worker could not).
	c.stopping.Store(true)
	c.mgr.StopTaking()
	c.co.stopWorkers(c.cfg.ShutdownTimeout, hardCancel)
	mgrCancel()
	if merr := <-mgrDone; merr != nil && err == nil && !errors.Is(merr, context.Canceled) {
		err = fmt.Errorf("lease manager: %w", merr)
	}
	c.log.Info("consumer stopped", "error", err)
	return err
}

// setup opens the lease table and makes the lease manager.
func (c *Consumer) setup(ctx context.Context) error {
	c.store = c.cfg.LeaseStore
	if c.store == nil {
		ds, err := lease.NewDynamoStore(c.cfg.DynamoDB, c.cfg.TableName)
		if err != nil {
			return fmt.Errorf("lease table: %w", err)
		}
		if err := ds.EnsureTable(ctx, lease.TableOptions{}); err != nil {
			return fmt.Errorf("lease table: %w", err)
		}
		c.store = ds
	}
	c.budget = newBudget(c.cfg.MaxBufferedBytes)
	lc := c.cfg.leaseConfig()
	lc.OnAcquired = func(l lease.Lease) { c.co.post(event{kind: eventAcquired, lease: l}) }
	lc.OnLost = func(l lease.Lease) { c.co.post(event{kind: eventLost, lease: l}) }
	lc.OnHandOff = func(l lease.Lease) { c.co.post(event{kind: eventHandOff, lease: l}) }
	lc.Accept = func(l lease.Lease) bool { return c.co.accepts(l) }
	mgr, err := lease.NewManager(c.store, lc)
	if err != nil {
		return fmt.Errorf("lease manager: %w", err)
	}
	c.mgr = mgr
	if !c.cfg.multiStream() {
		c.single = singleStream(c)
	}
	return nil
}
