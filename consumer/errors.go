package consumer

import (
	"errors"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

// Errors callers branch on with errors.Is.
var (
	// ErrInvalidConfig reports a Config that New refuses; the error is a
	// *ConfigError naming the field. It is lease.ErrInvalidConfig.
	ErrInvalidConfig = lease.ErrInvalidConfig

	// ErrLeaseLost reports a checkpoint refused because this worker no longer
	// holds the shard's lease. It is checkpoint.ErrLeaseLost.
	ErrLeaseLost = checkpoint.ErrLeaseLost

	// ErrCheckpointBehind reports a checkpoint before the stored one. It is
	// checkpoint.ErrCheckpointBehind.
	ErrCheckpointBehind = checkpoint.ErrCheckpointBehind

	// ErrCheckpointAhead reports a checkpoint at a record that has not been
	// delivered to the processor yet.
	ErrCheckpointAhead = errors.New("consumer: checkpoint past the last delivered record")

	// ErrAlreadyRunning reports a second call to Run. It is
	// lease.ErrAlreadyRunning.
	ErrAlreadyRunning = lease.ErrAlreadyRunning
)

// ConfigError reports an invalid Config field: Field names it, Problem says
// what is wrong. It matches ErrInvalidConfig with errors.Is. It is
// lease.ConfigError, so one errors.As finds the errors of both packages.
type ConfigError = lease.ConfigError
