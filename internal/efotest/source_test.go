package efotest

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// memSource is a small in-memory stream for these tests: shards by id,
// records with increasing sequence numbers, closing with children, and
// change notification (through memNotifier).
type memSource struct {
	mu      sync.Mutex
	shards  map[string]*memShard
	seq     int
	changed map[string]chan struct{}
}

type memShard struct {
	records  []types.Record
	closed   bool
	children []types.ChildShard
}

func newMemSource(ids ...string) *memSource {
	s := &memSource{shards: map[string]*memShard{}, changed: map[string]chan struct{}{}, seq: 100}
	for _, id := range ids {
		s.shards[id] = &memShard{}
	}
	return s
}

func (s *memSource) put(shard string, data ...string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var seqs []string
	for _, d := range data {
		s.seq++
		seq := strconv.Itoa(s.seq)
		s.shards[shard].records = append(s.shards[shard].records, types.Record{
			Data: []byte(d), PartitionKey: aws.String("pk-" + d), SequenceNumber: aws.String(seq),
			ApproximateArrivalTimestamp: aws.Time(time.Now()),
		})
		seqs = append(seqs, seq)
	}
	s.wakeLocked(shard)
	return seqs
}

// close ends a shard with the given children (which become shards).
func (s *memSource) close(shard string, children ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shards[shard]
	sh.closed = true
	for _, c := range children {
		s.shards[c] = &memShard{}
		sh.children = append(sh.children, types.ChildShard{ShardId: aws.String(c), ParentShards: []string{shard},
			HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("1")}})
	}
	s.wakeLocked(shard)
}

func (s *memSource) wakeLocked(shard string) {
	if ch := s.changed[shard]; ch != nil {
		close(ch)
		delete(s.changed, shard)
	}
}

// changedChan is Notifier.Changed, for memNotifier.
func (s *memSource) changedChan(shard string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.changed[shard]
	if ch == nil {
		ch = make(chan struct{})
		s.changed[shard] = ch
	}
	return ch
}

func (s *memSource) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shards[aws.ToString(in.ShardId)]
	if sh == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no shard " + aws.ToString(in.ShardId))}
	}
	idx := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
	case types.ShardIteratorTypeLatest:
		idx = len(sh.records)
	case types.ShardIteratorTypeAtTimestamp:
		idx = slices.IndexFunc(sh.records, func(r types.Record) bool { return !r.ApproximateArrivalTimestamp.Before(*in.Timestamp) })
		if idx < 0 {
			idx = len(sh.records)
		}
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		want, err := strconv.Atoi(aws.ToString(in.StartingSequenceNumber))
		if err != nil {
			return nil, &types.InvalidArgumentException{Message: aws.String("bad sequence number")}
		}
		idx = slices.IndexFunc(sh.records, func(r types.Record) bool {
			n, _ := strconv.Atoi(*r.SequenceNumber)
			return n > want || (n == want && in.ShardIteratorType == types.ShardIteratorTypeAtSequenceNumber)
		})
		if idx < 0 {
			idx = len(sh.records)
		}
	default:
		return nil, &types.InvalidArgumentException{Message: aws.String("bad iterator type " + string(in.ShardIteratorType))}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(aws.ToString(in.ShardId) + "/" + strconv.Itoa(idx))}, nil
}

func (s *memSource) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	id, pos, _ := strings.Cut(aws.ToString(in.ShardIterator), "/")
	idx, _ := strconv.Atoi(pos)
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shards[id]
	limit := int(aws.ToInt32(in.Limit))
	if limit <= 0 {
		limit = 10000
	}
	end := min(idx+limit, len(sh.records))
	out := &kinesis.GetRecordsOutput{Records: sh.records[idx:end:end], MillisBehindLatest: aws.Int64(int64(len(sh.records)-end) * 1000)}
	if sh.closed && end == len(sh.records) {
		out.ChildShards = sh.children
		return out, nil
	}
	out.NextShardIterator = aws.String(id + "/" + strconv.Itoa(end))
	return out, nil
}

// memNotifier is memSource as a Notifier.
type memNotifier struct{ *memSource }

func (n memNotifier) Changed(shard string) <-chan struct{} { return n.changedChan(shard) }
