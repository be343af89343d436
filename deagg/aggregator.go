package deagg

import (
	"crypto/md5"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// AggregatedRecord is a finished aggregate, ready to put to Kinesis.
type AggregatedRecord struct {
	// PartitionKey is the partition key to put the record with: the first
	// user record's, as the kinesis-aggregation libraries do. (The KPL
	// sends "a" and always an explicit hash key instead; both route the
	// record to the first user record's shard.)
	PartitionKey string
	// ExplicitHashKey is the explicit hash key to put the record with: the
	// first user record's, or "" if it had none.
	ExplicitHashKey string
	// Data is the record's data: magic bytes, message, MD5. The caller owns
	// it.
	Data []byte
	// Records is how many user records Data holds.
	Records int
}

// Aggregator packs user records into aggregated records, byte for byte as
// the KPL encodes them (tables first, then records, fields in field number
// order, keys deduplicated), so any deaggregator reads them. Unlike the KPL,
// which puts a lone record as it is, it wraps even a single record, so that
// every record it returns is an aggregate.
//
// The zero Aggregator is ready to use. An Aggregator is not safe for
// concurrent use.
type Aggregator struct {
	// MaxBytes caps each aggregated record's size as Kinesis counts it:
	// len(Data) + len(PartitionKey). Zero means [MaxRecordBytes] (1 MiB),
	// Kinesis's limit; the KPL's own default is 50 KiB. Set it before the
	// first Add.
	MaxBytes int

	pkTable, ehkTable, records []byte // encoded fields of the pending aggregate
	pkIndex, ehkIndex          map[string]uint64
	first                      UserRecord // keys of the pending aggregate's first record
	n                          int
}

// Add adds a user record. The record's data is copied, so the caller may
// reuse it. explicitHashKey may be "" (none); otherwise it must be a decimal
// in [0, 2^128-1].
//
// If the record does not fit in the pending aggregate, Add finishes that
// aggregate and returns it, and the record starts the next one; otherwise it
// returns nil. It returns an error, and changes nothing, if the partition key
// is invalid ([ErrInvalidPartitionKey]), the explicit hash key is invalid
// ([ErrInvalidHashKey]), or the record alone would not fit within MaxBytes
// ([ErrRecordTooLarge]).
func (a *Aggregator) Add(partitionKey, explicitHashKey string, data []byte) (*AggregatedRecord, error) {
	if err := validateKeys(partitionKey, explicitHashKey); err != nil {
		return nil, err
	}
	alone := overhead + len(partitionKey) + a.cost(partitionKey, explicitHashKey, len(data), true)
	if alone > a.maxBytes() {
		return nil, fmt.Errorf("%w: partition key %q: %d bytes aggregated alone, limit %d",
			ErrRecordTooLarge, partitionKey, alone, a.maxBytes())
	}
	var done *AggregatedRecord
	if a.n > 0 && a.Size()+a.cost(partitionKey, explicitHashKey, len(data), false) > a.maxBytes() {
		done = a.Flush()
	}
	a.add(partitionKey, explicitHashKey, data)
	return done, nil
}

// Flush finishes the pending aggregate and returns it, or nil if no record
// is pending. The Aggregator is then empty, ready for more records.
func (a *Aggregator) Flush() *AggregatedRecord {
	if a.n == 0 {
		return nil
	}
	data := make([]byte, 0, overhead+a.messageLen())
	data = append(data, Magic...)
	data = append(data, a.pkTable...)
	data = append(data, a.ehkTable...)
	data = append(data, a.records...)
	sum := md5.Sum(data[len(Magic):])
	data = append(data, sum[:]...)
	r := &AggregatedRecord{
		PartitionKey:    a.first.PartitionKey,
		ExplicitHashKey: a.first.ExplicitHashKey,
		Data:            data,
		Records:         a.n,
	}
	a.reset()
	return r
}

// Len returns the number of user records in the pending aggregate.
func (a *Aggregator) Len() int { return a.n }

// Size returns the size, as MaxBytes counts it, of the aggregated record
// Flush would return now; 0 if no record is pending.
func (a *Aggregator) Size() int {
	if a.n == 0 {
		return 0
	}
	return overhead + a.messageLen() + len(a.first.PartitionKey)
}

func (a *Aggregator) maxBytes() int {
	if a.MaxBytes == 0 {
		return MaxRecordBytes
	}
	return a.MaxBytes
}

func (a *Aggregator) messageLen() int {
	return len(a.pkTable) + len(a.ehkTable) + len(a.records)
}

// cost returns how many bytes adding a record would add to the message of
// the pending aggregate, or of a new one if fresh.
func (a *Aggregator) cost(pk, ehk string, dataLen int, fresh bool) int {
	pkIdx, pkNew := a.lookup(a.pkIndex, pk, fresh)
	n := protowire.SizeTag(fieldPartitionKeyIndex) + protowire.SizeVarint(pkIdx) +
		protowire.SizeTag(fieldData) + protowire.SizeBytes(dataLen)
	n = protowire.SizeTag(fieldRecords) + protowire.SizeBytes(n+a.ehkIndexCost(ehk, fresh))
	if pkNew {
		n += protowire.SizeTag(fieldPartitionKeyTable) + protowire.SizeBytes(len(pk))
	}
	if _, ehkNew := a.lookup(a.ehkIndex, ehk, fresh); ehk != "" && ehkNew {
		n += protowire.SizeTag(fieldExplicitHashKeyTable) + protowire.SizeBytes(len(ehk))
	}
	return n
}

// ehkIndexCost is the size of a record's explicit_hash_key_index field.
func (a *Aggregator) ehkIndexCost(ehk string, fresh bool) int {
	if ehk == "" {
		return 0
	}
	idx, _ := a.lookup(a.ehkIndex, ehk, fresh)
	return protowire.SizeTag(fieldExplicitHashKeyIndex) + protowire.SizeVarint(idx)
}

// lookup returns key's index in a table, and whether it would be a new entry.
func (a *Aggregator) lookup(table map[string]uint64, key string, fresh bool) (uint64, bool) {
	if fresh {
		return 0, true
	}
	if i, ok := table[key]; ok {
		return i, false
	}
	return uint64(len(table)), true
}

// add appends a record to the pending aggregate; it fits.
func (a *Aggregator) add(pk, ehk string, data []byte) {
	if a.n == 0 {
		a.first = UserRecord{PartitionKey: pk, ExplicitHashKey: ehk}
	}
	var rec [2 * (1 + binaryMaxVarint)]byte
	b := protowire.AppendTag(rec[:0], fieldPartitionKeyIndex, protowire.VarintType)
	b = protowire.AppendVarint(b, a.intern(&a.pkIndex, &a.pkTable, fieldPartitionKeyTable, pk))
	if ehk != "" {
		b = protowire.AppendTag(b, fieldExplicitHashKeyIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, a.intern(&a.ehkIndex, &a.ehkTable, fieldExplicitHashKeyTable, ehk))
	}
	inner := len(b) + protowire.SizeTag(fieldData) + protowire.SizeBytes(len(data))
	a.records = protowire.AppendTag(a.records, fieldRecords, protowire.BytesType)
	a.records = protowire.AppendVarint(a.records, uint64(inner))
	a.records = append(a.records, b...)
	a.records = protowire.AppendTag(a.records, fieldData, protowire.BytesType)
	a.records = protowire.AppendBytes(a.records, data)
	a.n++
}

// binaryMaxVarint is the longest varint, in bytes.
const binaryMaxVarint = 10

// intern returns key's index in a table, adding it to the table first if it
// is not there.
func (a *Aggregator) intern(index *map[string]uint64, table *[]byte, num protowire.Number, key string) uint64 {
	if i, ok := (*index)[key]; ok {
		return i
	}
	if *index == nil {
		*index = make(map[string]uint64)
	}
	i := uint64(len(*index))
	(*index)[key] = i
	*table = protowire.AppendTag(*table, num, protowire.BytesType)
	*table = protowire.AppendString(*table, key)
	return i
}

// reset empties the pending aggregate, keeping its buffers for reuse.
func (a *Aggregator) reset() {
	a.pkTable, a.ehkTable, a.records = a.pkTable[:0], a.ehkTable[:0], a.records[:0]
	clear(a.pkIndex)
	clear(a.ehkIndex)
	a.first, a.n = UserRecord{}, 0
}

// validateKeys checks a user record's keys as Kinesis would.
func validateKeys(pk, ehk string) error {
	switch n := utf8.RuneCountInString(pk); {
	case pk == "":
		return fmt.Errorf("%w: empty", ErrInvalidPartitionKey)
	case n > MaxPartitionKeyLen:
		return fmt.Errorf("%w: %d characters, limit %d", ErrInvalidPartitionKey, n, MaxPartitionKeyLen)
	case !utf8.ValidString(pk):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidPartitionKey, pk)
	}
	if ehk == "" {
		return nil
	}
	_, err := ParseKey(ehk)
	return err
}
