package consumer

import (
	"fmt"
	"regexp"
	"time"

	"github.com/gokcl/kcl/lease"
)

// DefaultStreamDiscoveryInterval is Config.StreamDiscoveryInterval's
// default, and DefaultFormerStreamsAfter FormerStreams.After's.
const (
	DefaultStreamDiscoveryInterval = time.Minute
	DefaultFormerStreamsAfter      = time.Hour
)

// minStreamDiscoveryInterval is the least StreamDiscoveryInterval, as
// ShardSyncInterval's.
const minStreamDiscoveryInterval = time.Millisecond

// multiStream reports whether cfg consumes several streams.
func (cfg *Config) multiStream() bool { return cfg.Streams != nil || cfg.DiscoverStreams != nil }

// checkStreams checks and defaults the multi-stream settings.
func (cfg *Config) checkStreams() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if !cfg.multiStream() {
		return nil
	}
	switch {
	case cfg.Streams != nil && cfg.DiscoverStreams != nil:
		return bad("Streams", "set Streams or DiscoverStreams, not both")
	case cfg.Streams != nil && len(cfg.Streams) == 0:
		return bad("Streams", "empty: name at least one stream")
	case cfg.FormerStreams.After < 0:
		return bad("FormerStreams", "After must not be negative, got %v", cfg.FormerStreams.After)
	case cfg.FormerStreams.Delete > DeleteIfUndiscovered:
		return bad("FormerStreams", "unknown Delete %v", cfg.FormerStreams.Delete)
	}
	for i, s := range cfg.Streams {
		if err := s.validate(); err != nil {
			return bad("Streams", "[%d]: %v", i, err)
		}
	}
	if _, ok := cfg.Kinesis.(streamDescriber); !ok {
		return bad("Kinesis", "a multi-stream consumer needs DescribeStreamSummary, which %T does not have", cfg.Kinesis)
	}
	if cfg.StreamDiscoveryInterval == 0 {
		cfg.StreamDiscoveryInterval = DefaultStreamDiscoveryInterval
	}
	if cfg.StreamDiscoveryInterval < minStreamDiscoveryInterval {
		// As the other intervals: a tiny one would call DiscoverStreams
		// in a busy loop.
		return bad("StreamDiscoveryInterval", "%v is less than the minimum %v", cfg.StreamDiscoveryInterval, minStreamDiscoveryInterval)
	}
	if cfg.FormerStreams.After == 0 {
		cfg.FormerStreams.After = DefaultFormerStreamsAfter
	}
	return nil
}

// StreamConfig names one stream of a multi-stream consumer: an element of
// Config.Streams, or of what Config.DiscoverStreams returns.
type StreamConfig struct {
	// Name is the stream's name, in the account of the Kinesis client's
	// credentials. Set Name or ARN.
	Name string
	// ARN is the stream's ARN, for a stream of another account (in the
	// Kinesis client's region).
	ARN string
	// InitialPosition is where the application starts in this stream when
	// the lease table has no lease of it yet. The zero value means
	// Config.InitialPosition; Latest, TrimHorizon and AtTimestamp(t) set it
	// for this stream alone.
	InitialPosition InitialPosition
}

// key identifies the configuration among the others: its ARN, or its name.
func (s StreamConfig) key() string {
	if s.ARN != "" {
		return s.ARN
	}
	return s.Name
}

// String names the stream, for logs.
func (s StreamConfig) String() string { return s.key() }

var streamARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/[a-zA-Z0-9_.-]{1,128}$`)

// validate checks a stream configuration, for New (Streams) or for a
// discovery's result.
func (s StreamConfig) validate() error {
	switch {
	case s.Name == "" && s.ARN == "":
		return fmt.Errorf("set Name or ARN")
	case s.Name != "" && s.ARN != "":
		return fmt.Errorf("set Name or ARN, not both (%q, %q)", s.Name, s.ARN)
	case s.Name != "" && !streamRE.MatchString(s.Name):
		return fmt.Errorf("%q is not a valid stream name", s.Name)
	case s.ARN != "" && !streamARNRE.MatchString(s.ARN):
		return fmt.Errorf("%q is not a stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)", s.ARN)
	case s.InitialPosition.kind == initialAtTimestamp && s.InitialPosition.at.IsZero():
		return fmt.Errorf("%s: InitialPosition AtTimestamp with a zero time", s.key())
	}
	return nil
}

// StreamInfo identifies the stream a shard belongs to, for processors
// (ShardInfo.Stream, Batch.Stream).
type StreamInfo struct {
	// Name is the stream's name.
	Name string
	// ARN is the stream's ARN. In single-stream mode it is Config.StreamARN,
	// empty when the stream was named by StreamName.
	ARN string
	// ID is the stream's identity in a multi-stream lease table: its
	// account, name and creation time (see lease.StreamID). It is zero in
	// single-stream mode. A stream deleted and created again under the same
	// name has another ID, and its shards other leases.
	ID lease.StreamID
}

// String names the stream: its identifier in multi-stream mode, else its
// name or ARN.
func (s StreamInfo) String() string {
	switch {
	case !s.ID.IsZero():
		return s.ID.String()
	case s.Name != "":
		return s.Name
	}
	return s.ARN
}

// FormerStreams says what becomes of the leases of a former stream: one that
// a multi-stream consumer consumed, or that the lease table holds leases of,
// and that is no longer among the streams it consumes. The zero value keeps
// them.
//
// Whatever the policy, a former stream's workers stop at once (gracefully:
// the batch in flight finishes, ShutdownRequested, final checkpoint,
// release) and its leases are taken by no worker that agrees it is a former
// stream. The policy only decides when the leases are deleted. A discovery
// that fails, or that returns no stream at all, is taken for a fault: it
// removes no stream and starts no deletion clock; nor is a stream discovered
// but not yet described (DescribeStreamSummary failing) a former stream.
type FormerStreams struct {
	// Delete says when a former stream's leases are deleted. Default
	// KeepStreamLeases.
	Delete FormerStreamsDeletion
	// After is how long a stream must have been missing from this worker's
	// successful discoveries before its leases are deleted, so that workers
	// that learn of a change at different moments, or a discovery that
	// briefly leaves a stream out, do not lose its checkpoints. Default 1h
	// (DefaultFormerStreamsAfter); ignored with KeepStreamLeases.
	After time.Duration
}

// FormerStreamsDeletion is when the leases of a former stream are deleted;
// the Java KCL's FormerStreamsLeasesDeletionStrategy offers the same
// choices.
type FormerStreamsDeletion uint8

const (
	// KeepStreamLeases never deletes them (the KCL's
	// NO_STREAMS_LEASES_DELETION): a stream that comes back resumes at its
	// checkpoints. Delete them by hand when done (gokcl status shows them).
	KeepStreamLeases FormerStreamsDeletion = iota
	// DeleteIfStreamGone deletes them once the stream has been missing for
	// FormerStreams.After and Kinesis says it no longer exists: deleted, or
	// deleted and created again (another creation time, so another stream,
	// which has leases of its own). A stream that still exists keeps its
	// leases, so a discovery that leaves it out by mistake costs nothing.
	DeleteIfStreamGone
	// DeleteIfUndiscovered deletes them once the stream has been missing for
	// FormerStreams.After, whether or not it still exists (the KCL's
	// FORMER_STREAMS_AUTO_DETECTION_DEFERRED_DELETION). Should the stream be
	// discovered again later, it starts at its initial position.
	DeleteIfUndiscovered
)

// String names the choice.
func (d FormerStreamsDeletion) String() string {
	switch d {
	case KeepStreamLeases:
		return "KeepStreamLeases"
	case DeleteIfStreamGone:
		return "DeleteIfStreamGone"
	case DeleteIfUndiscovered:
		return "DeleteIfUndiscovered"
	}
	return fmt.Sprintf("FormerStreamsDeletion(%d)", uint8(d))
}
