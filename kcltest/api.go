package kcltest

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// maxLimit is the service's bound on GetRecords' Limit and ListShards'
// MaxResults.
const maxLimit = 10000

// nextTokenLifetime is how long a ListShards NextToken stays valid.
const nextTokenLifetime = 300 * time.Second

// ListShards implements the call of the Kinesis API: the shards of the
// stream that retention has not removed, in id order, in pages of
// MaxResults (default 1000, capped by WithShardsPerPage). As the service, it
// refuses StreamName, ExclusiveStartShardId or ShardFilter together with
// NextToken, and a NextToken older than 300 seconds. ShardFilter is not
// supported: it is refused with an *types.InvalidArgumentException rather
// than ignored.
func (s *Stream) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if err := s.call(ctx, OpListShards); err != nil {
		return nil, err
	}
	after, err := s.listStart(in)
	if err != nil {
		return nil, err
	}
	limit := DefaultShardsPerPage
	if in.MaxResults != nil {
		if n := aws.ToInt32(in.MaxResults); n < 1 || n > maxLimit {
			return nil, invalidArgument(fmt.Sprintf("MaxResults %d: must be 1 to %d", n, maxLimit))
		}
		limit = int(aws.ToInt32(in.MaxResults))
	}
	limit = min(limit, s.options.shardsPerPage)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	out := &kinesis.ListShardsOutput{}
	for _, sh := range s.shards {
		if sh.id <= after {
			continue
		}
		if len(out.Shards) == limit {
			out.NextToken = aws.String(s.nextToken(aws.ToString(out.Shards[limit-1].ShardId)))
			break
		}
		out.Shards = append(out.Shards, describe(sh))
	}
	return out, nil
}

// listStart checks a ListShards input and returns the shard id the page
// starts after ("" for the first).
func (s *Stream) listStart(in *kinesis.ListShardsInput) (string, error) {
	if in.ShardFilter != nil {
		return "", invalidArgument("kcltest: ListShards with a ShardFilter is not supported")
	}
	if in.NextToken == nil {
		if err := s.checkStream(in.StreamName, in.StreamARN); err != nil {
			return "", err
		}
		return aws.ToString(in.ExclusiveStartShardId), nil
	}
	if in.StreamName != nil || in.ExclusiveStartShardId != nil || in.StreamCreationTimestamp != nil {
		return "", invalidArgument("NextToken and StreamName, ExclusiveStartShardId or StreamCreationTimestamp cannot be provided together")
	}
	return s.parseNextToken(aws.ToString(in.NextToken))
}

// A NextToken is the stream (see Stream.token), the last shard id of the
// page and when it was issued, encoded so that callers treat it as opaque.
func (s *Stream) nextToken(lastShard string) string {
	return s.token(lastShard, strconv.FormatInt(time.Now().UnixNano(), 10))
}

func (s *Stream) parseNextToken(token string) (string, error) {
	parts, err := s.readToken(token, "NextToken", 2)
	if err != nil {
		return "", err
	}
	issued, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", invalidArgument("invalid NextToken")
	}
	if time.Since(time.Unix(0, issued)) >= nextTokenLifetime {
		return "", &types.ExpiredNextTokenException{Message: aws.String("The timestamp on NextToken has expired.")}
	}
	return parts[0], nil
}

// checkStream checks that a call names this stream, by name or ARN, and
// that the stream has not been deleted.
func (s *Stream) checkStream(name, arn *string) error {
	switch {
	case name == nil && arn == nil:
		return invalidArgument("either StreamName or StreamARN must be provided")
	case name != nil && *name != s.name, arn != nil && *arn != s.arn, s.isDeleted():
		id := aws.ToString(name)
		if id == "" {
			id = aws.ToString(arn)
		}
		return s.streamNotFound(id)
	}
	return nil
}

// call starts a call of op: it counts it and returns the context's error
// or an injected fault, if any.
func (s *Stream) call(ctx context.Context, op Op) error {
	if err := s.enter(op); err != nil {
		return err
	}
	return ctx.Err()
}

// GetShardIterator implements the call of the Kinesis API, for every
// iterator type. A sequence number must be one of the shard's records (or of
// those retention removed); an AT_TIMESTAMP iterator starts at the first
// record that arrived at or after the timestamp. Iterators expire after 5
// minutes (IteratorLifetime).
func (s *Stream) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	if err := s.call(ctx, OpGetShardIterator); err != nil {
		return nil, err
	}
	if err := s.checkStream(in.StreamName, in.StreamARN); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := aws.ToString(in.ShardId)
	sh := s.liveShard(id)
	if sh == nil {
		return nil, s.shardNotFound(id)
	}
	pos, err := s.startPosition(sh, in)
	if err != nil {
		return nil, err
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(s.iterator(sh.id, pos))}, nil
}

// startPosition returns the sequence number an iterator starts at: its
// first record is the first at or after it.
func (s *Stream) startPosition(sh *shard, in *kinesis.GetShardIteratorInput) (uint64, error) {
	latest := s.seq.Load() + 1
	if sh.closed {
		latest = sh.lastSeq + 1
	}
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
		return 0, nil
	case types.ShardIteratorTypeLatest:
		return latest, nil
	case types.ShardIteratorTypeAtTimestamp:
		if in.Timestamp == nil {
			return 0, invalidArgument("AT_TIMESTAMP needs a Timestamp")
		}
		at := *in.Timestamp
		i := sort.Search(len(sh.log), func(i int) bool { return !sh.log[i].arrival.Before(at) })
		if i < len(sh.log) {
			return sh.log[i].seq, nil
		}
		return latest, nil
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		n, err := s.recordSeq(sh, aws.ToString(in.StartingSequenceNumber))
		if err != nil {
			return 0, err
		}
		if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber {
			n++
		}
		return n, nil
	}
	return 0, invalidArgument(fmt.Sprintf("invalid ShardIteratorType %q", in.ShardIteratorType))
}

// recordSeq parses a sequence number that must be one of sh's records, or
// one of those retention removed from it.
func (s *Stream) recordSeq(sh *shard, seq string) (uint64, error) {
	n, ok := parseSeq(seq)
	if ok && n >= sh.firstSeq && (!sh.closed || n <= sh.lastSeq) {
		i := sort.Search(len(sh.log), func(i int) bool { return sh.log[i].seq >= n })
		if n <= sh.expiredSeq || (i < len(sh.log) && sh.log[i].seq == n) {
			return n, nil
		}
	}
	return 0, invalidArgument(fmt.Sprintf("StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid because it did not come from this stream.",
		seq, sh.id, s.name, s.account))
}

// liveShard returns the shard with the given id after applying retention
// to it, or nil if it is not (or no longer) in the stream.
func (s *Stream) liveShard(id string) *shard {
	sh := s.byID[id]
	if sh == nil {
		return nil
	}
	horizon := time.Now().Add(-s.options.retention)
	if sh.closed && !sh.closedAt.After(horizon) {
		s.remove(sh)
		return nil
	}
	s.expireRecords(sh, horizon)
	return sh
}

// An iterator is the stream (see Stream.token), the shard, the sequence
// number to read from and when it was issued, encoded so that callers treat
// it as opaque.
func (s *Stream) iterator(shardID string, pos uint64) string {
	return s.token(shardID, strconv.FormatUint(pos, 10), strconv.FormatInt(time.Now().UnixNano(), 10))
}

type iteratorState struct {
	shardID string
	pos     uint64
	issued  time.Time
}

func (s *Stream) parseIterator(it string) (iteratorState, error) {
	parts, err := s.readToken(it, "ShardIterator", 3)
	if err != nil {
		return iteratorState{}, err
	}
	pos, err1 := strconv.ParseUint(parts[1], 10, 64)
	issued, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return iteratorState{}, invalidArgument("invalid ShardIterator")
	}
	return iteratorState{shardID: parts[0], pos: pos, issued: time.Unix(0, issued)}, nil
}

// GetRecords implements the call of the Kinesis API: up to Limit records
// (default and most 10000) and at most 10 MiB of them (see
// WithResponseBytes) from the iterator's position. Every response carries its own copy of the records' data.
//
// MillisBehindLatest is 0 when the response reaches the newest record of the
// shard; otherwise it is the age of the oldest record not yet returned, and
// at least 1, so that 0 always means caught up. At the end of a closed shard
// NextShardIterator is nil and ChildShards names the children. An iterator
// older than 5 minutes gets an *types.ExpiredIteratorException, an iterator
// of a shard retention removed a *types.ResourceNotFoundException.
func (s *Stream) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	if err := s.call(ctx, OpGetRecords); err != nil {
		return nil, err
	}
	if in.StreamARN != nil && *in.StreamARN != s.arn {
		return nil, invalidArgument("StreamARN " + *in.StreamARN + " does not match the iterator's stream")
	}
	limit := maxLimit
	if in.Limit != nil {
		if n := aws.ToInt32(in.Limit); n < 1 || n > maxLimit {
			return nil, invalidArgument(fmt.Sprintf("Limit %d: must be 1 to %d", n, maxLimit))
		}
		limit = int(aws.ToInt32(in.Limit))
	}
	it, err := s.parseIterator(aws.ToString(in.ShardIterator))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if age := now.Sub(it.issued); age >= IteratorLifetime {
		return nil, &types.ExpiredIteratorException{Message: aws.String(fmt.Sprintf(
			"Iterator expired. The iterator was created %v ago, more than the tolerated %v.", age, IteratorLifetime))}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.liveShard(it.shardID)
	if sh == nil {
		return nil, s.shardNotFound(it.shardID)
	}
	return s.read(sh, it.pos, limit, now), nil
}

// read returns a response from sh's log, starting at sequence number pos.
// The log is the only state a reader needs, so the enhanced fan-out API
// (SubscribeToShard, not served yet) can read it the same way: a
// subscription is a position in a shard's log that advances.
func (s *Stream) read(sh *shard, pos uint64, limit int, now time.Time) *kinesis.GetRecordsOutput {
	first := sort.Search(len(sh.log), func(i int) bool { return sh.log[i].seq >= pos })
	end, size := first, 0
	for end < len(sh.log) && end-first < limit && (end == first || size+sh.log[end].size <= s.options.responseBytes) {
		size += sh.log[end].size
		end++
	}
	out := &kinesis.GetRecordsOutput{Records: copyRecords(sh.log[first:end]), MillisBehindLatest: aws.Int64(0)}
	if end < len(sh.log) {
		out.MillisBehindLatest = aws.Int64(max(1, now.Sub(sh.log[end].arrival).Milliseconds()))
	}
	if sh.closed && end == len(sh.log) {
		out.ChildShards = s.children(sh.id)
		return out
	}
	next := pos
	if end > first {
		next = sh.log[end-1].seq + 1
	}
	out.NextShardIterator = aws.String(s.iterator(sh.id, next))
	return out
}

// copyRecords copies entries into records with data of their own, so that
// a caller changing the data it got changes nothing in the stream.
func copyRecords(entries []entry) []types.Record {
	out := make([]types.Record, len(entries))
	for i := range entries {
		out[i] = entries[i].record
		out[i].Data = bytes.Clone(entries[i].record.Data)
	}
	return out
}

func (s *Stream) children(id string) []types.ChildShard {
	var out []types.ChildShard
	for _, sh := range s.shards {
		for _, p := range sh.parents {
			if p == id {
				out = append(out, types.ChildShard{ShardId: aws.String(sh.id), ParentShards: append([]string(nil), sh.parents...), HashKeyRange: hashKeyRange(sh)})
			}
		}
	}
	return out
}
