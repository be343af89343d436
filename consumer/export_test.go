package consumer

import (
	"context"
	"log/slog"
	"time"

	"github.com/gokcl/kcl/lease"
)

// BufferedBytes returns the bytes of fetched records not yet processed, for
// the tests of package consumer_test.
func (c *Consumer) BufferedBytes() int64 { return c.budget.inUse.Load() }

// RecordSize is the memory the budget counts for a Record besides its
// payload.
const RecordSize = recordSize

// StreamSetForTest exposes the multi-stream decisions (streamSet) to the
// tests of package consumer_test, which run them on kcltest's Account.
type StreamSetForTest struct{ s *streamSet }

// NewStreamSetForTest returns a stream set describing streams with k.
func NewStreamSetForTest(k KinesisAPI, initial InitialPosition, policy FormerStreams) *StreamSetForTest {
	return &StreamSetForTest{s: newStreamSet(k.(streamDescriber), initial, policy, slog.New(slog.DiscardHandler))}
}

// Update runs one round of discovery and returns the streams added and
// removed.
func (t *StreamSetForTest) Update(ctx context.Context, cfgs []StreamConfig, table []lease.Lease, now time.Time) (added, removed []StreamInfo) {
	ch := t.s.update(ctx, cfgs, table, now)
	for _, c := range ch.add {
		added = append(added, c.info)
	}
	for _, c := range ch.remove {
		removed = append(removed, c.info)
	}
	return added, removed
}

// Initial returns the initial position of a consumed stream.
func (t *StreamSetForTest) Initial(id lease.StreamID) (InitialPosition, bool) {
	c, ok := t.s.lookup(id)
	if !ok {
		return InitialPosition{}, false
	}
	return c.initial, true
}

// Suspect marks a stream suspected gone.
func (t *StreamSetForTest) Suspect(id lease.StreamID) bool { return t.s.suspect(id) }

// Deletable returns the former streams whose leases the policy deletes now.
func (t *StreamSetForTest) Deletable(ctx context.Context, now time.Time) []lease.StreamID {
	return t.s.deletable(ctx, now)
}

// Deleted forgets a former stream.
func (t *StreamSetForTest) Deleted(id lease.StreamID) { t.s.deleted(id) }

// RedescribeEvery is how often a stream suspected gone is described.
const RedescribeEvery = redescribeEvery
