package deagg

import (
	"fmt"
	"strings"
	"testing"
)

// benchRecords returns n user records of size bytes, with 16 distinct
// partition keys of 36 characters (UUID-like, as producers often use).
func benchRecords(n, size int) []UserRecord {
	recs := make([]UserRecord, n)
	for i := range recs {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i + j)
		}
		recs[i] = UserRecord{PartitionKey: fmt.Sprintf("%08x-0000-4000-8000-%012x", i%16, i%16), Data: data}
	}
	return recs
}

var benchShapes = []struct{ records, size int }{{100, 100}, {100, 1024}, {1000, 100}}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dKB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

func BenchmarkAppendUnpacked(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("records=%d/size=%s", s.records, sizeName(s.size)), func(b *testing.B) {
			data := aggregate(b, 0, benchRecords(s.records, s.size))[0].Data
			dst := make([]UserRecord, 0, s.records)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = AppendUnpacked(dst[:0], data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkUnpack(b *testing.B) {
	data := aggregate(b, 0, benchRecords(100, 100))[0].Data
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unpack(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashKey(b *testing.B) {
	b.Run("partition-key=36B", func(b *testing.B) {
		pk := strings.Repeat("k", 36)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := HashKey(pk, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("explicit-hash-key", func(b *testing.B) {
		ehk := MaxKey.String()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := HashKey("ignored", ehk); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAggregator(b *testing.B) {
	recs := benchRecords(100, 100)
	var a Aggregator
	b.ReportAllocs()
	for b.Loop() {
		for _, u := range recs {
			if _, err := a.Add(u.PartitionKey, u.ExplicitHashKey, u.Data); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(a.Flush().Data)))
	}
	b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
