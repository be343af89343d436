package compat

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	producer "github.com/a8m/kinesis-producer"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
	awsrecords "github.com/awslabs/kinesis-aggregation/go/v2/records"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/gokcl/kcl/deagg"
)

// userRecord is what a producer put: the input every test compares against.
type userRecord struct {
	pk, ehk string
	data    []byte
}

// randomRecords returns n records whose keys repeat (from a pool of 20) and
// whose data, up to maxData bytes, is random; every third has an explicit
// hash key when withEHK is set.
func randomRecords(r *rand.Rand, n, maxData int, withEHK bool) []userRecord {
	out := make([]userRecord, n)
	for i := range out {
		data := make([]byte, r.IntN(maxData+1))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		out[i] = userRecord{pk: fmt.Sprintf("pk-%d", r.IntN(20)), data: data}
		if withEHK && i%3 == 0 {
			out[i].ehk = fmt.Sprint(r.Uint64())
		}
	}
	return out
}

// aggregateOurs packs recs with deagg.Aggregator within maxBytes.
func aggregateOurs(t *testing.T, maxBytes int, recs []userRecord) []*deagg.AggregatedRecord {
	t.Helper()
	a := deagg.Aggregator{MaxBytes: maxBytes}
	var out []*deagg.AggregatedRecord
	for _, u := range recs {
		done, err := a.Add(u.pk, u.ehk, u.data)
		if err != nil {
			t.Fatal(err)
		}
		if done != nil {
			out = append(out, done)
		}
	}
	if done := a.Flush(); done != nil {
		out = append(out, done)
	}
	return out
}

// TestAwslabsReadsOurs: the awslabs deaggregator unpacks our aggregates
// (interleaved with a plain record) into the same records, in order, with the
// same partition keys; their generated code reads the same explicit hash keys.
func TestAwslabsReadsOurs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	recs := randomRecords(r, 2000, 700, true)
	aggs := aggregateOurs(t, 64<<10, recs)
	if len(aggs) < 5 {
		t.Fatalf("only %d aggregates: the test should cover several", len(aggs))
	}
	plain := userRecord{pk: "plain", data: []byte("not aggregated")}
	var in []types.Record
	for i, a := range aggs {
		in = append(in, types.Record{Data: a.Data, PartitionKey: aws.String(a.PartitionKey), SequenceNumber: aws.String(fmt.Sprint(i))})
		if i == 1 {
			in = append(in, types.Record{Data: plain.data, PartitionKey: aws.String(plain.pk)})
		}
	}
	out, err := deaggregator.DeaggregateRecords(in)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]userRecord{}, recs[:aggs[0].Records+aggs[1].Records]...)
	want = append(append(want, plain), recs[len(want):]...)
	if len(out) != len(want) {
		t.Fatalf("%d records, want %d", len(out), len(want))
	}
	for i, w := range want {
		if *out[i].PartitionKey != w.pk || !bytes.Equal(out[i].Data, w.data) {
			t.Fatalf("record %d = %q %x, want %q %x", i, *out[i].PartitionKey, out[i].Data, w.pk, w.data)
		}
	}
	checkExplicitHashKeys(t, aggs, recs)
}

// checkExplicitHashKeys decodes our aggregates with the awslabs generated
// protobuf code and checks every record's explicit hash key.
func checkExplicitHashKeys(t *testing.T, aggs []*deagg.AggregatedRecord, recs []userRecord) {
	i := 0
	for _, a := range aggs {
		var m awsrecords.AggregatedRecord
		// The awslabs types are generated for the old protobuf API.
		if err := proto.Unmarshal(a.Data[4:len(a.Data)-16], protoadapt.MessageV2Of(&m)); err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Records {
			ehk := ""
			if r.ExplicitHashKeyIndex != nil {
				ehk = m.ExplicitHashKeyTable[*r.ExplicitHashKeyIndex]
			}
			if ehk != recs[i].ehk {
				t.Fatalf("record %d: explicit hash key %q, want %q", i, ehk, recs[i].ehk)
			}
			i++
		}
	}
	if i != len(recs) {
		t.Fatalf("%d records decoded, want %d", i, len(recs))
	}
}

// TestOursReadsA8m: we unpack aggregates written by a8m/kinesis-producer's
// aggregator, exactly as the awslabs deaggregator does. (That aggregator
// gives every record of an aggregate the first record's partition key.)
func TestOursReadsA8m(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	recs := randomRecords(r, 300, 2000, false)
	var a producer.Aggregator
	for _, u := range recs {
		a.Put(u.data, u.pk)
	}
	entry, err := a.Drain()
	if err != nil {
		t.Fatal(err)
	}
	got, err := deagg.Unpack(entry.Data)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := deaggregator.DeaggregateRecords([]types.Record{{Data: entry.Data, PartitionKey: entry.PartitionKey}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) || len(ref) != len(recs) {
		t.Fatalf("%d records (awslabs: %d), want %d", len(got), len(ref), len(recs))
	}
	for i, u := range got {
		if u.PartitionKey != recs[0].pk || u.PartitionKey != *entry.PartitionKey || u.PartitionKey != *ref[i].PartitionKey {
			t.Fatalf("record %d partition key %q, want %q", i, u.PartitionKey, recs[0].pk)
		}
		if !bytes.Equal(u.Data, recs[i].data) || !bytes.Equal(u.Data, ref[i].Data) || u.SubSequenceNumber != uint64(i) {
			t.Fatalf("record %d = %x (sub-sequence %d), want %x", i, u.Data, u.SubSequenceNumber, recs[i].data)
		}
	}
}

// TestSameBytesAsA8m: given records that a8m's aggregator encodes faithfully
// (one partition key, no explicit hash key), ours writes the same bytes.
func TestSameBytesAsA8m(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	recs := randomRecords(r, 100, 300, false)
	var a producer.Aggregator
	var ours deagg.Aggregator
	for _, u := range recs {
		a.Put(u.data, "one-key")
		if _, err := ours.Add("one-key", "", u.data); err != nil {
			t.Fatal(err)
		}
	}
	entry, err := a.Drain()
	if err != nil {
		t.Fatal(err)
	}
	if got := ours.Flush(); !bytes.Equal(got.Data, entry.Data) || got.PartitionKey != *entry.PartitionKey {
		t.Fatalf("ours %q %x\na8m  %q %x", got.PartitionKey, got.Data, *entry.PartitionKey, entry.Data)
	}
}
