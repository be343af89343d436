package shardgraph

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// history is an in-memory model of a stream being resharded, written
// independently of Graph: the reference that the property test, the
// benchmarks and the integration test compare a Graph with.
type history struct {
	next   int               // number of the next shard id
	seq    int               // last sequence number handed out
	shards map[string]*Shard // shards still in the stream
	open   []string          // open shards, sorted by starting hash key
}

// newHistory models a stream created with n shards splitting the key space
// evenly.
func newHistory(n int) *history {
	h := &history{shards: make(map[string]*Shard)}
	space := new(big.Int).Add(maxHashKey, big.NewInt(1))
	for i := range n {
		start := new(big.Int).Div(new(big.Int).Mul(space, big.NewInt(int64(i))), big.NewInt(int64(n)))
		end := new(big.Int).Div(new(big.Int).Mul(space, big.NewInt(int64(i+1))), big.NewInt(int64(n)))
		h.add(nil, start, end.Sub(end, big.NewInt(1)))
	}
	return h
}

func (h *history) sortOpen() {
	slices.SortFunc(h.open, func(a, b string) int {
		return h.shards[a].HashKeyStart.Cmp(h.shards[b].HashKeyStart)
	})
}

func shardID(n int) string { return fmt.Sprintf("shardId-%012d", n) }

// add creates an open shard and returns its id.
func (h *history) add(parents []string, start, end *big.Int) string {
	id := shardID(h.next)
	h.next++
	h.seq++
	h.shards[id] = &Shard{ID: id, ParentIDs: parents, HashKeyStart: start, HashKeyEnd: end,
		StartingSequence: strconv.Itoa(h.seq)}
	h.open = append(h.open, id)
	h.sortOpen()
	return id
}

// close closes an open shard.
func (h *history) close(id string) {
	h.seq++
	h.shards[id].EndingSequence = strconv.Itoa(h.seq)
	h.open = slices.DeleteFunc(h.open, func(o string) bool { return o == id })
}

// split closes open shard id; its children start at its own start and at
// key, which must lie in (start, end].
func (h *history) split(id string, key *big.Int) (lower, upper string) {
	s := h.shards[id]
	h.close(id)
	lower = h.add([]string{id}, cloneInt(s.HashKeyStart), new(big.Int).Sub(key, big.NewInt(1)))
	upper = h.add([]string{id}, cloneInt(key), cloneInt(s.HashKeyEnd))
	return lower, upper
}

// merge closes open shard a and the open shard b adjacent to it, and returns
// their child. As in Kinesis, a is the parent and b the adjacent parent.
func (h *history) merge(a, b string) string {
	sa, sb := h.shards[a], h.shards[b]
	h.close(a)
	h.close(b)
	lo, hi := sa, sb
	if sb.HashKeyStart.Cmp(sa.HashKeyStart) < 0 {
		lo, hi = sb, sa
	}
	return h.add([]string{a, b}, cloneInt(lo.HashKeyStart), cloneInt(hi.HashKeyEnd))
}

// trim removes a shard, as retention does.
func (h *history) trim(id string) { delete(h.shards, id) }

// list returns the shards in the stream, sorted by id. They share their
// parents and hash keys with the model: callers must not modify them.
func (h *history) list() []Shard {
	out := make([]Shard, 0, len(h.shards))
	for _, s := range h.shards {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Shard) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ids returns the ids of the shards in the stream that satisfy keep, sorted.
func (h *history) ids(keep func(*Shard) bool) []string {
	var out []string
	for id, s := range h.shards {
		if keep(s) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// trimmable returns the closed shards none of whose parents is still in the
// stream: the oldest ones, which retention removes first.
func (h *history) trimmable() []string {
	return h.ids(func(s *Shard) bool {
		return !s.IsOpen() && !slices.ContainsFunc(s.ParentIDs, h.present)
	})
}

func (h *history) present(id string) bool { _, ok := h.shards[id]; return ok }

// children returns, for every shard id ever listed as a parent, its children.
func (h *history) children() map[string][]string {
	out := make(map[string][]string)
	for _, s := range h.shards {
		for _, p := range s.ParentIDs {
			out[p] = append(out[p], s.ID)
		}
	}
	for _, c := range out {
		slices.Sort(c)
	}
	return out
}

// operation records one step of a history, for failure messages.
type operation struct {
	kind   string   // "split", "merge" or "trim"
	shards []string // operands, then results
	key    *big.Int // where a split happened
}

func (o operation) String() string {
	if o.kind == "split" {
		return fmt.Sprintf("split %s at %v -> %v", o.shards[0], o.key, o.shards[1:])
	}
	return fmt.Sprintf("%s %v", o.kind, o.shards)
}

// step applies one random operation: a split, a merge of adjacent open
// shards, or a trim. maxOpen bounds the number of open shards.
func (h *history) step(rng *rand.Rand, maxOpen int) operation {
	for {
		switch r := rng.IntN(10); {
		case r < 4 && len(h.open) < maxOpen:
			if op, ok := h.randomSplit(rng); ok {
				return op
			}
		case r < 7 && len(h.open) > 1:
			i := rng.IntN(len(h.open) - 1)
			a, b := h.open[i], h.open[i+1]
			if rng.IntN(2) == 0 {
				a, b = b, a // either may be the parent
			}
			return operation{kind: "merge", shards: []string{a, b, h.merge(a, b)}}
		case r >= 7:
			if t := h.trimmable(); len(t) > 0 {
				id := t[rng.IntN(len(t))]
				h.trim(id)
				return operation{kind: "trim", shards: []string{id}}
			}
		}
	}
}

// randomSplit splits a random open shard with at least two keys.
func (h *history) randomSplit(rng *rand.Rand) (operation, bool) {
	id := h.open[rng.IntN(len(h.open))]
	s := h.shards[id]
	width := new(big.Int).Sub(s.HashKeyEnd, s.HashKeyStart) // keys - 1
	if width.Sign() == 0 {
		return operation{}, false
	}
	key := new(big.Int).Add(s.HashKeyStart, splitOffset(rng, width))
	lo, hi := h.split(id, key)
	return operation{kind: "split", shards: []string{id, lo, hi}, key: key}, true
}

// splitOffset picks an offset in [1, width]: often the middle (what
// UpdateShardCount does), sometimes an edge (one-key children), otherwise
// uniform.
func splitOffset(rng *rand.Rand, width *big.Int) *big.Int {
	switch rng.IntN(8) {
	case 0:
		return big.NewInt(1)
	case 1:
		return new(big.Int).Set(width)
	case 2, 3, 4:
		return new(big.Int).Add(new(big.Int).Rsh(width, 1), big.NewInt(1))
	}
	r := new(big.Int).SetUint64(rng.Uint64())
	r.Lsh(r, 64).Or(r, new(big.Int).SetUint64(rng.Uint64()))
	return r.Mod(r, width).Add(r, big.NewInt(1))
}

// dump lists the shards for a failure message.
func (h *history) dump() string {
	var b strings.Builder
	for _, s := range h.list() {
		fmt.Fprintf(&b, "  %s parents=%v keys=%v..%v ending=%q\n", s.ID, s.ParentIDs, s.HashKeyStart, s.HashKeyEnd, s.EndingSequence)
	}
	return b.String()
}
