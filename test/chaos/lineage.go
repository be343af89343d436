package chaos

import (
	"context"
	"math/big"
	"time"
)

// lineageCandidate is a shard P to split and its neighbour A, to merge with
// P's child next to it.
type lineageCandidate struct {
	a, p  shardRange
	pLeft bool // P's range is below A's
}

// b returns the half of P that its split gives to B, the child next to A.
func (c lineageCandidate) b() (start, end *big.Int) {
	mid := splitPoint(c.p)
	if c.pLeft {
		return mid, c.p.end
	}
	return c.p.start, new(big.Int).Sub(mid, big.NewInt(1))
}

// lineage makes this lineage while the consumer is behind on P: P splits
// into B and X, then A and B merge into C. First it pauses every worker but
// A's owner (zombies, resumed e.For later), so that P is unfinished when C
// appears, while A's owner finishes A and can take C at once: C must still
// wait for B, which cannot start before P ends. B's half of P is chosen to
// hold some of the producer's keys, so that records written to B before the
// merge come before C's for the same keys.
func (r *Run) lineage(ctx context.Context, shards []shardRange, e Event) error {
	c, ok, err := r.lineageCandidate(ctx, shards, e.Pick)
	if err != nil || !ok {
		r.skip(e.Action)
		return err
	}
	owners, err := r.owners(ctx)
	if err != nil {
		return err
	}
	pausedAt := time.Now()
	var zombies []*workerProc
	for _, w := range r.workers {
		if w.id != owners[c.a.id] && w.pause() {
			r.logf("lineage: paused %s#%d for %v", w.id, w.incarnation(), e.For)
			zombies = append(zombies, w)
		}
	}
	_, err = r.lineageSteps(ctx, c)
	sleepCtx(ctx, time.Until(pausedAt.Add(e.For)))
	for _, w := range zombies {
		if w.resume() {
			r.logf("lineage: resumed %s#%d", w.id, w.incarnation())
		}
	}
	return err
}

// lineageCandidate picks A and P among the adjacent pairs, from the picked
// one on: the first whose B would hold one of the producer's keys and whose
// A is held by a running worker; failing that, the first whose B holds a key.
func (r *Run) lineageCandidate(ctx context.Context, shards []shardRange, pick float64) (lineageCandidate, bool, error) {
	var cands []lineageCandidate
	for _, pr := range adjacentPairs(shards) {
		cands = append(cands, lineageCandidate{a: pr[0], p: pr[1]}, lineageCandidate{a: pr[1], p: pr[0], pLeft: true})
	}
	owners, err := r.owners(ctx)
	if err != nil || len(cands) == 0 {
		return lineageCandidate{}, false, err
	}
	first := pickIndex(pick, len(cands))
	var fallback *lineageCandidate
	for i := range cands {
		c := cands[(first+i)%len(cands)]
		if !r.producer.hasKeyIn(c.b()) {
			continue
		}
		if w := r.worker(owners[c.a.id]); w != nil && w.is(stateRunning) {
			return c, true, nil
		}
		if fallback == nil {
			fallback = &c
		}
	}
	if fallback == nil {
		return lineageCandidate{}, false, nil
	}
	return *fallback, true, nil
}

// lineageSteps splits P, lets records flow into B, merges A and B, and
// notes whether P was still unfinished then. It is quick: P's lease may be
// taken over from its paused owner as soon as FailoverTime after that
// owner's last renewal.
func (r *Run) lineageSteps(ctx context.Context, c lineageCandidate) (shardRange, error) {
	children, err := r.split(ctx, c.p)
	if err != nil {
		return shardRange{}, err
	}
	b, x := children[0], children[1]
	lo, hi := c.a, b
	if c.pLeft {
		b, x = children[1], children[0]
		lo, hi = b, c.a
	}
	sleepCtx(ctx, 500*time.Millisecond) // records for B: a couple of producer rounds
	merged, err := r.merge(ctx, lo, hi)
	if err != nil {
		return shardRange{}, err
	}
	finished, err := r.finished(ctx, c.p.id)
	if err != nil {
		return shardRange{}, err
	}
	r.logf("lineage: P=%s split into B=%s and X=%s, then A=%s and B merged into C=%s; P unfinished at the merge: %v",
		c.p.id, b.id, x.id, c.a.id, merged.id, !finished)
	if !finished {
		r.mu.Lock()
		r.res.LineageBehind++
		r.mu.Unlock()
	}
	return merged, nil
}

// owners returns the holder of each lease, from the table.
func (r *Run) owners(ctx context.Context) (map[string]string, error) {
	leases, err := r.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range leases {
		out[l.Key] = l.Holder()
	}
	return out, nil
}

// finished reports whether the shard's lease is at SHARD_END.
func (r *Run) finished(ctx context.Context, shard string) (bool, error) {
	leases, err := r.store.List(ctx)
	if err != nil {
		return false, err
	}
	for _, l := range leases {
		if l.Key == shard {
			return l.Finished(), nil
		}
	}
	return false, nil
}

func (r *Run) worker(id string) *workerProc {
	for _, w := range r.workers {
		if w.id == id {
			return w
		}
	}
	return nil
}
