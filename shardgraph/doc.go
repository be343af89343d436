// Package shardgraph models the lineage of a stream's shards across splits
// and merges, and answers which shards may be processed now: a child only
// after all of its parents are done or have been trimmed from the stream.
//
// Resharding is where Kinesis consumers lose or reorder records: a child read
// before its parent reorders the records of a key, a merge's second parent
// forgotten loses them, and a child waiting for a parent that retention has
// already removed waits forever. This package is the one place that decides,
// and it is pure: no I/O, no clock, no locks.
//
// # Use
//
//	shards, err := shardgraph.FromKinesis(listed) // from ListShards, all pages
//	g := shardgraph.New(shards)
//	if err := g.Coverage(); errors.Is(err, shardgraph.ErrGap) {
//		// listed mid-reshard: list again
//	}
//	start := g.StartShards(shardgraph.TrimHorizon) // a new application
//	ready := g.Ready(func(id string) bool { return finished[id] })
//
// # Decisions
//
//   - A parent missing from the shards was trimmed by retention: its children
//     do not wait for it, and it is not an error.
//   - A shard listed as its own parent, and a parent listed twice, are
//     ignored.
//   - Repeated shard ids: New keeps the last; NewChecked refuses them with
//     ErrDuplicateShard (and refuses malformed shards and cycles too).
//   - No shards at all: Coverage returns ErrNoShards, which also matches
//     ErrGap, since no key is covered.
//   - Every list is sorted by shard id, so results and logs are stable.
//     Kinesis ids are zero-padded ("shardId-000000000012"), so lexical order
//     is creation order.
//
// # Concurrency
//
// A Graph is immutable after New: any number of goroutines may call its
// methods at once. A new listing of the stream means a new Graph.
package shardgraph
