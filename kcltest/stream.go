package kcltest

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

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
// stream in the order records are written, so that in a test the write order
// of any two records can be told from them.
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
	options options

	mu        sync.Mutex
	shards    []*shard // in creation (and id) order; trimmed shards removed
	byID      map[string]*shard
	nextShard int
	seq       uint64 // the last sequence number handed out
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

// Option configures a Stream made by NewStream.
type Option func(*options)

type options struct {
	name          string
	retention     time.Duration
	shardsPerPage int
	responseBytes int
	seed          uint64
}

// WithName names the stream; consumers must be configured with this name
// (or the stream's ARN). Default "test-stream".
func WithName(name string) Option { return func(o *options) { o.name = name } }

// WithRetention sets how long records stay in the stream, and how long a
// closed shard stays listed after it closed. Default 24h, the service's
// default; unlike the service, shorter periods are accepted. Zero or less
// keeps the default.
func WithRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithShardsPerPage caps the shards of one ListShards page below the
// caller's MaxResults, so that a test exercises paging with few shards.
// Default 1000, the service's default page. Values below 1 keep the default.
func WithShardsPerPage(n int) Option { return func(o *options) { o.shardsPerPage = n } }

// WithResponseBytes caps the record bytes of one GetRecords response
// (always at least one record). Default MaxResponseBytes, 10 MiB, the
// service's cap. A consumer reads a shard at most 5 times a second, as the
// service allows, so the cap bounds a shard's throughput as it does with the
// service; raise it to benchmark the CPU cost of a consumer rather than the
// service's limits. Values below 1 keep the default.
func WithResponseBytes(n int) Option { return func(o *options) { o.responseBytes = n } }

// WithSeed seeds the random source of FailRate, so that a test's faults
// repeat from run to run (given the same order of calls). Default 1.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// NewStream returns a stream with the given number of open shards dividing
// the hash key space evenly, named shardId-000000000000 onwards as the
// service names them. A count below 1 makes one shard.
func NewStream(shards int, opts ...Option) *Stream {
	o := options{name: DefaultStreamName, retention: DefaultRetention, shardsPerPage: DefaultShardsPerPage, responseBytes: MaxResponseBytes, seed: 1}
	for _, opt := range opts {
		opt(&o)
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
		arn:     "arn:aws:kinesis:us-east-1:123456789012:stream/" + o.name,
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
		firstSeq: s.seq + 1,
	}
	s.nextShard++
	s.shards = append(s.shards, sh)
	s.byID[sh.id] = sh
	return sh
}

// PutResult says where a record was written.
type PutResult struct {
	// ShardID is the shard the record went to.
	ShardID string
	// SequenceNumber is the record's sequence number.
	SequenceNumber string
	// UserRecords is how many user records a consumer finds in it: the
	// number packed in it for a KPL aggregate, else 1. They are at
	// sub-sequence numbers 0 to UserRecords-1.
	UserRecords int
}

// Put writes one record to the open shard whose hash key range holds its
// hash key: the explicit hash key if not "", else the MD5 of the partition
// key, as the service routes records. The data is copied. Data that is a KPL
// aggregate (see deagg.Aggregator) is stored as is, and a consumer
// deaggregates it.
//
// It returns an *types.InvalidArgumentException, as the service would, for
// an empty partition key or one longer than 256 characters, an explicit
// hash key that is not a decimal in [0, 2^128-1], or a record (data plus
// partition key) larger than 1 MiB.
func (s *Stream) Put(partitionKey, explicitHashKey string, data []byte) (PutResult, error) {
	key, err := routeKey(partitionKey, explicitHashKey, len(data))
	if err != nil {
		return PutResult{}, err
	}
	users := 1
	if deagg.IsAggregated(data) {
		if recs, err := deagg.Unpack(data); err == nil {
			users = len(recs)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sh := range s.shards {
		if !sh.closed && key.InRange(sh.start, sh.end) {
			seq := s.append(sh, partitionKey, slices.Clone(data))
			return PutResult{ShardID: sh.id, SequenceNumber: seq, UserRecords: users}, nil
		}
	}
	// Splits and merges keep the open shards covering the key space.
	panic("kcltest: no open shard holds hash key " + key.String())
}

// PutAggregated packs the user records into one KPL aggregate (see
// deagg.Aggregator) and writes it, routed by its first user record's keys, as
// the KPL's ports route an aggregate. A user record's SubSequenceNumber is
// ignored: it is its index here. Writing an aggregate whose user records hash
// to different shards is how a test makes the consumer meet a misrouted
// aggregate, which it drops whole.
//
// It returns an error for no records, a record with invalid keys, or records
// that do not fit in one Kinesis record (1 MiB).
func (s *Stream) PutAggregated(records ...deagg.UserRecord) (PutResult, error) {
	if len(records) == 0 {
		return PutResult{}, invalidArgument("PutAggregated needs at least one user record")
	}
	var agg deagg.Aggregator
	for i, r := range records {
		done, err := agg.Add(r.PartitionKey, r.ExplicitHashKey, r.Data)
		if err != nil {
			return PutResult{}, fmt.Errorf("kcltest: user record %d: %w", i, err)
		}
		if done != nil {
			return PutResult{}, fmt.Errorf("kcltest: %d user records do not fit in one aggregate of %d bytes: %w",
				len(records), MaxRecordBytes, deagg.ErrRecordTooLarge)
		}
	}
	out := agg.Flush()
	return s.Put(out.PartitionKey, out.ExplicitHashKey, out.Data)
}

// routeKey validates a record as the service does and returns its hash key.
func routeKey(partitionKey, explicitHashKey string, dataLen int) (deagg.Key, error) {
	if n := utf8.RuneCountInString(partitionKey); n < 1 || n > deagg.MaxPartitionKeyLen {
		return deagg.Key{}, invalidArgument(fmt.Sprintf("partition key of %d characters: must be 1 to %d", n, deagg.MaxPartitionKeyLen))
	}
	if dataLen+len(partitionKey) > MaxRecordBytes {
		return deagg.Key{}, invalidArgument(fmt.Sprintf("record of %d bytes (data and partition key): at most %d", dataLen+len(partitionKey), MaxRecordBytes))
	}
	key, err := deagg.HashKey(partitionKey, explicitHashKey)
	if err != nil {
		return deagg.Key{}, invalidArgument(fmt.Sprintf("explicit hash key %q: %v", explicitHashKey, err))
	}
	return key, nil
}

// append adds a record to sh and returns its sequence number. s.mu is held.
func (s *Stream) append(sh *shard, partitionKey string, data []byte) string {
	s.seq++
	now := time.Now()
	seq := formatSeq(s.seq)
	sh.log = append(sh.log, entry{
		seq:     s.seq,
		arrival: now,
		size:    len(data) + len(partitionKey),
		record: types.Record{
			Data:                        data,
			PartitionKey:                aws.String(partitionKey),
			SequenceNumber:              aws.String(seq),
			ApproximateArrivalTimestamp: aws.Time(now),
		},
	})
	return seq
}

// Split closes an open shard and opens two children: the first with the
// hash keys below at, the second with the rest, as SplitShard with
// NewStartingHashKey at. A nil at splits the range in its middle. It returns
// the children's ids.
func (s *Stream) Split(shardID string, at *big.Int) (left, right string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.openShard(shardID)
	if err != nil {
		return "", "", err
	}
	first, last := p.start.Big(), p.end.Big()
	if at == nil {
		at = new(big.Int).Add(first, last)
		at.Add(at, big.NewInt(1)).Rsh(at, 1)
	}
	if at.Cmp(first) <= 0 || at.Cmp(last) > 0 {
		return "", "", invalidArgument(fmt.Sprintf("cannot split %s at %s: outside (%s, %s]", shardID, at, first, last))
	}
	s.close(p)
	l := s.addShard([]string{p.id}, p.start, keyOf(new(big.Int).Sub(at, big.NewInt(1))))
	r := s.addShard([]string{p.id}, keyOf(at), p.end)
	return l.id, r.id, nil
}

// Merge closes two open shards with adjacent hash key ranges and opens their
// child, as MergeShards: the child's ParentShardId is a, its
// AdjacentParentShardId b. It returns the child's id.
func (s *Stream) Merge(a, b string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sa, err := s.openShard(a)
	if err != nil {
		return "", err
	}
	sb, err := s.openShard(b)
	if err != nil {
		return "", err
	}
	lo, hi := sa, sb
	if lo.start.Compare(hi.start) > 0 {
		lo, hi = hi, lo
	}
	if next := lo.end.Big(); next.Add(next, big.NewInt(1)).Cmp(hi.start.Big()) != 0 {
		return "", invalidArgument(fmt.Sprintf("cannot merge %s and %s: their hash key ranges are not adjacent", a, b))
	}
	s.close(sa)
	s.close(sb)
	return s.addShard([]string{sa.id, sb.id}, lo.start, hi.end).id, nil
}

func (s *Stream) openShard(id string) (*shard, error) {
	sh := s.byID[id]
	switch {
	case sh == nil:
		return nil, s.shardNotFound(id)
	case sh.closed:
		return nil, &types.ResourceInUseException{Message: aws.String("shard " + id + " is closed")}
	}
	return sh, nil
}

// close closes sh: its last sequence number is the last handed out so far.
func (s *Stream) close(sh *shard) {
	sh.closed = true
	sh.closedAt = time.Now()
	sh.lastSeq = s.seq
}

// Trim removes a closed shard and its records from the stream at once, as
// retention eventually does. It returns an error for an unknown or open
// shard.
func (s *Stream) Trim(shardID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[shardID]
	switch {
	case sh == nil:
		return s.shardNotFound(shardID)
	case !sh.closed:
		return invalidArgument("cannot trim " + shardID + ": it is open")
	}
	s.remove(sh)
	return nil
}

func (s *Stream) remove(sh *shard) {
	delete(s.byID, sh.id)
	s.shards = slices.DeleteFunc(s.shards, func(x *shard) bool { return x == sh })
}

// expire applies retention: it drops the records older than the retention
// period, and the shards closed for longer than it. s.mu is held.
func (s *Stream) expire() {
	horizon := time.Now().Add(-s.options.retention)
	for _, sh := range slices.Clone(s.shards) {
		if sh.closed && !sh.closedAt.After(horizon) {
			s.remove(sh)
			continue
		}
		s.expireRecords(sh, horizon)
	}
}

// expireRecords drops sh's records that arrived at or before horizon.
func (s *Stream) expireRecords(sh *shard, horizon time.Time) {
	n := sort.Search(len(sh.log), func(i int) bool { return sh.log[i].arrival.After(horizon) })
	if n > 0 {
		sh.expiredSeq = sh.log[n-1].seq
		sh.log = slices.Delete(sh.log, 0, n)
	}
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
