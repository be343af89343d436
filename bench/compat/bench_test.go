package compat

import (
	"crypto/md5"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"

	"github.com/gokcl/kcl/deagg"
)

// benchAggregate returns one aggregated record of n user records of size
// bytes, each with its own UUID-like partition key (as producers that want
// an even spread over shards use), or false if it would not fit in one
// Kinesis record.
func benchAggregate(n, size int) ([]byte, bool) {
	var a deagg.Aggregator
	for i := range n {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*7 + j)
		}
		pk := fmt.Sprintf("%08x-%04x-4000-8000-%012x", i, i, i*i)
		if done, err := a.Add(pk, "", data); err != nil || done != nil {
			return nil, false
		}
	}
	return a.Flush().Data, true
}

// BenchmarkDeagg runs both deaggregators on the same aggregated records:
// ours with AppendUnpacked into a reused slice, and awslabs'
// DeaggregateRecords. impl=md5 only checks the MD5 trailer, which every
// deaggregator must: it is the floor. Compare with benchstat -col /impl.
// 1000 records of 1 KB do not fit in one Kinesis record (1 MiB), so that
// shape is skipped.
func BenchmarkDeagg(b *testing.B) {
	impls := map[string]func(*testing.B, []byte, int){"gokcl": benchGokcl, "awslabs": benchAwslabs, "md5": benchMD5}
	for _, impl := range []string{"gokcl", "awslabs", "md5"} {
		for _, n := range []int{10, 100, 1000} {
			for _, size := range []int{100, 1024} {
				name := fmt.Sprintf("impl=%s/records=%d/size=%s", impl, n, sizeName(size))
				b.Run(name, func(b *testing.B) {
					data, ok := benchAggregate(n, size)
					if !ok {
						b.Skipf("%d records of %d bytes exceed one Kinesis record", n, size)
					}
					run := impls[impl]
					b.SetBytes(int64(len(data)))
					b.ReportAllocs()
					run(b, data, n)
					b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
				})
			}
		}
	}
}

func benchGokcl(b *testing.B, data []byte, n int) {
	dst := make([]deagg.UserRecord, 0, n)
	for b.Loop() {
		var err error
		if dst, err = deagg.AppendUnpacked(dst[:0], data); err != nil || len(dst) != n {
			b.Fatalf("%d records, %v", len(dst), err)
		}
	}
}

func benchAwslabs(b *testing.B, data []byte, n int) {
	in := []types.Record{{Data: data, PartitionKey: aws.String("pk"), SequenceNumber: aws.String("1")}}
	for b.Loop() {
		out, err := deaggregator.DeaggregateRecords(in)
		if err != nil || len(out) != n {
			b.Fatalf("%d records, %v", len(out), err)
		}
	}
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dKB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

func benchMD5(b *testing.B, data []byte, _ int) {
	body, trailer := data[4:len(data)-md5.Size], [md5.Size]byte(data[len(data)-md5.Size:])
	for b.Loop() {
		if md5.Sum(body) != trailer {
			b.Fatal("checksum mismatch")
		}
	}
}
