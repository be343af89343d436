package shardgraph

import (
	"slices"
	"strings"
)

// Graph is the lineage of a stream's shards: who split or merged into whom.
//
// A Graph is immutable after New and safe for concurrent use by any number of
// goroutines. It shares no memory with its input or with the values its
// methods return, so callers may modify both freely. Every list it returns is
// sorted by shard id (lexical order, which is numeric order for Kinesis's
// zero-padded ids), and is nil when empty.
type Graph struct {
	shards   []Shard          // deep copies, sorted by ID
	index    map[string]int   // ID -> position in shards
	parents  [][]int          // positions of the parents present in the graph
	children map[string][]int // parent ID (present or not) -> positions of its children, sorted
}

// New builds the graph of the given shards, in any order. It does not fail:
//   - a parent missing from the input was trimmed by retention, and its
//     children are roots of the graph (they do not wait for it);
//   - a shard listed as its own parent, a parent listed twice, and empty
//     parent ids are ignored;
//   - when several shards share an id, the last one wins;
//   - shards are not validated: Coverage reports open shards without hash
//     keys. Use NewChecked for input that did not come from FromKinesis.
func New(shards []Shard) *Graph {
	g := &Graph{index: make(map[string]int, len(shards))}
	g.shards = make([]Shard, 0, len(shards))
	c := newCopier(shards)
	for _, s := range shards {
		if i, ok := g.index[s.ID]; ok {
			g.shards[i] = c.shard(s)
			continue
		}
		g.index[s.ID] = len(g.shards)
		g.shards = append(g.shards, c.shard(s))
	}
	slices.SortFunc(g.shards, func(a, b Shard) int { return strings.Compare(a.ID, b.ID) })
	for i := range g.shards {
		g.shards[i].ParentIDs = cleanParents(g.shards[i])
		g.index[g.shards[i].ID] = i
	}
	g.link()
	return g
}

// NewChecked is New for untrusted input: it fails on a shard without an id or
// with a bad hash key range (*ShardError wrapping ErrInvalidShard), on a
// repeated id (*ShardError wrapping ErrDuplicateShard), and on a cycle in the
// lineage (*CycleError wrapping ErrCycle), which Kinesis never produces but
// which would leave shards waiting forever.
func NewChecked(shards []Shard) (*Graph, error) {
	seen := make(map[string]bool, len(shards))
	for i, s := range shards {
		if err := s.validate(i); err != nil {
			return nil, err
		}
		if seen[s.ID] {
			return nil, &ShardError{Err: ErrDuplicateShard, Index: i, ShardID: s.ID, Reason: "listed twice"}
		}
		seen[s.ID] = true
	}
	g := New(shards)
	if stuck := g.cycles(); stuck != nil {
		return nil, &CycleError{ShardIDs: stuck}
	}
	return g, nil
}

// cleanParents drops empty, repeated and self parent ids, keeping the order.
// It reuses s.ParentIDs, which New has already copied.
func cleanParents(s Shard) []string {
	out := s.ParentIDs[:0]
	for _, p := range s.ParentIDs {
		if p != "" && p != s.ID && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// link fills parents and children from the shards' parent ids.
func (g *Graph) link() {
	n := 0
	for i := range g.shards {
		n += len(g.shards[i].ParentIDs)
	}
	slab := make([]int, 0, n) // backs every parents[i]
	g.parents = make([][]int, len(g.shards))
	g.children = make(map[string][]int, len(g.shards))
	for i, s := range g.shards {
		first := len(slab)
		for _, p := range s.ParentIDs {
			g.children[p] = append(g.children[p], i) // i grows: stays sorted
			if j, ok := g.index[p]; ok {
				slab = append(slab, j)
			}
		}
		g.parents[i] = slab[first:len(slab):len(slab)]
	}
}

// cycles returns the shards that can never be reached from a root (those on
// or below a cycle), sorted, or nil.
func (g *Graph) cycles() []string {
	waiting := make([]int, len(g.shards)) // parents not yet visited
	var queue []int
	for i := range g.shards {
		if waiting[i] = len(g.parents[i]); waiting[i] == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, c := range g.children[g.shards[i].ID] {
			if waiting[c]--; waiting[c] == 0 {
				queue = append(queue, c)
			}
		}
	}
	var stuck []string
	for i, n := range waiting {
		if n > 0 {
			stuck = append(stuck, g.shards[i].ID)
		}
	}
	return stuck
}

// Len returns the number of shards in the graph.
func (g *Graph) Len() int { return len(g.shards) }

// Shard returns a copy of the shard with the given id, and whether it is in
// the graph.
func (g *Graph) Shard(id string) (Shard, bool) {
	i, ok := g.index[id]
	if !ok {
		return Shard{}, false
	}
	return g.shards[i].clone(), true
}

// Parents returns the parent ids of the shard (its parent and, after a merge,
// its adjacent parent), including parents no longer in the graph. It returns
// nil for a shard not in the graph.
func (g *Graph) Parents(id string) []string {
	i, ok := g.index[id]
	if !ok || len(g.shards[i].ParentIDs) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(g.shards[i].ParentIDs))
}

// Children returns the shards that list id as a parent: two after a split,
// one after a merge, none while the shard is open or after its stream was
// deleted. id itself need not be in the graph (it may have been trimmed).
func (g *Graph) Children(id string) []string {
	return g.ids(g.children[id])
}

// Open returns the open shards.
func (g *Graph) Open() []string {
	return g.filter(func(s *Shard) bool { return s.IsOpen() })
}

// Closed returns the closed shards.
func (g *Graph) Closed() []string {
	return g.filter(func(s *Shard) bool { return !s.IsOpen() })
}

// Descendants returns every shard descended from id through splits and
// merges: its children, their children, and so on. id itself need not be in
// the graph.
func (g *Graph) Descendants(id string) []string {
	return g.walk(id, func(i int) []int { return g.children[g.shards[i].ID] }, g.children[id])
}

// Ancestors returns every shard in the graph that id descends from: its
// parents, their parents, and so on. Trimmed ancestors are not included. It
// returns nil for a shard not in the graph.
func (g *Graph) Ancestors(id string) []string {
	i, ok := g.index[id]
	if !ok {
		return nil
	}
	return g.walk(id, func(i int) []int { return g.parents[i] }, g.parents[i])
}

// walk returns the ids reachable from start through next, except self.
func (g *Graph) walk(self string, next func(int) []int, start []int) []string {
	seen := make([]bool, len(g.shards))
	stack := slices.Clone(start)
	var out []int
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[i] {
			continue
		}
		seen[i] = true
		if g.shards[i].ID != self {
			out = append(out, i)
		}
		stack = append(stack, next(i)...)
	}
	slices.Sort(out) // positions are in id order
	return g.ids(out)
}

// ids maps positions (in increasing order) to shard ids.
func (g *Graph) ids(positions []int) []string {
	var out []string
	for _, i := range positions {
		out = append(out, g.shards[i].ID)
	}
	return out
}

func (g *Graph) filter(keep func(*Shard) bool) []string {
	var out []string
	for i := range g.shards {
		if keep(&g.shards[i]) {
			out = append(out, g.shards[i].ID)
		}
	}
	return out
}
