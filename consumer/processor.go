package consumer

import (
	"context"
	"time"

	"github.com/gokcl/kcl/checkpoint"
)

// RecordProcessor processes the records of one shard. NewProcessor in Config
// makes one per shard lease this worker acquires; it is used by one goroutine
// at a time and dropped when the lease ends.
//
// ProcessRecords is called with the shard's records in order. When it returns
// nil the batch is done and, unless Config.ManualCheckpoint is set, the
// consumer checkpoints after its last record. When it returns an error the
// same batch is delivered again, after a backoff, with Batch.Attempt
// incremented: a batch is never skipped. ctx is cancelled when the lease is
// lost or the consumer stops for good; a graceful shutdown lets the call in
// flight finish (within Config.ShutdownTimeout).
//
// A processor may implement the optional ShardInitializer, ShardEnder,
// LeaseLoser and ShutdownNotifiee interfaces; the consumer finds them by type
// assertion.
type RecordProcessor interface {
	ProcessRecords(ctx context.Context, batch *Batch) error
}

// RecordProcessorFunc adapts a function to RecordProcessor.
type RecordProcessorFunc func(ctx context.Context, batch *Batch) error

// ProcessRecords calls f.
func (f RecordProcessorFunc) ProcessRecords(ctx context.Context, batch *Batch) error {
	return f(ctx, batch)
}

// ShardInitializer is implemented by processors that want to know where a
// shard starts before its first batch. An error is retried with backoff.
type ShardInitializer interface {
	InitializeShard(ctx context.Context, shard ShardInfo) error
}

// ShardEnder is implemented by processors that want to know when a shard has
// been processed to its end (after a split or a merge). It is called after
// the last batch and before the SHARD_END checkpoint that lets the shard's
// children start; an error is retried with backoff. It is never called once
// the lease is lost (LeaseLost is, instead), even if that happened while the
// last batch was processed.
type ShardEnder interface {
	ShardEnded(ctx context.Context, shard ShardInfo) error
}

// LeaseLoser is implemented by processors that want to know that the lease
// was lost: it could not be renewed in time, or another worker took the
// shard without this one's release (after the lease expired, or when a
// hand-off was not completed within HandOffTimeout). From then on
// checkpoints fail with ErrLeaseLost; records after the last checkpoint will
// be delivered again to the new owner. A graceful hand-off is not a loss:
// ShutdownRequested reports it.
type LeaseLoser interface {
	LeaseLost(ctx context.Context, shard ShardInfo)
}

// ShutdownNotifiee is implemented by processors that want a last chance to
// checkpoint before the lease leaves this worker gracefully: when the
// consumer shuts down, and when another worker asked for the lease to even
// the load (a hand-off, which then completes within HandOffTimeout). It is
// called after the batch in flight has finished and before the final
// checkpoint and the release of the lease; the next owner starts after that
// checkpoint, so nothing is processed twice.
type ShutdownNotifiee interface {
	ShutdownRequested(ctx context.Context, shard ShardInfo) error
}

// ShardInfo describes a shard handed to a processor.
type ShardInfo struct {
	// ShardID is the shard's id, such as "shardId-000000000003".
	ShardID string
	// Stream is the stream the shard belongs to. In a multi-stream consumer
	// shard ids repeat from stream to stream: the shard is the pair.
	Stream StreamInfo
	// ParentShardIDs are the shard's parents (0 to 2), all processed to
	// their end before this shard's first record.
	ParentShardIDs []string
	// Checkpoint is where processing of this shard started: after this
	// position, or at it for the TrimHorizon, Latest and AtTimestamp
	// sentinels.
	Checkpoint checkpoint.Position
}

// Record is one user record: a Kinesis record, or one user record packed in
// a KPL aggregated record.
type Record struct {
	// Data is the record's payload. It may alias the buffer of the Kinesis
	// response (shared by the user records of one aggregate); it is never
	// reused by the consumer, so it may be retained.
	Data []byte
	// PartitionKey and ExplicitHashKey are the user record's keys; for a
	// user record of an aggregate, the keys it was added with.
	PartitionKey, ExplicitHashKey string
	// SequenceNumber is the Kinesis record's sequence number, shared by all
	// the user records of one aggregate.
	SequenceNumber string
	// SubSequenceNumber is the user record's index in its aggregate, 0 for a
	// record that was not aggregated.
	SubSequenceNumber uint64
	// Aggregated reports whether the record came out of a KPL aggregate.
	Aggregated bool
	// ApproximateArrivalTimestamp is when Kinesis accepted the record.
	ApproximateArrivalTimestamp time.Time
}

// Position returns the record's position in its shard, for checkpoints.
func (r *Record) Position() checkpoint.Position {
	return checkpoint.At(r.SequenceNumber, r.SubSequenceNumber)
}
