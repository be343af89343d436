// Package shardgraph models the lineage of a stream's shards across splits
// and merges, and answers which shards may be processed now: a child only
// after all of its parents are done or have been trimmed from the stream.
package shardgraph
