package lease_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

// kclMultiItems is a multi-stream lease table as the Java KCL writes it
// (DynamoDBMultiStreamLeaseSerializer): keys account:stream:epoch:shardId,
// the stream identifier in streamName and the shard id in shardId.
const kclMultiItems = "testdata/kcl-items-multistream.json"

var (
	ordersID   = lease.StreamID{Account: "123456789012", Name: "orders", CreationEpoch: 1680616058}
	paymentsID = lease.StreamID{Account: "123456789012", Name: "payments", CreationEpoch: 1680616058123} // milliseconds
	auditID    = lease.StreamID{Account: "210987654321", Name: "audit-log.v2", CreationEpoch: 1600000000}
)

// multi returns a multi-stream lease of the stream's shard, edited.
func multi(id lease.StreamID, shard string, edit func(*lease.Lease)) lease.Lease {
	l := lease.Lease{Key: id.LeaseKey(shard), StreamID: id, ShardID: shard}
	edit(&l)
	return l
}

// kclMultiLeases are the leases kclMultiItems holds, by key.
var kclMultiLeases = func() map[string]lease.Lease {
	const (
		h1 = "170141183460469231731687303715884105727"
		h2 = "170141183460469231731687303715884105728"
		hm = "340282366920938463463374607431768211455"
	)
	out := map[string]lease.Lease{}
	for _, l := range []lease.Lease{
		multi(ordersID, "shardId-000000000000", func(l *lease.Lease) {
			l.Checkpoint, l.StartingHashKey, l.EndingHashKey = checkpoint.TrimHorizon, "0", h1
		}),
		multi(ordersID, "shardId-000000000001", func(l *lease.Lease) {
			l.Owner, l.Counter, l.OwnerSwitchesSinceCheckpoint = "ip-10-0-3-17.ec2.internal:4a1c5b6e", 311, 1
			l.Checkpoint = checkpoint.At("49590338271490256608559692538361571095921575989136588898", 3)
			l.StartingHashKey, l.EndingHashKey = h2, hm
		}),
		multi(ordersID, "shardId-000000000002", func(l *lease.Lease) {
			l.Owner, l.Counter, l.Checkpoint = "worker-b", 96, checkpoint.ShardEnd
			l.ChildShardIDs = []string{"shardId-000000000003", "shardId-000000000004"}
			l.StartingHashKey, l.EndingHashKey = "0", h1
		}),
		multi(ordersID, "shardId-000000000003", func(l *lease.Lease) {
			l.Owner, l.Counter, l.Checkpoint = "worker-a", 2, checkpoint.TrimHorizon
			l.ParentShardIDs = []string{"shardId-000000000002"}
			l.StartingHashKey, l.EndingHashKey = "0", "85070591730234615865843651857942052863"
		}),
		multi(paymentsID, "shardId-000000000000", func(l *lease.Lease) {
			l.Owner, l.Counter, l.Checkpoint = "worker-b", 17, checkpoint.Latest
			l.StartingHashKey, l.EndingHashKey = "0", hm
		}),
		multi(auditID, "shardId-000000000007", func(l *lease.Lease) {
			l.Owner, l.Counter = "worker-a", 5
			l.Checkpoint = checkpoint.At("49590338271490256608559692540925702759324208523137515618", 0)
			l.PendingCheckpoint = &checkpoint.Position{SequenceNumber: "49590338271490256608559692540925702759324208523137515700", SubSequenceNumber: 2}
			l.PendingCheckpointState = []byte(`{"offset":12}`)
			l.ParentShardIDs = []string{"shardId-000000000005", "shardId-000000000006"}
			l.StartingHashKey, l.EndingHashKey = "0", hm
		}),
		multi(paymentsID, "shardId-000000000001", func(l *lease.Lease) { // KCL 3.x, a hand-off from worker-a pending
			l.Owner, l.CheckpointOwner, l.Counter, l.Checkpoint = "worker-c", "worker-a", 5021, checkpoint.AtTimestamp
			l.StartingHashKey, l.EndingHashKey = "0", hm
		}),
	} {
		out[l.Key] = l
	}
	return out
}()

// TestDecodeKCLMultiStreamItems: a KCL multi-stream table reads as its
// leases, each knowing its stream and shard; worker metrics are skipped.
func TestDecodeKCLMultiStreamItems(t *testing.T) {
	seen := 0
	for _, item := range loadItems(t, kclMultiItems) {
		key := itemKey(item)
		got, ok, err := lease.DecodeDynamoItem(item)
		require.NoError(t, err, key)
		if !ok {
			require.Equal(t, "worker-c", key)
			continue
		}
		require.Equal(t, kclMultiLeases[key], got, key)
		require.True(t, got.MultiStream(), key)
		require.Equal(t, got.ShardID, got.Shard(), key)
		seen++
	}
	require.Equal(t, len(kclMultiLeases), seen)
}

// TestEncodeMatchesKCLMultiStream: gokcl creates exactly the item the KCL
// creates for a multi-stream lease; for the KCL 3.x one, every attribute it
// writes is the KCL's.
func TestEncodeMatchesKCLMultiStream(t *testing.T) {
	for _, item := range loadItems(t, kclMultiItems) {
		l, ok, err := lease.DecodeDynamoItem(item)
		require.NoError(t, err)
		if !ok {
			continue
		}
		got := lease.EncodeDynamoItem(l)
		if _, kcl3 := item["entityType"]; kcl3 {
			for name, v := range got {
				require.Equal(t, item[name], v, "%s: attribute %s", l.Key, name)
			}
			continue
		}
		require.Equal(t, sortedSets(item), sortedSets(got), l.Key)
	}
}

// TestSingleStreamItemUnchanged: a single-stream lease is written without
// the multi-stream attributes, as before.
func TestSingleStreamItemUnchanged(t *testing.T) {
	item := lease.EncodeDynamoItem(kclLeases["shardId-000000000001"])
	require.NotContains(t, item, "streamName")
	require.NotContains(t, item, "shardId")
	l := kclLeases["shardId-000000000001"]
	require.False(t, l.MultiStream())
	require.Equal(t, l.Key, l.Shard())
}

// multiItem is a well-formed multi-stream lease row for the tests to spoil.
func multiItem() map[string]types.AttributeValue {
	item := validItem()
	item["leaseKey"] = &types.AttributeValueMemberS{Value: ordersID.LeaseKey("shardId-000000000001")}
	item["streamName"] = &types.AttributeValueMemberS{Value: ordersID.String()}
	item["shardId"] = &types.AttributeValueMemberS{Value: "shardId-000000000001"}
	return item
}

// TestDecodeMalformedMultiStream: a multi-stream row whose stream, shard and
// key cannot be read or disagree is malformed, named by its key: reading it
// as another shard (or another stream's) could resume from the wrong
// checkpoint.
func TestDecodeMalformedMultiStream(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	cases := []struct {
		name string
		edit func(map[string]types.AttributeValue)
		msg  string
	}{
		{"StreamNotString", func(m map[string]types.AttributeValue) {
			m["streamName"] = &types.AttributeValueMemberN{Value: "1"}
		}, "attribute streamName: want a string (S), found N"},
		{"StreamUnparsable", func(m map[string]types.AttributeValue) { m["streamName"] = s("orders") }, "attribute streamName"},
		{"EpochWithLeadingZero", func(m map[string]types.AttributeValue) {
			m["streamName"] = s("123456789012:orders:01680616058")
		}, "leading zeros"},
		{"ShardNotString", func(m map[string]types.AttributeValue) {
			m["shardId"] = &types.AttributeValueMemberSS{Value: []string{"a"}}
		}, "attribute shardId: want a string (S), found SS"},
		{"NoShard", func(m map[string]types.AttributeValue) { delete(m, "shardId") }, "without a shard id"},
		{"NoStream", func(m map[string]types.AttributeValue) { delete(m, "streamName") }, "without a stream"},
		{"KeyOfAnotherShard", func(m map[string]types.AttributeValue) {
			m["shardId"] = s("shardId-000000000002")
		}, `must be "123456789012:orders:1680616058:shardId-000000000002"`},
		{"KeyOfAnotherStream", func(m map[string]types.AttributeValue) {
			m["streamName"] = s("123456789012:orders:1680616059")
		}, "must be"},
	}
	for _, tc := range cases {
		item := multiItem()
		tc.edit(item)
		_, ok, err := lease.DecodeDynamoItem(item)
		require.True(t, ok, tc.name)
		require.ErrorIs(t, err, lease.ErrMalformedLease, tc.name)
		require.ErrorContains(t, err, ordersID.LeaseKey("shardId-000000000001"), tc.name)
		require.ErrorContains(t, err, tc.msg, tc.name)
	}
	// An empty streamName is no stream; with the shard id left, the row is
	// still malformed.
	item := multiItem()
	item["streamName"] = s("")
	_, _, err := lease.DecodeDynamoItem(item)
	require.ErrorIs(t, err, lease.ErrMalformedLease)
	// A multi-stream key without the attributes (not written by the KCL)
	// reads as a lease of no stream; the consumer's modes tell them apart.
	item = validItem()
	item["leaseKey"] = s(ordersID.LeaseKey("shardId-000000000001"))
	l, ok, err := lease.DecodeDynamoItem(item)
	require.True(t, ok)
	require.NoError(t, err)
	require.False(t, l.MultiStream())
}

// TestValidateMultiStream: what Create and UpdateCheckpoint refuse.
func TestValidateMultiStream(t *testing.T) {
	good := kclMultiLeases[ordersID.LeaseKey("shardId-000000000001")]
	require.NoError(t, good.Validate())
	cases := map[string]func(*lease.Lease){
		"KeyIsTheShard":    func(l *lease.Lease) { l.Key = l.ShardID },
		"NoShard":          func(l *lease.Lease) { l.ShardID = "" },
		"NoStream":         func(l *lease.Lease) { l.StreamID = lease.StreamID{} },
		"InvalidStream":    func(l *lease.Lease) { l.StreamID.Account = "acct" },
		"ZeroEpoch":        func(l *lease.Lease) { l.StreamID.CreationEpoch = 0 },
		"ColonInName":      func(l *lease.Lease) { l.StreamID.Name = "a:b" },
		"KeyOfOtherStream": func(l *lease.Lease) { l.StreamID.CreationEpoch++ },
	}
	for name, edit := range cases {
		l := good.Clone()
		edit(&l)
		require.ErrorIs(t, l.Validate(), lease.ErrInvalidLease, name)
	}
}

// FuzzDecodeMultiStreamItem: whatever a multi-stream row's key, stream and
// shard hold, decoding never panics; a row it accepts is a lease whose key
// is its stream's key for its shard, and that gokcl writes back and reads
// back equal; a row it refuses is reported as ErrMalformedLease.
func FuzzDecodeMultiStreamItem(f *testing.F) {
	f.Add(ordersID.LeaseKey("shardId-000000000001"), ordersID.String(), "shardId-000000000001")
	f.Add("1:a:1:b", "1:a:1", "b")
	f.Add("shardId-000000000001", "", "")
	f.Add("1:a:1:b", "1:a:01", "b")
	f.Add("1:a:1:b:c", "1:a:1", "b:c")
	f.Fuzz(func(t *testing.T, key, stream, shard string) {
		item := validItem()
		item["leaseKey"] = &types.AttributeValueMemberS{Value: key}
		if stream != "" {
			item["streamName"] = &types.AttributeValueMemberS{Value: stream}
		}
		if shard != "" {
			item["shardId"] = &types.AttributeValueMemberS{Value: shard}
		}
		l, ok, err := lease.DecodeDynamoItem(item)
		if !ok {
			return
		}
		if err != nil {
			require.ErrorIs(t, err, lease.ErrMalformedLease)
			return
		}
		require.NoError(t, l.Validate())
		if l.MultiStream() {
			require.Equal(t, l.StreamID.LeaseKey(l.ShardID), l.Key)
			id, sh, err := lease.ParseLeaseKey(l.Key)
			require.NoError(t, err)
			require.Equal(t, l.StreamID, id)
			require.Equal(t, l.ShardID, sh)
		}
		again, ok, err := lease.DecodeDynamoItem(lease.EncodeDynamoItem(l))
		require.True(t, ok)
		require.NoError(t, err)
		require.Equal(t, l, again)
	})
}
