// Package fakekinesis is an in-memory Kinesis stream for unit tests and
// benchmarks of the consumer: it implements the three calls a consumer makes
// (ListShards, GetShardIterator, GetRecords) with the real SDK types,
// including splits, merges, ChildShards at the end of a closed shard and
// fault injection. Integration tests use a real Kinesis server instead.
package fakekinesis

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

type shard struct {
	id         string
	parents    []string
	start, end *big.Int
	records    []types.Record
	closed     bool
	firstSeq   uint64
	lastSeq    uint64 // set when closed
}

// Stream is one in-memory stream. Its methods are safe for concurrent use.
type Stream struct {
	name string

	mu      sync.Mutex
	shards  []*shard
	byID    map[string]*shard
	nextNum int
	seq     uint64

	// Fault, if set, is called before every API call with the operation's
	// name; a non-nil error is returned instead of the call's result.
	Fault func(op string) error
	calls map[string]int
}

// New returns a stream with n open shards dividing the hash key space evenly.
func New(name string, n int) *Stream {
	s := &Stream{name: name, byID: map[string]*shard{}, seq: 1e18, calls: map[string]int{}}
	step := new(big.Int).Div(new(big.Int).Add(maxHashKey, big.NewInt(1)), big.NewInt(int64(n)))
	for i := 0; i < n; i++ {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Mul(step, big.NewInt(int64(i+1))), big.NewInt(1))
		if i == n-1 {
			end = new(big.Int).Set(maxHashKey)
		}
		s.addShard(nil, start, end)
	}
	return s
}

func (s *Stream) addShard(parents []string, start, end *big.Int) *shard {
	sh := &shard{id: fmt.Sprintf("shardId-%012d", s.nextNum), parents: parents, start: start, end: end, firstSeq: s.seq + 1}
	s.nextNum++
	s.shards = append(s.shards, sh)
	s.byID[sh.id] = sh
	return sh
}

// Calls returns how many times op was called.
func (s *Stream) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *Stream) enter(op string) error {
	s.mu.Lock()
	s.calls[op]++
	f := s.Fault
	s.mu.Unlock()
	if f != nil {
		return f(op)
	}
	return nil
}

// HashKey returns the hash key Kinesis routes a record by.
func HashKey(partitionKey, explicitHashKey string) *big.Int {
	if explicitHashKey != "" {
		k, _ := new(big.Int).SetString(explicitHashKey, 10)
		return k
	}
	sum := md5.Sum([]byte(partitionKey))
	return new(big.Int).SetBytes(sum[:])
}

// Put appends a record to the open shard owning its hash key and returns the
// shard id and the sequence number.
func (s *Stream) Put(partitionKey, explicitHashKey string, data []byte) (string, string) {
	k := HashKey(partitionKey, explicitHashKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sh := range s.shards {
		if !sh.closed && k.Cmp(sh.start) >= 0 && k.Cmp(sh.end) <= 0 {
			s.seq++
			seq := strconv.FormatUint(s.seq, 10)
			now := time.Now()
			sh.records = append(sh.records, types.Record{
				Data: data, PartitionKey: aws.String(partitionKey), SequenceNumber: aws.String(seq),
				ApproximateArrivalTimestamp: &now,
			})
			return sh.id, seq
		}
	}
	panic("fakekinesis: no open shard for hash key " + k.String())
}

// Split closes an open shard and opens two children divided at newStart.
func (s *Stream) Split(shardID string, newStart *big.Int) (left, right string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byID[shardID]
	if p == nil || p.closed || newStart.Cmp(p.start) <= 0 || newStart.Cmp(p.end) > 0 {
		return "", "", fmt.Errorf("fakekinesis: cannot split %s at %s", shardID, newStart)
	}
	s.close(p)
	l := s.addShard([]string{p.id}, p.start, new(big.Int).Sub(newStart, big.NewInt(1)))
	r := s.addShard([]string{p.id}, newStart, p.end)
	return l.id, r.id, nil
}

// Merge closes two adjacent open shards and opens their merged child.
func (s *Stream) Merge(a, b string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sa, sb := s.byID[a], s.byID[b]
	if sa == nil || sb == nil || sa.closed || sb.closed {
		return "", fmt.Errorf("fakekinesis: cannot merge %s and %s", a, b)
	}
	if sa.start.Cmp(sb.start) > 0 {
		sa, sb = sb, sa
	}
	if new(big.Int).Add(sa.end, big.NewInt(1)).Cmp(sb.start) != 0 {
		return "", fmt.Errorf("fakekinesis: %s and %s are not adjacent", a, b)
	}
	s.close(sa)
	s.close(sb)
	return s.addShard([]string{sa.id, sb.id}, sa.start, sb.end).id, nil
}

func (s *Stream) close(sh *shard) {
	sh.closed = true
	sh.lastSeq = s.seq
}

// Trim removes a closed shard from the stream, as retention eventually does.
func (s *Stream) Trim(shardID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, shardID)
	s.shards = slices.DeleteFunc(s.shards, func(sh *shard) bool { return sh.id == shardID })
}

// OpenShards returns the ids of the open shards.
func (s *Stream) OpenShards() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, sh := range s.shards {
		if !sh.closed {
			ids = append(ids, sh.id)
		}
	}
	return ids
}

func (s *Stream) checkStream(name, arn *string) error {
	if aws.ToString(name) != s.name && aws.ToString(arn) != "arn:aws:kinesis:us-east-1:000000000000:stream/"+s.name {
		return &types.ResourceNotFoundException{Message: aws.String("stream " + aws.ToString(name) + " not found")}
	}
	return nil
}

// ListShards implements the consumer's KinesisAPI: all shards, in pages of 2
// so that paging is exercised.
func (s *Stream) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if err := s.enter("ListShards"); err != nil {
		return nil, err
	}
	from := 0
	if in.NextToken != nil {
		n, err := strconv.Atoi(aws.ToString(in.NextToken))
		if err != nil {
			return nil, &types.InvalidArgumentException{Message: aws.String("bad token")}
		}
		from = n
	} else if err := s.checkStream(in.StreamName, in.StreamARN); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &kinesis.ListShardsOutput{}
	to := min(from+2, len(s.shards))
	for _, sh := range s.shards[from:to] {
		out.Shards = append(out.Shards, s.describe(sh))
	}
	if to < len(s.shards) {
		out.NextToken = aws.String(strconv.Itoa(to))
	}
	return out, nil
}

func (s *Stream) describe(sh *shard) types.Shard {
	d := types.Shard{
		ShardId: aws.String(sh.id),
		HashKeyRange: &types.HashKeyRange{
			StartingHashKey: aws.String(sh.start.String()), EndingHashKey: aws.String(sh.end.String()),
		},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String(strconv.FormatUint(sh.firstSeq, 10))},
	}
	if sh.closed {
		d.SequenceNumberRange.EndingSequenceNumber = aws.String(strconv.FormatUint(sh.lastSeq, 10))
	}
	if len(sh.parents) > 0 {
		d.ParentShardId = aws.String(sh.parents[0])
	}
	if len(sh.parents) > 1 {
		d.AdjacentParentShardId = aws.String(sh.parents[1])
	}
	return d
}

// GetShardIterator implements the consumer's KinesisAPI. Iterators are
// "shardId/index" strings.
func (s *Stream) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	if err := s.enter("GetShardIterator"); err != nil {
		return nil, err
	}
	if err := s.checkStream(in.StreamName, in.StreamARN); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[aws.ToString(in.ShardId)]
	if sh == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("shard not found")}
	}
	var idx int
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		idx = len(sh.records)
	case types.ShardIteratorTypeAtTimestamp:
		idx = len(sh.records)
		for i, r := range sh.records {
			if !r.ApproximateArrivalTimestamp.Before(aws.ToTime(in.Timestamp)) {
				idx = i
				break
			}
		}
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		want, err := strconv.ParseUint(strings.TrimLeft(aws.ToString(in.StartingSequenceNumber), "0"), 10, 64)
		if err != nil {
			return nil, &types.InvalidArgumentException{Message: aws.String("bad sequence number")}
		}
		idx = len(sh.records)
		for i, r := range sh.records {
			n, _ := strconv.ParseUint(aws.ToString(r.SequenceNumber), 10, 64)
			if n > want || (n == want && in.ShardIteratorType == types.ShardIteratorTypeAtSequenceNumber) {
				idx = i
				break
			}
		}
	default:
		return nil, &types.InvalidArgumentException{Message: aws.String("bad iterator type")}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(sh.id + "/" + strconv.Itoa(idx))}, nil
}

// ErrBadIterator is returned for an iterator this stream did not make.
var ErrBadIterator = errors.New("fakekinesis: bad iterator")

// GetRecords implements the consumer's KinesisAPI. MillisBehindLatest is 0
// when the response reaches the end of the shard's records, else 1000.
func (s *Stream) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	if err := s.enter("GetRecords"); err != nil {
		return nil, err
	}
	id, pos, ok := strings.Cut(aws.ToString(in.ShardIterator), "/")
	idx, err := strconv.Atoi(pos)
	if !ok || err != nil {
		return nil, ErrBadIterator
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[id]
	if sh == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("shard not found")}
	}
	limit := int(aws.ToInt32(in.Limit))
	if limit <= 0 {
		limit = 10000
	}
	end := min(idx+limit, len(sh.records))
	out := &kinesis.GetRecordsOutput{Records: sh.records[idx:end:end], MillisBehindLatest: aws.Int64(0)}
	if end < len(sh.records) {
		out.MillisBehindLatest = aws.Int64(1000)
	}
	if sh.closed && end == len(sh.records) {
		out.ChildShards = s.children(sh.id)
		return out, nil
	}
	out.NextShardIterator = aws.String(sh.id + "/" + strconv.Itoa(end))
	return out, nil
}

func (s *Stream) children(id string) []types.ChildShard {
	var out []types.ChildShard
	for _, sh := range s.shards {
		if slices.Contains(sh.parents, id) {
			out = append(out, types.ChildShard{
				ShardId: aws.String(sh.id), ParentShards: sh.parents,
				HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(sh.start.String()), EndingHashKey: aws.String(sh.end.String())},
			})
		}
	}
	return out
}
