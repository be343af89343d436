package deagg

import (
	"crypto/md5"

	"google.golang.org/protobuf/encoding/protowire"
)

// pb builds protobuf messages field by field, independently of the code
// under test, so tests can write any encoding, valid or not.
type pb []byte

func (b pb) str(num protowire.Number, s string) pb {
	return pb(protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s))
}

func (b pb) msg(num protowire.Number, m pb) pb {
	return pb(protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), m))
}

func (b pb) varint(num protowire.Number, v uint64) pb {
	return pb(protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v))
}

func (b pb) tag(num protowire.Number, typ protowire.Type) pb {
	return pb(protowire.AppendTag(b, num, typ))
}

func (b pb) raw(bs ...byte) pb { return append(b, bs...) }

// rec encodes a Record with the given keys indices and data.
func rec(pk uint64, data string) pb {
	return pb(nil).varint(1, pk).str(3, data)
}

func recEHK(pk, ehk uint64, data string) pb {
	return pb(nil).varint(1, pk).varint(2, ehk).str(3, data)
}

// wrap frames a message as an aggregated record: magic, message, MD5.
func wrap(body []byte) []byte {
	sum := md5.Sum(body)
	out := append([]byte(Magic), body...)
	return append(out, sum[:]...)
}
