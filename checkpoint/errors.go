package checkpoint

import "errors"

// Errors callers branch on with errors.Is.
var (
	// ErrInvalid reports a position that is neither a decimal sequence number
	// nor one of the sentinels.
	ErrInvalid = errors.New("checkpoint: invalid position")

	// ErrLeaseLost reports a checkpoint refused because this worker no longer
	// holds the shard's lease: another worker owns the shard now (or may soon),
	// so this worker must stop processing it. No checkpoint from a worker that
	// lost its lease is ever written.
	ErrLeaseLost = errors.New("checkpoint: lease lost")

	// ErrCheckpointBehind reports a checkpoint earlier than the one already
	// stored: checkpoints never move backwards.
	ErrCheckpointBehind = errors.New("checkpoint: behind the stored checkpoint")
)
