package lease

// The simulation with records: each worker runs a simulated consumer that,
// like the consumer package, starts a shard worker on OnAcquired, reads the
// shard's records in batches from its checkpoint, defers its checkpoints to
// the lease's renewals (writing one at once every 5 s), and on OnHandOff or
// a graceful leave finishes the batch in flight, checkpoints and releases;
// on OnLost it stops without a checkpoint. Every delivery of every record is
// counted, so the scenarios measure duplicates, and the property test checks
// that only real losses (a crash, a hand-off timing out) cause any.

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// Record traffic and the simulated consumer's pace.
const (
	recordEvery     = 50 * time.Millisecond  // per shard: 20 records/s
	batchEvery      = 200 * time.Millisecond // a GetRecords call per shard worker
	processTime     = 30 * time.Millisecond  // what a batch takes to process
	checkpointEvery = 5 * time.Second        // the consumer's CheckpointInterval
)

// simStream counts the deliveries of every record of every shard. Record i
// of a shard (sequence number i, from 1) arrives at start + i×recordEvery.
type simStream struct {
	start time.Time

	mu         sync.Mutex
	deliveries map[string][]uint8   // per shard, by record: how many times delivered
	duplicates map[string]int       // per shard
	lossy      map[string]bool      // shards that saw a real loss: OnLost, or a crash of their holder
	batches    map[string][]batchAt // per shard: every delivery, in time order
}

// batchAt is a delivery of records of a shard by a worker.
type batchAt struct {
	at     time.Time
	worker string
}

func newSimStream() *simStream {
	return &simStream{start: time.Now(), deliveries: map[string][]uint8{}, duplicates: map[string]int{},
		lossy: map[string]bool{}, batches: map[string][]batchAt{}}
}

// arrived returns the last record of a shard that has arrived.
func (st *simStream) arrived() int64 { return int64(time.Since(st.start) / recordEvery) }

// deliver counts the delivery of records (from, to] of shard to worker.
func (st *simStream) deliver(worker, shard string, from, to int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	d := st.deliveries[shard]
	for int64(len(d)) <= to {
		d = append(d, 0)
	}
	for i := from + 1; i <= to; i++ {
		if d[i]++; d[i] > 1 {
			st.duplicates[shard]++
		}
	}
	st.deliveries[shard] = d
	st.batches[shard] = append(st.batches[shard], batchAt{at: time.Now(), worker: worker})
}

// firstBatch returns the first delivery of shard after t by a worker
// accepted by who.
func (st *simStream) firstBatch(shard string, t time.Time, who func(string) bool) (time.Time, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, b := range st.batches[shard] {
		if !b.at.Before(t) && who(b.worker) {
			return b.at, true
		}
	}
	return time.Time{}, false
}

func (st *simStream) markLossy(shard string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lossy[shard] = true
}

// totals returns the duplicates on all shards and on shards that saw no
// real loss, and the first record of any shard not delivered, up to upTo.
func (st *simStream) totals(shards []string, upTo int64) (dups, unexplained int, missing string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, sh := range shards {
		dups += st.duplicates[sh]
		if !st.lossy[sh] {
			unexplained += st.duplicates[sh]
		}
		d := st.deliveries[sh]
		for i := int64(1); i <= upTo && missing == ""; i++ {
			if i >= int64(len(d)) || d[i] == 0 {
				missing = fmt.Sprintf("%s record %d", sh, i)
			}
		}
	}
	return dups, unexplained, missing
}

// simConsumer is a worker's consumer: a shard worker per held lease.
type simConsumer struct {
	w        *simWorker
	st       *simStream
	stopping chan struct{} // closed at a graceful leave
	crashed  atomic.Bool

	// Set by crash: it came in the middle of a hand-off from or to it.
	midOutgoing, midIncoming bool

	mu      sync.Mutex
	ended   bool // left or crashed: start no more shard workers
	workers map[string]*simShardWorker
	lost    int // OnLost calls
	wg      sync.WaitGroup
}

type simShardWorker struct {
	lease   Lease
	ctx     context.Context
	cancel  context.CancelFunc
	handOff chan struct{} // closed by OnHandOff
	asked   bool
	done    chan struct{}
}

// addConsumer starts a worker with a simulated consumer.
func (s *sim) addConsumer(id string, st *simStream, cfg Config) *simConsumer {
	c := &simConsumer{st: st, stopping: make(chan struct{}), workers: map[string]*simShardWorker{}}
	cfg.OnAcquired = c.acquired
	cfg.OnHandOff = c.handOff
	cfg.OnLost = c.lostLease
	c.w = s.prepare(id, cfg)
	s.consumers = append(s.consumers, c)
	s.run(c.w)
	return c
}

func (c *simConsumer) acquired(l Lease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return // shutting down: the Manager's final release gives it back
	}
	prev := c.workers[l.Key]
	ctx, cancel := context.WithCancel(context.Background())
	sw := &simShardWorker{lease: l, ctx: ctx, cancel: cancel, handOff: make(chan struct{}), done: make(chan struct{})}
	c.workers[l.Key] = sw
	c.wg.Go(func() {
		defer close(sw.done)
		defer cancel()
		if prev != nil {
			<-prev.done // one shard worker per shard at a time
		}
		c.run(sw)
	})
}

func (c *simConsumer) handOff(l Lease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sw := c.workers[l.Key]; sw != nil && !sw.asked {
		sw.asked = true
		close(sw.handOff)
	}
}

func (c *simConsumer) lostLease(l Lease) {
	c.st.markLossy(l.Key)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lost++
	if sw := c.workers[l.Key]; sw != nil {
		sw.cancel()
	}
}

// run is a shard worker: batches until the lease ends.
func (c *simConsumer) run(sw *simShardWorker) {
	m, key := c.w.m, sw.lease.Key
	pos := int64(0)
	if !sw.lease.Checkpoint.IsSentinel() {
		pos, _ = strconv.ParseInt(sw.lease.Checkpoint.SequenceNumber, 10, 64)
	}
	lastWrite := time.Now()
	for {
		select {
		case <-sw.ctx.Done():
			return
		case <-c.stopping:
			c.finish(sw, pos)
			return
		case <-sw.handOff:
			c.finish(sw, pos)
			return
		case <-time.After(batchEvery):
		}
		if c.crashed.Load() {
			return
		}
		upTo := c.st.arrived()
		if upTo <= pos {
			continue
		}
		c.st.deliver(c.w.id, key, pos, upTo)
		time.Sleep(processTime)
		pos = upTo
		if sw.ctx.Err() != nil || c.crashed.Load() {
			return // lost during the batch: no checkpoint
		}
		at := checkpoint.At(strconv.FormatInt(pos, 10), 0)
		if time.Since(lastWrite) >= checkpointEvery {
			lastWrite = time.Now()
			_ = m.Checkpoint(sw.ctx, key, at)
		} else {
			_ = m.Defer(key, at)
		}
	}
}

// finish ends a shard worker gracefully: the final checkpoint, the release.
func (c *simConsumer) finish(sw *simShardWorker, pos int64) {
	if c.crashed.Load() {
		return
	}
	if pos > 0 {
		_ = c.w.m.Checkpoint(sw.ctx, sw.lease.Key, checkpoint.At(strconv.FormatInt(pos, 10), 0))
	}
	_ = c.w.m.Release(sw.ctx, sw.lease.Key)
}

// leave shuts the worker down gracefully, as the consumer does: stop
// taking, let each shard worker finish, checkpoint and release, then stop
// the Manager.
func (c *simConsumer) leave() {
	c.mu.Lock()
	ended := c.ended
	c.ended = true
	c.mu.Unlock()
	if ended {
		return
	}
	c.w.m.StopTaking()
	close(c.stopping)
	c.wg.Wait()
	c.w.stop()
}

// crash stops the worker and its shard workers at once: no checkpoint, no
// release; the records its shard workers delivered since their last
// checkpoint will be delivered again.
func (c *simConsumer) crash() {
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	c.w.m.mu.Lock()
	c.midIncoming = len(c.w.m.incoming) > 0
	c.w.m.mu.Unlock()
	ls, _ := c.w.store.Store.(*simStore).MemoryStore.List(context.Background())
	for _, l := range ls {
		c.midOutgoing = c.midOutgoing || l.CheckpointOwner == c.w.id
	}
	c.crashed.Store(true)
	for _, l := range c.w.m.Held() {
		c.st.markLossy(l.Key)
	}
	c.w.store.crashed.Store(true)
	c.mu.Lock()
	for _, sw := range c.workers {
		sw.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.w.stop()
}

func (c *simConsumer) lostCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// shardKeys returns the keys of the simulation's leases.
func shardKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("shard-%05d", i)
	}
	return out
}

// moveLatencies returns, for every hand-off after from, the time from the
// new owner's HandOff write to its first delivery of the shard.
func moveLatencies(t *testing.T, s *sim, st *simStream, from time.Time) []time.Duration {
	_, _, history := s.store.snapshot()
	var out []time.Duration
	for _, c := range history {
		if !c.handOff || c.at.Before(from) {
			continue
		}
		first, ok := st.firstBatch(c.key, c.at, func(w string) bool { return w == c.to })
		require.True(t, ok, "%s never processed %s, handed to it at %v", c.to, c.key, c.at.Sub(s.start))
		out = append(out, first.Sub(c.at))
	}
	slices.Sort(out)
	return out
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, len(ds)*p/100)]
}

// checkpointsMonotonic checks that every lease's successive checkpoint
// writes (in counter order) never went backwards.
func checkpointsMonotonic(t *testing.T, s *simStore) {
	s.mu.Lock()
	writes := slices.Clone(s.checkpoints)
	s.mu.Unlock()
	slices.SortFunc(writes, func(a, b checkpointWrite) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.counter, b.counter))
	})
	for i := 1; i < len(writes); i++ {
		a, b := writes[i-1], writes[i]
		if a.key == b.key {
			require.GreaterOrEqual(t, b.pos.Compare(a.pos), 0, "lease %s: checkpoint %s (counter %d) after %s (counter %d)",
				a.key, b.pos, b.counter, a.pos, a.counter)
		}
	}
}

// Scale-out with records: 100 shards on one worker, nine more join at
// once. Every lease moves by hand-off: no record is delivered twice, nobody
// loses a lease, and the table is balanced at once. The runs vary the join's
// phase against the holder's renewals.
func TestSimHandOffScaleOut(t *testing.T) {
	const runs = 12
	var all []time.Duration
	var balanced time.Duration
	for run := range runs {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(run), 3))
			lat, at := simScaleOutOnce(t, time.Duration(rng.Int64N(int64(DefaultFailoverTime/3))))
			all = append(all, lat...)
			balanced = max(balanced, at)
		})
	}
	slices.Sort(all)
	t.Logf("FIGURE scale-out with records (1→10 workers, 100 shards, %d runs): 0 duplicates, 0 leases lost; table balanced %v after the join at worst; "+
		"steal decided → new owner processing (%d moves): min %v, median %v, max %v (RenewInterval %v, batches every %v)",
		runs, balanced, len(all), all[0], percentile(all, 50), all[len(all)-1], (DefaultFailoverTime / 3).Round(time.Millisecond), batchEvery)
}

func simScaleOutOnce(t *testing.T, phase time.Duration) ([]time.Duration, time.Duration) {
	const shards = 100
	s := newSim(t, shards)
	st := newSimStream()
	fleet := ids("w", 10)
	cs := []*simConsumer{s.addConsumer(fleet[0], st, Config{})}
	time.Sleep(30*time.Second + phase)

	join := time.Now()
	initial := s.owners()
	for _, id := range fleet[1:] {
		cs = append(cs, s.addConsumer(id, st, Config{}))
	}
	time.Sleep(30 * time.Second)
	_, _, history := s.store.snapshot()
	at, after := balancedAt(initial, history, join, fleet)
	require.False(t, at.IsZero(), "never balanced: %v", s.owners())
	require.Zero(t, after)
	total := 0
	for key, n := range movesPerLease(history, join) {
		require.Equal(t, 1, n, "lease %s moved %d times", key, n)
		total += n
	}
	require.Equal(t, 90, total)
	lat := moveLatencies(t, s, st, join)
	require.Len(t, lat, 90)
	for _, c := range cs {
		require.Zero(t, c.lostCount(), "%s lost a lease", c.w.id)
	}
	dups, _, missing := st.totals(shardKeys(shards), st.arrived()-int64(2*time.Second/recordEvery))
	require.Zero(t, dups)
	require.Empty(t, missing)
	checkpointsMonotonic(t, s.store)
	limit := DefaultFailoverTime/3 + batchEvery + processTime + DefaultFailoverTime/3/20 + batchEvery + 10*simLatency
	require.LessOrEqual(t, lat[len(lat)-1], limit)
	return lat, at.Sub(join)
}

// A graceful leave with records: one of four workers shuts down; its shard
// workers finish, checkpoint and release, and the others take the leases
// at their next scan. No record is delivered twice.
func TestSimHandOffGracefulLeave(t *testing.T) {
	const runs = 8
	var worst time.Duration
	for run := range runs {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(run), 5))
			const shards = 40
			s := newSim(t, shards)
			st := newSimStream()
			var cs []*simConsumer
			for _, id := range ids("w", 4) {
				cs = append(cs, s.addConsumer(id, st, Config{}))
				time.Sleep(time.Duration(rng.Int64N(int64(5 * time.Second))))
			}
			time.Sleep(30*time.Second + time.Duration(rng.Int64N(int64(5*time.Second))))
			leaver := cs[rng.IntN(len(cs))]
			left := leaver.w.m.Held()
			require.Len(t, left, 10)
			start := time.Now()
			leaver.leave()
			time.Sleep(15 * time.Second)
			for _, l := range left {
				first, ok := st.firstBatch(l.Key, start, func(w string) bool { return w != leaver.w.id })
				require.True(t, ok, "run %d: %s not processed after the leave", run, l.Key)
				worst = max(worst, first.Sub(start))
			}
			for _, c := range cs {
				require.Zero(t, c.lostCount())
			}
			dups, _, missing := st.totals(shardKeys(shards), st.arrived()-int64(2*time.Second/recordEvery))
			require.Zero(t, dups, "run %d", run)
			require.Empty(t, missing, "run %d", run)
			checkpointsMonotonic(t, s.store)
		})
	}
	t.Logf("FIGURE graceful leave with records (4 workers, 40 shards, %d runs): 0 duplicates; the leaver's shards processed again within %v at worst (one taker cycle is 5s)", runs, worst)
}

// The hand-off protocol under random fleets, store latencies, joins,
// graceful leaves and crashes, some timed to land in the middle of
// hand-offs (the holder or the new owner dying before the release). After
// each run:
//
//   - no checkpoint ever went backwards;
//   - every record that arrived (up to the last two seconds) was delivered;
//   - duplicates happened only on shards that saw a real loss: a crash of
//     their holder or an OnLost (a write refused, a hand-off timed out);
//     in runs without crashes, there are none and nobody lost a lease;
//   - the survivors are balanced (max − min ≤ 1) and every lease is held.
var simHandOffCases = 24

func TestSimHandOffProperty(t *testing.T) {
	var total simCaseStats
	withDups := 0
	for seed := range uint64(simHandOffCases) {
		synctest.Test(t, func(t *testing.T) {
			st := simHandOffCase(t, seed)
			total.crashes += st.crashes
			total.handOffs += st.handOffs
			total.holderKilled += st.holderKilled
			total.ownerKilled += st.ownerKilled
			if st.dups > 0 {
				withDups++
			}
		})
	}
	t.Logf("hand-off property: %d runs, %d hand-offs, %d crashes (%d of a holder and %d of a new owner in the middle of a hand-off); "+
		"duplicates in %d runs, all on shards of a crashed holder or a real loss",
		simHandOffCases, total.handOffs, total.crashes, total.holderKilled, total.ownerKilled, withDups)
}

type simCaseStats struct {
	crashes, dups, handOffs, holderKilled, ownerKilled int
}

func simHandOffCase(t *testing.T, seed uint64) (stats simCaseStats) {
	rng := rand.New(rand.NewPCG(seed, 2026))
	var latMu sync.Mutex
	latRng := rand.New(rand.NewPCG(seed, 7))
	shards := 4 + rng.IntN(40)
	s := newSim(t, shards)
	s.store.latency = func() time.Duration {
		latMu.Lock()
		defer latMu.Unlock()
		return time.Millisecond + time.Duration(latRng.Int64N(int64(20*time.Millisecond)))
	}
	st := newSimStream()
	var alive []*simConsumer
	crashes := 0
	crash := func(c *simConsumer) {
		c.crash()
		crashes++
		if c.midOutgoing {
			stats.holderKilled++
		}
		if c.midIncoming {
			stats.ownerKilled++
		}
	}
	next := 0
	add := func() {
		alive = append(alive, s.addConsumer(fmt.Sprintf("w%03d-%d", rng.IntN(1000), next), st, Config{}))
		next++
	}
	remove := func(i int) *simConsumer {
		c := alive[i]
		alive = slices.Delete(alive, i, i+1)
		return c
	}
	for range 1 + rng.IntN(3) {
		add()
		time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Second))))
	}
	time.Sleep(20 * time.Second)
	start := time.Now()
	for range 4 + rng.IntN(5) {
		switch op := rng.IntN(10); {
		case op < 4 || len(alive) < 2: // a scale-out, and maybe a crash mid-hand-off
			for range 1 + rng.IntN(3) {
				add()
			}
			if rng.IntN(2) == 0 && len(alive) > 2 {
				// In the middle of the hand-offs: a worker at random, the
				// most loaded (a holder), or the last to join (a new owner).
				// Newcomers ask a taker cycle after they start; the
				// holders learn of it within a renewal interval.
				time.Sleep(DefaultFailoverTime/2 + time.Duration(rng.Int64N(int64(DefaultFailoverTime/3))))
				victim := rng.IntN(len(alive))
				switch rng.IntN(3) {
				case 1:
					for i, c := range alive {
						if len(c.w.m.Held()) > len(alive[victim].w.m.Held()) {
							victim = i
						}
					}
				case 2:
					victim = len(alive) - 1
				}
				crash(remove(victim))
			}
		case op < 7:
			remove(rng.IntN(len(alive))).leave()
		default:
			crash(remove(rng.IntN(len(alive))))
		}
		time.Sleep(time.Duration(rng.Int64N(int64(15 * time.Second))))
	}
	time.Sleep(3 * DefaultFailoverTime)

	keys := shardKeys(shards)
	total, unexplained, missing := st.totals(keys, st.arrived()-int64(2*time.Second/recordEvery))
	require.Zero(t, unexplained, "seed %d: duplicates on shards without a real loss", seed)
	require.Empty(t, missing, "seed %d: a record was never delivered", seed)
	if crashes == 0 {
		require.Zero(t, total, "seed %d", seed)
		for _, c := range alive {
			require.Zero(t, c.lostCount(), "seed %d: %s lost a lease without any crash", seed, c.w.id)
		}
	}
	checkpointsMonotonic(t, s.store)
	counts := s.owners()
	var ids []string
	for _, c := range alive {
		ids = append(ids, c.w.id)
	}
	d, free := spread(counts, ids)
	require.LessOrEqual(t, d, 1, "seed %d: %v", seed, counts)
	require.Zero(t, free, "seed %d: %v", seed, counts)
	held := 0
	for _, c := range alive {
		held += len(c.w.m.Held())
	}
	require.Equal(t, shards, held, "seed %d: every lease held by a live worker", seed)
	_, _, history := s.store.snapshot()
	for _, c := range history {
		if c.handOff && !c.at.Before(start) {
			stats.handOffs++
		}
	}
	stats.crashes, stats.dups = crashes, total
	return stats
}
