package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// observation is what this worker knows of a lease's liveness: the counter
// it last read and when it first read it, on this worker's monotonic clock.
// Expiry is judged from these alone, never from a time stored in the table
// or read on another host.
type observation struct {
	counter   int64
	firstSeen time.Time // the end of the first scan that read counter
	planned   bool      // available in a full plan of this worker, at counter
	scan      uint64    // the number of the last scan that listed the lease
	malformed bool      // its row could not be read, and that was logged
}

// heldState is what a scan needs to know of a lease in Manager.held.
type heldState struct {
	gone       bool // dropped while a write is in flight: neither held nor takeable
	finished   bool
	handingOff bool // this worker knows another asked for it
}

// runTaker scans the table and takes what the plan gives this worker, at
// once and then each TakerInterval, or sooner when a watched lease would
// expire, until ctx is done.
//
// Scanning at expiry times is what bounds failover: a worker dies at D; a
// survivor first reads its last counter at a scan S ≤ D + TakerInterval and
// wakes at S + FailoverTime, when the lease has expired in its eyes. With
// scans every TakerInterval only, it would notice up to one more interval
// later.
func (m *Manager) runTaker(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.rescan:
		}
		timer.Reset(time.Until(m.takerCycle(ctx)))
	}
}

// takerCycle runs one scan and its takes, and returns when to scan next.
func (m *Manager) takerCycle(ctx context.Context) time.Time {
	start := time.Now()
	v, err := m.scan(ctx)
	scanned := time.Since(start)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("lease table scan failed", slog.Any("error", err))
			m.noteTakerCycle(start, scanned, nil, plan{}, 0, 0, err)
		}
		return time.Now().Add(min(m.cfg.TakerInterval, m.cfg.RenewInterval))
	}
	m.afterScan(ctx, v)
	if !m.stopTaking.Load() {
		lim := limits{maxLeases: m.cfg.MaxLeasesForWorker, maxSteal: m.cfg.MaxLeasesToStealAtOnce, noSteal: m.settling()}
		p := planAcquisitions(v, lim, shuffleLeases)
		m.logPlan(v, p)
		if !p.probe {
			m.markPlanned(v.available)
		}
		taken, asked := m.carryOut(ctx, p)
		m.noteTakerCycle(start, scanned, v, p, taken, asked, nil)
		if p.probe && taken+asked == 0 && ctx.Err() == nil {
			return time.Now().Add(probeRetry(m.cfg.TakerInterval))
		}
	} else {
		m.noteTakerCycle(start, scanned, v, plan{}, 0, 0, nil)
	}
	m.scanMu.Lock()
	defer m.scanMu.Unlock()
	return m.wakeAt
}

// probeRetry is how long a worker whose probe failed waits before scanning
// again: 5–10% of TakerInterval, at random. Its probe lost every race to
// other newcomers probing at the same moment; it must become visible before
// they plan in full, one TakerInterval after their probes, or they would
// plan without it and give it leases only on a later cycle, moving some
// twice. The next scan sees the winners, and gives it more candidates.
func probeRetry(interval time.Duration) time.Duration {
	return interval/20 + rand.N(interval/20+1)
}

// scan lists the table, updates the observations and the table Leases
// returns, and returns the view the planner works on.
func (m *Manager) scan(ctx context.Context) (*view, error) {
	m.scanMu.Lock()
	defer m.scanMu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, m.cfg.TakerInterval)
	leases, workers, err := m.list(lctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("lease: list the lease table: %w", err)
	}
	// The time after the read: the writes this scan saw started before it,
	// so no holder's lastRenewed is later than the firstSeen recorded here.
	now := time.Now()
	if !slices.IsSortedFunc(leases, func(a, b Lease) int { return strings.Compare(a.Key, b.Key) }) {
		sortByKey(leases)
	}
	held, waiting := m.heldStates()
	v := m.classify(leases, held, waiting, now)
	v.rows = len(leases)
	if m.wstore != nil {
		v.present, v.dead = m.observeWorkers(workers, now)
		v.visible = m.announced.Load()
	}
	m.mu.Lock()
	m.table, m.scannedAt = leases, now
	m.mu.Unlock()
	m.log.Debug("scanned lease table", slog.Int("leases", len(leases)), slog.Int("unfinished", v.total), slog.Int("held", v.mine))
	return v, nil
}

// list reads the table: the leases, and the workers' rows on a WorkerStore.
func (m *Manager) list(ctx context.Context) ([]Lease, []Worker, error) {
	if m.wstore != nil {
		return m.wstore.ListAll(ctx)
	}
	leases, err := m.store.List(ctx)
	return leases, nil, err
}

// heldStates returns the state of every entry of Manager.held, and the keys
// of the hand-offs this worker waits for.
func (m *Manager) heldStates() (map[string]heldState, map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]heldState, len(m.held))
	for k, h := range m.held {
		out[k] = heldState{gone: h.gone, finished: h.lease.Finished(), handingOff: h.lease.CheckpointOwner == m.cfg.WorkerID}
	}
	waiting := make(map[string]bool, len(m.incoming))
	for k := range m.incoming {
		waiting[k] = true
	}
	return out, waiting
}

// afterScan acts on what a scan found besides the plan: it renews at once
// the held leases that another worker asked for (the refused renewal tells
// this worker, sooner than its next round would), waits for the hand-offs
// to this worker that it did not ask for itself (asked before a restart, or
// by an operator), and deletes dead workers' rows.
func (m *Manager) afterScan(ctx context.Context, v *view) {
	var asked []*heldLease
	m.mu.Lock()
	for _, key := range v.asked {
		if h := m.held[key]; h != nil && !h.gone {
			asked = append(asked, h)
		}
	}
	for _, l := range v.handedHere {
		if m.incoming[l.Key] == nil && m.held[l.Key] == nil {
			m.incoming[l.Key] = &incoming{lease: *l, since: time.Now()}
			m.wakeHandOffs()
		}
	}
	m.mu.Unlock()
	parallel(m, asked, func(h *heldLease) { m.renew(ctx, h, true) })
	if len(v.dead) > 0 {
		m.deleteDead(ctx, v.dead)
	}
}

// classify updates the observations with leases read at now, sets wakeAt,
// and sorts the unfinished leases into this worker's, others' live ones and
// available ones. waiting holds the keys of hand-offs to this worker not yet
// taken. The caller holds scanMu.
//
// A lease being handed off counts for its new owner (Owner) everywhere,
// this worker included when it is the holder: the plan treats a hand-off as
// a move already made, as it treats a take.
func (m *Manager) classify(leases []Lease, held map[string]heldState, waiting map[string]bool, now time.Time) *view {
	v := &view{me: m.cfg.WorkerID, lingering: make(map[string]bool), owned: make(map[string][]*Lease)}
	m.wakeAt = now.Add(m.cfg.TakerInterval)
	m.scans++
	for i := range leases {
		l := &leases[i]
		o := m.observe(l, now)
		if l.Malformed != nil {
			// Neither takeable nor countable: skip it, and say so once.
			if !o.malformed {
				o.malformed = true
				m.log.Warn("skipping a lease row that cannot be read; repair it", slog.String("shard", l.Key), slog.Any("error", l.Malformed))
			}
			continue
		}
		st, isHeld := held[l.Key]
		if (isHeld && st.finished) || (!isHeld && l.Finished()) {
			continue
		}
		if !isHeld && m.cfg.Accept != nil && !m.cfg.Accept(*l) {
			continue // another stream's, or another mode's: not this worker's to count
		}
		v.total++
		live := now.Sub(o.firstSeen) < m.cfg.FailoverTime
		switch {
		case isHeld && l.HandOffPending() && l.CheckpointOwner == v.me:
			v.owned[l.Owner] = append(v.owned[l.Owner], l)
			if !st.handingOff && !st.gone {
				v.asked = append(v.asked, l.Key)
			}
		case isHeld:
			if !st.gone {
				v.mine++
			}
		case l.Owner == v.me && live && (l.HandOffPending() || waiting[l.Key]):
			// Handed to this worker: the hand-off loop takes it once its
			// holder releases it.
			v.mine++
			if l.HandOffPending() && !waiting[l.Key] {
				v.handedHere = append(v.handedHere, l)
			}
		case l.Owner != "" && l.Owner != v.me && live:
			v.owned[l.Owner] = append(v.owned[l.Owner], l)
			m.wakeAt = minTime(m.wakeAt, o.firstSeen.Add(m.cfg.FailoverTime))
		default:
			if o.planned {
				v.lingering[l.Key] = true
			}
			v.available = append(v.available, l)
		}
	}
	for key, o := range m.seen {
		if o.scan != m.scans {
			delete(m.seen, key) // deleted from the table
		}
	}
	return v
}

// markPlanned records that a full plan (not a probe) handed out the
// available leases: if one is still available, at the same counter, on a
// later scan, the worker it was given to did not take it.
func (m *Manager) markPlanned(available []*Lease) {
	m.scanMu.Lock()
	defer m.scanMu.Unlock()
	for _, l := range available {
		if o := m.seen[l.Key]; o != nil && o.counter == l.Counter {
			o.planned = true
		}
	}
}

// observe updates and returns l's observation, resetting it if the counter
// changed. Observations are updated in place: a scan of thousands of leases,
// most of them renewed since the last, allocates nothing for them.
func (m *Manager) observe(l *Lease, now time.Time) *observation {
	o := m.seen[l.Key]
	switch {
	case o == nil:
		o = &observation{counter: l.Counter, firstSeen: now}
		m.seen[l.Key] = o
	case o.counter != l.Counter:
		*o = observation{counter: l.Counter, firstSeen: now}
	}
	o.scan = m.scans
	return o
}

// carryOut makes the plan's writes, at most writeParallelism at a time, and
// returns how many leases it took, and how many it asked their holders for:
// a steal is a hand-off on a HandOffStore, a take otherwise. A probe stops
// at its first success.
func (m *Manager) carryOut(ctx context.Context, p plan) (taken, asked int) {
	moves := make([]move, 0, len(p.take)+len(p.steal))
	for _, l := range p.take {
		moves = append(moves, move{l, false})
	}
	for _, l := range p.steal {
		moves = append(moves, move{l, true})
	}
	var nTaken, nAsked atomic.Int32
	do := func(mv move) bool {
		switch {
		case mv.steal && m.hstore != nil:
			return count(&nAsked, m.handOffOne(ctx, mv.l))
		case mv.steal:
			return count(&nTaken, m.takeOne(ctx, mv.l, acquireSteal, ""))
		}
		return count(&nTaken, m.takeOne(ctx, mv.l, acquireAvailable, ""))
	}
	if p.probe {
		for _, mv := range moves {
			if ctx.Err() != nil || do(mv) {
				break
			}
		}
	} else {
		parallel(m, moves, func(mv move) { do(mv) })
	}
	return int(nTaken.Load()), int(nAsked.Load())
}

// move is a lease a plan gives this worker; steal when it is another live
// worker's.
type move struct {
	l     Lease
	steal bool
}

// count adds one to n if ok, and returns ok.
func count(n *atomic.Int32, ok bool) bool {
	if ok {
		n.Add(1)
	}
	return ok
}

// takeOne takes l as observed, conditionally on its owner and counter, and
// starts holding it. ErrConflict means someone moved first: skip it. how
// and from (the holder of a lease handed to this worker) are for the
// hooks' event.
func (m *Manager) takeOne(ctx context.Context, l Lease, how acquisition, from string) bool {
	if m.stopTaking.Load() {
		return false // a plan under way when StopTaking came
	}
	started := time.Now()
	tctx, cancel := context.WithTimeout(ctx, m.cfg.RenewInterval)
	res, err := m.store.Take(tctx, l, m.cfg.WorkerID)
	cancel()
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrConflict) || ctx.Err() != nil {
			level = slog.LevelDebug // someone renewed, took or released it first
		}
		m.log.Log(ctx, level, "taking a lease failed", slog.String("shard", l.Key), slog.String("owner", l.Owner),
			slog.Int64("counter", l.Counter), slog.Any("error", err))
		return false
	}
	m.mu.Lock()
	m.addLocked(res, started, m.tookEvent(l, res, how, from))
	m.mu.Unlock()
	select {
	case m.heldAdded <- struct{}{}:
	default:
	}
	msg := "lease taken"
	if l.Owner != "" && l.Owner != m.cfg.WorkerID {
		msg = "lease taken from " + l.Owner
	}
	m.log.Info(msg, slog.String("shard", l.Key), slog.String("owner", l.Owner), slog.Int64("counter", res.Counter))
	return true
}

func (m *Manager) logPlan(v *view, p plan) {
	if len(p.take)+len(p.steal) == 0 {
		return
	}
	m.log.Debug("taker plan", slog.Int("unfinished", v.total), slog.Int("held", v.mine),
		slog.Int("available", len(v.available)), slog.Int("workers", len(v.loads())),
		slog.Int("take", len(p.take)), slog.Int("steal", len(p.steal)), slog.Bool("probe", p.probe))
}

func shuffleLeases(ls []*Lease) {
	rand.Shuffle(len(ls), func(i, j int) { ls[i], ls[j] = ls[j], ls[i] })
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
