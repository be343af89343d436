package lease

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/internal/queue"
)

// Manager holds one worker's share of a lease table: it renews the leases it
// holds, takes unowned and expired ones, steals from overloaded workers until
// the load is even, and writes checkpoints conditionally on still holding the
// lease. One Manager per worker; its methods are safe for concurrent use.
//
// Run starts four goroutines and returns only after they have exited:
//
//   - the renewer renews every held lease each RenewInterval, at most 16
//     writes at a time, and drops a lease it could not renew within 90% of
//     FailoverTime, on a timer of its own, even while a store call hangs;
//     on a WorkerStore it also keeps this worker's row alive;
//   - the taker scans the table each TakerInterval (when a lease it
//     watches would expire, and when Rescan asks), then takes and steals
//     what the balance plan gives this worker: every worker computes the
//     same plan from the same table, so they do not collide, a balanced
//     fleet moves nothing, and a scale-out moves each lease at most once
//     (the package README has the rules, the proof and the measurements);
//   - the hand-off loop, on a HandOffStore, follows the hand-offs this
//     worker asked for: a steal there is a graceful hand-off, where the
//     holder finishes, checkpoints and releases the lease to this worker,
//     which takes it within a poll (RenewInterval/20) of the release, or as
//     a plain steal after HandOffTimeout;
//   - the event goroutine calls OnAcquired, OnHandOff and OnLost, one at a
//     time, in order.
//
// Writes to one lease (renewals, checkpoints, the release) are serialized:
// Checkpoint may wait for a renewal of the same lease in flight, at most
// RenewInterval. Held, Lease, Usable, Leases, Defer and StopTaking never wait
// for I/O. Every store call is bounded by RenewInterval (scans by
// TakerInterval).
//
// Time is the real clock (time.Now, timers, context deadlines) rather than an
// injected Clock: tests run the Manager inside testing/synctest bubbles, where
// the same calls read a virtual clock, so a ten-minute simulation takes
// milliseconds and the code has one path for tests and production.
type Manager struct {
	store Store
	cfg   Config
	log   *slog.Logger
	hooks hooks

	hstore HandOffStore // store, if it supports hand-offs; nil otherwise
	wstore WorkerStore  // store, if it keeps worker rows; nil otherwise

	mu          sync.Mutex
	held        map[string]*heldLease // guarded by mu
	incoming    map[string]*incoming  // guarded by mu: hand-offs to this worker, not yet taken
	released    []*heldLease          // guarded by mu: leases asked for, to release (OnHandOff is nil)
	table       []Lease               // guarded by mu: the last scan, sorted by key
	scannedAt   time.Time             // guarded by mu: when the last scan read the table
	events      *queue.Queue[event]   // for the event goroutine; pushed under mu, in the order events happen
	self        Worker                // guarded by mu: this worker's row as last written
	announcedAt time.Time             // guarded by mu: when this worker's row was first written
	heldAdded   chan struct{}         // capacity 1: wakes the renewer to rearm its drop timer
	leaving     chan struct{}         // capacity 1: StopTaking wakes the renewer to delete this worker's row
	rescan      chan struct{}         // capacity 1: wakes the taker
	handOffs    chan struct{}         // capacity 1: wakes the hand-off loop
	writeSlots  chan struct{}         // capacity writeParallelism: a token per write of parallel in flight

	scanMu      sync.Mutex              // serializes scans, so observations apply in order
	seen        map[string]*observation // guarded by scanMu
	workersSeen map[string]*observation // guarded by scanMu: other workers' rows
	scans       uint64                  // guarded by scanMu: scans so far
	wakeAt      time.Time               // guarded by scanMu: when a watched lease expires

	presenceLock chan struct{} // capacity 1: serializes writes of this worker's row (a channel, so that waiting honours contexts)

	started    atomic.Bool
	stopTaking atomic.Bool
	announced  atomic.Bool // this worker's row was written, and not deleted
}

var _ checkpoint.Store = (*Manager)(nil)

// NewManager returns a Manager for the worker cfg.WorkerID on store. It
// returns a *ConfigError (matching ErrInvalidConfig) naming the first
// invalid field.
func NewManager(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, &ConfigError{Field: "Store", Problem: "NewManager needs a Store, got nil"}
	}
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		store:        store,
		cfg:          cfg,
		hooks:        newHooks(cfg.Hooks),
		log:          cfg.Logger.With(slog.String("worker", cfg.WorkerID)),
		held:         make(map[string]*heldLease),
		incoming:     make(map[string]*incoming),
		events:       queue.New[event](),
		heldAdded:    make(chan struct{}, 1),
		leaving:      make(chan struct{}, 1),
		rescan:       make(chan struct{}, 1),
		handOffs:     make(chan struct{}, 1),
		presenceLock: make(chan struct{}, 1),
		writeSlots:   make(chan struct{}, writeParallelism),
		seen:         make(map[string]*observation),
		workersSeen:  make(map[string]*observation),
	}
	m.hstore, _ = store.(HandOffStore)
	m.wstore, _ = store.(WorkerStore)
	return m, nil
}

// Config returns the configuration in use, defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Run renews, takes and balances leases until ctx is cancelled. On a
// WorkerStore it first writes this worker's row, so that workers starting
// together see each other on their first scan. When ctx is cancelled it
// stops taking, waits for its goroutines, and releases every lease still
// held (writing deferred checkpoints first; a lease being handed off goes
// to its new owner), in parallel and within RenewInterval, without calling
// OnLost for them; the leases it could not release expire after
// FailoverTime. It deletes this worker's row, and returns nil once every
// goroutine it started has exited, with no lease held. A second call
// returns ErrAlreadyRunning.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	m.announce(ctx)
	stopEvents := make(chan struct{})
	var events, loops sync.WaitGroup
	events.Go(func() { m.deliverEvents(stopEvents) })
	loops.Go(func() { m.runRenewer(ctx) })
	loops.Go(func() { m.runTaker(ctx) })
	loops.Go(func() { m.runHandOffs(ctx) })
	loops.Wait() // all return when ctx is done

	m.releaseAll(ctx)
	close(stopEvents)
	events.Wait()
	m.log.Info("lease manager stopped")
	return nil
}

// StopTaking makes the Manager take and steal nothing from now on, while it
// keeps renewing what it holds and scanning the table: the first step of a
// graceful shutdown. It also has this worker's row deleted (on a
// WorkerStore), so that others stop counting on it. Idempotent; no I/O.
func (m *Manager) StopTaking() {
	if !m.stopTaking.Swap(true) {
		m.log.Info("stopped taking leases")
		select {
		case m.leaving <- struct{}{}:
		default:
		}
	}
}

// Rescan makes the taker scan the table now rather than at its next cycle,
// and take what the plan gives this worker. The consumer calls it after
// creating leases, so that a new application's leases are taken as soon as
// they exist. Calls made while a scan is under way cause one more scan.
// No I/O; it never blocks.
func (m *Manager) Rescan() {
	select {
	case m.rescan <- struct{}{}:
	default:
	}
}

// Leases returns copies of every lease in the table as of the last scan
// (the taker's or Refresh's), sorted by key; nil before the first scan. It
// does no I/O.
func (m *Manager) Leases() []Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneAll(m.table)
}

// Refresh scans the table now, updates the taker's observations with what it
// read, and returns copies of every lease, sorted by key. The consumer uses
// it to learn whether parent shards reached SHARD_END.
func (m *Manager) Refresh(ctx context.Context) ([]Lease, error) {
	if _, err := m.scan(ctx); err != nil {
		return nil, err
	}
	return m.Leases(), nil
}

// releaseAll releases every held lease at the end of Run, RenewInterval at
// most, without OnLost: the consumer stops them itself. It also deletes
// this worker's row, and gives up the hand-offs it was waiting for.
func (m *Manager) releaseAll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.RenewInterval)
	defer cancel()
	// This worker's row goes first: a worker that sees the released leases
	// and still counts this one would plan some for it.
	m.leaveWithin(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { m.abandonIncoming(ctx) })
	defer wg.Wait()
	parallel(m, m.entries(), func(h *heldLease) {
		if _, err := m.release(ctx, h, ReasonShutdown); err != nil && !errors.Is(err, ErrLeaseLost) {
			m.log.Warn("final release failed; the lease will expire", slog.String("shard", h.key), slog.Any("error", err))
		}
	})
	// A release that could not even wait for its lease's lock in time left
	// the lease held: forget it too, so that Run returns holding nothing.
	for _, h := range m.entries() {
		m.forget(h)
	}
}

// parallel calls f for each item, in parallel, and returns when all calls
// have. The calls of every parallel of one Manager share its write slots
// (overlapping renewal rounds, a take plan and the final release), so that
// at most writeParallelism of them run at once.
//
// A call takes its slot before f takes any lease lock, and nothing holding a
// lease lock waits for a slot (Checkpoint writes take none), so slots and
// lease locks cannot deadlock.
func parallel[T any](m *Manager, items []T, f func(T)) {
	var wg sync.WaitGroup
	for _, it := range items {
		m.writeSlots <- struct{}{}
		wg.Go(func() {
			defer func() { <-m.writeSlots }()
			f(it)
		})
	}
	wg.Wait()
}

// withSlot calls f holding one of the write slots parallel uses: for the
// single writes outside parallel (this worker's row).
func (m *Manager) withSlot(f func()) {
	m.writeSlots <- struct{}{}
	defer func() { <-m.writeSlots }()
	f()
}

func cloneAll(ls []Lease) []Lease {
	if ls == nil {
		return nil
	}
	out := make([]Lease, len(ls))
	for i, l := range ls {
		out[i] = l.Clone()
	}
	return out
}
