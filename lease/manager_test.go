package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// The Manager's tests run inside synctest bubbles: the Manager reads the
// real clock, which is virtual there, so FailoverTime passes in no time.
// Durations below are the defaults: FailoverTime 10s, RenewInterval 3.33s,
// TakerInterval 5s, drop after 9s without renewal.

const (
	defaultRenew = DefaultFailoverTime / 3
	defaultTaker = DefaultFailoverTime / 2
	defaultDrop  = DefaultFailoverTime * 9 / 10
)

// hookStore is a MemoryStore that records its calls and lets a test fail
// or block them.
type hookStore struct {
	*MemoryStore

	mu     sync.Mutex
	calls  []string                                                  // "Op key", in order
	before func(ctx context.Context, op string, l Lease) (err error) // optional
}

func newHookStore() *hookStore { return &hookStore{MemoryStore: NewMemoryStore()} }

// setBefore installs f, called before every call (with an empty lease for
// List); an error from f fails the call.
func (s *hookStore) setBefore(f func(ctx context.Context, op string, l Lease) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = f
}

func (s *hookStore) hook(ctx context.Context, op string, l Lease) error {
	s.mu.Lock()
	s.calls = append(s.calls, op+" "+l.Key)
	f := s.before
	s.mu.Unlock()
	if f != nil {
		return f(ctx, op, l)
	}
	return nil
}

// callsFor returns the calls made for the lease key, in order.
func (s *hookStore) callsFor(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.calls {
		if op, k, _ := strings.Cut(c, " "); k == key {
			out = append(out, op)
		}
	}
	return out
}

func (s *hookStore) List(ctx context.Context) ([]Lease, error) {
	if err := s.hook(ctx, "List", Lease{}); err != nil {
		return nil, err
	}
	return s.MemoryStore.List(ctx)
}

// ListAll is hooked as "List": it is the Manager's scan.
func (s *hookStore) ListAll(ctx context.Context) ([]Lease, []Worker, error) {
	if err := s.hook(ctx, "List", Lease{}); err != nil {
		return nil, nil, err
	}
	return s.MemoryStore.ListAll(ctx)
}

func (s *hookStore) Get(ctx context.Context, key string) (Lease, error) {
	if err := s.hook(ctx, "Get", Lease{Key: key}); err != nil {
		return Lease{}, err
	}
	return s.MemoryStore.Get(ctx, key)
}

func (s *hookStore) HandOff(ctx context.Context, l Lease, to string) (Lease, error) {
	if err := s.hook(ctx, "HandOff", l); err != nil {
		return Lease{}, err
	}
	return s.MemoryStore.HandOff(ctx, l, to)
}

func (s *hookStore) Heartbeat(ctx context.Context, id string) (Worker, error) {
	if err := s.hook(ctx, "Heartbeat", Lease{}); err != nil {
		return Worker{}, err
	}
	return s.MemoryStore.Heartbeat(ctx, id)
}

func (s *hookStore) DeleteWorker(ctx context.Context, w Worker) error {
	if err := s.hook(ctx, "DeleteWorker", Lease{}); err != nil {
		return err
	}
	return s.MemoryStore.DeleteWorker(ctx, w)
}

func (s *hookStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	if err := s.hook(ctx, "Renew", l); err != nil {
		return Lease{}, err
	}
	return s.MemoryStore.Renew(ctx, l)
}

func (s *hookStore) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	if err := s.hook(ctx, "Take", l); err != nil {
		return Lease{}, err
	}
	return s.MemoryStore.Take(ctx, l, owner)
}

func (s *hookStore) Release(ctx context.Context, l Lease) (Lease, error) {
	if err := s.hook(ctx, "Release", l); err != nil {
		return Lease{}, err
	}
	return s.MemoryStore.Release(ctx, l)
}

func (s *hookStore) UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error) {
	if err := s.hook(ctx, "UpdateCheckpoint", l); err != nil {
		return Lease{}, err
	}
	return s.MemoryStore.UpdateCheckpoint(ctx, l)
}

// createLeases adds n unowned leases "shard-0".."shard-<n-1>" at
// TRIM_HORIZON, owned by owner if not empty.
func createLeases(t *testing.T, s Store, n int, owner string) []string {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("shard-%d", i)
		require.NoError(t, s.Create(context.Background(), Lease{Key: keys[i], Owner: owner, Checkpoint: checkpoint.TrimHorizon}))
	}
	return keys
}

// stored returns the stored lease with the key.
func stored(t *testing.T, s Store, key string) Lease {
	t.Helper()
	ls, err := s.List(context.Background())
	require.NoError(t, err)
	for _, l := range ls {
		if l.Key == key {
			return l
		}
	}
	t.Fatalf("no lease %s in the table", key)
	return Lease{}
}

// running is a Manager whose Run is in progress, inside a bubble.
type running struct {
	*Manager
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// stop cancels Run and waits for it; it returns Run's result.
func (r *running) stop() error {
	r.cancel()
	r.stopped = true
	return <-r.done
}

// runManager starts Run for a Manager on s with cfg; the test's cleanup
// stops it and checks that Run returned nil.
func runManager(t *testing.T, s Store, cfg Config) *running {
	t.Helper()
	m, err := NewManager(s, cfg)
	require.NoError(t, err)
	return startManager(t, m)
}

// startManager starts Run for m, like runManager.
func startManager(t *testing.T, m *Manager) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Manager: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	synctest.Wait() // Run has started, and made its first scan
	t.Cleanup(func() {
		if !r.stopped {
			require.NoError(t, r.stop())
		}
	})
	return r
}

// events records OnAcquired and OnLost calls and checks that they are never
// concurrent.
type events struct {
	mu      sync.Mutex
	log     []string // "+key" acquired, "-key" lost
	inside  atomic.Int32
	overlap atomic.Bool
}

func (e *events) record(s string) {
	if e.inside.Add(1) != 1 {
		e.overlap.Store(true)
	}
	defer e.inside.Add(-1)
	time.Sleep(time.Millisecond) // give a concurrent call the chance to overlap
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) config(cfg Config) Config {
	cfg.OnAcquired = func(l Lease) { e.record("+" + l.Key) }
	cfg.OnLost = func(l Lease) { e.record("-" + l.Key) }
	return cfg
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

func heldKeys(m *Manager) []string {
	var out []string
	for _, l := range m.Held() {
		out = append(out, l.Key)
	}
	return out
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runManager(t, NewMemoryStore(), Config{WorkerID: "w"})
		err := r.Run(context.Background())
		require.ErrorIs(t, err, ErrAlreadyRunning)
		require.NoError(t, r.stop())
		require.ErrorIs(t, r.Run(context.Background()), ErrAlreadyRunning)
	})
}

// Run returns only after its goroutines exited: synctest.Test fails if any
// goroutine of the bubble is still blocked when the test function returns,
// and the Manager here was busy renewing, taking and calling back.
func TestRunReturnsAfterGoroutinesExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		keys := createLeases(t, s, 5, "")
		var ev events
		r := runManager(t, s, ev.config(Config{WorkerID: "w"}))
		time.Sleep(time.Minute)
		require.Equal(t, keys, heldKeys(r.Manager))
		require.NoError(t, r.stop())
		require.Empty(t, r.Held())
		for _, key := range keys {
			require.Empty(t, stored(t, s, key).Owner, "lease %s not released", key)
		}
		require.False(t, ev.overlap.Load())
		require.Len(t, ev.get(), 5, "no OnLost for the final release: %v", ev.get())
	})
}

func TestRunWithCancelledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 2, "")
		m, err := NewManager(s, Config{WorkerID: "w"})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.NoError(t, m.Run(ctx))
		require.Empty(t, m.Held())
	})
}

func TestHeldAndLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		keys := createLeases(t, s, 3, "")
		r := runManager(t, s, Config{WorkerID: "w"})
		time.Sleep(defaultTaker + time.Second) // the first cycle probes one lease, the second takes the rest
		held := r.Held()
		require.Len(t, held, 3)
		require.True(t, slices.IsSortedFunc(held, func(a, b Lease) int { return strings.Compare(a.Key, b.Key) }))
		l, ok := r.Lease(keys[1])
		require.True(t, ok)
		require.Equal(t, "w", l.Owner)
		require.Equal(t, stored(t, s, keys[1]).Counter, l.Counter)

		// Copies: changing them changes nothing held.
		l.ParentShardIDs = append(l.ParentShardIDs, "x")
		held[0].Owner = "someone"
		again, _ := r.Lease(keys[1])
		require.Empty(t, again.ParentShardIDs)
		require.Equal(t, "w", r.Held()[0].Owner)

		_, ok = r.Lease("shard-none")
		require.False(t, ok)
	})
}

func TestLeasesAndRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 2, "")
		m, err := NewManager(s, Config{WorkerID: "w"})
		require.NoError(t, err)
		require.Nil(t, m.Leases(), "before the first scan")

		ls, err := m.Refresh(context.Background())
		require.NoError(t, err)
		require.Len(t, ls, 2)
		require.Equal(t, ls, m.Leases())

		require.NoError(t, s.Create(context.Background(), Lease{Key: "shard-new", Checkpoint: checkpoint.Latest}))
		require.Len(t, m.Leases(), 2, "no I/O in Leases")
		ls, err = m.Refresh(context.Background())
		require.NoError(t, err)
		require.Len(t, ls, 3)

		s.setBefore(func(context.Context, string, Lease) error { return errors.New("network down") })
		_, err = m.Refresh(context.Background())
		require.ErrorContains(t, err, "network down")
		require.Len(t, m.Leases(), 3, "the last successful scan")
	})
}

// OnAcquired and OnLost are called one at a time, in the order the events
// happened, even when they are slow; they may call Held and Lease. Without
// OnHandOff, a lease b asks for is released at once and reported lost.
func TestCallbacksSerializedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		keys := createLeases(t, s, 40, "")
		var ev events
		var a *Manager
		cfg := ev.config(Config{WorkerID: "a"})
		onAcquired, onLost := cfg.OnAcquired, cfg.OnLost
		cfg.OnAcquired = func(l Lease) {
			a.Held()
			a.Lease(l.Key)
			onAcquired(l)
			time.Sleep(50 * time.Millisecond) // slow: events queue up behind it
		}
		cfg.OnLost = func(l Lease) {
			a.Held()
			onLost(l)
		}
		a, err := NewManager(s, cfg)
		require.NoError(t, err)
		startManager(t, a)
		time.Sleep(time.Minute)
		b := runManager(t, s, Config{WorkerID: "b"})
		time.Sleep(time.Minute)
		require.Len(t, a.Held(), 20)
		require.NoError(t, b.stop())
		time.Sleep(time.Minute)
		require.Len(t, a.Held(), 40)

		require.False(t, ev.overlap.Load(), "callbacks overlapped")
		perLease := make(map[string]string)
		for _, e := range ev.get() {
			perLease[e[1:]] += e[:1]
		}
		moved := 0
		for _, key := range keys {
			seq := perLease[key]
			require.Contains(t, []string{"+", "+-+"}, seq, "lease %s: %q", key, seq)
			if seq == "+-+" {
				moved++
			}
		}
		require.Equal(t, 20, moved, "handed to b, then taken back")
	})
}

// malformedRowStore lists one unreadable row besides its leases, as
// DynamoStore does for a row it cannot decode.
type malformedRowStore struct{ *hookStore }

var badRow = Lease{Key: "shard-bad", Malformed: fmt.Errorf("%w: lease shard-bad: attribute checkpoint: test", ErrMalformedLease)}

func (s malformedRowStore) List(ctx context.Context) ([]Lease, error) {
	ls, err := s.hookStore.List(ctx)
	return append(ls, badRow), err
}

func (s malformedRowStore) ListAll(ctx context.Context) ([]Lease, []Worker, error) {
	ls, ws, err := s.hookStore.ListAll(ctx)
	return append(ls, badRow), ws, err
}

// One unreadable row neither stalls the taker nor counts in the balance,
// and is never written.
func TestMalformedRowIsSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := malformedRowStore{newHookStore()}
		createLeases(t, s, 4, "")
		a := runManager(t, s, Config{WorkerID: "a"})
		b := runManager(t, s, Config{WorkerID: "b"})
		time.Sleep(3 * defaultTaker)
		require.Len(t, a.Held(), 2)
		require.Len(t, b.Held(), 2)
		require.Empty(t, s.callsFor("shard-bad"))
		require.Len(t, a.Leases(), 5, "listed, for the consumer to see")
	})
}
