package checkpoint

import "context"

// Store persists the checkpoints of the shards this worker holds leases on.
// lease.Manager implements it on the lease table.
//
// Every write is conditional on the worker still holding the shard's lease;
// a refused write returns an error wrapping ErrLeaseLost. A position before
// the stored checkpoint returns ErrCheckpointBehind; writing the stored
// position again (ShardEnd included) succeeds without a write.
type Store interface {
	Checkpoint(ctx context.Context, shardID string, pos Position) error
}
