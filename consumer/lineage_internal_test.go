package consumer

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
	"github.com/gokcl/kcl/shardgraph"
)

func TestLineageParentDone(t *testing.T) {
	// P → {X, B}; A + B → C. Q is a closed shard whose only child is P.
	shards := []shardgraph.Shard{
		{ID: "Q", EndingSequence: "1"},
		{ID: "P", ParentIDs: []string{"Q"}, EndingSequence: "2"},
		{ID: "A", EndingSequence: "3"},
		{ID: "X", ParentIDs: []string{"P"}},
		{ID: "B", ParentIDs: []string{"P"}, EndingSequence: "4"},
		{ID: "C", ParentIDs: []string{"B", "A"}},
	}
	g := shardgraph.New(shards)
	at := func(key string, finished bool) lease.Lease {
		l := lease.Lease{Key: key, Checkpoint: checkpoint.TrimHorizon}
		if finished {
			l.Checkpoint = checkpoint.ShardEnd
		}
		return l
	}
	tests := []struct {
		name          string
		g             *shardgraph.Graph
		leases        []lease.Lease
		child, parent string
		want          bool
	}{
		{"parent at SHARD_END", g, []lease.Lease{at("B", true), at("C", false)}, "C", "B", true},
		{"parent leased, not finished", g, []lease.Lease{at("B", false), at("C", false)}, "C", "B", false},
		{"no lease, its parent is leased", g, []lease.Lease{at("P", false), at("C", false)}, "C", "B", false},
		{"no lease, the other parent is leased", g, []lease.Lease{at("A", true), at("C", false)}, "C", "B", false},
		{"no lease, an ancestor of the start", g, []lease.Lease{at("P", false)}, "P", "Q", true},
		{"no lease, trimmed", shardgraph.New(shards[1:]), []lease.Lease{at("P", false)}, "P", "Q", true},
		{"no lease, its trimmed parent is leased", shardgraph.New(shards[1:]), []lease.Lease{at("Q", false), at("X", false)}, "X", "P", false},
		{"no lease, child newer than the listing", shardgraph.New(shards[:5]), []lease.Lease{at("A", true), at("C", false)}, "C", "B", false},
		{"no listing yet", nil, []lease.Lease{at("C", false)}, "C", "B", false},
		{"no table scan yet", g, nil, "C", "B", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, newLineage(tt.g, tt.leases, nil).parentDone(tt.child, tt.parent))
		})
	}
}

func TestMissedLeases(t *testing.T) {
	// R1 + R2 → M (open); Q → S (open, split sibling T).
	g := shardgraph.New([]shardgraph.Shard{
		{ID: "Q", EndingSequence: "1"},
		{ID: "R1", EndingSequence: "2"},
		{ID: "R2", EndingSequence: "3"},
		{ID: "M", ParentIDs: []string{"R1", "R2"}},
		{ID: "S", ParentIDs: []string{"Q"}},
		{ID: "T", ParentIDs: []string{"Q"}},
	})
	finished := lease.Lease{Key: "R1", Checkpoint: checkpoint.ShardEnd, ChildShardIDs: []string{"M"}}
	open := func(key string) lease.Lease { return lease.Lease{Key: key, Checkpoint: checkpoint.Latest} }
	tests := []struct {
		name   string
		pos    InitialPosition
		leases []lease.Lease
		want   map[string]checkpoint.Position
	}{
		{"new application, Latest", Latest, nil,
			map[string]checkpoint.Position{"M": checkpoint.Latest, "S": checkpoint.Latest, "T": checkpoint.Latest}},
		{"new application, TrimHorizon", TrimHorizon, nil,
			map[string]checkpoint.Position{"Q": checkpoint.TrimHorizon, "R1": checkpoint.TrimHorizon, "R2": checkpoint.TrimHorizon}},
		{"a root left out, merged since", TrimHorizon, []lease.Lease{finished, open("M"), open("Q")},
			map[string]checkpoint.Position{"R2": checkpoint.TrimHorizon}},
		{"an open shard left out, merged since", Latest, []lease.Lease{finished, open("M"), open("S"), open("T")},
			map[string]checkpoint.Position{"R2": checkpoint.TrimHorizon}},
		{"an open shard left out", Latest, []lease.Lease{open("M"), open("S")},
			map[string]checkpoint.Position{"T": checkpoint.Latest}},
		{"started at Latest, now configured TrimHorizon", TrimHorizon, []lease.Lease{open("M"), open("S"), open("T")},
			map[string]checkpoint.Position{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newShardSyncer(&Consumer{}, &stream{initial: tt.pos})
			leases := tt.leases
			if leases == nil {
				leases = []lease.Lease{}
			}
			got := map[string]checkpoint.Position{}
			for _, l := range s.missedLeases(g, newLineage(g, leases, nil)) {
				got[l.Key] = l.Checkpoint
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// TestMissedLeasesTrimmedParent: the open shards' parent is gone from the
// listing (retention) but its lease is not finished: its worker finishes it
// and creates the children at their beginning, so the syncer creates none
// (at Latest, they would skip what was written since the split).
func TestMissedLeasesTrimmedParent(t *testing.T) {
	g := shardgraph.New([]shardgraph.Shard{{ID: "S", ParentIDs: []string{"Q"}}, {ID: "T", ParentIDs: []string{"Q"}}})
	for _, pos := range []InitialPosition{Latest, TrimHorizon} {
		s := newShardSyncer(&Consumer{}, &stream{initial: pos})
		leases := []lease.Lease{{Key: "Q", Checkpoint: checkpoint.At("1", 0)}}
		require.Empty(t, s.missedLeases(g, newLineage(g, leases, nil)), pos.String())
	}
}
