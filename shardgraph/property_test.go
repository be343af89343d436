package shardgraph

import (
	"errors"
	"flag"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

var seedFlag = flag.Uint64("shardgraph.seed", 0, "seed of the property test (0: the fixed default)")

const (
	propertySteps = 10_000 // random operations in all
	historySteps  = 25     // operations before starting a new history
	maxOpenShards = 12
	defaultSeed   = 0x5eed_2024
)

// TestPropertyRandomHistories applies random splits, merges and trims, and
// after every one checks the Graph of the stream against the model.
func TestPropertyRandomHistories(t *testing.T) {
	seed := uint64(defaultSeed)
	if *seedFlag != 0 {
		seed = *seedFlag
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	var h *history
	var ops []operation
	for step := range propertySteps {
		if step%historySteps == 0 {
			h, ops = newHistory(1+rng.IntN(4)), nil
		}
		ops = append(ops, h.step(rng, maxOpenShards))
		if err := checkHistory(h, rng); err != nil {
			t.Fatalf("seed %d (rerun with -args -shardgraph.seed=%d), step %d: %v\noperations: %v\nshards:\n%s",
				seed, seed, step, err, ops, h.dump())
		}
	}
}

// view is the model's state at one step, precomputed for the checks.
type view struct {
	h        *history
	shards   []Shard             // sorted by id
	all      []string            // their ids
	index    map[string]int      // id -> position in shards
	parents  [][]int             // positions of the parents in the stream
	children map[string][]string // parent id -> children, sorted
}

func newView(h *history) *view {
	v := &view{h: h, shards: h.list(), index: make(map[string]int, len(h.shards)), children: h.children()}
	v.parents = make([][]int, len(v.shards))
	for i, s := range v.shards {
		v.all = append(v.all, s.ID)
		v.index[s.ID] = i
	}
	for i, s := range v.shards {
		for _, p := range s.ParentIDs {
			if j, ok := v.index[p]; ok {
				v.parents[i] = append(v.parents[i], j)
			}
		}
	}
	return v
}

// checkHistory checks every property of the Graph built from h.
func checkHistory(h *history, rng *rand.Rand) error {
	v := newView(h)
	shards := slices.Clone(v.shards)
	rng.Shuffle(len(shards), func(i, j int) { shards[i], shards[j] = shards[j], shards[i] })
	g := New(shards) // input order must not matter
	checks := []func() error{
		func() error { return checkStructure(v, g) },
		g.Coverage,
		func() error { return checkDrain(v, g, rng, rng.IntN(2) == 0) },
		func() error { return checkStartShards(v, g) },
		func() error { return checkLineage(g, v.all, rng) },
		func() error { return checkMissingShard(v, rng) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkStructure compares the graph's shards, parents and children with the
// model's.
func checkStructure(v *view, g *Graph) error {
	if g.Len() != len(v.shards) {
		return fmt.Errorf("Len() = %d, model has %d shards", g.Len(), len(v.shards))
	}
	var open, closed []string
	for _, s := range v.shards {
		if s.IsOpen() {
			open = append(open, s.ID)
		} else {
			closed = append(closed, s.ID)
		}
		if err := sameIDs(g.Parents(s.ID), slices.Sorted(slices.Values(s.ParentIDs)), "Parents(%s)", s.ID); err != nil {
			return err
		}
		if err := sameIDs(g.Children(s.ID), v.children[s.ID], "Children(%s)", s.ID); err != nil {
			return err
		}
	}
	for p, children := range v.children { // trimmed parents too
		if err := sameIDs(g.Children(p), children, "Children(%s)", p); err != nil {
			return err
		}
	}
	if err := sameIDs(g.Open(), open, "Open()"); err != nil {
		return err
	}
	return sameIDs(g.Closed(), closed, "Closed()")
}

// checkDrain marks shards done as Ready offers them, one at a time in random
// order (oneByOne) or a whole wave at a time, and checks each answer of Ready against
// the model: exactly the shards not done whose parents in the stream are all
// done. At the end every shard must have been visited once.
func checkDrain(v *view, g *Graph, rng *rand.Rand, oneByOne bool) error {
	done, count := make([]bool, len(v.shards)), 0
	isDone := func(id string) bool { return done[v.index[id]] }
	for range len(v.shards) + 1 {
		ready := g.Ready(isDone)
		if err := sameIDs(ready, v.ready(done), "Ready() after %d done", count); err != nil {
			return err
		}
		if len(ready) == 0 {
			break
		}
		if oneByOne {
			i := rng.IntN(len(ready))
			ready = ready[i : i+1]
		}
		for _, id := range ready {
			done[v.index[id]] = true
			count++
		}
	}
	if count != len(v.shards) {
		return fmt.Errorf("draining with Ready stopped after %d of %d shards", count, len(v.shards))
	}
	return nil
}

// ready is the model's answer: shards not done whose parents still in the
// stream are all done.
func (v *view) ready(done []bool) []string {
	var out []string
	for i, s := range v.shards {
		if !done[i] && !slices.ContainsFunc(v.parents[i], func(p int) bool { return !done[p] }) {
			out = append(out, s.ID)
		}
	}
	return out
}

// checkStartShards checks that starting from the tip covers every key, and
// that starting from the horizon reaches every shard.
func checkStartShards(v *view, g *Graph) error {
	latest := withDescendants(g, g.StartShards(Latest))
	var ranges []*Shard
	for _, id := range latest {
		ranges = append(ranges, v.h.shards[id])
	}
	if err := covers(ranges); err != nil {
		return fmt.Errorf("StartShards(Latest) and descendants %v: %w", latest, err)
	}
	start := g.StartShards(TrimHorizon)
	for _, id := range start {
		if slices.ContainsFunc(v.h.shards[id].ParentIDs, v.h.present) {
			return fmt.Errorf("StartShards(TrimHorizon) returned %s, whose parent is in the stream", id)
		}
	}
	if err := sameIDs(g.StartShards(AtTimestamp), start, "StartShards(AtTimestamp)"); err != nil {
		return err
	}
	return sameIDs(withDescendants(g, start), v.all, "StartShards(TrimHorizon) and descendants")
}

func withDescendants(g *Graph, ids []string) []string {
	out := slices.Clone(ids)
	for _, id := range ids {
		out = append(out, g.Descendants(id)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// covers checks that the ranges, overlapping or not, cover every key.
func covers(shards []*Shard) error {
	shards = slices.Clone(shards)
	slices.SortFunc(shards, func(a, b *Shard) int { return a.HashKeyStart.Cmp(b.HashKeyStart) })
	next := new(big.Int)
	for _, s := range shards {
		if s.HashKeyStart.Cmp(next) > 0 {
			return fmt.Errorf("key %v not covered", next)
		}
		if end := new(big.Int).Add(s.HashKeyEnd, big.NewInt(1)); end.Cmp(next) > 0 {
			next = end
		}
	}
	if next.Cmp(maxHashKey) <= 0 {
		return fmt.Errorf("key %v not covered", next)
	}
	return nil
}

// checkLineage checks, for a random shard x, that Descendants(x) is its
// children and their descendants, that Ancestors(x) is its parents in the
// graph and their ancestors, and that each side sees the other.
func checkLineage(g *Graph, all []string, rng *rand.Rand) error {
	x := all[rng.IntN(len(all))]
	var wantDesc, wantAnc []string
	for _, c := range g.Children(x) {
		wantDesc = append(append(wantDesc, c), g.Descendants(c)...)
	}
	for _, p := range g.Parents(x) {
		if _, ok := g.Shard(p); ok {
			wantAnc = append(append(wantAnc, p), g.Ancestors(p)...)
		}
	}
	desc, anc := g.Descendants(x), g.Ancestors(x)
	if err := sameIDs(desc, sortedSet(wantDesc), "Descendants(%s)", x); err != nil {
		return err
	}
	if err := sameIDs(anc, sortedSet(wantAnc), "Ancestors(%s)", x); err != nil {
		return err
	}
	for _, d := range desc {
		if !slices.Contains(g.Ancestors(d), x) {
			return fmt.Errorf("%s is a descendant of %s, which is not among its ancestors", d, x)
		}
	}
	return nil
}

func sortedSet(ids []string) []string {
	slices.Sort(ids)
	return slices.Compact(ids)
}

// checkMissingShard drops a random open shard from the listing, as a listing
// taken mid-reshard might, and checks that Coverage reports exactly its keys
// as the gap, between its neighbours.
func checkMissingShard(v *view, rng *rand.Rand) error {
	h := v.h
	i := rng.IntN(len(h.open))
	missing := h.shards[h.open[i]]
	shards := slices.DeleteFunc(slices.Clone(v.shards), func(s Shard) bool { return s.ID == missing.ID })
	err := New(shards).Coverage()
	var ce *CoverageError
	if !errors.As(err, &ce) || !errors.Is(err, ErrGap) {
		return fmt.Errorf("without %s, Coverage() = %v, want a gap", missing.ID, err)
	}
	below, above := "", ""
	if i > 0 {
		below = h.open[i-1]
	}
	if i+1 < len(h.open) {
		above = h.open[i+1]
	}
	if ce.From.Cmp(missing.HashKeyStart) != 0 || ce.To.Cmp(missing.HashKeyEnd) != 0 || ce.Below != below || ce.Above != above {
		return fmt.Errorf("without %s (keys %v to %v, between %q and %q), Coverage() = %v",
			missing.ID, missing.HashKeyStart, missing.HashKeyEnd, below, above, err)
	}
	return nil
}

// sameIDs compares two lists of ids; the format and args name what was
// computed, and are formatted only on failure.
func sameIDs(got, want []string, format string, args ...any) error {
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s = %v, want %v", fmt.Sprintf(format, args...), got, want)
	}
	return nil
}
