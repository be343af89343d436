package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/deagg"
)

// streamRef names a stream by name or ARN, as the Kinesis API takes it.
type streamRef struct{ name, arn string }

func (s streamRef) set(name, arn **string) {
	if s.name != "" {
		*name = aws.String(s.name)
	}
	if s.arn != "" {
		*arn = aws.String(s.arn)
	}
}

func (o *options) streamRef() streamRef { return streamRef{name: o.stream, arn: o.streamARN} }

// shardInfo is a shard as the stream lists it.
type shardInfo struct {
	id               string
	parents          []string // parent and adjacent parent, sorted
	startKey, endKey string
	closed           bool
}

// listShards reads every page of ListShards, sorted by shard id.
func listShards(ctx context.Context, k shardReader, s streamRef) ([]shardInfo, error) {
	in := &kinesis.ListShardsInput{}
	s.set(&in.StreamName, &in.StreamARN)
	var out []shardInfo
	for {
		page, err := k.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, sh := range page.Shards {
			info := shardInfo{id: aws.ToString(sh.ShardId)}
			for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
				if aws.ToString(p) != "" {
					info.parents = append(info.parents, *p)
				}
			}
			slices.Sort(info.parents)
			if r := sh.HashKeyRange; r != nil {
				info.startKey, info.endKey = aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey)
			}
			info.closed = sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
			out = append(out, info)
		}
		if page.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
	slices.SortFunc(out, func(a, b shardInfo) int { return strings.Compare(a.id, b.id) })
	return out, nil
}

// children returns the shards listing id as a parent.
func children(shards []shardInfo, id string) []string {
	var out []string
	for _, s := range shards {
		if slices.Contains(s.parents, id) {
			out = append(out, s.id)
		}
	}
	return out
}

func findShard(shards []shardInfo, id string) (shardInfo, bool) {
	i, ok := slices.BinarySearchFunc(shards, id, func(s shardInfo, id string) int { return strings.Compare(s.id, id) })
	if !ok {
		return shardInfo{}, false
	}
	return shards[i], true
}

var timeZero time.Time

// iterator returns a shard iterator of the given type.
func iterator(ctx context.Context, k shardReader, s streamRef, shard string, typ types.ShardIteratorType, seq string, at time.Time) (*string, error) {
	in := &kinesis.GetShardIteratorInput{ShardId: aws.String(shard), ShardIteratorType: typ}
	s.set(&in.StreamName, &in.StreamARN)
	switch typ {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		in.StartingSequenceNumber = aws.String(seq)
	case types.ShardIteratorTypeAtTimestamp:
		in.Timestamp = aws.Time(at)
	}
	out, err := k.GetShardIterator(ctx, in)
	if err != nil {
		return nil, err
	}
	if out.ShardIterator == nil {
		return nil, fmt.Errorf("GetShardIterator %s of shard %s: no iterator in the response", typ, shard)
	}
	return out.ShardIterator, nil
}

// errNotInShard reports a sequence number that Kinesis says is not a record
// of the shard.
var errNotInShard = errors.New("not a record of this shard")

// checkSequence verifies that seq is a record of the shard, as far as
// Kinesis says: GetShardIterator at it must succeed.
func checkSequence(ctx context.Context, k shardReader, s streamRef, shard, seq string) error {
	_, err := iterator(ctx, k, s, shard, types.ShardIteratorTypeAtSequenceNumber, seq, time.Time{})
	if isBadSequence(err) {
		return fmt.Errorf("sequence number %s: %w: %w", seq, errNotInShard, err)
	}
	return err
}

// isBadSequence reports an error refusing a sequence number: AWS answers
// InvalidArgumentException for one that is not from the shard, the test
// server ResourceNotFoundException naming the sequence number.
func isBadSequence(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	return api.ErrorCode() == "InvalidArgumentException" ||
		api.ErrorCode() == "ResourceNotFoundException" && strings.Contains(api.ErrorMessage(), "SequenceNumber")
}

// afterRecord is the checkpoint saying that every user record of r was
// processed: its sequence number, with the sub-sequence number of its last
// user record when it is a KPL aggregate.
func afterRecord(r types.Record) checkpoint.Position {
	pos := checkpoint.At(aws.ToString(r.SequenceNumber), 0)
	if deagg.IsAggregated(r.Data) {
		if users, err := deagg.AppendUnpacked(nil, r.Data); err == nil && len(users) > 0 {
			pos.SubSequenceNumber = users[len(users)-1].SubSequenceNumber
		}
	}
	return pos
}

// maxReads bounds the GetRecords calls of one scan of a shard (10,000
// records each).
const maxReads = 1000

// lastBefore reads the shard forward from it and returns the last record
// that arrived before t, or nil if the first record read arrived at or after
// t, or if there is none. It stops at the first record at or after t, at the
// end of a closed shard, or once caught up with the stream.
func lastBefore(ctx context.Context, k shardReader, it *string, t time.Time) (*types.Record, error) {
	var last *types.Record
	for range maxReads {
		out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
		if err != nil {
			return nil, err
		}
		for i := range out.Records {
			r := out.Records[i]
			if r.ApproximateArrivalTimestamp != nil && !r.ApproximateArrivalTimestamp.Before(t) {
				return last, nil
			}
			last = &r
		}
		it = out.NextShardIterator
		if it == nil || len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			return last, nil
		}
	}
	return nil, fmt.Errorf("more than %d reads without reaching the time", maxReads)
}

// positionAt returns the checkpoint from which a worker resumes at the
// first record that arrived at or after t: the last user record before it,
// or TRIM_HORIZON when no record in the shard is older. (A checkpoint says
// what was processed; the KCL stores no timestamp for AT_TIMESTAMP.)
//
// Kinesis reads only forward, so it looks back from t in doubling steps
// (1 s, 2 s, 4 s, ...), reading forward to t from each, until it finds a
// record before t or reaches the oldest record.
func positionAt(ctx context.Context, k shardReader, s streamRef, shard string, t time.Time) (checkpoint.Position, error) {
	it, err := iterator(ctx, k, s, shard, types.ShardIteratorTypeTrimHorizon, "", time.Time{})
	if err != nil {
		return checkpoint.Position{}, err
	}
	oldest, err := firstRecord(ctx, k, it)
	if err != nil {
		return checkpoint.Position{}, err
	}
	if oldest == nil || !oldest.ApproximateArrivalTimestamp.Before(t) {
		return checkpoint.TrimHorizon, nil
	}
	for back := time.Second; ; back *= 2 {
		from := t.Add(-back)
		if !from.After(*oldest.ApproximateArrivalTimestamp) {
			it, err = iterator(ctx, k, s, shard, types.ShardIteratorTypeTrimHorizon, "", time.Time{})
		} else {
			it, err = iterator(ctx, k, s, shard, types.ShardIteratorTypeAtTimestamp, "", from)
		}
		if err != nil {
			return checkpoint.Position{}, err
		}
		last, err := lastBefore(ctx, k, it, t)
		if err != nil {
			return checkpoint.Position{}, err
		}
		if last != nil {
			return afterRecord(*last), nil
		}
		if !from.After(*oldest.ApproximateArrivalTimestamp) {
			// Trimmed since the first read: nothing older remains.
			return checkpoint.TrimHorizon, nil
		}
	}
}

// firstRecord returns the first record from it, or nil when the shard has
// none.
func firstRecord(ctx context.Context, k shardReader, it *string) (*types.Record, error) {
	for range maxReads {
		out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1)})
		if err != nil {
			return nil, err
		}
		if len(out.Records) > 0 {
			r := out.Records[0]
			if r.ApproximateArrivalTimestamp == nil {
				return nil, fmt.Errorf("record %s has no arrival time", aws.ToString(r.SequenceNumber))
			}
			return &r, nil
		}
		it = out.NextShardIterator
		if it == nil || aws.ToInt64(out.MillisBehindLatest) == 0 {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("no record after %d reads", maxReads)
}
