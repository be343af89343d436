package shardgraph

import (
	"errors"
	"fmt"
	"math/big"
)

// Sentinel errors. Errors returned by this package wrap one of them, so callers
// branch with errors.Is and read details with errors.As.
var (
	// ErrGap means part of the hash key space is covered by no open shard.
	// A ListShards taken in the middle of a reshard can show this; the caller
	// should list the shards again.
	ErrGap = errors.New("shardgraph: gap in the hash key space")

	// ErrOverlap means some hash keys are covered by more than one open shard.
	ErrOverlap = errors.New("shardgraph: overlapping hash key ranges")

	// ErrNoShards means the graph holds no shard at all. An error wrapping it
	// also matches ErrGap: the whole key space is uncovered.
	ErrNoShards = errors.New("shardgraph: no shards")

	// ErrInvalidShard means a shard's fields are missing or malformed.
	ErrInvalidShard = errors.New("shardgraph: invalid shard")

	// ErrDuplicateShard means two shards share an id (reported by NewChecked).
	ErrDuplicateShard = errors.New("shardgraph: duplicate shard id")

	// ErrCycle means shards are their own ancestors (reported by NewChecked).
	ErrCycle = errors.New("shardgraph: cycle in shard lineage")
)

// ShardError reports a shard whose fields are missing or malformed, or whose
// id is repeated. It wraps ErrInvalidShard or ErrDuplicateShard.
type ShardError struct {
	Err     error  // ErrInvalidShard or ErrDuplicateShard
	Index   int    // position of the shard in the input slice, or -1 if not known
	ShardID string // empty when the id itself is missing
	Field   string // the offending field, e.g. "HashKeyRange.StartingHashKey"
	Reason  string // what is wrong with it
}

// Error names the shard (or its index when it has no id), the field and the
// problem.
func (e *ShardError) Error() string {
	id := fmt.Sprintf("%q", e.ShardID)
	if e.ShardID == "" {
		id = "without id"
	}
	msg := fmt.Sprintf("%v: shard %s", e.Err, id)
	if e.Index >= 0 {
		msg += fmt.Sprintf(" at index %d", e.Index)
	}
	if e.Field != "" {
		msg += ": " + e.Field
	}
	return msg + ": " + e.Reason
}

// Unwrap returns the sentinel.
func (e *ShardError) Unwrap() error { return e.Err }

// CoverageError reports where the open shards fail to cover the hash key space
// exactly once. It wraps ErrGap, ErrOverlap or ErrNoShards.
type CoverageError struct {
	Err error // ErrGap, ErrOverlap or ErrNoShards

	// For a gap: the open shard ending just below it (empty when the gap
	// starts at key 0) and the one starting just above it (empty when the gap
	// reaches the top of the key space). For an overlap: the two shards.
	Below, Above string

	// The uncovered or doubly covered keys, inclusive.
	From, To *big.Int
}

// Error names the keys and the shards around them.
func (e *CoverageError) Error() string {
	keys := fmt.Sprintf("keys %v to %v", e.From, e.To)
	switch {
	case e.Err == ErrOverlap:
		return fmt.Sprintf("%v: %s covered by both %s and %s", e.Err, keys, e.Below, e.Above)
	case e.Below != "" && e.Above != "":
		return fmt.Sprintf("%v: %s covered by no open shard, between %s and %s", e.Err, keys, e.Below, e.Above)
	case e.Below != "":
		return fmt.Sprintf("%v: %s covered by no open shard, above %s", e.Err, keys, e.Below)
	case e.Above != "":
		return fmt.Sprintf("%v: %s covered by no open shard, below %s", e.Err, keys, e.Above)
	default:
		return fmt.Sprintf("%v: %s covered by no open shard", e.Err, keys)
	}
}

// Unwrap returns the sentinel; ErrNoShards comes with ErrGap.
func (e *CoverageError) Unwrap() []error {
	if e.Err == ErrNoShards {
		return []error{ErrNoShards, ErrGap}
	}
	return []error{e.Err}
}

// CycleError reports shards that are their own ancestors. It wraps ErrCycle.
type CycleError struct {
	ShardIDs []string // the shards on or below a cycle, sorted
}

// Error lists the shards that can never become ready.
func (e *CycleError) Error() string {
	return fmt.Sprintf("%v: shards %v never become ready", ErrCycle, e.ShardIDs)
}

// Unwrap returns ErrCycle.
func (e *CycleError) Unwrap() error { return ErrCycle }
