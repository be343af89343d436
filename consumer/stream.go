package consumer

import (
	"context"
	"log/slog"
	"time"

	"github.com/gokcl/kcl/lease"
)

// stream is a stream being consumed, with what its shard workers, readers
// and shard syncer need: the single stream of a single-stream consumer, or
// one of a multi-stream consumer's. It is made before any of them starts
// and read-only afterwards, but for its syncer's state.
//
// In a multi-stream lease table a lease's key is the stream's identifier
// and the shard id (lease.StreamID.LeaseKey); a single stream's leases are
// keyed by shard id. Lineages, listings and processors speak of shard ids;
// the lease manager and the lease table of keys.
type stream struct {
	info    StreamInfo
	label   string // names the stream in hook events: its name, or Config's StreamARN
	multi   bool
	initial InitialPosition
	log     *slog.Logger

	// name and arn name the stream in Kinesis calls: the ARN of a resolved
	// stream of a multi-stream consumer (another account's too), Config's
	// StreamName or StreamARN for the single stream.
	name, arn string

	syncer      *shardSyncer
	consumerARN string // the enhanced fan-out stream consumer, once ACTIVE

	cancel context.CancelFunc // stops the syncer (and the fan-out registration)
	done   chan struct{}      // closed once the stream's goroutine has returned
}

// singleStream returns the stream of a single-stream consumer.
func singleStream(c *Consumer) *stream {
	cfg := &c.cfg
	s := &stream{
		info:    StreamInfo{Name: cfg.StreamName, ARN: cfg.StreamARN},
		label:   cfg.stream(),
		initial: cfg.InitialPosition,
		log:     c.log,
		name:    cfg.StreamName,
		arn:     cfg.StreamARN,
		done:    make(chan struct{}),
	}
	if s.info.Name == "" {
		if id, err := lease.NewStreamID(cfg.StreamARN, time.Unix(1, 0)); err == nil { // only the ARN's parts
			s.info.Name = id.Name
		}
	}
	s.syncer = newShardSyncer(c, s)
	return s
}

// resolvedStream returns a stream of a multi-stream consumer.
func resolvedStream(c *Consumer, r *consumed) *stream {
	s := &stream{
		info:    r.info,
		label:   r.info.Name,
		multi:   true,
		initial: r.initial,
		log:     c.log.With("stream", r.info.ID.String()),
		arn:     r.info.ARN,
		done:    make(chan struct{}),
	}
	s.syncer = newShardSyncer(c, s)
	return s
}

// key returns the lease key of one of the stream's shards.
func (s *stream) key(shardID string) string {
	if s.multi {
		return s.info.ID.LeaseKey(shardID)
	}
	return shardID
}

// owns reports whether l is a lease of this stream.
func (s *stream) owns(l lease.Lease) bool {
	if s.multi {
		return l.StreamID == s.info.ID
	}
	return !l.MultiStream()
}

// leases returns the stream's leases among all, keyed by shard id, as
// lineages and listings speak of shards. The leases are copies sharing
// their slices with all's: read them only.
func (s *stream) leases(all []lease.Lease) []lease.Lease {
	if all == nil {
		return nil
	}
	out := make([]lease.Lease, 0, len(all))
	for _, l := range all {
		if !s.owns(l) {
			continue
		}
		if s.multi {
			l.Key = l.ShardID
		}
		out = append(out, l)
	}
	return out
}

// own makes a lease keyed by shard id (Key) the stream's: its key, and in
// a multi-stream table its stream and shard.
func (s *stream) own(l lease.Lease) lease.Lease {
	if s.multi {
		l.StreamID, l.ShardID, l.Key = s.info.ID, l.Key, s.info.ID.LeaseKey(l.Key)
	}
	return l
}

// ids returns the Kinesis call parameters naming the stream.
func (s *stream) ids() (name, arn *string) { return optional(s.name), optional(s.arn) }
