package deagg

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestUnpackValid(t *testing.T) {
	// Tables and data large enough for varints of two and three bytes.
	var keys pb
	for i := range 20000 {
		keys = keys.str(1, fmt.Sprint(i))
	}
	for i := range 300 {
		keys = keys.str(2, fmt.Sprint(i*7))
	}
	huge := strings.Repeat("h", 20000)
	tests := []struct {
		name string
		body pb
		want []UserRecord
	}{{
		name: "one record",
		body: pb(nil).str(1, "pk").msg(3, rec(0, "hello")),
		want: []UserRecord{{PartitionKey: "pk", Data: []byte("hello")}},
	}, {
		name: "shared and distinct keys, explicit hash keys",
		body: pb(nil).str(1, "a").str(1, "b").str(2, "42").str(2, "7").
			msg(3, rec(0, "r0")).msg(3, recEHK(1, 1, "r1")).msg(3, recEHK(0, 0, "r2")).msg(3, rec(1, "r3")),
		want: []UserRecord{
			{PartitionKey: "a", Data: []byte("r0")},
			{PartitionKey: "b", ExplicitHashKey: "7", Data: []byte("r1"), SubSequenceNumber: 1},
			{PartitionKey: "a", ExplicitHashKey: "42", Data: []byte("r2"), SubSequenceNumber: 2},
			{PartitionKey: "b", Data: []byte("r3"), SubSequenceNumber: 3},
		},
	}, {
		name: "tables after records",
		body: pb(nil).msg(3, rec(1, "x")).str(2, "9").msg(3, recEHK(0, 0, "y")).str(1, "p0").str(1, "p1"),
		want: []UserRecord{
			{PartitionKey: "p1", Data: []byte("x")},
			{PartitionKey: "p0", ExplicitHashKey: "9", Data: []byte("y"), SubSequenceNumber: 1},
		},
	}, {
		name: "fields of a record in reverse order",
		body: pb(nil).str(1, "k").msg(3, pb(nil).str(3, "d").varint(1, 0)),
		want: []UserRecord{{PartitionKey: "k", Data: []byte("d")}},
	}, {
		name: "empty data and empty key",
		body: pb(nil).str(1, "").msg(3, rec(0, "")),
		want: []UserRecord{{Data: []byte{}}},
	}, {
		name: "unknown fields of every wire type are skipped",
		body: pb(nil).varint(9, 300).tag(10, protowire.Fixed32Type).raw(1, 2, 3, 4).
			tag(11, protowire.Fixed64Type).raw(1, 2, 3, 4, 5, 6, 7, 8).str(12, "skip").
			tag(13, protowire.StartGroupType).varint(1, 5).tag(13, protowire.EndGroupType).
			str(1, "k").
			msg(3, rec(0, "d").varint(5, 1).str(6, "x").tag(7, protowire.Fixed32Type).raw(0, 0, 0, 0)),
		want: []UserRecord{{PartitionKey: "k", Data: []byte("d")}},
	}, {
		name: "tags are ignored, even without their required key",
		body: pb(nil).str(1, "k").msg(3, rec(0, "d").msg(4, pb(nil).str(2, "v")).msg(4, pb(nil).str(1, "t"))),
		want: []UserRecord{{PartitionKey: "k", Data: []byte("d")}},
	}, {
		name: "repeated scalar fields: the last wins",
		body: pb(nil).str(1, "a").str(1, "b").msg(3, rec(0, "old").varint(1, 1).str(3, "new")),
		want: []UserRecord{{PartitionKey: "b", Data: []byte("new")}},
	}, {
		name: "long varints",
		body: keys.msg(3, recEHK(150, 299, "two-byte indices")).msg(3, rec(17000, huge)).msg(3, recEHK(19999, 0, strings.Repeat("x", 200))),
		want: []UserRecord{
			{PartitionKey: "150", ExplicitHashKey: "2093", Data: []byte("two-byte indices")},
			{PartitionKey: "17000", Data: []byte(huge), SubSequenceNumber: 1},
			{PartitionKey: "19999", ExplicitHashKey: "0", Data: []byte(strings.Repeat("x", 200)), SubSequenceNumber: 2},
		},
	}, {
		name: "zero records",
		body: pb(nil).str(1, "unused").str(2, "1"),
		want: nil,
	}, {
		name: "non-minimal varints",
		body: pb(nil).str(1, "k").msg(3, pb(nil).tag(1, protowire.VarintType).raw(0x80, 0x00).str(3, "d")),
		want: []UserRecord{{PartitionKey: "k", Data: []byte("d")}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := wrap(tt.body)
			got, err := Unpack(data)
			if err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			if d := sameRecords(got, tt.want); d != "" {
				t.Fatal(d)
			}
			ref, err := referenceUnpack(data)
			if err != nil {
				t.Fatalf("reference decoder: %v", err)
			}
			if d := sameRecords(got, ref); d != "" {
				t.Fatalf("differs from the reference decoder: %s", d)
			}
		})
	}
}

func TestUnpackNotAggregated(t *testing.T) {
	valid := wrap(pb(nil).str(1, "k").msg(3, rec(0, "d")))
	tests := map[string][]byte{
		"nil":                   nil,
		"shorter than magic":    []byte(Magic[:3]),
		"magic only":            []byte(Magic),
		"magic and digest only": wrap(nil),
		"wrong magic":           append([]byte{0xF3, 0x89, 0x9A, 0xC3}, valid[4:]...),
		"plain text":            []byte("an ordinary record of twenty-some bytes"),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if IsAggregated(data) {
				t.Error("IsAggregated = true")
			}
			dst := make([]UserRecord, 1, 4)
			got, err := AppendUnpacked(dst, data)
			if err != ErrNotAggregated {
				t.Fatalf("err = %v, want ErrNotAggregated itself", err)
			}
			if len(got) != 1 {
				t.Fatalf("len = %d, want 1", len(got))
			}
		})
	}
	if !IsAggregated(valid) {
		t.Error("IsAggregated(valid) = false")
	}
}

func TestUnpackChecksum(t *testing.T) {
	valid := wrap(pb(nil).str(1, "k").msg(3, rec(0, "d")))
	for _, i := range []int{4, len(valid) / 2, len(valid) - md5.Size - 1, len(valid) - md5.Size, len(valid) - 1} {
		data := bytes.Clone(valid)
		data[i] ^= 0x01
		got, err := Unpack(data)
		if !errors.Is(err, ErrChecksum) || got != nil {
			t.Errorf("byte %d flipped: Unpack = %v, %v; want nil, ErrChecksum", i, got, err)
		}
		if !IsAggregated(data) {
			t.Errorf("byte %d flipped: IsAggregated = false; it checks framing only", i)
		}
	}
}

func TestUnpackMalformed(t *testing.T) {
	const at = len(Magic) // offsets below are into the message; errors count from the data
	good := rec(0, "d")
	tests := []struct {
		name   string
		body   pb
		field  string
		offset int
	}{
		{"truncated tag", pb(nil).str(1, "k").raw(0x80), "AggregatedRecord", 3},
		{"field number above 2^29-1", pb(nil).raw(0x82, 0x80, 0x80, 0x80, 0x10, 0x00), "AggregatedRecord", 0},
		{"record field number above 2^29-1", pb(nil).str(1, "k").msg(3, good.raw(0x82, 0x80, 0x80, 0x80, 0x10, 0x00)), "records[0]", 10},
		{"field number zero", pb(nil).raw(0x02, 0x00), "AggregatedRecord", 0},
		{"reserved wire type", pb(nil).raw(0x4e), "unknown field 9", 1},
		{"wrong wire type", pb(nil).raw(0x0e), "partition_key_table", 0},
		{"varint overflow", pb(nil).str(1, "k").tag(9, protowire.VarintType).raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
			"unknown field 9", 4},
		{"unknown field truncated", pb(nil).tag(9, protowire.Fixed64Type).raw(1, 2, 3), "unknown field 9", 1},
		{"unknown group not closed", pb(nil).tag(9, protowire.StartGroupType).varint(1, 1), "unknown field 9", 1},
		{"stray end group", pb(nil).tag(9, protowire.EndGroupType), "unknown field 9", 1},
		{"partition key length past end", pb(nil).tag(1, protowire.BytesType).raw(5, 'a'), "partition_key_table", 1},
		{"explicit hash key length past end", pb(nil).tag(2, protowire.BytesType).raw(0x80), "explicit_hash_key_table", 1},
		{"record length past end", pb(nil).str(1, "k").tag(3, protowire.BytesType).raw(100).raw(good...), "records[0]", 4},
		{"partition key table not length-delimited", pb(nil).varint(1, 1), "partition_key_table", 0},
		{"explicit hash key table not length-delimited", pb(nil).tag(2, protowire.Fixed32Type).raw(1, 2, 3, 4), "explicit_hash_key_table", 0},
		{"records not length-delimited", pb(nil).str(1, "k").msg(3, good).varint(3, 1), "records[1]", 10},
		{"record too short", pb(nil).str(1, "k").msg(3, pb(nil).varint(1, 0)), "records[0]", 3},
		{"record field truncated", pb(nil).str(1, "k").msg(3, pb(nil).varint(1, 0).raw(0x1a, 0x05, 'a')), "records[0].data", 8},
		{"record tag truncated", pb(nil).str(1, "k").msg(3, good.raw(0x80)), "records[0]", 10},
		{"partition key index not a varint", pb(nil).str(1, "k").msg(3, pb(nil).str(1, "0").str(3, "d")), "records[0].partition_key_index", 5},
		{"explicit hash key index not a varint", pb(nil).str(1, "k").str(2, "1").msg(3, good.tag(2, protowire.Fixed64Type).raw(0, 0, 0, 0, 0, 0, 0, 0)), "records[0].explicit_hash_key_index", 13},
		{"data not length-delimited", pb(nil).str(1, "k").msg(3, pb(nil).varint(1, 0).varint(3, 1)), "records[0].data", 7},
		{"tags not length-delimited", pb(nil).str(1, "k").msg(3, good.varint(4, 1)), "records[0].tags", 10},
		{"partition key index overflows", pb(nil).str(1, "k").msg(3, pb(nil).tag(1, protowire.VarintType).raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f).str(3, "d")), "records[0].partition_key_index", 6},
		{"unknown record field truncated", pb(nil).str(1, "k").msg(3, good.tag(7, protowire.Fixed32Type).raw(1)), "records[0].unknown field 7", 11},
		{"missing partition key index", pb(nil).str(1, "k").msg(3, pb(nil).str(3, "dd")), "records[0].partition_key_index", 5},
		{"missing data", pb(nil).str(1, "k").msg(3, pb(nil).varint(1, 0).varint(2, 0)), "records[0].data", 5},
		{"partition key index past table", pb(nil).str(1, "k").msg(3, good).msg(3, rec(1, "d")), "records[1].partition_key_index", 12},
		{"no partition key table", pb(nil).msg(3, good), "records[0].partition_key_index", 2},
		{"explicit hash key index past table", pb(nil).str(1, "k").str(2, "5").msg(3, recEHK(0, 1, "d")), "records[0].explicit_hash_key_index", 10},
		{"explicit hash key index past table, long fields", pb(nil).str(1, "k").str(2, "5").msg(3, recEHK(0, 300, strings.Repeat("d", 200))), "records[0].explicit_hash_key_index", 11},
		{"explicit hash key index past table, general path", pb(nil).str(1, "k").str(2, "5").msg(3, pb(nil).varint(2, 1).varint(1, 0).str(3, "d")), "records[0].explicit_hash_key_index", 8},
		{"huge index", pb(nil).str(1, "k").msg(3, rec(1<<63, "d")), "records[0].partition_key_index", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := wrap(tt.body)
			dst := make([]UserRecord, 2, 64)
			dst[0].PartitionKey, dst[1].PartitionKey = "keep0", "keep1"
			got, err := AppendUnpacked(dst, data)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("err %T is not a *MalformedError", err)
			}
			if me.Field != tt.field || me.Offset != at+tt.offset {
				t.Errorf("field %q at offset %d (%v); want %q at %d", me.Field, me.Offset, err, tt.field, at+tt.offset)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field", err)
			}
			if len(got) != 2 || got[0].PartitionKey != "keep0" || got[1].PartitionKey != "keep1" {
				t.Fatalf("dst changed: %+v", got)
			}
			for i, u := range got[2:cap(got)] {
				if u.PartitionKey != "" || u.Data != nil {
					t.Fatalf("element %d past len not cleared: %+v", i+2, u)
				}
			}
		})
	}
}

func TestAppendUnpackedAppends(t *testing.T) {
	a := wrap(pb(nil).str(1, "a").msg(3, rec(0, "1")).msg(3, rec(0, "2")))
	b := wrap(pb(nil).str(1, "b").msg(3, rec(0, "3")))
	out, err := AppendUnpacked(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	out, err = AppendUnpacked(out, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []UserRecord{
		{PartitionKey: "a", Data: []byte("1")},
		{PartitionKey: "a", Data: []byte("2"), SubSequenceNumber: 1},
		{PartitionKey: "b", Data: []byte("3")},
	}
	if d := sameRecords(out, want); d != "" {
		t.Fatal(d)
	}
}

func TestUnpackDataAliasesInput(t *testing.T) {
	data := wrap(pb(nil).str(1, "k").msg(3, rec(0, "abc")).msg(3, rec(0, "def")))
	got, err := Unpack(data)
	if err != nil {
		t.Fatal(err)
	}
	if c := cap(got[0].Data); c != len(got[0].Data) {
		t.Fatalf("cap(Data) = %d, want %d", c, len(got[0].Data))
	}
	// Appending to one record's data must not overwrite the next record.
	_ = append(got[0].Data, 'X')
	if string(got[1].Data) != "def" {
		t.Fatalf("append overwrote the next record: %q", got[1].Data)
	}
	i := bytes.Index(data, []byte("abc"))
	data[i] = 'z'
	if string(got[0].Data) != "zbc" {
		t.Fatalf("Data = %q; want it to alias the input", got[0].Data)
	}
	key := got[0].PartitionKey
	data[bytes.Index(data, []byte("k"))] = 'q'
	if key != "k" {
		t.Fatalf("PartitionKey changed with the input: %q", key)
	}
}

func TestAppendUnpackedAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector randomly drops sync.Pool entries")
	}
	var a Aggregator
	for i := range 100 {
		if _, err := a.Add(strings.Repeat("k", i%7+1), "", []byte("payload")); err != nil {
			t.Fatal(err)
		}
	}
	data := a.Flush().Data
	dst := make([]UserRecord, 0, 100)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = AppendUnpacked(dst[:0], data); err != nil || len(dst) != 100 {
			t.Fatalf("AppendUnpacked = %d records, %v", len(dst), err)
		}
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per aggregated record, want at most 1", allocs)
	}
	plain := []byte("not aggregated")
	if n := testing.AllocsPerRun(100, func() { _, _ = AppendUnpacked(dst[:0], plain) }); n != 0 {
		t.Fatalf("%v allocations for a plain record, want 0", n)
	}
}

// TestUnpackKeysDoNotPinData: when records sit between the table entries,
// the keys are copied together, so a kept key does not keep the data alive.
func TestUnpackKeysDoNotPinData(t *testing.T) {
	big := strings.Repeat("d", 4096)
	body := pb(nil).str(1, "first").msg(3, rec(0, big)).msg(3, recEHK(1, 0, big)).str(2, "123").str(1, "second")
	data := wrap(body)
	got, err := Unpack(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []UserRecord{
		{PartitionKey: "first", Data: []byte(big)},
		{PartitionKey: "second", ExplicitHashKey: "123", Data: []byte(big), SubSequenceNumber: 1},
	}
	if d := sameRecords(got, want); d != "" {
		t.Fatal(d)
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = AppendUnpacked(got[:0], data) }); n > 1 && !raceEnabled {
		t.Fatalf("%v allocations, want 1", n)
	}
	// The keys are 14 bytes, 8 KiB apart in the message: compacted, they
	// lie within 14 bytes of each other in one string.
	first := uintptr(unsafe.Pointer(unsafe.StringData(got[0].PartitionKey)))
	second := uintptr(unsafe.Pointer(unsafe.StringData(got[1].PartitionKey)))
	if d := max(first, second) - min(first, second); d >= 14 {
		t.Fatalf("keys are %d bytes apart: the string holding them spans the data", d)
	}
}
