package consumer

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/deagg"
)

func testDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func kinesisRecord(seq string, pk string, data []byte) types.Record {
	now := time.Unix(1700000000, 0)
	return types.Record{SequenceNumber: aws.String(seq), PartitionKey: aws.String(pk), Data: data, ApproximateArrivalTimestamp: &now}
}

func aggregate(t *testing.T, n int) []byte {
	t.Helper()
	var a deagg.Aggregator
	for i := range n {
		r, err := a.Add(fmt.Sprintf("pk-%d", i), "", []byte(fmt.Sprintf("d-%d", i)))
		require.NoError(t, err)
		require.Nil(t, r)
	}
	return a.Flush().Data
}

func TestConvertPlainAndAggregated(t *testing.T) {
	cv := converter{shardID: "s", log: testDiscard()}
	recs := []types.Record{
		kinesisRecord("10", "p", []byte("plain")),
		kinesisRecord("11", "outer", aggregate(t, 3)),
	}
	got, res, _ := cv.convert(nil, recs, -1)
	require.Len(t, got, 4)
	require.Equal(t, "plain", string(got[0].Data))
	require.False(t, got[0].Aggregated)
	require.Equal(t, time.Unix(1700000000, 0), got[0].ApproximateArrivalTimestamp)
	for i := 1; i < 4; i++ {
		require.True(t, got[i].Aggregated)
		require.Equal(t, "11", got[i].SequenceNumber)
		require.EqualValues(t, i-1, got[i].SubSequenceNumber)
		require.Equal(t, fmt.Sprintf("pk-%d", i-1), got[i].PartitionKey)
		require.Equal(t, fmt.Sprintf("d-%d", i-1), string(got[i].Data))
	}
	require.Equal(t, checkpoint.At("11", 2), res.last)
}

func TestConvertCorruptAggregateIsDeliveredWhole(t *testing.T) {
	data := aggregate(t, 3)
	data[len(data)-1] ^= 0xff // break the MD5 trailer
	cv := converter{shardID: "s", log: testDiscard()}
	got, res, _ := cv.convert(nil, []types.Record{kinesisRecord("5", "p", data)}, -1)
	require.Len(t, got, 1)
	require.Equal(t, data, got[0].Data)
	require.False(t, got[0].Aggregated)
	require.Equal(t, 1, res.corrupt)
	require.Equal(t, checkpoint.At("5", 0), res.last)
}

func TestConvertResumesAfterTheCheckpoint(t *testing.T) {
	cv := converter{shardID: "s", log: testDiscard(), resume: checkpoint.At("11", 1), resuming: true}
	recs := []types.Record{
		kinesisRecord("11", "outer", aggregate(t, 4)),
		kinesisRecord("12", "p", []byte("next")),
	}
	got, _, _ := cv.convert(nil, recs, -1)
	require.Len(t, got, 3)
	require.EqualValues(t, 2, got[0].SubSequenceNumber)
	require.EqualValues(t, 3, got[1].SubSequenceNumber)
	require.Equal(t, "next", string(got[2].Data))

	plain := converter{shardID: "s", log: testDiscard(), resume: checkpoint.At("12", 0), resuming: true}
	got, res, _ := plain.convert(nil, []types.Record{kinesisRecord("12", "p", []byte("done"))}, -1)
	require.Empty(t, got, "the checkpointed record itself is not delivered again")
	require.Equal(t, checkpoint.At("12", 0), res.last)
}

func TestConvertDeliversMisroutedAggregatesAndCountsThem(t *testing.T) {
	// The range holds exactly pk-0's hash key: pk-1..pk-4 belong elsewhere.
	k, err := deagg.HashKey("pk-0", "")
	require.NoError(t, err)
	cv := converter{shardID: "s", log: testDiscard(), hashStart: k, hashEnd: k, hasRange: true}
	got, res, _ := cv.convert(nil, []types.Record{kinesisRecord("2", "outer", aggregate(t, 5))}, -1)
	require.Len(t, got, 5, "every user record")
	require.Equal(t, 4, res.misrouted)
	require.Zero(t, res.dropped)
	require.Equal(t, checkpoint.At("2", 4), res.last)
}

func TestConvertDropsMisroutedAggregatesWhole(t *testing.T) {
	// The range holds exactly pk-0's hash key: the aggregate of pk-0..pk-4
	// was misrouted, and the KPL sent its user records again elsewhere.
	k, err := deagg.HashKey("pk-0", "")
	require.NoError(t, err)
	cv := converter{shardID: "s", log: testDiscard(), hashStart: k, hashEnd: k, hasRange: true, dropMisrouted: true}
	recs := []types.Record{
		kinesisRecord("1", "p", []byte("plain")),
		kinesisRecord("2", "outer", aggregate(t, 5)),
	}
	got, res, _ := cv.convert(nil, recs, -1)
	require.Len(t, got, 1, "only the plain record")
	require.Equal(t, "plain", string(got[0].Data))
	require.Equal(t, 5, res.dropped)
	require.Equal(t, checkpoint.At("2", 4), res.last, "the checkpoint moves past the dropped aggregate")

	// An aggregate whose user records all belong to the shard is kept.
	var a deagg.Aggregator
	for range 3 {
		_, err := a.Add("pk-0", "", []byte("x"))
		require.NoError(t, err)
	}
	got, res, _ = cv.convert(nil, []types.Record{kinesisRecord("3", "pk-0", a.Flush().Data)}, -1)
	require.Len(t, got, 3)
	require.Zero(t, res.dropped)
}

func TestBackoffGrowsWithJitterAndCaps(t *testing.T) {
	b := backoff{base: 100 * time.Millisecond, max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		d := b.next()
		w *= time.Millisecond
		require.GreaterOrEqual(t, d, w/2, "attempt %d", i+1)
		require.LessOrEqual(t, d, w, "attempt %d", i+1)
	}
	b.reset()
	require.LessOrEqual(t, b.next(), 100*time.Millisecond)
}

func TestConvertStopsInsideAnAggregateAndResumes(t *testing.T) {
	cv := converter{shardID: "s", log: testDiscard()}
	recs := []types.Record{
		kinesisRecord("1", "p", []byte("plain")),
		kinesisRecord("2", "outer", aggregate(t, 5)),
		kinesisRecord("3", "p", []byte("after")),
	}
	var got []Record
	var parts []int
	for len(recs) > 0 {
		before := len(got)
		var res convertResult
		var n int
		got, res, n = cv.convert(got, recs, 2)
		parts = append(parts, len(got)-before)
		require.Equal(t, got[len(got)-1].Position(), res.last, "the part ends at its last record")
		recs = recs[n:]
	}
	require.Equal(t, []int{2, 2, 2, 1}, parts)
	require.Len(t, got, 7)
	require.Equal(t, "plain", string(got[0].Data))
	for i := range 5 {
		require.Equal(t, fmt.Sprintf("d-%d", i), string(got[1+i].Data))
		require.EqualValues(t, i, got[1+i].SubSequenceNumber)
	}
	require.Equal(t, "after", string(got[6].Data))
}
