package lease_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/lease"
)

func TestParseStreamID(t *testing.T) {
	id, err := lease.ParseStreamID("123456789012:orders:1680616058")
	require.NoError(t, err)
	require.Equal(t, lease.StreamID{Account: "123456789012", Name: "orders", CreationEpoch: 1680616058}, id)
	require.Equal(t, "123456789012:orders:1680616058", id.String())
	require.Equal(t, "123456789012:orders:1680616058:shardId-000000000007", id.LeaseKey("shardId-000000000007"))

	// What the KCL refuses (its StreamIdentifierTest), and a non-canonical
	// epoch, which would not serialize back to the key it came from.
	for _, s := range []string{
		":stream-name:123", "123456789abc:stream-name:123", "123456789012::123",
		"123456789012:stream-name", "123456789012:stream-name:", "123456789012:stream-name:-123",
		"123456789012:stream-name:abc", "", "::", "123456789012:stream-name:0",
		"123456789012:stream-name:0123", "123456789012:stream-name:+123",
		"123456789012:stream-name:99999999999999999999", "1:a:1:shardId-0", " 1:a:1",
	} {
		_, err := lease.ParseStreamID(s)
		require.ErrorIs(t, err, lease.ErrInvalidStreamID, "%q", s)
	}
	// The KCL accepts accounts of any number of digits when it reads them.
	id, err = lease.ParseStreamID("123456789:stream-name:123")
	require.NoError(t, err)
	require.Equal(t, "123456789", id.Account)
}

func TestParseLeaseKey(t *testing.T) {
	id, shard, err := lease.ParseLeaseKey("210987654321:audit-log.v2:1600000000:shardId-000000000007")
	require.NoError(t, err)
	require.Equal(t, lease.StreamID{Account: "210987654321", Name: "audit-log.v2", CreationEpoch: 1600000000}, id)
	require.Equal(t, "shardId-000000000007", shard)
	for _, key := range []string{
		"shardId-000000000000", // a single-stream key
		"123456789012:orders:1680616058",
		"123456789012:orders:1680616058:",
		"123456789012:orders:x:shardId-000000000000",
		"abc:orders:1680616058:shardId-000000000000",
	} {
		_, _, err := lease.ParseLeaseKey(key)
		require.ErrorIs(t, err, lease.ErrInvalidStreamID, key)
	}
}

func TestNewStreamID(t *testing.T) {
	created := time.Date(2023, 4, 4, 13, 47, 38, 500e6, time.UTC)
	id, err := lease.NewStreamID("arn:aws:kinesis:us-east-1:123456789012:stream/orders", created)
	require.NoError(t, err)
	require.Equal(t, lease.StreamID{Account: "123456789012", Name: "orders", CreationEpoch: 1680616058}, id)
	id, err = lease.NewStreamID("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a.b_c-d", created)
	require.NoError(t, err)
	require.Equal(t, "a.b_c-d", id.Name)
	for _, arn := range []string{
		"", "orders", "arn:aws:dynamodb:us-east-1:123456789012:table/leases",
		"arn:aws:kinesis::123456789012:stream/orders", "arn:aws:kinesis:us-east-1:12345678901x:stream/orders",
		"arn:aws:kinesis:us-east-1:123456789012:stream/", "arn:aws:kinesis:us-east-1:123456789012:stream/a:b",
		"arn:aws:kinesis:us-east-1:123456789012:orders", "arn:azure:kinesis:us-east-1:123456789012:stream/orders",
	} {
		_, err := lease.NewStreamID(arn, created)
		require.ErrorIs(t, err, lease.ErrInvalidStreamID, arn)
	}
	_, err = lease.NewStreamID("arn:aws:kinesis:us-east-1:123456789012:stream/orders", time.Unix(0, 0))
	require.ErrorIs(t, err, lease.ErrInvalidStreamID, "a creation time at the epoch")
}

// TestStreamIDCreationTime: the KCL leaves the epoch's unit to the
// application; both units read as the same instant and the same stream.
func TestStreamIDCreationTime(t *testing.T) {
	seconds := lease.StreamID{Account: "1", Name: "s", CreationEpoch: 1680616058}
	millis := lease.StreamID{Account: "1", Name: "s", CreationEpoch: 1680616058123}
	require.Equal(t, time.Unix(1680616058, 0), seconds.CreationTime())
	require.Equal(t, time.UnixMilli(1680616058123), millis.CreationTime())
	require.True(t, seconds.SameStream(millis))
	require.True(t, millis.SameStream(seconds))

	recreated := seconds
	recreated.CreationEpoch++
	require.False(t, seconds.SameStream(recreated), "a stream re-created with the same name is another stream")
	other := seconds
	other.Account = "2"
	require.False(t, seconds.SameStream(other))
	require.True(t, lease.StreamID{}.IsZero())
	require.Empty(t, lease.StreamID{}.String())
}

// FuzzParseStreamID: parsing never panics; what it accepts serializes back
// to the same text, and its lease keys parse back to it.
func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{"123456789012:orders:1680616058", "1:a:1", "::", "1:a:01", "1:a:b:c", "1:ü:9"} {
		f.Add(s, "shardId-000000000000")
	}
	f.Fuzz(func(t *testing.T, s, shard string) {
		id, err := lease.ParseStreamID(s)
		if err != nil {
			require.ErrorIs(t, err, lease.ErrInvalidStreamID)
			require.True(t, id.IsZero())
			return
		}
		require.NoError(t, id.Validate())
		require.Equal(t, s, id.String())
		key := id.LeaseKey(shard)
		gotID, gotShard, err := lease.ParseLeaseKey(key)
		if shard == "" {
			require.ErrorIs(t, err, lease.ErrInvalidStreamID)
			return
		}
		require.NoError(t, err)
		require.Equal(t, id, gotID)
		require.Equal(t, shard, gotShard)
		require.False(t, strings.Contains(gotID.Name, ":"))
	})
}

// FuzzParseLeaseKey: any text either parses into a stream and a shard that
// build the same key again, or fails with ErrInvalidStreamID; never a panic.
func FuzzParseLeaseKey(f *testing.F) {
	for _, s := range []string{"123456789012:orders:1680616058:shardId-000000000000", "shardId-000000000000",
		":::", "1:a:1:", "1:a:01:s", "1:a:1:s:t", "x:a:1:s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		id, shard, err := lease.ParseLeaseKey(key)
		if err != nil {
			require.ErrorIs(t, err, lease.ErrInvalidStreamID)
			return
		}
		require.NoError(t, id.Validate())
		require.NotEmpty(t, shard)
		require.Equal(t, key, id.LeaseKey(shard))
	})
}

// FuzzNewStreamID: any ARN either gives a valid identifier whose name is
// the ARN's stream, or fails with ErrInvalidStreamID; never a panic.
func FuzzNewStreamID(f *testing.F) {
	for _, s := range []string{"arn:aws:kinesis:us-east-1:123456789012:stream/orders", "arn:aws:kinesis:::stream/",
		"arn:aws-cn:kinesis:cn-north-1:1:stream/a:b", "arn:aws:s3:::bucket", ""} {
		f.Add(s)
	}
	created := time.Unix(1680616058, 0)
	f.Fuzz(func(t *testing.T, arn string) {
		id, err := lease.NewStreamID(arn, created)
		if err != nil {
			require.ErrorIs(t, err, lease.ErrInvalidStreamID)
			return
		}
		require.NoError(t, id.Validate())
		require.True(t, strings.HasSuffix(arn, ":"+id.Account+":stream/"+id.Name), "%q from %q", id, arn)
	})
}
