package consumer_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

func streamID(s *kcltest.Stream) lease.StreamID {
	return lease.StreamID{Account: s.AccountID(), Name: s.Name(), CreationEpoch: s.CreatedAt().Unix()}
}

func ids(infos []StreamInfo) []lease.StreamID {
	var out []lease.StreamID
	for _, i := range infos {
		out = append(out, i.ID)
	}
	return out
}

func mustCreate(t *testing.T, a *kcltest.Account, name string, shards int) *kcltest.Stream {
	t.Helper()
	s, err := a.CreateStream(name, shards)
	require.NoError(t, err)
	return s
}

// TestStreamSetResolves: discovered streams are described once, named by
// account, name and creation time, with their own initial positions.
func TestStreamSetResolves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		acct := kcltest.NewAccount()
		a, b := mustCreate(t, acct, "a", 1), mustCreate(t, acct, "b", 1)
		set := NewStreamSetForTest(acct, TrimHorizon, FormerStreams{})
		cfgs := []StreamConfig{{Name: "a"}, {ARN: b.ARN(), InitialPosition: Latest}, {Name: "a"}}
		added, removed := set.Update(ctx, cfgs, nil, time.Now())
		require.Empty(t, removed)
		require.ElementsMatch(t, []lease.StreamID{streamID(a), streamID(b)}, ids(added))
		for _, info := range added {
			require.Equal(t, map[string]string{"a": a.ARN(), "b": b.ARN()}[info.Name], info.ARN)
		}
		pos, ok := set.Initial(streamID(a))
		require.True(t, ok)
		require.Equal(t, TrimHorizon, pos, "Config's")
		pos, _ = set.Initial(streamID(b))
		require.Equal(t, Latest, pos, "the stream's own")

		calls := acct.Calls(kcltest.OpDescribeStreamSummary)
		added, removed = set.Update(ctx, cfgs, nil, time.Now())
		require.Empty(t, added)
		require.Empty(t, removed)
		require.Equal(t, calls, acct.Calls(kcltest.OpDescribeStreamSummary), "known streams are not described again")

		// The same stream by name and by ARN: consumed once.
		set = NewStreamSetForTest(acct, TrimHorizon, FormerStreams{})
		added, _ = set.Update(ctx, []StreamConfig{{Name: "a"}, {ARN: a.ARN()}}, nil, time.Now())
		require.Len(t, added, 1)
	})
}

// TestStreamSetAdoptsTableIdentity: a table written with the creation epoch
// in milliseconds (as some KCL applications write it) is resumed, not
// replaced by new leases.
func TestStreamSetAdoptsTableIdentity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		a := mustCreate(t, acct, "a", 1)
		millis := streamID(a)
		millis.CreationEpoch = a.CreatedAt().UnixMilli()
		table := []lease.Lease{{Key: millis.LeaseKey("shardId-000000000000"), StreamID: millis, ShardID: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon}}
		set := NewStreamSetForTest(acct, Latest, FormerStreams{})
		added, _ := set.Update(t.Context(), []StreamConfig{{Name: "a"}}, table, time.Now())
		require.Equal(t, []lease.StreamID{millis}, ids(added))
	})
}

// TestStreamSetRemovesAndDeletes: a stream missing from a discovery is
// removed; its leases follow the policy: kept; deleted after the grace
// period once Kinesis says it is gone; or deleted after it regardless.
func TestStreamSetRemovesAndDeletes(t *testing.T) {
	for _, policy := range []FormerStreamsDeletion{KeepStreamLeases, DeleteIfStreamGone, DeleteIfUndiscovered} {
		t.Run(policy.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				acct := kcltest.NewAccount()
				mustCreate(t, acct, "a", 1)
				b := mustCreate(t, acct, "b", 1)
				idB := streamID(b)
				table := []lease.Lease{{Key: idB.LeaseKey("shardId-000000000000"), StreamID: idB, ShardID: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon}}
				set := NewStreamSetForTest(acct, Latest, FormerStreams{Delete: policy, After: time.Hour})
				set.Update(ctx, []StreamConfig{{Name: "a"}, {Name: "b"}}, table, time.Now())

				start := time.Now()
				_, removed := set.Update(ctx, []StreamConfig{{Name: "a"}}, table, start)
				require.Equal(t, []lease.StreamID{idB}, ids(removed))
				require.Empty(t, set.Deletable(ctx, start.Add(time.Hour-time.Second)), "within the grace period")
				late := start.Add(time.Hour)
				switch policy {
				case KeepStreamLeases:
					require.Empty(t, set.Deletable(ctx, late.Add(1000*time.Hour)))
				case DeleteIfUndiscovered:
					require.Equal(t, []lease.StreamID{idB}, set.Deletable(ctx, late), "the stream still exists: deleted anyway")
				case DeleteIfStreamGone:
					require.Empty(t, set.Deletable(ctx, late), "the stream still exists")
					require.NoError(t, acct.DeleteStream("b"))
					require.Equal(t, []lease.StreamID{idB}, set.Deletable(ctx, late), "gone from Kinesis")
					mustCreate(t, acct, "b", 1)
					require.Equal(t, []lease.StreamID{idB}, set.Deletable(ctx, late), "created again: another stream")
				}
				set.Deleted(idB)
				require.Empty(t, set.Deletable(ctx, late.Add(1000*time.Hour)))
			})
		})
	}
}

// TestStreamSetFormerFromTable: leases of streams this worker never
// consumed (a previous run's, another worker's discovery) are former
// streams too, from the first discovery that does not name them.
func TestStreamSetFormerFromTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		mustCreate(t, acct, "a", 1)
		old := lease.StreamID{Account: acct.ID(), Name: "old", CreationEpoch: 1}
		table := []lease.Lease{{Key: old.LeaseKey("shardId-000000000000"), StreamID: old, ShardID: "shardId-000000000000", Checkpoint: checkpoint.Latest}}
		set := NewStreamSetForTest(acct, Latest, FormerStreams{Delete: DeleteIfStreamGone, After: time.Minute})
		start := time.Now()
		set.Update(t.Context(), []StreamConfig{{Name: "a"}}, table, start)
		require.Empty(t, set.Deletable(t.Context(), start.Add(59*time.Second)))
		require.Equal(t, []lease.StreamID{old}, set.Deletable(t.Context(), start.Add(time.Minute)))
		// Its leases deleted (by this worker or another): forgotten.
		set.Update(t.Context(), []StreamConfig{{Name: "a"}}, nil, start.Add(2*time.Minute))
		require.Empty(t, set.Deletable(t.Context(), start.Add(time.Hour)))
	})
}

// TestStreamSetRecreated: a stream suspected gone is described again (at
// most every RedescribeEvery); deleted and created again, it is replaced by
// the new stream, whose identity differs.
func TestStreamSetRecreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		acct := kcltest.NewAccount()
		a := mustCreate(t, acct, "a", 1)
		oldID := streamID(a)
		set := NewStreamSetForTest(acct, Latest, FormerStreams{})
		cfgs := []StreamConfig{{Name: "a"}}
		set.Update(ctx, cfgs, nil, time.Now())

		require.True(t, set.Suspect(oldID))
		added, removed := set.Update(ctx, cfgs, nil, time.Now().Add(RedescribeEvery))
		require.Empty(t, added, "still the same stream")
		require.Empty(t, removed)

		require.NoError(t, acct.DeleteStream("a"))
		fresh := mustCreate(t, acct, "a", 1)
		set.Suspect(oldID)
		added, removed = set.Update(ctx, cfgs, nil, time.Now().Add(RedescribeEvery-time.Second))
		require.Empty(t, removed, "described again only every RedescribeEvery")
		require.Empty(t, added)
		added, removed = set.Update(ctx, cfgs, nil, time.Now().Add(2*RedescribeEvery))
		require.Equal(t, []lease.StreamID{oldID}, ids(removed))
		require.Equal(t, []lease.StreamID{streamID(fresh)}, ids(added))
		require.NotEqual(t, oldID, streamID(fresh))

		// Deleted for good: removed; a discovery naming it adds nothing.
		require.NoError(t, acct.DeleteStream("a"))
		set.Suspect(streamID(fresh))
		added, removed = set.Update(ctx, cfgs, nil, time.Now().Add(4*RedescribeEvery))
		require.Equal(t, []lease.StreamID{streamID(fresh)}, ids(removed))
		require.Empty(t, added)
		require.False(t, set.Suspect(streamID(fresh)), "no longer consumed")
	})
}

// TestStreamSetDescribeFails: a stream that cannot be described is left
// for the next round, and the others are added.
func TestStreamSetDescribeFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acct := kcltest.NewAccount()
		a, b := mustCreate(t, acct, "a", 1), mustCreate(t, acct, "b", 1)
		a.FailNext(kcltest.OpDescribeStreamSummary, kcltest.ThrottlingError())
		set := NewStreamSetForTest(acct, Latest, FormerStreams{})
		cfgs := []StreamConfig{{Name: "a"}, {Name: "b"}, {Name: "missing"}}
		added, _ := set.Update(context.Background(), cfgs, nil, time.Now())
		require.Equal(t, []lease.StreamID{streamID(b)}, ids(added))
		added, _ = set.Update(context.Background(), cfgs, nil, time.Now())
		require.Equal(t, []lease.StreamID{streamID(a)}, ids(added))
	})
}

// TestStreamSetUndescribedKeepsLeases: a discovered stream that cannot be
// described (throttled, or the permission is missing) is still wanted: its
// leases are not a former stream's, whatever the policy and however long
// it lasts. Deleting them would restart it at its initial position.
func TestStreamSetUndescribedKeepsLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		acct := kcltest.NewAccount()
		a, b := mustCreate(t, acct, "a", 1), mustCreate(t, acct, "b", 1)
		idA, idB := streamID(a), streamID(b)
		table := []lease.Lease{
			{Key: idA.LeaseKey("shardId-000000000000"), StreamID: idA, ShardID: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon},
			{Key: idB.LeaseKey("shardId-000000000000"), StreamID: idB, ShardID: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon},
		}
		a.FailRate(kcltest.OpDescribeStreamSummary, 1, kcltest.ThrottlingError())
		b.FailRate(kcltest.OpDescribeStreamSummary, 1, kcltest.ThrottlingError())
		set := NewStreamSetForTest(acct, Latest, FormerStreams{Delete: DeleteIfUndiscovered, After: time.Hour})
		start := time.Now()
		cfgs := []StreamConfig{{Name: "a"}, {ARN: b.ARN()}}
		for i := range 3 {
			added, removed := set.Update(ctx, cfgs, table, start.Add(time.Duration(i)*time.Hour))
			require.Empty(t, added)
			require.Empty(t, removed)
		}
		require.Empty(t, set.Deletable(ctx, start.Add(3*time.Hour)), "discovered, not described yet: not former")
	})
}
