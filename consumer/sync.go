package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
	"github.com/gokcl/kcl/shardgraph"
)

// shardSyncer lists one stream's shards every ShardSyncInterval, keeps the
// latest shard graph, and creates the leases of shards that may start: the
// start shards of a new application, those an earlier sync failed to create
// (see missedLeases), and the children of finished shards whose worker
// stopped before creating them or deferred them. (Workers create their
// children's leases themselves as soon as a shard ends.) Each stream of a
// multi-stream consumer has its own; they share the lease table's reads.
//
// The syncer, its lineages and its listings speak of shard ids: the
// stream's leases are keyed by shard id for them (stream.leases), and made
// the stream's again where they are written (stream.own).
type shardSyncer struct {
	c        *Consumer
	st       *stream
	graph    atomic.Pointer[shardgraph.Graph]
	listedAt atomic.Pointer[time.Time] // when graph's listing started
	wake     chan struct{}             // capacity 1: sync now rather than at the next interval
}

// absentSince reports whether a shard listing started after t (and
// complete) lacks the shard.
func (s *shardSyncer) absentSince(shardID string, t time.Time) bool {
	at, g := s.listedAt.Load(), s.graph.Load()
	if at == nil || g == nil || !at.After(t) {
		return false
	}
	_, ok := g.Shard(shardID)
	return !ok
}

func newShardSyncer(c *Consumer, st *stream) *shardSyncer {
	return &shardSyncer{c: c, st: st, wake: make(chan struct{}, 1)}
}

// kick asks for a sync now: a worker met a shard newer than the last
// listing. It never blocks.
func (s *shardSyncer) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run syncs until ctx is done. It returns an error only when the first sync
// of a single-stream consumer finds that the stream does not exist; other
// failures are retried. A multi-stream consumer's stream that does not exist
// (any more) is reported to the stream set, which describes it again and
// stops consuming it if it is gone.
func (s *shardSyncer) run(ctx context.Context) error {
	bo := syncBackoff
	for synced := false; ; {
		err := s.sync(ctx)
		wait := s.c.cfg.ShardSyncInterval
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			synced = true
			bo.reset()
		case !synced && isNotFound(err) && !s.st.multi:
			return err
		default:
			if isNotFound(err) {
				s.c.co.suspect(s.st)
			}
			wait = bo.next()
			s.st.log.Warn("shard sync failed; retrying", "attempt", bo.attempt, "wait", wait, "error", err)
		}
		if !s.pause(ctx, wait, err == nil) {
			return nil
		}
	}
}

// pause waits d, or less when a worker kicks the syncer after a successful
// sync (after a failure the backoff holds); it reports whether ctx is still
// live.
func (s *shardSyncer) pause(ctx context.Context, d time.Duration, kickable bool) bool {
	var wake <-chan struct{}
	if kickable {
		wake = s.wake
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
	case <-t.C:
	}
	return true
}

func (s *shardSyncer) sync(ctx context.Context) error {
	started := time.Now()
	shards, err := s.list(ctx)
	if err != nil {
		return err
	}
	list, err := shardgraph.FromKinesis(shards)
	if err != nil {
		return fmt.Errorf("shard listing: %w", err)
	}
	g := shardgraph.New(list)
	if err := g.Coverage(); err != nil {
		// A listing taken in the middle of a reshard can miss shards.
		return fmt.Errorf("shard listing incomplete: %w", err)
	}
	s.graph.Store(g)
	s.listedAt.Store(&started)
	all, err := s.c.co.table.read(ctx)
	if err != nil {
		return fmt.Errorf("read lease table: %w", err)
	}
	leases := s.st.leases(all)
	if s.st.multi && !sameStream(g, leases) {
		s.c.co.suspect(s.st)
	}
	return s.ensureLeases(ctx, g, leases)
}

// list reads every page of ListShards.
func (s *shardSyncer) list(ctx context.Context) ([]types.Shard, error) {
	in := &kinesis.ListShardsInput{}
	in.StreamName, in.StreamARN = s.st.ids()
	var shards []types.Shard
	for {
		out, err := s.c.cfg.Kinesis.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			return shards, nil
		}
		// Paging: the token identifies the stream.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// ensureLeases creates the missing leases of shards that may start.
func (s *shardSyncer) ensureLeases(ctx context.Context, g *shardgraph.Graph, leases []lease.Lease) error {
	have := make(map[string]lease.Lease, len(leases))
	for _, l := range leases {
		have[l.Key] = l
	}
	ln := newLineage(g, leases, nil)
	create := s.missedLeases(g, ln)
	for _, l := range leases {
		if !l.Finished() {
			continue
		}
		for _, child := range union(g.Children(l.Key), l.ChildShardIDs) {
			if _, ok := have[child]; ok {
				continue
			}
			if _, inStream := g.Shard(child); inStream && ln.parentsDone(child, g.Parents(child)) {
				// The worker that finished l stopped before creating its
				// children, or deferred a merge child whose other parent
				// was not finished then: they start at their beginning (at
				// worst, with AtTimestamp, a few records early, never late).
				create = append(create, newLease(g, child, checkpoint.TrimHorizon))
			}
		}
	}
	if err := s.c.createLeases(ctx, s.st, create); err != nil {
		return err
	}
	return s.deleteStale(ctx, g, have)
}

// deleteStale deletes the leases of finished shards that retention has
// removed from the stream, once each of their children still in the stream
// has a lease: nothing needs them any more (a missing parent lease counts as
// done), and without this the table would grow with every reshard.
func (s *shardSyncer) deleteStale(ctx context.Context, g *shardgraph.Graph, have map[string]lease.Lease) error {
	for key, l := range have {
		if _, inStream := g.Shard(key); inStream || !l.Finished() {
			continue
		}
		ready := true
		for _, child := range union(g.Children(key), l.ChildShardIDs) {
			_, leased := have[child]
			_, inStream := g.Shard(child)
			ready = ready && (leased || !inStream)
		}
		if !ready {
			continue
		}
		if err := s.c.store.Delete(ctx, s.st.key(key)); err != nil {
			return fmt.Errorf("delete the lease of trimmed shard %s: %w", key, err)
		}
		s.st.log.Info("deleted the lease of a finished shard no longer in the stream", "shard", key)
	}
	return nil
}

// missedLeases returns the leases of the shards the application starts
// from, or must read, that have no lease and that no lineage will lead to:
//
//   - with an empty table, the start shards of a new application;
//   - a start shard without a lease none of whose ancestors has one: a first
//     sync that stopped part-way left it out. A leased descendant means it
//     was processed or left behind by an earlier start (the application
//     started from its descendants), unless it is a parent of a merge child
//     whose other parent the application processes: then it belongs to the
//     application whatever its descendants (see lineage), and without a
//     lease its records would never be read;
//   - for the same reason, such a merge parent that is no longer a start
//     shard (Latest: it closed since), once its own parents are done. It
//     starts at its beginning: records from before the application's start
//     are read rather than records after it lost.
func (s *shardSyncer) missedLeases(g *shardgraph.Graph, ln *lineage) []lease.Lease {
	start := map[string]bool{}
	for _, id := range g.StartShards(s.st.initial.graphPosition()) {
		start[id] = true
	}
	var create []lease.Lease
	for _, id := range append(g.Open(), g.Closed()...) {
		if ln.leased(id) || ln.ancestorLeased(id) {
			continue // its lineage leads to it
		}
		switch {
		case start[id] && (len(ln.leases) == 0 || !ln.descendantLeased(id) || ln.mergedWithReached(id)):
			create = append(create, newLease(g, id, s.st.initial.checkpoint()))
		case !start[id] && ln.mergedWithReached(id) && ln.parentsDone(id, g.Parents(id)):
			create = append(create, newLease(g, id, checkpoint.TrimHorizon))
		}
	}
	return create
}

// createLeases creates each lease of the stream (keyed by shard id) unless
// it exists. A failure does not stop the others: it returns the failures
// together, for the caller to retry. If it created any, it wakes the lease
// manager's taker, so that they are taken at once rather than at its next
// scan: a new application's worker starts reading within a few round trips
// of its start.
func (c *Consumer) createLeases(ctx context.Context, st *stream, leases []lease.Lease) error {
	seen := make(map[string]bool, len(leases))
	var errs []error
	created := 0
	for _, l := range leases {
		if seen[l.Key] || ctx.Err() != nil {
			continue
		}
		seen[l.Key] = true
		switch err := c.store.Create(ctx, st.own(l)); {
		case err == nil:
			created++
		case !errors.Is(err, lease.ErrLeaseExists):
			errs = append(errs, fmt.Errorf("create lease %s: %w", l.Key, err))
		}
	}
	if created > 0 {
		c.mgr.Rescan()
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func newLease(g *shardgraph.Graph, id string, cp checkpoint.Position) lease.Lease {
	l := lease.Lease{Key: id, Checkpoint: cp}
	if s, ok := g.Shard(id); ok {
		l.ParentShardIDs = s.ParentIDs
		if s.HashKeyStart != nil && s.HashKeyEnd != nil {
			l.StartingHashKey, l.EndingHashKey = s.HashKeyStart.String(), s.HashKeyEnd.String()
		}
	}
	return l
}

// sameStream reports whether the stream listed is, as far as its leases
// can tell, the stream they were written for: no lease is finished
// (SHARD_END) for a shard the listing shows open, and no checkpoint is
// before its shard's first sequence number. Either would mean that the
// stream was deleted and another created with its name since: its shards
// have the same ids. A multi-stream consumer then describes the stream
// again, which tells for sure.
func sameStream(g *shardgraph.Graph, leases []lease.Lease) bool {
	for _, l := range leases {
		sh, ok := g.Shard(l.Key)
		if !ok || l.Malformed != nil {
			continue
		}
		if l.Finished() && sh.EndingSequence == "" {
			return false
		}
		if !l.Checkpoint.IsSentinel() && sh.StartingSequence != "" &&
			l.Checkpoint.Compare(checkpoint.At(sh.StartingSequence, 0)) < 0 {
			return false
		}
	}
	return true
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		found := false
		for _, y := range out {
			found = found || x == y
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// childrenOf returns the leases to create for a finished shard's children,
// keyed by shard id: from the last GetRecords response when it named them,
// else from the stream's last shard listing.
func (co *coordinator) childrenOf(st *stream, shardID string, fromResponse []types.ChildShard, cp checkpoint.Position) []lease.Lease {
	var out []lease.Lease
	for _, ch := range fromResponse {
		l := lease.Lease{Key: aws.ToString(ch.ShardId), Checkpoint: cp, ParentShardIDs: ch.ParentShards}
		if r := ch.HashKeyRange; r != nil {
			l.StartingHashKey, l.EndingHashKey = aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey)
		}
		out = append(out, l)
	}
	if len(out) > 0 {
		return out
	}
	if g := st.syncer.graph.Load(); g != nil {
		for _, id := range g.Children(shardID) {
			out = append(out, newLease(g, id, cp))
		}
	}
	return out
}

// createChildLeases creates the leases of a finished shard's children,
// except those of merge children whose other parent is not done yet: as the
// KCL does, such a lease waits until both parents are finished (or absent),
// so that nothing of the child is processed before its other parent. The
// other parent's worker creates it when that parent ends, and the shard
// syncer creates it if both ended at once, each deferring to the other.
func (co *coordinator) createChildLeases(ctx context.Context, st *stream, shardID string, children []lease.Lease) error {
	all, err := co.table.read(ctx) // both parents may have just ended: read the table as it is now
	if err != nil {
		return fmt.Errorf("read lease table: %w", err)
	}
	ln := newLineage(st.syncer.graph.Load(), st.leases(all), co.finishedOf(st))
	var create []lease.Lease
	for _, child := range children {
		var waiting []string
		for _, p := range child.ParentShardIDs {
			if p != shardID && !ln.parentDone(child.Key, p) {
				waiting = append(waiting, p)
			}
		}
		if len(waiting) > 0 {
			st.log.Info("deferring the lease of a merge child until its other parent is processed to its end",
				"shard", shardID, "child", child.Key, "waiting_for", waiting)
			if !ln.listed(child.Key) {
				st.syncer.kick()
			}
			continue
		}
		create = append(create, child)
	}
	return co.c.createLeases(ctx, st, create)
}

func childIDs(children []lease.Lease) []string {
	ids := make([]string, len(children))
	for i, l := range children {
		ids[i] = l.Key
	}
	return ids
}

// graphPosition maps the initial position to the shard graph's notion.
func (p InitialPosition) graphPosition() shardgraph.InitialPosition {
	switch p.kind {
	case initialTrimHorizon:
		return shardgraph.TrimHorizon
	case initialAtTimestamp:
		return shardgraph.AtTimestamp
	}
	return shardgraph.Latest
}

// checkpoint is the checkpoint of a start shard's new lease.
func (p InitialPosition) checkpoint() checkpoint.Position {
	switch p.kind {
	case initialTrimHorizon:
		return checkpoint.TrimHorizon
	case initialAtTimestamp:
		return checkpoint.AtTimestamp
	}
	return checkpoint.Latest
}
