package consumer

import (
	"errors"

	"github.com/gokcl/kcl/checkpoint"
)

// Errors callers branch on with errors.Is.
var (
	// ErrInvalidConfig reports a Config that New refuses; the message names
	// the field.
	ErrInvalidConfig = errors.New("consumer: invalid config")

	// ErrLeaseLost reports a checkpoint refused because this worker no longer
	// holds the shard's lease. It is checkpoint.ErrLeaseLost.
	ErrLeaseLost = checkpoint.ErrLeaseLost

	// ErrCheckpointBehind reports a checkpoint before the stored one. It is
	// checkpoint.ErrCheckpointBehind.
	ErrCheckpointBehind = checkpoint.ErrCheckpointBehind

	// ErrCheckpointAhead reports a checkpoint at a record that has not been
	// delivered to the processor yet.
	ErrCheckpointAhead = errors.New("consumer: checkpoint past the last delivered record")

	// ErrAlreadyRunning reports a second call to Run.
	ErrAlreadyRunning = errors.New("consumer: Run called twice")
)
