package deagg

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// aggregate packs recs with an Aggregator of the given limit, failing the
// test on any error.
func aggregate(t testing.TB, maxBytes int, recs []UserRecord) []*AggregatedRecord {
	t.Helper()
	a := Aggregator{MaxBytes: maxBytes}
	var out []*AggregatedRecord
	for _, u := range recs {
		done, err := a.Add(u.PartitionKey, u.ExplicitHashKey, u.Data)
		if err != nil {
			t.Fatalf("Add(%q, %q, %d bytes): %v", u.PartitionKey, u.ExplicitHashKey, len(u.Data), err)
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

func TestAggregatorGoldenBytes(t *testing.T) {
	var a Aggregator
	mustAdd(t, &a, "pk", "", "hi")
	mustAdd(t, &a, "pk", "7", "")
	mustAdd(t, &a, "q", "7", "x")
	r := a.Flush()
	// Tables first, then records; each record's fields in number order.
	const message = "0a02706b" + "0a0171" + "120137" + // partition_key_table pk, q; explicit_hash_key_table 7
		"1a06" + "0800" + "1a026869" + // records[0]: pk 0, data "hi"
		"1a06" + "0800" + "1000" + "1a00" + // records[1]: pk 0, ehk 0, data ""
		"1a07" + "0801" + "1000" + "1a0178" // records[2]: pk 1, ehk 0, data "x"
	body, _ := hex.DecodeString(message)
	if want := wrap(body); !bytes.Equal(r.Data, want) {
		t.Fatalf("Data = %x\nwant   %x", r.Data, want)
	}
	if r.PartitionKey != "pk" || r.ExplicitHashKey != "" || r.Records != 3 {
		t.Fatalf("record = %q, %q, %d records", r.PartitionKey, r.ExplicitHashKey, r.Records)
	}
}

func mustAdd(t *testing.T, a *Aggregator, pk, ehk, data string) {
	t.Helper()
	if done, err := a.Add(pk, ehk, []byte(data)); err != nil || done != nil {
		t.Fatalf("Add = %v, %v", done, err)
	}
}

// randomRecords returns n user records with keys drawn from small pools, so
// that keys repeat, and data of up to maxData bytes.
func randomRecords(r *rand.Rand, n, maxData int) []UserRecord {
	pks := []string{"a", "user-42", strings.Repeat("p", 200), "ключ", "z"}
	ehks := []string{"", "", "0", "12345678901234567890", MaxKey.String()}
	out := make([]UserRecord, n)
	for i := range out {
		data := make([]byte, r.IntN(maxData+1))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		out[i] = UserRecord{PartitionKey: pks[r.IntN(len(pks))], ExplicitHashKey: ehks[r.IntN(len(ehks))], Data: data}
	}
	return out
}

// TestAggregatorMatchesReferenceEncoder checks byte compatibility: the
// protobuf module's encoder, given the same records and key tables, writes
// the same bytes (fields in number order, as the KPL's C++ encoder does).
func TestAggregatorMatchesReferenceEncoder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 50 {
		recs := randomRecords(r, 1+r.IntN(40), 300)
		out := aggregate(t, 0, recs)
		if len(out) != 1 {
			t.Fatalf("case %d: %d aggregates, want 1", i, len(out))
		}
		if want := referenceMarshal(recs); !bytes.Equal(out[0].Data, want) {
			t.Fatalf("case %d: Data = %x\nwant %x", i, out[0].Data, want)
		}
	}
}

func TestAggregatorRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 30 {
		recs := randomRecords(r, 1+r.IntN(200), 2000)
		maxBytes := 2600 + r.IntN(20000) // room for any one record alone
		checkRoundTrip(t, maxBytes, recs, fmt.Sprintf("case %d", i))
	}
}

// checkRoundTrip aggregates recs within maxBytes and checks that unpacking
// gives them back, that every aggregate respects the limit and names its
// first record's keys, and that no aggregate was cut early.
func checkRoundTrip(t *testing.T, maxBytes int, recs []UserRecord, name string) {
	t.Helper()
	out := aggregate(t, maxBytes, recs)
	var got []UserRecord
	next := 0
	for j, agg := range out {
		size := len(agg.Data) + len(agg.PartitionKey)
		if size > maxBytes {
			t.Fatalf("%s: aggregate %d is %d bytes, limit %d", name, j, size, maxBytes)
		}
		first := recs[next]
		if agg.PartitionKey != first.PartitionKey || agg.ExplicitHashKey != first.ExplicitHashKey {
			t.Fatalf("%s: aggregate %d keys %q, %q; want the first record's", name, j, agg.PartitionKey, agg.ExplicitHashKey)
		}
		if j+1 < len(out) {
			// The next record must not have fitted: re-aggregating this
			// aggregate's records plus that one without a limit exceeds it.
			with := aggregate(t, 1<<30, recs[next:next+agg.Records+1])[0]
			if n := len(with.Data) + len(with.PartitionKey); n <= maxBytes {
				t.Fatalf("%s: aggregate %d was cut at %d bytes, but the next record fitted (%d <= %d)",
					name, j, size, n, maxBytes)
			}
		}
		u, err := Unpack(agg.Data)
		if err != nil {
			t.Fatalf("%s: Unpack aggregate %d: %v", name, j, err)
		}
		if len(u) != agg.Records {
			t.Fatalf("%s: aggregate %d holds %d records, says %d", name, j, len(u), agg.Records)
		}
		for k := range u {
			u[k].SubSequenceNumber = uint64(next + k) // compare against recs' positions
		}
		got = append(got, u...)
		next += agg.Records
	}
	want := make([]UserRecord, len(recs))
	for i, u := range recs {
		want[i] = u
		want[i].SubSequenceNumber = uint64(i)
	}
	if d := sameRecords(got, want); d != "" {
		t.Fatalf("%s: %s", name, d)
	}
}

func TestAggregatorSizeIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var a Aggregator
	for i := range 300 {
		u := randomRecords(r, 1, 500)[0]
		if _, err := a.Add(u.PartitionKey, u.ExplicitHashKey, u.Data); err != nil {
			t.Fatal(err)
		}
		if i%37 == 0 {
			size, n := a.Size(), a.Len()
			agg := a.Flush()
			if got := len(agg.Data) + len(agg.PartitionKey); got != size || agg.Records != n {
				t.Fatalf("Size() = %d, Len() = %d; flushed %d bytes, %d records", size, n, got, agg.Records)
			}
			if a.Len() != 0 || a.Size() != 0 || a.Flush() != nil {
				t.Fatal("Aggregator not empty after Flush")
			}
		}
	}
}

func TestAggregatorLimitBoundaries(t *testing.T) {
	// One record alone, with data under 128 bytes: magic and MD5 20,
	// partition key table entry 3 ("k"), record tag and length 2, index 2,
	// data tag and length 2, then the data; plus the outer key, 1.
	const fixed = 20 + 3 + 2 + 2 + 2 + 1
	a := Aggregator{MaxBytes: fixed + 100}
	if _, err := a.Add("k", "", make([]byte, 100)); err != nil {
		t.Fatalf("record exactly at the limit: %v", err)
	}
	if got := a.Size(); got != a.MaxBytes {
		t.Fatalf("Size = %d, want %d (the limit)", got, a.MaxBytes)
	}
	done, err := a.Add("k", "", nil)
	if err != nil || done == nil || done.Records != 1 || a.Len() != 1 {
		t.Fatalf("Add past the limit = %v, %v, Len %d; want the full aggregate back", done, err, a.Len())
	}
	a = Aggregator{MaxBytes: fixed + 99}
	if _, err := a.Add("k", "", make([]byte, 100)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("one byte over: err = %v, want ErrRecordTooLarge", err)
	}

	// The default limit is Kinesis's 1 MiB, counting the partition key.
	var big Aggregator
	// As above, but the record's and the data's lengths take 3 bytes each.
	dataLen := MaxRecordBytes - (20 + 3 + 1 + 3 + 2 + 1 + 3 + 1)
	if _, err := big.Add("k", "", make([]byte, dataLen)); err != nil {
		t.Fatalf("1 MiB record: %v", err)
	}
	if got := big.Size(); got != MaxRecordBytes {
		t.Fatalf("Size = %d, want %d", got, MaxRecordBytes)
	}
	if _, err := big.Add("k", "", make([]byte, dataLen+1)); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("1 MiB + 1 record: err = %v", err)
	}
	if big.Len() != 1 {
		t.Fatalf("a rejected record changed the aggregator: Len = %d", big.Len())
	}
}

func TestAggregatorRejects(t *testing.T) {
	tests := []struct {
		name, pk, ehk string
		want          error
	}{
		{"empty partition key", "", "", ErrInvalidPartitionKey},
		{"partition key of 257 characters", strings.Repeat("é", 257), "", ErrInvalidPartitionKey},
		{"partition key not UTF-8", "a\xffb", "", ErrInvalidPartitionKey},
		{"explicit hash key not decimal", "k", "0x1", ErrInvalidHashKey},
		{"explicit hash key of 2^128", "k", "340282366920938463463374607431768211456", ErrInvalidHashKey},
		{"explicit hash key negative", "k", "-1", ErrInvalidHashKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Aggregator
			mustAdd(t, &a, "first", "", "data")
			size := a.Size()
			done, err := a.Add(tt.pk, tt.ehk, []byte("x"))
			if !errors.Is(err, tt.want) || done != nil {
				t.Fatalf("Add = %v, %v; want %v", done, err, tt.want)
			}
			if a.Len() != 1 || a.Size() != size {
				t.Fatalf("a rejected record changed the aggregator: Len %d, Size %d", a.Len(), a.Size())
			}
		})
	}
	var a Aggregator
	if _, err := a.Add(strings.Repeat("é", MaxPartitionKeyLen), "", nil); err != nil {
		t.Fatalf("partition key of 256 two-byte characters: %v", err)
	}
}

func TestAggregatorCopiesData(t *testing.T) {
	var a Aggregator
	buf := []byte("first")
	if _, err := a.Add("k", "", buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	u, err := Unpack(a.Flush().Data)
	if err != nil || string(u[0].Data) != "first" {
		t.Fatalf("Unpack = %+v, %v; the aggregator must copy data", u, err)
	}
}

func TestAggregatorDeduplicatesKeys(t *testing.T) {
	var a Aggregator
	for range 10 {
		mustAdd(t, &a, "same", "99", "d")
	}
	body := a.Flush().Data
	if n := bytes.Count(body, []byte("same")); n != 1 {
		t.Fatalf("partition key stored %d times, want 1", n)
	}
	if n := bytes.Count(body, []byte("99")); n != 1 {
		t.Fatalf("explicit hash key stored %d times, want 1", n)
	}
}
