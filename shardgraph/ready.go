package shardgraph

import "fmt"

// InitialPosition says where a brand-new application (one with no
// checkpoints) starts reading a stream.
type InitialPosition int

const (
	// Latest starts at the tip: only records written from now on. It is the
	// zero value, as in the Java KCL.
	Latest InitialPosition = iota

	// TrimHorizon starts at the oldest record still in the stream.
	TrimHorizon

	// AtTimestamp starts at a point in time. Lineage-wise it is TrimHorizon:
	// every shard is visited, and the reader skips records before the time.
	AtTimestamp
)

// String returns "LATEST", "TRIM_HORIZON" or "AT_TIMESTAMP", as Kinesis
// spells the matching iterator types.
func (p InitialPosition) String() string {
	switch p {
	case Latest:
		return "LATEST"
	case TrimHorizon:
		return "TRIM_HORIZON"
	case AtTimestamp:
		return "AT_TIMESTAMP"
	}
	return fmt.Sprintf("InitialPosition(%d)", int(p))
}

// Ready returns the shards that may be processed now: those not done whose
// every parent is done or no longer in the graph (trimmed by retention). A
// merge child waits for both of its parents; split children wait for their
// one parent. Draining the graph (calling Ready, processing what it returns
// to the end, marking it done, calling Ready again) visits every shard once,
// never a child before its parents, and so keeps each key's records in order.
//
// done is called exactly once per shard in the graph, sequentially, from the
// calling goroutine; a nil done means no shard is done. Ready takes time
// linear in the number of shards and parent links.
//
// Ready knows nothing of where the application started: after starting from
// StartShards(Latest), done must report the skipped ancestors (see Ancestors)
// as done, or Ready will offer them.
func (g *Graph) Ready(done func(shardID string) bool) []string {
	isDone := make([]bool, len(g.shards))
	if done != nil {
		for i := range g.shards {
			isDone[i] = done(g.shards[i].ID)
		}
	}
	var out []string
	for i := range g.shards {
		if !isDone[i] && allDone(g.parents[i], isDone) {
			out = append(out, g.shards[i].ID)
		}
	}
	return out
}

func allDone(positions []int, isDone []bool) bool {
	for _, p := range positions {
		if !isDone[p] {
			return false
		}
	}
	return true
}

// StartShards returns the shards a brand-new application starts from; their
// descendants follow through Ready.
//   - Latest: the open shards.
//   - TrimHorizon and AtTimestamp: the oldest shards still in the stream,
//     those with no parent in the graph.
//
// An unknown position returns nil.
func (g *Graph) StartShards(pos InitialPosition) []string {
	switch pos {
	case Latest:
		return g.Open()
	case TrimHorizon, AtTimestamp:
		return g.roots()
	}
	return nil
}

func (g *Graph) roots() []string {
	var out []string
	for i := range g.shards {
		if len(g.parents[i]) == 0 {
			out = append(out, g.shards[i].ID)
		}
	}
	return out
}
