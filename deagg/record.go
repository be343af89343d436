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
	var r rawRecord
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return r, malformed(base+off, recordField(sub, 0), protowire.ParseError(n).Error())
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
		v, m := protowire.ConsumeVarint(b[off+n:])
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
