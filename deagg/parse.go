package deagg

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
)

// span is the byte range [start, end) of a key in the message.
type span struct{ start, end int }

// tables is the first pass over an AggregatedRecord: where its keys and
// records are. Protobuf fields may come in any order, so the tables must be
// known before any record's indices can be resolved.
type tables struct {
	pks, ehks, recs []span
}

// maxPooledSpans bounds the tables kept for reuse, so that one huge aggregate
// does not pin its scratch memory in the pool.
const maxPooledSpans = 4096

var tablesPool = sync.Pool{New: func() any { return new(tables) }}

func getTables() *tables { return tablesPool.Get().(*tables) }

func putTables(t *tables) {
	if max(cap(t.pks), cap(t.ehks), cap(t.recs)) > maxPooledSpans {
		return
	}
	t.pks, t.ehks, t.recs = t.pks[:0], t.ehks[:0], t.recs[:0]
	tablesPool.Put(t)
}

// scan records where the keys and records of body, the message, are,
// checking every top-level field's framing.
func (t *tables) scan(body []byte) error {
	for off := 0; off < len(body); {
		if end, ok := t.scanFast(body, off); ok {
			off = end
			continue
		}
		num, typ, n, bad := consumeTag(body[off:])
		if bad != "" {
			return malformed(off, fieldName{}, bad)
		}
		if num != fieldPartitionKeyTable && num != fieldExplicitHashKeyTable && num != fieldRecords {
			m := protowire.ConsumeFieldValue(num, typ, body[off+n:])
			if m < 0 {
				return malformed(off+n, fieldName{top: num}, protowire.ParseError(m).Error())
			}
			off += n + m
			continue
		}
		v, err := consumeBytesField(body, 0, off, n, typ, fieldName{top: num, record: len(t.recs)})
		if err != nil {
			return err
		}
		if err := t.add(num, v, off); err != nil {
			return err
		}
		off = v.end
	}
	return nil
}

// scanFast records the field at off if it is laid out as the KPL writes
// them: a one-byte tag of a table entry or record, a length of one or two
// bytes, and a record long enough to be valid. Otherwise scan decodes the
// field in general.
func (t *tables) scanFast(body []byte, off int) (int, bool) {
	if off+3 > len(body) {
		return 0, false
	}
	l, start := int(body[off+1]), off+2
	if l >= 0x80 {
		if body[off+2] >= 0x80 {
			return 0, false
		}
		l, start = l&0x7f|int(body[off+2])<<7, off+3
	}
	end := start + l
	if end > len(body) {
		return 0, false
	}
	switch body[off] {
	case 0x0a: // partition_key_table
		t.pks = append(t.pks, span{start, end})
	case 0x12: // explicit_hash_key_table
		t.ehks = append(t.ehks, span{start, end})
	case 0x1a: // records
		if l < minRecordLen {
			return 0, false
		}
		t.recs = append(t.recs, span{start, end})
	default:
		return 0, false
	}
	return end, true
}

// add records one table entry or record.
func (t *tables) add(num protowire.Number, v span, off int) error {
	switch num {
	case fieldPartitionKeyTable:
		t.pks = append(t.pks, v)
	case fieldExplicitHashKeyTable:
		t.ehks = append(t.ehks, v)
	default:
		if v.end-v.start < minRecordLen {
			return malformed(off, fieldName{top: fieldRecords, record: len(t.recs)},
				fmt.Sprintf("%d bytes cannot hold partition_key_index and data", v.end-v.start))
		}
		t.recs = append(t.recs, v)
	}
	return nil
}

// consumeTag is protowire.ConsumeTag, also rejecting field numbers above
// 2^29-1 as protobuf decoders do. It returns why the tag is invalid, or "".
// One-byte tags (fields 1 to 15, all of the format's) take an inlined path.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int, string) {
	if len(b) > 0 && b[0] < 0x80 && b[0] >= 1<<3 {
		return protowire.Number(b[0] >> 3), protowire.Type(b[0] & 7), 1, ""
	}
	return consumeTagSlow(b)
}

func consumeTagSlow(b []byte) (protowire.Number, protowire.Type, int, string) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, n, protowire.ParseError(n).Error()
	}
	if num > protowire.MaxValidNumber {
		return 0, 0, -1, fmt.Sprintf("field number %d above %d", num, protowire.MaxValidNumber)
	}
	return num, typ, n, ""
}

// consumeBytesField reads the length-delimited value of the field whose tag,
// n bytes long, starts at off, and returns where the value lies in b. b starts
// base bytes into the message.
func consumeBytesField(b []byte, base, off, n int, typ protowire.Type, field fieldName) (span, error) {
	if typ != protowire.BytesType {
		return span{}, wrongType(base+off, field, typ, protowire.BytesType)
	}
	l, m := consumeVarint(b[off+n:])
	start := off + n + m
	if m < 0 {
		return span{}, malformed(base+off+n, field, protowire.ParseError(m).Error())
	}
	if l > uint64(len(b)-start) {
		return span{}, malformed(base+off+n, field, fmt.Sprintf("length %d exceeds the %d bytes left", l, len(b)-start))
	}
	return span{start, start + int(l)}, nil
}

// consumeVarint is protowire.ConsumeVarint with one-byte values inlined.
func consumeVarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return protowire.ConsumeVarint(b)
}

// keyString converts the keys of body to one string, the only allocation of
// a call, and returns it with the offset in body it starts at: keys are then
// substrings of it. Normally (the KPL writes the tables together) that is the
// range of body from the first key to the last; if that range holds mostly
// other bytes (records between table entries), the keys are copied together
// instead, so that a retained key does not pin the records' data.
func (t *tables) keyString(body []byte) (string, int) {
	lo, hi, total := len(body), 0, 0
	for _, tab := range [2][]span{t.pks, t.ehks} {
		for _, s := range tab {
			lo, hi, total = min(lo, s.start), max(hi, s.end), total+s.end-s.start
		}
	}
	if lo >= hi { // no keys, or only empty ones
		return "", lo
	}
	if gap := hi - lo - total; gap > total && gap > 256 {
		return t.compactKeys(body, total), 0
	}
	return string(body[lo:hi]), lo
}

// compactKeys copies the keys of body into one string of total bytes and
// rewrites the tables' spans to index it.
func (t *tables) compactKeys(body []byte, total int) string {
	var sb strings.Builder
	sb.Grow(total)
	for _, tab := range [2][]span{t.pks, t.ehks} {
		for i, s := range tab {
			tab[i] = span{sb.Len(), sb.Len() + s.end - s.start}
			sb.Write(body[s.start:s.end])
		}
	}
	return sb.String()
}

// appendRecords decodes every record of body, already scanned by t, and
// appends it to dst. On error the returned slice holds what was appended so
// far, for the caller to clear.
func (t *tables) appendRecords(dst []UserRecord, body []byte) ([]UserRecord, error) {
	keys, base := t.keyString(body)
	n := len(dst)
	// Records are decoded in place: no copies of UserRecord, and so no
	// bulk write barriers while the collector runs.
	dst = slices.Grow(dst, len(t.recs))[:n+len(t.recs)]
	var r rawRecord
	for i, v := range t.recs {
		sub := uint64(i)
		if err := parseRecord(&r, body[v.start:v.end], v.start, sub); err != nil {
			return dst[:n+i], err
		}
		if err := t.resolve(&dst[n+i], &r, keys, base, sub); err != nil {
			return dst[:n+i+1], err
		}
	}
	return dst, nil
}

// resolve looks up a record's keys in the tables and sets every field of u.
func (t *tables) resolve(u *UserRecord, r *rawRecord, keys string, base int, sub uint64) error {
	*u = UserRecord{Data: r.data, SubSequenceNumber: sub}
	if r.pkIndex >= uint64(len(t.pks)) {
		return malformed(r.pkOffset, recordField(sub, fieldPartitionKeyIndex),
			fmt.Sprintf("index %d past partition_key_table of %d entries", r.pkIndex, len(t.pks)))
	}
	s := t.pks[r.pkIndex]
	u.PartitionKey = keys[s.start-base : s.end-base]
	if !r.hasEHK {
		return nil
	}
	if r.ehkIndex >= uint64(len(t.ehks)) {
		return malformed(r.ehkOffset, recordField(sub, fieldExplicitHashKeyIndex),
			fmt.Sprintf("index %d past explicit_hash_key_table of %d entries", r.ehkIndex, len(t.ehks)))
	}
	s = t.ehks[r.ehkIndex]
	u.ExplicitHashKey = keys[s.start-base : s.end-base]
	return nil
}

// fieldName names a field for error messages, built only when one is
// reported so that the hot path does not format strings.
type fieldName struct {
	top    protowire.Number // field of AggregatedRecord; 0 for none
	record int              // index of the record, when top is records
	sub    protowire.Number // field of Record; 0 for the record itself
}

func recordField(sub uint64, num protowire.Number) fieldName {
	return fieldName{top: fieldRecords, record: int(sub), sub: num}
}

var recordFieldNames = map[protowire.Number]string{
	fieldPartitionKeyIndex:    "partition_key_index",
	fieldExplicitHashKeyIndex: "explicit_hash_key_index",
	fieldData:                 "data",
	fieldTags:                 "tags",
}

func (f fieldName) String() string {
	switch f.top {
	case 0:
		return "AggregatedRecord"
	case fieldPartitionKeyTable:
		return "partition_key_table"
	case fieldExplicitHashKeyTable:
		return "explicit_hash_key_table"
	case fieldRecords:
	default:
		return fmt.Sprintf("unknown field %d", f.top)
	}
	switch name, ok := recordFieldNames[f.sub]; {
	case f.sub == 0:
		return fmt.Sprintf("records[%d]", f.record)
	case ok:
		return fmt.Sprintf("records[%d].%s", f.record, name)
	default:
		return fmt.Sprintf("records[%d].unknown field %d", f.record, f.sub)
	}
}

// malformed returns a *MalformedError; off is relative to the message, which
// starts after the magic bytes.
func malformed(off int, field fieldName, reason string) error {
	return &MalformedError{Offset: len(Magic) + off, Field: field.String(), Reason: reason}
}

func wrongType(off int, field fieldName, got, want protowire.Type) error {
	return malformed(off, field, fmt.Sprintf("wire type %s, want %s", wireTypeName(got), wireTypeName(want)))
}

func wireTypeName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "length-delimited"
	case protowire.StartGroupType:
		return "start-group"
	case protowire.EndGroupType:
		return "end-group"
	case protowire.Fixed32Type:
		return "fixed32"
	default:
		return fmt.Sprintf("%d", t)
	}
}
