package leasetest

import (
	"testing"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

// Multi-stream fixtures: leases of two streams, keyed as the Java KCL keys
// them (account:stream:creationEpoch:shardId), with the same shard id, as
// every stream's first shard is shardId-000000000000.
var (
	streamOrders = lease.StreamID{Account: "123456789012", Name: "orders", CreationEpoch: 1680616058}
	streamAudit  = lease.StreamID{Account: "210987654321", Name: "audit", CreationEpoch: 1680616058123}

	// leaseStreamOwned is held mid-stream, a split's child.
	leaseStreamOwned = lease.Lease{
		Key:                          streamOrders.LeaseKey("shardId-000000000000"),
		StreamID:                     streamOrders,
		ShardID:                      "shardId-000000000000",
		Owner:                        "worker-1",
		Counter:                      12,
		Checkpoint:                   checkpoint.At("49590338271490256608559692538361571095921575989136588898", 1),
		OwnerSwitchesSinceCheckpoint: 1,
		ParentShardIDs:               []string{"shardId-000000000009"},
		StartingHashKey:              "0",
		EndingHashKey:                "340282366920938463463374607431768211455",
	}
	// leaseStreamNew is another stream's lease of the same shard id.
	leaseStreamNew = lease.Lease{
		Key:        streamAudit.LeaseKey("shardId-000000000000"),
		StreamID:   streamAudit,
		ShardID:    "shardId-000000000000",
		Checkpoint: checkpoint.TrimHorizon,
	}
)

// multiStreamWriteCases: every conditional write keeps a multi-stream
// lease's stream and shard, and writes nothing else of them.
func multiStreamWriteCases() []writeCase {
	return []writeCase{
		{name: "RenewMultiStream", stored: leaseStreamOwned, edit: noEdit, write: renew, want: changed(nil)},
		{name: "TakeMultiStream", stored: leaseStreamOwned, edit: noEdit, write: takeBy("worker-2"),
			want: changed(func(l *lease.Lease) { l.Owner = "worker-2"; l.OwnerSwitchesSinceCheckpoint++ })},
		{name: "ReleaseMultiStream", stored: leaseStreamOwned, edit: noEdit, write: release,
			want: changed(func(l *lease.Lease) { l.Owner = "" })},
		{name: "CheckpointMultiStream", stored: leaseStreamOwned, write: updateCheckpoint,
			edit: func(l *lease.Lease) {
				l.Checkpoint = checkpoint.ShardEnd
				l.ChildShardIDs = []string{"shardId-000000000001", "shardId-000000000002"}
			},
			want: changed(func(l *lease.Lease) {
				l.Checkpoint, l.OwnerSwitchesSinceCheckpoint = checkpoint.ShardEnd, 0
				l.ChildShardIDs = []string{"shardId-000000000001", "shardId-000000000002"}
			})},
		{name: "TakeMultiStreamStale", stored: leaseStreamNew, edit: staleCounter, write: takeBy("worker-2"), wantErr: lease.ErrConflict},
	}
}

// testMultiStreamLeases: leases of several streams, with the same shard
// ids, live side by side in one table; each lists with its stream and shard
// and is deleted by its own key.
func testMultiStreamLeases(t *testing.T, s lease.Store) {
	ctx := testContext(t)
	create(t, s, leaseStreamOwned, leaseNew, leaseStreamNew)
	got := list(t, s)
	length(t, got, 3)
	// Sorted by key: the identifiers start with the account's digits.
	requireLease(t, leaseStreamOwned, got[0])
	requireLease(t, leaseStreamNew, got[1])
	requireLease(t, leaseNew, got[2])
	equal(t, "shardId-000000000000", got[0].Shard())
	equal(t, "shardId-000000000000", got[1].Shard())

	other := leaseStreamNew.Clone()
	other.Checkpoint = checkpoint.Latest
	errorIs(t, s.Create(ctx, other), lease.ErrLeaseExists, "the same stream and shard again")

	noError(t, s.Delete(ctx, leaseStreamNew.Key))
	got = list(t, s)
	length(t, got, 2)
	requireLease(t, leaseStreamOwned, got[0], "the other stream's lease of the same shard stays")
}

// testCreateInvalidMultiStream: a lease whose stream, shard and key
// disagree is refused, so that no table holds a row the KCL would read as
// another shard.
func testCreateInvalidMultiStream(t *testing.T, s lease.Store) {
	cases := []struct {
		name string
		edit func(*lease.Lease)
	}{
		{"KeyIsTheShard", func(l *lease.Lease) { l.Key = l.ShardID }},
		{"KeyOfAnotherShard", func(l *lease.Lease) { l.ShardID = "shardId-000000000001" }},
		{"KeyOfAnotherStream", func(l *lease.Lease) { l.StreamID = streamAudit }},
		{"ShardWithoutStream", func(l *lease.Lease) { l.StreamID = lease.StreamID{} }},
		{"StreamWithoutShard", func(l *lease.Lease) { l.ShardID = "" }},
		{"InvalidAccount", func(l *lease.Lease) {
			l.StreamID.Account = "acct"
			l.Key = l.StreamID.LeaseKey(l.ShardID)
		}},
		{"ZeroEpoch", func(l *lease.Lease) {
			l.StreamID.CreationEpoch = 0
			l.Key = l.StreamID.LeaseKey(l.ShardID)
		}},
	}
	for _, tc := range cases {
		l := leaseStreamOwned.Clone()
		tc.edit(&l)
		errorIs(t, s.Create(testContext(t), l), lease.ErrInvalidLease, tc.name)
	}
	length(t, list(t, s), 0, "no invalid lease was written")
}
