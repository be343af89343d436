package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
	"github.com/gokcl/kcl/shardgraph"
)

// shardSyncer lists the stream's shards every ShardSyncInterval, keeps the
// latest shard graph, and creates the leases of shards that may start: the
// start shards of a new application, and the children of finished shards
// whose worker stopped before creating them. (Workers create their
// children's leases themselves as soon as a shard ends.)
type shardSyncer struct {
	c        *Consumer
	graph    atomic.Pointer[shardgraph.Graph]
	listedAt atomic.Pointer[time.Time] // when graph's listing started
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

func newShardSyncer(c *Consumer) *shardSyncer { return &shardSyncer{c: c} }

// run syncs until ctx is done. It returns an error only when the first sync
// finds that the stream does not exist; other failures are retried.
func (s *shardSyncer) run(ctx context.Context) error {
	bo := backoff{base: 500 * time.Millisecond, max: 30 * time.Second}
	for synced := false; ; {
		err := s.sync(ctx)
		wait := s.c.cfg.ShardSyncInterval
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			synced = true
			bo.reset()
		case !synced && isNotFound(err):
			return err
		default:
			wait = bo.next()
			s.c.log.Warn("shard sync failed; retrying", "attempt", bo.attempt, "wait", wait, "error", err)
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
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
	leases, err := s.c.mgr.Refresh(ctx)
	if err != nil {
		return fmt.Errorf("read lease table: %w", err)
	}
	return s.ensureLeases(ctx, g, leases)
}

// list reads every page of ListShards.
func (s *shardSyncer) list(ctx context.Context) ([]types.Shard, error) {
	in := &kinesis.ListShardsInput{StreamName: optional(s.c.cfg.StreamName), StreamARN: optional(s.c.cfg.StreamARN)}
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
	var create []lease.Lease
	for _, id := range g.StartShards(s.c.cfg.InitialPosition.graphPosition()) {
		// With leases in the table, a start shard without one is new only
		// if nothing of its lineage is leased: otherwise the lineage leads
		// to it (ancestors) or it was processed before (descendants).
		if _, ok := have[id]; !ok && (len(have) == 0 || !lineageLeased(g, have, id)) {
			create = append(create, newLease(g, id, s.c.cfg.InitialPosition.checkpoint()))
		}
	}
	for _, l := range leases {
		if !l.Finished() {
			continue
		}
		for _, child := range union(g.Children(l.Key), l.ChildShardIDs) {
			if _, ok := have[child]; !ok {
				if _, inStream := g.Shard(child); inStream {
					// The worker that finished l stopped before creating its
					// children: they start at their beginning (at worst,
					// with AtTimestamp, a few records early, never late).
					create = append(create, newLease(g, child, checkpoint.TrimHorizon))
				}
			}
		}
	}
	if err := createLeases(ctx, s.c.store, parentsLeased(s.c.log, create, have)); err != nil {
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
		if err := s.c.store.Delete(ctx, key); err != nil {
			return fmt.Errorf("delete the lease of trimmed shard %s: %w", key, err)
		}
		s.c.log.Info("deleted the lease of a finished shard no longer in the stream", "shard", key)
	}
	return nil
}

// createLeases creates each lease unless it exists.
func createLeases(ctx context.Context, store lease.Store, leases []lease.Lease) error {
	seen := make(map[string]bool, len(leases))
	for _, l := range leases {
		if seen[l.Key] {
			continue
		}
		seen[l.Key] = true
		if err := store.Create(ctx, l); err != nil && !errors.Is(err, lease.ErrLeaseExists) {
			return fmt.Errorf("create lease %s: %w", l.Key, err)
		}
	}
	return nil
}

func lineageLeased(g *shardgraph.Graph, have map[string]lease.Lease, id string) bool {
	for _, d := range g.Descendants(id) {
		if _, ok := have[d]; ok {
			return true
		}
	}
	seen := map[string]bool{}
	stack := append([]string(nil), g.Parents(id)...)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		if _, ok := have[p]; ok {
			return true
		}
		stack = append(stack, g.Parents(p)...)
	}
	return false
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

// childrenOf returns the leases to create for a finished shard's children:
// from the last GetRecords response when it named them, else from the last
// shard listing.
func (co *coordinator) childrenOf(shardID string, fromResponse []types.ChildShard, cp checkpoint.Position) []lease.Lease {
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
	if g := co.syncer.graph.Load(); g != nil {
		for _, id := range g.Children(shardID) {
			out = append(out, newLease(g, id, cp))
		}
	}
	return out
}

// createChildLeases creates the leases of a finished shard's children.
func (co *coordinator) createChildLeases(ctx context.Context, children []lease.Lease) error {
	leases, err := co.c.mgr.Refresh(ctx)
	if err != nil {
		return fmt.Errorf("read lease table: %w", err)
	}
	have := make(map[string]lease.Lease, len(leases))
	for _, l := range leases {
		have[l.Key] = l
	}
	return createLeases(ctx, co.c.store, parentsLeased(co.c.log, children, have))
}

// parentsLeased drops the merge children of which one parent has a lease
// and the other none yet. A shard worker takes a parent without a lease for
// one done (trimmed, or before where the application started), so such a
// child would start before its other parent, whose lease comes only once
// that parent's own parents end: for instance a shard merged with one that
// was split and merged again, and ended first. The worker finishing the
// other parent creates the child, as the Java KCL does.
func parentsLeased(log *slog.Logger, children []lease.Lease, have map[string]lease.Lease) []lease.Lease {
	out := children[:0:0]
	for _, l := range children {
		if len(l.ParentShardIDs) == 2 {
			_, a := have[l.ParentShardIDs[0]]
			_, b := have[l.ParentShardIDs[1]]
			if a != b {
				log.Info("not creating the lease of a merged shard yet: one of its parents has no lease",
					"shard", l.Key, "parents", l.ParentShardIDs)
				continue
			}
		}
		out = append(out, l)
	}
	return out
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
