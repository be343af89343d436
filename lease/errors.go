package lease

import (
	"errors"

	"github.com/gokcl/kcl/checkpoint"
)

// Errors callers branch on with errors.Is.
var (
	// ErrLeaseLost reports a write refused because the lease is no longer held
	// as the caller believed (another owner, another counter, or deleted). It
	// is checkpoint.ErrLeaseLost, so either name matches.
	ErrLeaseLost = checkpoint.ErrLeaseLost

	// ErrCheckpointBehind is checkpoint.ErrCheckpointBehind: a checkpoint
	// before the stored one.
	ErrCheckpointBehind = checkpoint.ErrCheckpointBehind

	// ErrConflict reports a Take refused because the lease changed since it
	// was read: someone else renewed, took or released it first.
	ErrConflict = errors.New("lease: changed since read")

	// ErrLeaseExists reports a Create refused because the lease exists.
	ErrLeaseExists = errors.New("lease: already exists")

	// ErrInvalidLease reports a lease that cannot be written: no key, a
	// negative counter, or an invalid checkpoint.
	ErrInvalidLease = errors.New("lease: invalid")
)
