package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gokcl/kcl/checkpoint"
)

// Batch is the records of one GetRecords response, after deaggregation,
// handed to RecordProcessor.ProcessRecords. The consumer never reuses a
// Batch, its Records or their Data: a processor may keep them, for example
// to checkpoint with CheckpointAt once asynchronous work on them is done
// (from any goroutine, for as long as this worker holds the shard's lease).
type Batch struct {
	// ShardID is the shard the records come from.
	ShardID string
	// Stream is the stream the shard belongs to: in a multi-stream
	// consumer, shard ids repeat from stream to stream.
	Stream StreamInfo
	// Records are the user records, in shard order, never empty.
	Records []Record
	// MillisBehindLatest is how far the response was behind the newest
	// record of the shard, as Kinesis reported it.
	MillisBehindLatest int64
	// Attempt counts deliveries of this batch: 1 the first time, then one
	// more after each error returned by ProcessRecords.
	Attempt int

	cp *shardCheckpointer
}

// Checkpoint records that every record of the batch, and all before it in
// the shard, has been processed. It writes to the lease table at once.
// It returns an error wrapping ErrLeaseLost when this worker no longer holds
// the shard's lease.
func (b *Batch) Checkpoint(ctx context.Context) error {
	if len(b.Records) == 0 {
		return nil
	}
	return b.CheckpointAt(ctx, b.Records[len(b.Records)-1])
}

// CheckpointAt records that r, and every record before it in the shard, has
// been processed. r must have been delivered already (ErrCheckpointAhead
// otherwise) and not be before the stored checkpoint (ErrCheckpointBehind).
// It writes to the lease table at once.
func (b *Batch) CheckpointAt(ctx context.Context, r Record) error {
	if b.cp == nil {
		return errors.New("consumer: checkpoint on a Batch the consumer did not make")
	}
	return b.cp.checkpoint(ctx, r.Position())
}

// shardCheckpointer writes one shard's checkpoints through the lease
// manager. Processors may call it from any goroutine.
type shardCheckpointer struct {
	shardID string
	key     string // the lease key
	store   checkpoint.Store
	lease   context.Context // the worker's lease-scoped context

	mu        sync.Mutex
	delivered checkpoint.Position // the last user record handed to the processor
}

func (s *shardCheckpointer) setDelivered(p checkpoint.Position) {
	s.mu.Lock()
	s.delivered = p
	s.mu.Unlock()
}

func (s *shardCheckpointer) checkpoint(ctx context.Context, p checkpoint.Position) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("checkpoint shard %s: %w", s.shardID, err)
	}
	// Once this worker has lost the lease, the same process may take it
	// again at once for a new worker: refuse here, not only in the table.
	if errors.Is(context.Cause(s.lease), errLeaseLost) {
		return fmt.Errorf("checkpoint shard %s at %s: %w", s.shardID, p, ErrLeaseLost)
	}
	s.mu.Lock()
	delivered := s.delivered
	s.mu.Unlock()
	if delivered.SequenceNumber == "" || p.Compare(delivered) > 0 {
		return fmt.Errorf("checkpoint shard %s at %s: %w (last delivered %s)", s.shardID, p, ErrCheckpointAhead, delivered)
	}
	if err := s.store.Checkpoint(ctx, s.key, p); err != nil {
		return fmt.Errorf("checkpoint shard %s at %s: %w", s.shardID, p, err)
	}
	return nil
}
