package lease

// The simulation: several Managers on one MemoryStore inside a synctest
// bubble, where time is virtual, so minutes of lease traffic run in
// milliseconds. The store is wrapped to count requests per operation and to
// record every change of owner. Each scenario asserts its target and logs its
// figure; lease/README.md reports them.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// ownerChange is one successful Take, HandOff or Release that changed
// leaseOwner (a hand-off's release leaves it, already the new owner's).
type ownerChange struct {
	at       time.Time
	key      string
	from, to string
	handOff  bool // a HandOff: the new owner asked; the lease moves when its holder releases it
}

// simStore counts the requests made to a MemoryStore and records owner
// changes.
type simStore struct {
	*MemoryStore

	mu        sync.Mutex
	calls     map[string]int
	itemsRead int
	history   []ownerChange
	latency   func() time.Duration // of every call; nil: none

	checkpoints []checkpointWrite // every successful UpdateCheckpoint
}

// checkpointWrite is one checkpoint written, at the counter it produced.
type checkpointWrite struct {
	key     string
	counter int64
	pos     checkpoint.Position
}

func newSimStore() *simStore {
	return &simStore{MemoryStore: NewMemoryStore(), calls: make(map[string]int)}
}

func (s *simStore) count(op string, items int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	s.itemsRead += items
}

// delay waits the store's latency, if any: every call takes effect, and
// returns, at the end of it.
func (s *simStore) delay() {
	s.mu.Lock()
	lat := s.latency
	s.mu.Unlock()
	if lat != nil {
		time.Sleep(lat())
	}
}

func (s *simStore) changed(key, from, to string, handOff bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = append(s.history, ownerChange{at: time.Now(), key: key, from: from, to: to, handOff: handOff})
}

func (s *simStore) List(ctx context.Context) ([]Lease, error) {
	s.delay()
	ls, err := s.MemoryStore.List(ctx)
	s.count("List", len(ls))
	return ls, err
}

func (s *simStore) ListAll(ctx context.Context) ([]Lease, []Worker, error) {
	s.delay()
	ls, ws, err := s.MemoryStore.ListAll(ctx)
	s.count("List", len(ls)+len(ws))
	return ls, ws, err
}

func (s *simStore) Get(ctx context.Context, key string) (Lease, error) {
	s.delay()
	s.count("Get", 1)
	return s.MemoryStore.Get(ctx, key)
}

func (s *simStore) HandOff(ctx context.Context, l Lease, to string) (Lease, error) {
	s.delay()
	s.count("HandOff", 0)
	res, err := s.MemoryStore.HandOff(ctx, l, to)
	if err == nil {
		s.changed(l.Key, l.Owner, to, true)
	}
	return res, err
}

func (s *simStore) Heartbeat(ctx context.Context, id string) (Worker, error) {
	s.delay()
	s.count("Heartbeat", 0)
	return s.MemoryStore.Heartbeat(ctx, id)
}

func (s *simStore) DeleteWorker(ctx context.Context, w Worker) error {
	s.delay()
	s.count("DeleteWorker", 0)
	return s.MemoryStore.DeleteWorker(ctx, w)
}

func (s *simStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	s.delay()
	s.count("Renew", 0)
	return s.MemoryStore.Renew(ctx, l)
}

func (s *simStore) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	s.delay()
	s.count("Take", 0)
	res, err := s.MemoryStore.Take(ctx, l, owner)
	if err == nil {
		s.changed(l.Key, l.Owner, owner, false)
	}
	return res, err
}

func (s *simStore) Release(ctx context.Context, l Lease) (Lease, error) {
	s.delay()
	s.count("Release", 0)
	res, err := s.MemoryStore.Release(ctx, l)
	if err == nil && res.Owner == "" {
		s.changed(l.Key, l.Owner, "", false)
	}
	return res, err
}

func (s *simStore) UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error) {
	s.delay()
	s.count("UpdateCheckpoint", 0)
	res, err := s.MemoryStore.UpdateCheckpoint(ctx, l)
	if err == nil {
		s.mu.Lock()
		s.checkpoints = append(s.checkpoints, checkpointWrite{key: res.Key, counter: res.Counter, pos: res.Checkpoint})
		s.mu.Unlock()
	}
	return res, err
}

// snapshot returns the request counts, items read and history so far.
func (s *simStore) snapshot() (map[string]int, int, []ownerChange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		calls[k] = v
	}
	return calls, s.itemsRead, slices.Clone(s.history)
}

// errCrashed is what a crashed worker's store calls return.
var errCrashed = errors.New("simulated crash")

// crashStore is a worker's view of the shared store; after crash() every
// call fails, so the worker writes nothing more, like a dead process.
type crashStore struct {
	Store
	crashed atomic.Bool
}

func (c *crashStore) List(ctx context.Context) ([]Lease, error) {
	if c.crashed.Load() {
		return nil, errCrashed
	}
	return c.Store.List(ctx)
}

func (c *crashStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	if c.crashed.Load() {
		return Lease{}, errCrashed
	}
	return c.Store.Renew(ctx, l)
}

func (c *crashStore) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	if c.crashed.Load() {
		return Lease{}, errCrashed
	}
	return c.Store.Take(ctx, l, owner)
}

func (c *crashStore) Release(ctx context.Context, l Lease) (Lease, error) {
	if c.crashed.Load() {
		return Lease{}, errCrashed
	}
	return c.Store.Release(ctx, l)
}

func (c *crashStore) UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error) {
	if c.crashed.Load() {
		return Lease{}, errCrashed
	}
	return c.Store.UpdateCheckpoint(ctx, l)
}

func (c *crashStore) ListAll(ctx context.Context) ([]Lease, []Worker, error) {
	if c.crashed.Load() {
		return nil, nil, errCrashed
	}
	return c.Store.(WorkerStore).ListAll(ctx)
}

func (c *crashStore) Get(ctx context.Context, key string) (Lease, error) {
	if c.crashed.Load() {
		return Lease{}, errCrashed
	}
	return c.Store.(HandOffStore).Get(ctx, key)
}

func (c *crashStore) HandOff(ctx context.Context, l Lease, to string) (Lease, error) {
	if c.crashed.Load() {
		return Lease{}, errCrashed
	}
	return c.Store.(HandOffStore).HandOff(ctx, l, to)
}

func (c *crashStore) Heartbeat(ctx context.Context, id string) (Worker, error) {
	if c.crashed.Load() {
		return Worker{}, errCrashed
	}
	return c.Store.(WorkerStore).Heartbeat(ctx, id)
}

func (c *crashStore) DeleteWorker(ctx context.Context, w Worker) error {
	if c.crashed.Load() {
		return errCrashed
	}
	return c.Store.(WorkerStore).DeleteWorker(ctx, w)
}

// simWorker is one Manager running in the simulation.
type simWorker struct {
	id     string
	m      *Manager
	store  *crashStore
	cancel context.CancelFunc
	done   chan error
}

// crash makes the worker stop writing and stops it: its final release
// fails, so the table keeps its leases as they were, as after a crash.
func (w *simWorker) crash() {
	w.store.crashed.Store(true)
	w.stop()
}

// stop cancels Run (which releases the leases) and waits for it.
func (w *simWorker) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	if err := <-w.done; err != nil {
		panic(fmt.Sprintf("worker %s: Run: %v", w.id, err))
	}
	w.cancel = nil
}

// simLatency is how long every store call of the simulation takes (virtual
// time), a little less than DynamoDB's typical 5–10 ms.
const simLatency = 5 * time.Millisecond

// sim is a fleet of workers on one table, inside a synctest bubble.
type sim struct {
	t         *testing.T
	store     *simStore
	start     time.Time
	workers   []*simWorker
	consumers []*simConsumer
}

// newSim creates a table of n unowned leases at TRIM_HORIZON. Call it
// inside a bubble.
func newSim(t *testing.T, n int) *sim {
	s := &sim{t: t, store: newSimStore(), start: time.Now()}
	s.store.latency = func() time.Duration { return simLatency }
	for i := range n {
		require.NoError(t, s.store.Create(t.Context(), Lease{Key: fmt.Sprintf("shard-%05d", i), Checkpoint: checkpoint.TrimHorizon}))
	}
	t.Cleanup(s.stopAll)
	return s
}

// add starts a worker with cfg (WorkerID set from id).
func (s *sim) add(id string, cfg Config) *simWorker {
	w := s.prepare(id, cfg)
	s.run(w)
	return w
}

// prepare makes a worker with cfg, without starting it.
func (s *sim) prepare(id string, cfg Config) *simWorker {
	cfg.WorkerID = id
	w := &simWorker{id: id, store: &crashStore{Store: s.store}, done: make(chan error, 1)}
	m, err := NewManager(w.store, cfg)
	require.NoError(s.t, err)
	w.m = m
	return w
}

// run starts a prepared worker.
func (s *sim) run(w *simWorker) {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() { w.done <- w.m.Run(ctx) }()
	s.workers = append(s.workers, w)
}

func (s *sim) stopAll() {
	for _, c := range s.consumers {
		c.leave()
	}
	for _, w := range s.workers {
		w.stop()
	}
}

// owners returns the number of leases each owner holds in the table ("" for
// unowned).
func (s *sim) owners() map[string]int {
	ls, err := s.store.MemoryStore.List(context.Background())
	require.NoError(s.t, err)
	out := make(map[string]int)
	for _, l := range ls {
		out[l.Owner]++
	}
	return out
}

// spread returns max − min of the loads of the given workers (zero
// included) and the number of unowned leases.
func spread(counts map[string]int, ids []string) (int, int) {
	lo, hi := int(^uint(0)>>1), 0
	for _, id := range ids {
		lo, hi = min(lo, counts[id]), max(hi, counts[id])
	}
	return hi - lo, counts[""]
}

// balancedAt replays the history from the table state initial (owner counts
// at from) and returns the first time at or after from when the workers
// were balanced (max − min ≤ 1, nothing unowned), and the number of owner
// changes after that time.
func balancedAt(initial map[string]int, history []ownerChange, from time.Time, ids []string) (time.Time, int) {
	counts := make(map[string]int)
	for k, v := range initial {
		counts[k] = v
	}
	var at time.Time
	after := 0
	if d, free := spread(counts, ids); d <= 1 && free == 0 {
		at = from
	}
	for _, c := range history {
		if c.at.Before(from) || c.from == c.to {
			continue // a new owner taking what was handed to it moves nothing
		}
		counts[c.from]--
		counts[c.to]++
		d, free := spread(counts, ids)
		switch {
		case d <= 1 && free == 0 && at.IsZero():
			at = c.at
		case !at.IsZero() && c.at.After(at):
			after++
		}
		if d > 1 || free > 0 {
			at = time.Time{}
		}
	}
	return at, after
}

// movesPerLease counts the changes from one worker to another per lease.
func movesPerLease(history []ownerChange, from time.Time) map[string]int {
	out := make(map[string]int)
	for _, c := range history {
		if !c.at.Before(from) && c.from != "" && c.from != c.to {
			out[c.key]++
		}
	}
	return out
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

// Scenario 1. A worker dies holding a quarter of the leases; the time until
// every one of them is owned by a live worker. Target: 1.5 × FailoverTime.
// The runs vary the workers' start phases and the moment of the crash.
func TestSimFailover(t *testing.T) {
	const runs = 16
	var worst, best time.Duration
	for run := range runs {
		d := simFailoverOnce(t, uint64(run))
		require.LessOrEqual(t, d, DefaultFailoverTime*3/2, "run %d", run)
		if run == 0 || d > worst {
			worst = d
		}
		if run == 0 || d < best {
			best = d
		}
	}
	t.Logf("FIGURE failover (4 workers, 40 leases, FailoverTime 10s, TakerInterval 5s, %d runs): min %v, max %v (%.2f × FailoverTime)",
		runs, best, worst, worst.Seconds()/DefaultFailoverTime.Seconds())
}

func simFailoverOnce(t *testing.T, seed uint64) time.Duration {
	var took time.Duration
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := newSim(t, 40)
		var fleet []*simWorker
		for _, id := range ids("w", 4) {
			fleet = append(fleet, s.add(id, Config{}))
			time.Sleep(time.Duration(rng.Int64N(int64(5 * time.Second))))
		}
		time.Sleep(60*time.Second + time.Duration(rng.Int64N(int64(10*time.Second))))
		synctest.Wait()
		victim := fleet[3]
		held := victim.m.Held()
		require.Len(t, held, 10, "fleet not balanced before the crash: %v", s.owners())

		crashAt := time.Now()
		victim.crash()
		time.Sleep(3 * DefaultFailoverTime)
		synctest.Wait()

		_, _, history := s.store.snapshot()
		retaken := make(map[string]time.Time)
		for _, c := range history {
			if c.at.Before(crashAt) || c.from != victim.id {
				continue
			}
			require.NotEqual(t, victim.id, c.to)
			if _, ok := retaken[c.key]; !ok {
				retaken[c.key] = c.at
			}
		}
		require.Len(t, retaken, len(held), "not every lease of the dead worker was taken: %v", s.owners())
		for _, at := range retaken {
			took = max(took, at.Sub(crashAt))
		}
		counts := s.owners()
		d, free := spread(counts, ids("w", 3))
		require.LessOrEqual(t, d, 1, "%v", counts)
		require.Zero(t, free)
	})
	return took
}

// Scenario 2. 100 leases on one worker; nine more join at once. Target:
// balanced (max − min ≤ 1) within 2 taker cycles, with the minimum number of
// moves (90: each moved lease moves once).
func TestSimScaleOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 100)
		fleet := ids("w", 10)
		s.add(fleet[0], Config{})
		time.Sleep(61*time.Second + 234567*time.Microsecond)
		synctest.Wait()
		require.Equal(t, 100, s.owners()[fleet[0]])

		join := time.Now()
		initial := s.owners()
		for _, id := range fleet[1:] {
			s.add(id, Config{})
		}
		time.Sleep(20 * DefaultFailoverTime / 2) // 20 taker cycles
		synctest.Wait()

		_, _, history := s.store.snapshot()
		at, after := balancedAt(initial, history, join, fleet)
		require.False(t, at.IsZero(), "never balanced: %v", s.owners())
		require.Zero(t, after, "owners changed after balance")
		cycles := float64(at.Sub(join)) / float64(DefaultFailoverTime/2)
		require.LessOrEqual(t, cycles, 2.0)
		moves := movesPerLease(history, join)
		total := 0
		for key, n := range moves {
			require.Equal(t, 1, n, "lease %s moved %d times", key, n)
			total += n
		}
		require.Equal(t, 90, total)
		t.Logf("FIGURE scale-out 1→10 workers on 100 leases: balanced after %v (%.1f taker cycles of 5s), %d moves, no lease moved twice",
			at.Sub(join), cycles, total)
	})
}

// Scenario 3. Two workers; one shuts down gracefully (StopTaking, then Run
// returns, releasing its leases). The time until the other owns them all.
// Target: one taker cycle.
func TestSimGracefulHandOff(t *testing.T) {
	const runs = 12
	var best, worst time.Duration
	for run := range runs {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(run), 11))
			s := newSim(t, 40)
			a := s.add("a", Config{})
			time.Sleep(time.Duration(rng.Int64N(int64(5 * time.Second))))
			b := s.add("b", Config{})
			time.Sleep(60*time.Second + time.Duration(rng.Int64N(int64(5*time.Second))))
			synctest.Wait()
			require.Len(t, b.m.Held(), 20)

			b.m.StopTaking()
			b.stop()
			released := time.Now()
			time.Sleep(DefaultFailoverTime)
			synctest.Wait()
			require.Len(t, a.m.Held(), 40)
			_, _, history := s.store.snapshot()
			var last time.Time
			for _, c := range history {
				if !c.at.Before(released) && c.to == "a" {
					last = c.at
				}
			}
			took := last.Sub(released)
			require.LessOrEqual(t, took, DefaultFailoverTime/2, "run %d", run)
			worst = max(worst, took)
			if run == 0 || took < best {
				best = took
			}
		})
	}
	t.Logf("FIGURE graceful hand-off (2 workers, 40 leases, %d runs): the survivor owned them all after min %v, max %v; one taker cycle is 5s", runs, best, worst)
}

// Scenario 4. Four workers, 100 leases, 100 taker cycles after balancing: no
// lease changes owner; requests per shard-hour.
func TestSimSteadyState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shards = 100
		s := newSim(t, shards)
		for _, id := range ids("w", 4) {
			s.add(id, Config{})
			time.Sleep(1234 * time.Millisecond)
		}
		time.Sleep(60 * time.Second)
		synctest.Wait()
		d, free := spread(s.owners(), ids("w", 4))
		require.LessOrEqual(t, d, 1)
		require.Zero(t, free)

		calls0, items0, history0 := s.store.snapshot()
		window := 100 * DefaultFailoverTime / 2
		time.Sleep(window)
		synctest.Wait()
		calls1, items1, history1 := s.store.snapshot()
		require.Equal(t, len(history0), len(history1), "owners changed in steady state")

		perShardHour := func(n int) float64 { return float64(n) / shards / window.Hours() }
		renews := calls1["Renew"] - calls0["Renew"]
		lists := calls1["List"] - calls0["List"]
		items := items1 - items0
		other := calls1["Take"] + calls1["Release"] + calls1["UpdateCheckpoint"] - calls0["Take"] - calls0["Release"] - calls0["UpdateCheckpoint"]
		require.Zero(t, other)
		heartbeats := calls1["Heartbeat"] - calls0["Heartbeat"]
		t.Logf("FIGURE steady state (4 workers, 100 leases, 100 taker cycles): 0 owner changes; per shard-hour: %.0f renewals, %.1f worker-row heartbeats, %.1f scans (List calls), %.0f items read",
			perShardHour(renews), perShardHour(heartbeats), perShardHour(lists), perShardHour(items))
	})
}

// Scenario 6. Fast start: a lone worker on a new application, whose leases
// the shard syncer creates just after it started, then calls Rescan; and
// ten workers starting together on a table of 100 unowned leases. The time
// from the leases' creation (or the start) until every lease is owned.
func TestSimFastStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 0)
		w := s.add("lone", Config{})
		time.Sleep(20 * time.Millisecond) // the syncer's ListShards and table scan
		created := time.Now()
		for i := range 100 {
			require.NoError(t, s.store.Create(t.Context(), Lease{Key: fmt.Sprintf("shard-%05d", i), Checkpoint: checkpoint.TrimHorizon}))
		}
		w.m.Rescan()
		time.Sleep(time.Second)
		require.Len(t, w.m.Held(), 100)
		var last time.Time
		for _, at := range takenAt(s.store, "lone") {
			last = maxTime(last, at)
		}
		lone := last.Sub(created)
		require.Less(t, lone, 100*time.Millisecond)

		s2 := newSim(t, 100)
		start := time.Now()
		fleet := ids("f", 10)
		for _, id := range fleet {
			s2.add(id, Config{})
		}
		time.Sleep(3 * DefaultFailoverTime / 2)
		_, _, history := s2.store.snapshot()
		at, after := balancedAt(map[string]int{"": 100}, history, start, fleet)
		require.False(t, at.IsZero())
		require.Zero(t, after)
		require.Empty(t, movesPerLease(history, start))
		t.Logf("FIGURE fast start: a lone worker owned all 100 leases %v after they were created (Rescan; store calls of %v); "+
			"10 workers starting together on 100 leases: balanced after %v, 0 moves",
			lone, simLatency, at.Sub(start))
	})
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Scenario 5. 2,000 leases, 50 workers starting at once on a fresh table:
// virtual time and taker cycles to converge, and moves (none needed).
func TestSimScale(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 leases × 50 workers")
	}
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 2000)
		fleet := ids("w", 50)
		start := time.Now()
		for _, id := range fleet {
			s.add(id, Config{})
		}
		time.Sleep(4 * DefaultFailoverTime / 2) // balanced after 1 cycle, then 3 cycles without changes
		synctest.Wait()
		_, _, history := s.store.snapshot()
		at, after := balancedAt(map[string]int{"": 2000}, history, start, fleet)
		require.False(t, at.IsZero(), "never balanced: %v", s.owners())
		require.Zero(t, after)
		moves := movesPerLease(history, start)
		require.Empty(t, moves, "leases moved between workers on a fresh start")
		cycles := float64(at.Sub(start)) / float64(DefaultFailoverTime/2)
		require.LessOrEqual(t, cycles, 2.0)
		calls, _, _ := s.store.snapshot()
		t.Logf("FIGURE scale (2,000 leases, 50 workers starting at once): balanced after %v (%.1f taker cycles), 0 moves, %d takes, %d of them refused (conflicts)",
			at.Sub(start), cycles, len(history), calls["Take"]-len(history))
	})
}

// The balancing property on real Managers: random fleets and tables; an
// initial fleet started at staggered times, then newcomers joining together
// (within half a taker cycle),
// then one worker leaving gracefully and one crashing. After each phase the
// fleet is balanced (max − min ≤ 1, nothing unowned) and stable (no owner
// changes); after the scale-out it is within three taker cycles, and no
// lease moved twice.
var simPropertyCases = 12

func TestSimBalanceProperty(t *testing.T) {
	cases := uint64(simPropertyCases)
	var worstCycles float64
	for seed := range cases {
		synctest.Test(t, func(t *testing.T) {
			cycles := simBalanceCase(t, seed)
			worstCycles = max(worstCycles, cycles)
		})
	}
	t.Logf("scale-out: balanced and stable within %.2f taker cycles at worst over %d fleets", worstCycles, cases)
}

// simBalanceCase runs one random fleet and returns how many taker cycles
// its scale-out took to settle.
func simBalanceCase(t *testing.T, seed uint64) float64 {
	rng := rand.New(rand.NewPCG(seed, 99))
	cycle := DefaultFailoverTime / 2
	n, initial, joining := rng.IntN(80), 1+rng.IntN(5), 1+rng.IntN(8)
	s := newSim(t, n)
	fleet := func() []string {
		var out []string
		for _, w := range s.workers {
			if w.cancel != nil {
				out = append(out, w.id)
			}
		}
		return out
	}
	settled := func(phase string) {
		t.Helper()
		counts := s.owners()
		d, free := spread(counts, fleet())
		require.LessOrEqual(t, d, 1, "seed %d, %s: %v", seed, phase, counts)
		require.Zero(t, free, "seed %d, %s: %v", seed, phase, counts)
	}
	lastChange := func() time.Time {
		_, _, h := s.store.snapshot()
		if len(h) == 0 {
			return time.Time{}
		}
		return h[len(h)-1].at
	}
	// Worker IDs in random order relative to their arrival.
	id := func(i int) string { return fmt.Sprintf("w%03d-%d", rng.IntN(1000), i) }

	for i := range initial {
		s.add(id(i), Config{})
		time.Sleep(time.Duration(rng.Int64N(int64(3 * cycle))))
	}
	time.Sleep(10 * cycle)
	settled("initial fleet")
	require.Less(t, lastChange(), time.Now().Add(-5*cycle), "seed %d: initial fleet not stable", seed)

	// The newcomers start "together": within half a taker cycle, in random
	// order, as a deployment's pods do.
	join := time.Now()
	for i := range joining {
		s.add(id(initial+i), Config{})
		time.Sleep(time.Duration(rng.Int64N(int64(cycle / 2 / time.Duration(joining)))))
	}
	time.Sleep(10 * cycle)
	settled("scale-out")
	_, _, history := s.store.snapshot()
	for key, moves := range movesPerLease(history, join) {
		require.Equal(t, 1, moves, "seed %d: lease %s moved %d times in the scale-out", seed, key, moves)
	}
	took := max(time.Duration(0), lastChange().Sub(join))
	require.LessOrEqual(t, took, 3*cycle, "seed %d: scale-out of %d+%d workers on %d leases", seed, initial, joining, n)

	if len(s.workers) >= 3 {
		s.workers[rng.IntN(len(s.workers))].stop()
		alive := s.workers[:0:0]
		for _, w := range s.workers {
			if w.cancel != nil {
				alive = append(alive, w)
			}
		}
		alive[rng.IntN(len(alive))].crash()
		time.Sleep(4 * DefaultFailoverTime)
		settled("after a graceful leave and a crash")
		require.Less(t, lastChange(), time.Now().Add(-2*cycle), "seed %d: not stable after the leave and the crash", seed)
	}
	return float64(took) / float64(cycle)
}
