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
func parseRecord(b []byte, base int, sub uint64) (rawRecord, error) {
	if r, ok := parseCanonical(b, base); ok {
		return r, nil
	}
	var r rawRecord
	for off := 0; off < len(b); {
		num, typ, n, bad := consumeTag(b[off:])
		if bad != "" {
			return r, malformed(base+off, recordField(sub, 0), bad)
		}
		end, err := r.field(b, base, off, n, num, typ, sub)
		if err != nil {
			return r, err
		}
		off = end
	}
	if !r.hasPK {
		return r, malformed(base, recordField(sub, fieldPartitionKeyIndex), "required field missing")
	}
	if !r.hasData {
		return r, malformed(base, recordField(sub, fieldData), "required field missing")
	}
	return r, nil
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

// parseCanonical decodes b if it is laid out as the KPL writes records:
// partition_key_index, then optionally explicit_hash_key_index, then data,
// each once, and nothing else. It reports false for anything else, which
// parseRecord then decodes in general.
func parseCanonical(b []byte, base int) (rawRecord, bool) {
	var r rawRecord
	if len(b) < minRecordLen || b[0] != 0x08 { // partition_key_index, varint
		return r, false
	}
	v, m := consumeVarint(b[1:])
	if m < 0 {
		return r, false
	}
	r.pkIndex, r.pkOffset, r.hasPK = v, base, true
	i := 1 + m
	if i < len(b) && b[i] == 0x10 { // explicit_hash_key_index, varint
		v, m = consumeVarint(b[i+1:])
		if m < 0 {
			return r, false
		}
		r.ehkIndex, r.ehkOffset, r.hasEHK = v, base+i, true
		i += 1 + m
	}
	if i >= len(b) || b[i] != 0x1a { // data, length-delimited
		return r, false
	}
	l, m := consumeVarint(b[i+1:])
	if m < 0 || l != uint64(len(b)-(i+1+m)) {
		return r, false
	}
	r.data, r.hasData = b[i+1+m:len(b):len(b)], true
	return r, true
}
