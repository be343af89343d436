package kcltest

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/deagg"
)

// PutResult says where a record was written.
type PutResult struct {
	// Stream is the name of the stream the record went to.
	Stream string
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
// partition key) larger than 1 MiB; and a *types.ResourceNotFoundException
// once the stream is deleted.
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
	if s.deleted {
		return PutResult{}, s.streamNotFound(s.name)
	}
	for _, sh := range s.shards {
		if !sh.closed && key.InRange(sh.start, sh.end) {
			seq := s.append(sh, partitionKey, slices.Clone(data))
			return PutResult{Stream: s.name, ShardID: sh.id, SequenceNumber: seq, UserRecords: users}, nil
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
	n := s.seq.Add(1)
	now := time.Now()
	seq := formatSeq(n)
	sh.log = append(sh.log, entry{
		seq:     n,
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
