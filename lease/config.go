package lease

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults and limits of Config.
const (
	// DefaultFailoverTime is Config.FailoverTime's default, the Java KCL's
	// failoverTimeMillis default.
	DefaultFailoverTime = 10 * time.Second
	// MinFailoverTime is the shortest FailoverTime accepted (by NewManager
	// and consumer.New): renewals every 100ms, at least a few store writes
	// per lease per FailoverTime.
	MinFailoverTime = 300 * time.Millisecond
)

// writeParallelism bounds the store writes one Manager runs at once (renewals
// of different leases, takes, the final release). With 1,000 held leases and
// DynamoDB writes of 5–20 ms, sequential renewals would take longer than
// RenewInterval; 16 at a time take about a second.
const writeParallelism = 16

// Config configures a Manager. Zero values take the documented defaults.
type Config struct {
	// WorkerID names this worker in the lease table's leaseOwner attribute.
	// Required, and unique per worker: two Managers with the same WorkerID
	// would each treat the other's leases as their own orphans and take them.
	WorkerID string

	// FailoverTime is how long a lease may go without renewal before other
	// workers take it: a lease whose counter has not changed for this long,
	// as observed on the observer's own monotonic clock, is expired. Default
	// 10s (DefaultFailoverTime); at least 300ms (MinFailoverTime).
	//
	// The holder stops using a lease it could not renew for 90% of
	// FailoverTime (see Manager), so it stops before anyone may take it.
	FailoverTime time.Duration

	// RenewInterval is how often the held leases are renewed. Default
	// FailoverTime/3; it must be less than FailoverTime/2, so that a lease
	// gets at least one more attempt after a failed renewal. It also bounds
	// every store call of the renewer and of the checkpoint methods.
	RenewInterval time.Duration

	// TakerInterval is how often the taker scans the table to take unowned and
	// expired leases and to balance the load. Default FailoverTime/2. Besides
	// these scans, the taker scans when a lease it watches would expire, so a
	// dead worker's leases are taken at most FailoverTime + TakerInterval
	// after its last renewal.
	TakerInterval time.Duration

	// HandOffTimeout bounds the wait for a graceful hand-off. When this
	// worker steals a lease on a HandOffStore, it asks the holder to hand it
	// over and waits for the holder's release; if the holder has not
	// released it within HandOffTimeout, this worker takes it as a plain
	// steal (a dead holder's lease is taken sooner, when it expires). The
	// holder learns of the hand-off at its next write, at most RenewInterval
	// later, so HandOffTimeout must exceed RenewInterval. Default
	// FailoverTime.
	HandOffTimeout time.Duration

	// MaxLeasesForWorker caps the leases this worker takes. Default 0:
	// unlimited. Other workers take what the cap leaves of this worker's
	// share, one taker cycle later; leases that no worker has room for stay
	// unprocessed, as in the Java KCL.
	MaxLeasesForWorker int

	// MaxLeasesToStealAtOnce caps the leases this worker steals from others
	// in one taker cycle. Default 0: as many as the imbalance justifies (the
	// Java KCL's default is 1).
	MaxLeasesToStealAtOnce int

	// Accept, when set, says which leases this worker may hold. The taker
	// neither takes, steals nor asks for a lease it refuses, and counts it in
	// no worker's load, as if it were finished; a lease this worker holds
	// already is not affected (its holder releases it). A multi-stream
	// consumer refuses the leases of the streams it does not consume, a
	// single-stream one those of multi-stream tables. It is called once per
	// lease per scan, from the taker's goroutine or a caller of Refresh,
	// under the lock that serializes scans and outside the others: it must
	// be fast and safe for concurrent use, and must not call Refresh.
	// Default: every lease.
	//
	// Workers whose Accept differ (one has learnt of a new stream, the other
	// not yet) plan with different totals, so their balance may differ for
	// as long as they disagree.
	Accept func(Lease) bool

	// Logger receives the Manager's logs: Debug for routine renewals and
	// scans, Info for takes, steals and losses, Warn for failed store calls.
	// Default: discard.
	Logger *slog.Logger

	// Stream names the stream whose shards the leases are, in hook events.
	// Optional: the consumer sets it. The events of a multi-stream lease
	// name its own stream (and shard), from its key.
	Stream string

	// Hooks observe the Manager, for metrics: each receives the events of
	// the Hook* interfaces it implements (see Hook for the contract: called
	// synchronously, concurrently, and must not block). Default: none.
	Hooks []Hook

	// OnAcquired is called after this worker took a lease (unowned, expired,
	// its own orphan, or stolen), with a copy of it. Optional.
	//
	// OnAcquired, OnHandOff and OnLost are called serially, never
	// concurrently with each other or themselves, in the order the events
	// happened, from a goroutine of Run and outside the Manager's locks. They
	// must return quickly: every later event waits for them. They may call
	// Held, Lease, Usable, Leases, Defer, StopTaking and Rescan, which do no
	// I/O; they must not call Checkpoint, FinishShard, Release or Refresh,
	// which write to or read the store.
	OnAcquired func(Lease)

	// OnHandOff is called when another worker asked for a lease this worker
	// holds (a balancing steal on a HandOffStore, or an operator's
	// hand-off), with a copy of it: its Owner names the new owner, its
	// CheckpointOwner this worker. The lease stays held, renewed, and its
	// checkpoints keep succeeding until Release, which hands it to the new
	// owner; the new owner starts from the last checkpoint written. So the
	// consumer finishes the batch in flight, writes its checkpoint and calls
	// Release, within HandOffTimeout (after it, the new owner takes the
	// lease anyway, and OnLost follows). If OnHandOff is nil, the Manager
	// releases the lease itself at once, writing a deferred checkpoint
	// first, and then calls OnLost, so that a user unaware of hand-offs
	// stops processing the shard as after a steal. See OnAcquired for the
	// calling contract. Optional.
	OnHandOff func(Lease)

	// OnLost is called when this worker stopped holding a lease other than by
	// Release or by Run's final release, with a copy of the lease as last
	// held: a renewal or checkpoint write was refused (someone else took it),
	// or the lease could not be renewed within 90% of FailoverTime. From then
	// on every checkpoint of the shard fails with ErrLeaseLost; the consumer
	// must stop processing it. See OnAcquired for the calling contract.
	// Optional.
	OnLost func(Lease)
}

// WithDefaults returns c with its zero fields set to their defaults, or a
// *ConfigError naming the first invalid field. NewManager calls it;
// consumer.New calls it too, on the lease settings of its own Config, so that
// both packages fill and check them the same way.
func (c Config) WithDefaults() (Config, error) {
	if c.WorkerID == "" {
		return c, &ConfigError{Field: "WorkerID", Problem: "must not be empty"}
	}
	if err := c.defaultDurations(); err != nil {
		return c, err
	}
	if c.MaxLeasesForWorker < 0 {
		return c, &ConfigError{Field: "MaxLeasesForWorker", Problem: fmt.Sprintf("must not be negative, got %d", c.MaxLeasesForWorker)}
	}
	if c.MaxLeasesToStealAtOnce < 0 {
		return c, &ConfigError{Field: "MaxLeasesToStealAtOnce", Problem: fmt.Sprintf("must not be negative, got %d", c.MaxLeasesToStealAtOnce)}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// defaultDurations sets and checks the three durations.
func (c *Config) defaultDurations() error {
	if c.FailoverTime == 0 {
		c.FailoverTime = DefaultFailoverTime
	}
	if err := checkDuration("FailoverTime", c.FailoverTime); err != nil {
		return err
	}
	if c.FailoverTime < MinFailoverTime {
		return &ConfigError{Field: "FailoverTime", Problem: fmt.Sprintf("must be at least %v, got %v", MinFailoverTime, c.FailoverTime)}
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = c.FailoverTime / 3
	}
	if err := checkDuration("RenewInterval", c.RenewInterval); err != nil {
		return err
	}
	if c.RenewInterval >= c.FailoverTime/2 {
		return &ConfigError{Field: "RenewInterval", Problem: fmt.Sprintf("must be less than FailoverTime/2 (%v), got %v", c.FailoverTime/2, c.RenewInterval)}
	}
	if c.TakerInterval == 0 {
		c.TakerInterval = c.FailoverTime / 2
	}
	if err := checkDuration("TakerInterval", c.TakerInterval); err != nil {
		return err
	}
	if c.HandOffTimeout == 0 {
		c.HandOffTimeout = c.FailoverTime
	}
	if err := checkDuration("HandOffTimeout", c.HandOffTimeout); err != nil {
		return err
	}
	if c.HandOffTimeout <= c.RenewInterval {
		return &ConfigError{Field: "HandOffTimeout", Problem: fmt.Sprintf("must be more than RenewInterval (%v), got %v", c.RenewInterval, c.HandOffTimeout)}
	}
	return nil
}

func checkDuration(field string, d time.Duration) error {
	if d < 0 {
		return &ConfigError{Field: field, Problem: fmt.Sprintf("must be positive, got %v", d)}
	}
	return nil
}

// dropAfter is how long a lease may go without a successful renewal before
// its holder drops it: FailoverTime minus a margin of 10%.
//
// Why this is safe, and why a margin: another worker may take the lease only
// after seeing its counter unchanged for FailoverTime on its own clock, and it
// first sees a counter after the write that set it landed, which is after
// this worker read the clock for lastRenewed (taken before the write). So the
// earliest take is FailoverTime after lastRenewed, and dropping at 90% leaves
// 10% (1s by default) for what the argument ignores: the two clocks' rates
// differing (parts per million), the drop timer firing late under load, and
// the consumer's shard worker noticing the loss and stopping.
func (c Config) dropAfter() time.Duration { return c.FailoverTime - c.FailoverTime/10 }

// handOffPoll is how often a worker waiting for hand-offs reads those
// leases: a twentieth of RenewInterval (167 ms by default), so that the
// wait adds little to the holder's reaction, which takes up to
// RenewInterval. Each poll is one consistent read per lease waited for.
func (c Config) handOffPoll() time.Duration { return max(c.RenewInterval/20, time.Millisecond) }
