package consumer

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/gokcl/kcl/lease"
)

// redescribeEvery spaces the DescribeStreamSummary calls that check a
// stream suspected gone: every fetcher of a deleted stream fails at once, and
// one call answers for all of them.
const redescribeEvery = 10 * time.Second

// consumed is a stream a multi-stream consumer consumes: resolved to its
// identity, with its initial position.
type consumed struct {
	key     string // its StreamConfig's key: ARN or name
	info    StreamInfo
	initial InitialPosition

	// suspect is set when a call on the stream said it may be gone (see
	// streamSet.suspect); the next round describes it again.
	suspect     atomic.Bool
	describedAt time.Time // owned by the discovery goroutine
}

// streamChange is what a round of discovery changes: the streams to start
// consuming and those to stop; unresolved counts the streams discovered
// that could not be described (a fault, not a missing stream), for which
// the round is to be tried again soon.
type streamChange struct {
	add, remove []*consumed
	unresolved  int
}

// streamSet decides, from the discovered streams and the lease table, which
// streams a multi-stream consumer consumes, and which former streams'
// leases to delete. Its decisions are made by one goroutine (the
// discovery loop); suspect and lookups may be called from any.
type streamSet struct {
	describer streamDescriber
	initial   InitialPosition // Config.InitialPosition
	policy    FormerStreams
	log       *slog.Logger

	mu     sync.Mutex
	active map[lease.StreamID]*consumed // guarded by mu

	// Owned by the discovery goroutine.
	byKey     map[string]*consumed
	former    map[lease.StreamID]time.Time // since when each former stream is known not consumed
	arnPrefix string                       // "arn:PARTITION:kinesis:REGION:" of the streams resolved
}

func newStreamSet(describer streamDescriber, initial InitialPosition, policy FormerStreams, log *slog.Logger) *streamSet {
	return &streamSet{
		describer: describer, initial: initial, policy: policy, log: log,
		active: map[lease.StreamID]*consumed{},
		byKey:  map[string]*consumed{},
		former: map[lease.StreamID]time.Time{},
	}
}

// lookup returns the consumed stream of that identity, if any.
func (s *streamSet) lookup(id lease.StreamID) (*consumed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.active[id]
	return c, ok
}

// consuming reports whether the stream of that identity is consumed now.
func (s *streamSet) consuming(id lease.StreamID) bool {
	_, ok := s.lookup(id)
	return ok
}

// suspect records that a call on the stream said it may be gone (deleted,
// or deleted and created again); the next round describes it again. It
// reports whether the stream is consumed.
func (s *streamSet) suspect(id lease.StreamID) bool {
	c, ok := s.lookup(id)
	if ok && !c.suspect.Swap(true) {
		s.log.Info("a call says the stream may have been deleted; describing it again", "stream", id.String())
	}
	return ok
}

// update applies a successful discovery: cfgs (valid, not empty) and the
// lease table as last read. Streams missing from cfgs are removed, and
// become former streams; new ones are described and added, with the
// identity the table already has for them if any; suspect ones are
// described again, and replaced when they were deleted and created again.
// A stream that cannot be described yet is left for the next round.
func (s *streamSet) update(ctx context.Context, cfgs []StreamConfig, table []lease.Lease, now time.Time) streamChange {
	var ch streamChange
	var undescribed []StreamConfig
	want := map[string]StreamConfig{}
	for _, cfg := range cfgs {
		if _, dup := want[cfg.key()]; dup {
			continue
		}
		want[cfg.key()] = cfg
	}
	for key, c := range s.byKey {
		if _, ok := want[key]; !ok {
			s.log.Info("stream no longer discovered: stopping its shard workers", "stream", c.info.ID.String())
			ch.remove = append(ch.remove, s.drop(c, now))
		}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	for _, key := range keys {
		cfg := want[key]
		cur := s.byKey[key]
		if cur != nil && !(cur.suspect.Load() && now.Sub(cur.describedAt) >= redescribeEvery) {
			continue
		}
		next, gone, err := s.resolve(ctx, cfg, table, now)
		switch {
		case err != nil && cur == nil:
			s.log.Warn("cannot describe a discovered stream; trying again", "stream", key, "error", err)
			ch.unresolved++
			undescribed = append(undescribed, cfg)
			continue
		case err != nil:
			s.log.Warn("cannot describe a stream suspected gone; trying again", "stream", key, "error", err)
			cur.describedAt = now
			continue
		case cur != nil && gone:
			s.log.Warn("the stream was deleted: stopping its shard workers", "stream", cur.info.ID.String())
			ch.remove = append(ch.remove, s.drop(cur, now))
			continue
		case cur != nil && next.info.ID == cur.info.ID:
			cur.suspect.Store(false) // still the same stream
			cur.describedAt = now
			continue
		case cur != nil:
			s.log.Warn("the stream was deleted and created again: stopping the former stream's shard workers and starting the new stream's",
				"former", cur.info.ID.String(), "stream", next.info.ID.String())
			ch.remove = append(ch.remove, s.drop(cur, now))
		case gone:
			s.log.Warn("a discovered stream does not exist; trying again at the next discovery", "stream", key)
			continue
		}
		if other, dup := s.lookup(next.info.ID); dup {
			s.log.Warn("two discovered entries name the same stream; consuming it once", "stream", next.info.ID.String(), "entries", []string{other.key, key})
			continue
		}
		s.add(next)
		ch.add = append(ch.add, next)
	}
	s.noteFormer(table, undescribed, now)
	return ch
}

// resolve describes a configured stream and returns it resolved, or gone
// when Kinesis says it does not exist.
func (s *streamSet) resolve(ctx context.Context, cfg StreamConfig, table []lease.Lease, now time.Time) (c *consumed, gone bool, err error) {
	in := &kinesis.DescribeStreamSummaryInput{StreamName: optional(cfg.Name), StreamARN: optional(cfg.ARN)}
	out, err := s.describer.DescribeStreamSummary(ctx, in)
	if isNotFound(err) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("describe stream %s: %w", cfg.key(), err)
	}
	d := out.StreamDescriptionSummary
	if d == nil || d.StreamCreationTimestamp == nil {
		return nil, false, fmt.Errorf("describe stream %s: no creation time in the response", cfg.key())
	}
	arn := aws.ToString(d.StreamARN)
	id, err := lease.NewStreamID(arn, *d.StreamCreationTimestamp)
	if err != nil {
		return nil, false, fmt.Errorf("describe stream %s: %w", cfg.key(), err)
	}
	if prefix, _, ok := strings.Cut(arn, id.Account+":stream/"); ok {
		s.arnPrefix = prefix
	}
	initial := cfg.InitialPosition
	if initial.kind == initialDefault {
		initial = s.initial
	}
	c = &consumed{key: cfg.key(), info: StreamInfo{Name: id.Name, ARN: arn, ID: adopt(id, table)}, initial: initial, describedAt: now}
	return c, false, nil
}

// adopt returns the identity the lease table already uses for the stream, if
// any: the Java KCL leaves the creation epoch's unit to the application, so
// a table it wrote may count in milliseconds where gokcl counts in seconds
// (see lease.StreamID.SameStream). Among several, the one with most leases.
func adopt(id lease.StreamID, table []lease.Lease) lease.StreamID {
	count := map[lease.StreamID]int{}
	for _, l := range table {
		if l.MultiStream() && l.StreamID.SameStream(id) {
			count[l.StreamID]++
		}
	}
	best, n := id, 0
	for cand, c := range count {
		if c > n || c == n && cand.String() < best.String() {
			best, n = cand, c
		}
	}
	return best
}

func (s *streamSet) add(c *consumed) {
	s.mu.Lock()
	s.active[c.info.ID] = c
	s.mu.Unlock()
	s.byKey[c.key] = c
	delete(s.former, c.info.ID)
}

// drop stops consuming c: a former stream from now.
func (s *streamSet) drop(c *consumed, now time.Time) *consumed {
	s.mu.Lock()
	delete(s.active, c.info.ID)
	s.mu.Unlock()
	delete(s.byKey, c.key)
	if _, ok := s.former[c.info.ID]; !ok {
		s.former[c.info.ID] = now
	}
	return c
}

// noteFormer records the streams the table holds leases of and that are
// not consumed, from now if they were not known already, and forgets those
// whose leases are gone. A stream discovered but not described yet
// (undescribed) is wanted, not former: without its creation time, any
// identity of its name (and account) in the table may be its own.
func (s *streamSet) noteFormer(table []lease.Lease, undescribed []StreamConfig, now time.Time) {
	inTable := map[lease.StreamID]bool{}
	for _, l := range table {
		if !l.MultiStream() || s.consuming(l.StreamID) || mayBe(undescribed, l.StreamID) {
			continue
		}
		inTable[l.StreamID] = true
		if _, ok := s.former[l.StreamID]; !ok {
			s.former[l.StreamID] = now
			s.log.Info("the lease table holds leases of a stream not consumed", "stream", l.StreamID.String(), "policy", s.policy.Delete.String())
		}
	}
	for id := range s.former {
		if !inTable[id] {
			delete(s.former, id)
		}
	}
}

// mayBe reports whether id may be the stream of one of cfgs: the same name
// and, for a configuration by ARN, the same account.
func mayBe(cfgs []StreamConfig, id lease.StreamID) bool {
	for _, cfg := range cfgs {
		if cfg.ARN == "" {
			if cfg.Name == id.Name {
				return true
			}
			continue
		}
		if c, err := lease.NewStreamID(cfg.ARN, time.Unix(1, 0)); err == nil && c.Account == id.Account && c.Name == id.Name { // only the ARN's parts
			return true
		}
	}
	return false
}

// deletable returns the former streams whose leases the policy deletes
// now. DeleteIfStreamGone describes each candidate (by an ARN made from its
// identity, in the region of the streams resolved so far): only a stream
// Kinesis says is gone, or was created again since, is deleted.
func (s *streamSet) deletable(ctx context.Context, now time.Time) []lease.StreamID {
	if s.policy.Delete == KeepStreamLeases {
		return nil
	}
	var out []lease.StreamID
	for id, since := range s.former {
		if now.Sub(since) < s.policy.After {
			continue
		}
		if s.policy.Delete == DeleteIfStreamGone {
			gone, err := s.gone(ctx, id)
			if err != nil {
				s.log.Warn("cannot tell whether a former stream still exists; keeping its leases for now", "stream", id.String(), "error", err)
				continue
			}
			if !gone {
				continue
			}
		}
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b lease.StreamID) int { return cmp.Compare(a.String(), b.String()) })
	return out
}

// gone reports whether Kinesis says the stream of that identity no longer
// exists: not found, or found with another creation time.
func (s *streamSet) gone(ctx context.Context, id lease.StreamID) (bool, error) {
	if s.arnPrefix == "" {
		return false, fmt.Errorf("no stream resolved yet, so no region to look for it in")
	}
	arn := s.arnPrefix + id.Account + ":stream/" + id.Name
	out, err := s.describer.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(arn)})
	if isNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	d := out.StreamDescriptionSummary
	if d == nil || d.StreamCreationTimestamp == nil {
		return false, fmt.Errorf("describe stream %s: no creation time in the response", arn)
	}
	now, err := lease.NewStreamID(aws.ToString(d.StreamARN), *d.StreamCreationTimestamp)
	if err != nil {
		return false, err
	}
	return !now.SameStream(id), nil
}

// deleted forgets a former stream whose leases were deleted.
func (s *streamSet) deleted(id lease.StreamID) { delete(s.former, id) }
