package deagg

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The reference implementation: the KPL's .proto, decoded and encoded by the
// protobuf module's own (reflective) codec. Tests compare the hand-written
// codec against it.

var referenceDesc = sync.OnceValue(func() protoreflect.MessageDescriptor {
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	req := descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	u64 := descriptorpb.FieldDescriptorProto_TYPE_UINT64.Enum()
	byt := descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	field := func(name string, num int32, l *descriptorpb.FieldDescriptorProto_Label,
		t *descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: l, Type: t}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("kpl.proto"),
		Package: proto.String("kpl"),
		Syntax:  proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("AggregatedRecord"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("partition_key_table", 1, rep, str, ""),
				field("explicit_hash_key_table", 2, rep, str, ""),
				field("records", 3, rep, msg, ".kpl.Record"),
			},
		}, {
			Name: proto.String("Tag"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("key", 1, req, str, ""),
				field("value", 2, opt, str, ""),
			},
		}, {
			Name: proto.String("Record"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("partition_key_index", 1, req, u64, ""),
				field("explicit_hash_key_index", 2, opt, u64, ""),
				field("data", 3, req, byt, ""),
				// Readers of the format ignore tags, so the reference
				// reads them as opaque bytes rather than as Tag messages.
				field("tags", 4, rep, byt, ""),
			},
		}},
	}
	f, err := protodesc.NewFile(fd, nil)
	if err != nil {
		panic(err)
	}
	return f.Messages().ByName("AggregatedRecord")
})

// referenceUnpack decodes an aggregated record with the reference codec and
// resolves keys as the KCL does. Tags are not checked (AllowPartial), since
// the format's readers ignore them.
func referenceUnpack(data []byte) ([]UserRecord, error) {
	if len(data) <= overhead || !bytes.HasPrefix(data, []byte(Magic)) {
		return nil, ErrNotAggregated
	}
	body := data[len(Magic) : len(data)-md5.Size]
	if sum := md5.Sum(body); !bytes.Equal(sum[:], data[len(data)-md5.Size:]) {
		return nil, ErrChecksum
	}
	d := referenceDesc()
	m := dynamicpb.NewMessage(d)
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	pks := m.Get(d.Fields().ByNumber(1)).List()
	ehks := m.Get(d.Fields().ByNumber(2)).List()
	recs := m.Get(d.Fields().ByNumber(3)).List()
	var out []UserRecord
	for i := range recs.Len() {
		u, err := referenceRecord(recs.Get(i).Message(), pks, ehks)
		if err != nil {
			return nil, err
		}
		u.SubSequenceNumber = uint64(i)
		out = append(out, u)
	}
	return out, nil
}

func referenceRecord(r protoreflect.Message, pks, ehks protoreflect.List) (UserRecord, error) {
	f := r.Descriptor().Fields()
	pkF, ehkF, dataF := f.ByNumber(1), f.ByNumber(2), f.ByNumber(3)
	if !r.Has(pkF) || !r.Has(dataF) {
		return UserRecord{}, fmt.Errorf("%w: required field missing", ErrMalformed)
	}
	var u UserRecord
	pk := r.Get(pkF).Uint()
	if pk >= uint64(pks.Len()) {
		return u, fmt.Errorf("%w: partition key index", ErrMalformed)
	}
	u.PartitionKey = pks.Get(int(pk)).String()
	if r.Has(ehkF) {
		ehk := r.Get(ehkF).Uint()
		if ehk >= uint64(ehks.Len()) {
			return u, fmt.Errorf("%w: explicit hash key index", ErrMalformed)
		}
		u.ExplicitHashKey = ehks.Get(int(ehk)).String()
	}
	u.Data = r.Get(dataF).Bytes()
	return u, nil
}

// referenceMarshal encodes user records as one aggregate with the reference
// codec, deduplicating keys in first-seen order as the KPL does.
func referenceMarshal(recs []UserRecord) []byte {
	d := referenceDesc()
	m := dynamicpb.NewMessage(d)
	f := d.Fields()
	pks := m.Mutable(f.ByNumber(1)).List()
	ehks := m.Mutable(f.ByNumber(2)).List()
	list := m.Mutable(f.ByNumber(3)).List()
	pkIdx, ehkIdx := map[string]uint64{}, map[string]uint64{}
	intern := func(l protoreflect.List, idx map[string]uint64, k string) uint64 {
		if i, ok := idx[k]; ok {
			return i
		}
		idx[k] = uint64(l.Len())
		l.Append(protoreflect.ValueOfString(k))
		return idx[k]
	}
	for _, u := range recs {
		r := list.NewElement().Message()
		rf := r.Descriptor().Fields()
		r.Set(rf.ByNumber(1), protoreflect.ValueOfUint64(intern(pks, pkIdx, u.PartitionKey)))
		if u.ExplicitHashKey != "" {
			r.Set(rf.ByNumber(2), protoreflect.ValueOfUint64(intern(ehks, ehkIdx, u.ExplicitHashKey)))
		}
		r.Set(rf.ByNumber(3), protoreflect.ValueOfBytes(append([]byte{}, u.Data...)))
		list.Append(protoreflect.ValueOfMessage(r))
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return wrap(body)
}

// sameRecords reports how two record lists differ, or "" if they are equal
// (nil and empty Data are equal).
func sameRecords(got, want []UserRecord) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey ||
			!bytes.Equal(g.Data, w.Data) || g.SubSequenceNumber != w.SubSequenceNumber {
			return fmt.Sprintf("record %d = %+v, want %+v", i, g, w)
		}
	}
	return ""
}
