package kcltest

import (
	"fmt"
	"math/big"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/deagg"
)

// Stream is an in-memory Kinesis data stream. It implements the calls a
// consumer makes (ListShards, GetShardIterator, GetRecords) with the SDK's
// own input, output and error types, so it satisfies consumer.KinesisAPI; the
// test writes to it and reshards it with Put, PutAggregated, Split, Merge
// and Trim, and injects faults with FailNext, FailRate and SetFault.
//
// Each shard is a log of records in sequence-number order. Sequence numbers
// are 56-digit decimals, as the service's, increasing across the whole
// stream (across the whole Account, for its streams) in the order records
// are written, so that in a test the write order of any two records can be
// told from them, and a stream created again has numbers above the deleted
// one's, as with the service.
//
// Time is read with time.Now: record arrival timestamps, MillisBehindLatest,
// the expiry of iterators (5 minutes, as the service) and retention all
// follow the virtual clock inside a testing/synctest bubble. The stream
// starts no goroutine; retention is applied when a call looks at a shard.
//
// The zero Stream is not usable; call NewStream. Its methods are safe for
// concurrent use.
type Stream struct {
	name    string
	arn     string
	account string
	created time.Time // to the second, as DescribeStreamSummary reports it
	options options

	mu        sync.Mutex
	deleted   bool     // by Account.DeleteStream: every call fails as for a missing stream
	shards    []*shard // in creation (and id) order; trimmed shards removed
	byID      map[string]*shard
	nextShard int
	seq       *atomic.Uint64 // the last sequence number handed out; an Account's streams share it
	calls     map[Op]int
	faults    faults
}

// shard is one shard: its place in the lineage and its records.
type shard struct {
	id         string
	parents    []string // ParentShardId, then AdjacentParentShardId
	start, end deagg.Key
	firstSeq   uint64 // the first sequence number the shard may hold
	lastSeq    uint64 // once closed: the last sequence number it may hold
	closed     bool
	closedAt   time.Time
	log        []entry // in sequence-number order; retention trims the front
	expiredSeq uint64  // the last sequence number retention removed, if any
}

// entry is one record of a shard's log.
type entry struct {
	seq     uint64
	arrival time.Time
	record  types.Record // Data, PartitionKey, SequenceNumber, arrival set
	size    int          // what the record counts towards a response's 10 MiB
}

// Defaults of the stream's options.
const (
	DefaultStreamName    = "test-stream"
	DefaultAccount       = "123456789012"
	DefaultRetention     = 24 * time.Hour
	DefaultShardsPerPage = 1000
)

// The service's limits the stream enforces.
const (
	// MaxRecordBytes is the largest record: its data plus its partition
	// key, 1 MiB.
	MaxRecordBytes = deagg.MaxRecordBytes
	// MaxResponseBytes is the most record data one GetRecords response
	// carries, 10 MiB.
	MaxResponseBytes = 10 << 20
	// IteratorLifetime is how long a shard iterator stays valid.
	IteratorLifetime = 5 * time.Minute
)

// NewStream returns a stream with the given number of open shards dividing
// the hash key space evenly, named shardId-000000000000 onwards as the
// service names them. A count below 1 makes one shard.
//
// The stream belongs to the account DefaultAccount (see WithAccount) and was
// created now, to the second; DescribeStreamSummary reports both, as a
// multi-stream consumer asks. An Account holds several streams.
func NewStream(shards int, opts ...Option) *Stream {
	return newStream(shards, time.Time{}, nil, opts...)
}

// newStream makes a stream created now, or at notBefore if that is later,
// numbering its records with seq (a new counter if nil).
func newStream(shards int, notBefore time.Time, seq *atomic.Uint64, opts ...Option) *Stream {
	if seq == nil {
		seq = new(atomic.Uint64)
	}
	o := options{name: DefaultStreamName, account: DefaultAccount, retention: DefaultRetention, shardsPerPage: DefaultShardsPerPage, responseBytes: MaxResponseBytes, seed: 1}
	for _, opt := range opts {
		opt(&o)
	}
	if !isAccountID(o.account) {
		o.account = DefaultAccount
	}
	if o.retention <= 0 {
		o.retention = DefaultRetention
	}
	if o.shardsPerPage < 1 {
		o.shardsPerPage = DefaultShardsPerPage
	}
	if o.responseBytes < 1 {
		o.responseBytes = MaxResponseBytes
	}
	s := &Stream{
		name:    o.name,
		arn:     "arn:aws:kinesis:" + Region + ":" + o.account + ":stream/" + o.name,
		seq:     seq,
		account: o.account,
		created: later(time.Now().Truncate(time.Second), notBefore),
		options: o,
		byID:    map[string]*shard{},
		calls:   map[Op]int{},
		faults:  newFaults(o.seed),
	}
	shards = max(shards, 1)
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	for i := range shards {
		start := new(big.Int).Div(new(big.Int).Mul(space, big.NewInt(int64(i))), big.NewInt(int64(shards)))
		next := new(big.Int).Div(new(big.Int).Mul(space, big.NewInt(int64(i+1))), big.NewInt(int64(shards)))
		s.addShard(nil, keyOf(start), keyOf(next.Sub(next, big.NewInt(1))))
	}
	return s
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.name }

// ARN returns the stream's ARN, which consumers may use instead of its name.
func (s *Stream) ARN() string { return s.arn }

func (s *Stream) addShard(parents []string, start, end deagg.Key) *shard {
	sh := &shard{
		id:       fmt.Sprintf("shardId-%012d", s.nextShard),
		parents:  parents,
		start:    start,
		end:      end,
		firstSeq: s.seq.Load() + 1,
	}
	s.nextShard++
	s.shards = append(s.shards, sh)
	s.byID[sh.id] = sh
	return sh
}

// OpenShards returns the ids of the open shards, in id order.
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

// Shards returns every shard in the stream, open or closed, in id order, as
// ListShards describes them.
func (s *Stream) Shards() []types.Shard {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	out := make([]types.Shard, len(s.shards))
	for i, sh := range s.shards {
		out[i] = describe(sh)
	}
	return out
}

// Calls returns how many times op was called, including the calls that
// failed.
func (s *Stream) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func describe(sh *shard) types.Shard {
	d := types.Shard{
		ShardId:             aws.String(sh.id),
		HashKeyRange:        hashKeyRange(sh),
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String(formatSeq(sh.firstSeq))},
	}
	if sh.closed {
		d.SequenceNumberRange.EndingSequenceNumber = aws.String(formatSeq(sh.lastSeq))
	}
	if len(sh.parents) > 0 {
		d.ParentShardId = aws.String(sh.parents[0])
	}
	if len(sh.parents) > 1 {
		d.AdjacentParentShardId = aws.String(sh.parents[1])
	}
	return d
}

func hashKeyRange(sh *shard) *types.HashKeyRange {
	return &types.HashKeyRange{StartingHashKey: aws.String(sh.start.String()), EndingHashKey: aws.String(sh.end.String())}
}

// seqPrefix starts every sequence number, padded to the service's 56 digits.
const (
	seqPrefix = "49"
	seqDigits = 56
)

// formatSeq writes the n-th sequence number of the stream: a 56-digit
// decimal, so that consumers meet numbers beyond 64 bits as they do with the
// service, while the numeric and the string order agree.
func formatSeq(n uint64) string {
	digits := strconv.FormatUint(n, 10)
	b := make([]byte, 0, seqDigits)
	b = append(b, seqPrefix...)
	for range seqDigits - len(seqPrefix) - len(digits) {
		b = append(b, '0')
	}
	return string(append(b, digits...))
}

// parseSeq reads a sequence number written by formatSeq.
func parseSeq(s string) (uint64, bool) {
	if len(s) != seqDigits || s[:len(seqPrefix)] != seqPrefix {
		return 0, false
	}
	n, err := strconv.ParseUint(s[len(seqPrefix):], 10, 64)
	return n, err == nil
}

func keyOf(b *big.Int) deagg.Key {
	k, err := deagg.ParseKey(b.String())
	if err != nil {
		panic("kcltest: hash key out of range: " + b.String()) // callers check the range
	}
	return k
}
