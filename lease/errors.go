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

	// ErrLeaseNotFound reports a Get of a lease the table does not have.
	ErrLeaseNotFound = errors.New("lease: not found")

	// ErrInvalidLease reports a lease that cannot be written: no key, a
	// negative counter, an invalid checkpoint or pending checkpoint, an
	// empty or repeated shard id among its parents or children, or a
	// multi-stream lease whose stream, shard and key disagree.
	ErrInvalidLease = errors.New("lease: invalid")

	// ErrMalformedLease reports a lease row in the table that cannot be read:
	// a missing or unparsable counter or checkpoint, or an attribute of the
	// wrong type. The error names the table, the lease key and the attribute;
	// the row must be repaired by hand, since guessing a position could skip
	// or replay records.
	ErrMalformedLease = errors.New("lease: malformed lease row")

	// ErrTableSchema reports a lease table whose key schema is not the KCL's:
	// leaseKey, a string, as the only (hash) key.
	ErrTableSchema = errors.New("lease: table has another key schema")
)

// Errors of the configuration and of Run, shared with package consumer: its
// ErrInvalidConfig, ErrAlreadyRunning and ConfigError are these.
var (
	// ErrInvalidConfig reports a configuration that NewManager (or
	// consumer.New) refused; the error is a *ConfigError naming the field.
	ErrInvalidConfig = errors.New("gokcl: invalid config")

	// ErrAlreadyRunning reports a second call of Run (Manager.Run, or
	// consumer.Consumer.Run).
	ErrAlreadyRunning = errors.New("gokcl: Run called twice")
)

// ConfigError reports an invalid configuration field. It matches
// ErrInvalidConfig with errors.Is. consumer.ConfigError is the same type.
type ConfigError struct {
	// Field is the name of the field, such as "FailoverTime".
	Field string
	// Problem says what is wrong, with the value found.
	Problem string
}

// Error returns "gokcl: invalid config: <Field>: <Problem>".
func (e *ConfigError) Error() string { return "gokcl: invalid config: " + e.Field + ": " + e.Problem }

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// RefusedError is a conditional write refused because the lease was not as
// the caller saw it; it wraps ErrLeaseLost or ErrConflict. Found is the
// lease as the store found it, when the store says (MemoryStore always,
// DynamoDB when it returns the old item), and nil otherwise or when the
// lease does not exist. The Manager uses it to recognise its own earlier
// write that succeeded although its answer was lost, and a hand-off asked
// of it (it reads the lease with HandOffStore.Get when Found is nil).
type RefusedError struct {
	Found *Lease
	Err   error
}

// Error implements error.
func (e *RefusedError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *RefusedError) Unwrap() error { return e.Err }
