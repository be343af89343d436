// Package consumer is gokcl's entry point: it consumes a Kinesis data stream
// with any number of cooperating workers.
//
// A Consumer discovers the stream's shards, shares them with the other workers
// of the same application through leases in a DynamoDB table, and runs one
// fetcher per owned shard. Each fetcher reads records in order, unpacks KPL
// aggregates, hands them to the user's RecordProcessor and checkpoints what was
// processed. Shards are followed across splits and merges: a child shard is
// processed only after all of its parents have been processed to their end.
//
// A Consumer may also consume several streams through one lease table
// (Config.Streams, or Config.DiscoverStreams for streams that come and go
// while it runs), in the Java KCL's multi-stream table format.
package consumer
