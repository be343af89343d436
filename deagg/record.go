package deagg

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// rawRecord is a Record as encoded: key indices not yet resolved.
type rawRecord struct {
	pkIndex, ehkIndex   uint64
	pkOffset, ehkOffset int // where the index fields are, for errors
	data                []byte
	hasPK, hasEHK       bool
	hasData             bool
}

// parseRecord decodes b, the sub'th Record, which starts base bytes into the
// message. As in protobuf, the last of repeated scalar fields wins, unknown
// fields are skipped, and tags are skipped unread.
func parseRecord(r *rawRecord, b []byte, base int, sub uint64) error {
	if r.parseCanonical(b, base) {
		return nil
	}
	*r = rawRecord{}
	for off := 0; off < len(b); {
		num, typ, n, bad := consumeTag(b[off:])
		if bad != "" {
			return malformed(base+off, recordField(sub, 0), bad)
		}
		end, err := r.field(b, base, off, n, num, typ, sub)
		if err != nil {
			return err
		}
		off = end
	}
	if !r.hasPK {
		return malformed(base, recordField(sub, fieldPartitionKeyIndex), "required field missing")
	}
	if !r.hasData {
		return malformed(base, recordField(sub, fieldData), "required field missing")
	}
	return nil
}

// field decodes the field whose tag, n bytes long, is at off in b, and
// returns where the next field starts.
func (r *rawRecord) field(b []byte, base, off, n int, num protowire.Number, typ protowire.Type, sub uint64) (int, error) {
	name := recordField(sub, num)
	switch num {
	case fieldPartitionKeyIndex, fieldExplicitHashKeyIndex:
		if typ != protowire.VarintType {
			return 0, wrongType(base+off, name, typ, protowire.VarintType)
		}
		v, m := consumeVarint(b[off+n:])
		if m < 0 {
			return 0, malformed(base+off+n, name, protowire.ParseError(m).Error())
		}
		r.setIndex(num, v, base+off)
		return off + n + m, nil
	case fieldData, fieldTags:
		v, err := consumeBytesField(b, base, off, n, typ, name)
		if err != nil {
			return 0, err
		}
		if num == fieldData {
			r.data, r.hasData = b[v.start:v.end:v.end], true
		}
		return v.end, nil
	default:
		m := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if m < 0 {
			return 0, malformed(base+off+n, name, protowire.ParseError(m).Error())
		}
		return off + n + m, nil
	}
}

func (r *rawRecord) setIndex(num protowire.Number, v uint64, off int) {
	if num == fieldPartitionKeyIndex {
		r.pkIndex, r.pkOffset, r.hasPK = v, off, true
	} else {
		r.ehkIndex, r.ehkOffset, r.hasEHK = v, off, true
	}
}

// parseCanonical decodes b into r if b is laid out as the KPL writes
// records: partition_key_index, then optionally explicit_hash_key_index,
// then data, each once, with varints of at most two bytes, and nothing else.
// It reports false for anything else, leaving r to be reset and decoded in
// general.
func (r *rawRecord) parseCanonical(b []byte, base int) bool {
	if len(b) < minRecordLen || b[0] != 0x08 { // partition_key_index, varint
		return false
	}
	pk, m := shortVarint(b, 1)
	i, ehk, ehkAt := 1+m, uint64(0), -1
	if i < len(b) && b[i] == 0x10 { // explicit_hash_key_index, varint
		ehkAt = i
		ehk, m = shortVarint(b, i+1)
		i += 1 + m
	}
	if m == 0 || i >= len(b) || b[i] != 0x1a { // data, length-delimited
		return false
	}
	l, m := shortVarint(b, i+1)
	if m == 0 || l != uint64(len(b)-(i+1+m)) {
		return false
	}
	*r = rawRecord{
		pkIndex: pk, pkOffset: base, hasPK: true,
		ehkIndex: ehk, ehkOffset: base + ehkAt, hasEHK: ehkAt >= 0,
		data: b[i+1+m : len(b) : len(b)], hasData: true,
	}
	return true
}

// shortVarint decodes a varint of one or two bytes at b[i:], or returns a
// length of 0 if there is none (it is longer, or truncated). It is small
// enough to be inlined, unlike protowire.ConsumeVarint.
func shortVarint(b []byte, i int) (uint64, int) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), 1
	}
	if i+1 < len(b) && b[i+1] < 0x80 {
		return uint64(b[i]&0x7f) | uint64(b[i+1])<<7, 2
	}
	return 0, 0
}
