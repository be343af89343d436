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
// Run starts three goroutines and returns only after they have exited:
//
//   - the renewer renews every held lease each RenewInterval, at most 16
//     writes at a time, and drops a lease it could not renew within 90% of
//     FailoverTime, on a timer of its own, even while a store call hangs;
//   - the taker scans the table each TakerInterval (and when a lease it
//     watches would expire), then takes and steals what the balance plan
//     gives this worker: every worker computes the same plan from the same
//     table, so they do not collide, a balanced fleet moves nothing, and a
//     scale-out moves each lease at most once (the package README has the
//     rules, the proof and the measurements);
//   - the event goroutine calls OnAcquired and OnLost, one at a time, in
//     order.
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

	mu         sync.Mutex
	held       map[string]*heldLease // guarded by mu
	table      []Lease               // guarded by mu: the last scan, sorted by key
	scannedAt  time.Time             // guarded by mu: when the last scan read the table
	events     *queue.Queue[event]   // for the event goroutine; pushed under mu, in the order events happen
	heldAdded  chan struct{}         // capacity 1: wakes the renewer to rearm its drop timer
	writeSlots chan struct{}         // capacity writeParallelism: a token per write of parallel in flight

	scanMu sync.Mutex              // serializes scans, so observations apply in order
	seen   map[string]*observation // guarded by scanMu
	scans  uint64                  // guarded by scanMu: scans so far
	wakeAt time.Time               // guarded by scanMu: when a watched lease expires

	started    atomic.Bool
	stopTaking atomic.Bool
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
	return &Manager{
		store:      store,
		cfg:        cfg,
		hooks:      newHooks(cfg.Hooks),
		log:        cfg.Logger.With(slog.String("worker", cfg.WorkerID)),
		held:       make(map[string]*heldLease),
		events:     queue.New[event](),
		heldAdded:  make(chan struct{}, 1),
		writeSlots: make(chan struct{}, writeParallelism),
		seen:       make(map[string]*observation),
	}, nil
}

// Config returns the configuration in use, defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Run renews, takes and balances leases until ctx is cancelled. Then it
// stops taking, waits for its goroutines, and releases every lease still
// held (writing deferred checkpoints first), in parallel and within
// RenewInterval, without calling OnLost for them; the leases it could not
// release expire after FailoverTime. It returns nil once every goroutine it
// started has exited, with no lease held. A second call returns
// ErrAlreadyRunning.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	stopEvents := make(chan struct{})
	var events, loops sync.WaitGroup
	events.Go(func() { m.deliverEvents(stopEvents) })
	loops.Go(func() { m.runRenewer(ctx) })
	loops.Go(func() { m.runTaker(ctx) })
	loops.Wait() // both return when ctx is done

	m.releaseAll(ctx)
	close(stopEvents)
	events.Wait()
	m.log.Info("lease manager stopped")
	return nil
}

// StopTaking makes the Manager take and steal nothing from now on, while it
// keeps renewing what it holds and scanning the table: the first step of a
// graceful shutdown. Idempotent.
func (m *Manager) StopTaking() {
	if !m.stopTaking.Swap(true) {
		m.log.Info("stopped taking leases")
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
// most, without OnLost: the consumer stops them itself.
func (m *Manager) releaseAll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.RenewInterval)
	defer cancel()
	parallel(m, m.entries(), func(h *heldLease) {
		if err := m.release(ctx, h, ReasonShutdown); err != nil && !errors.Is(err, ErrLeaseLost) {
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
