package deagg_test

import (
	"errors"
	"fmt"

	"github.com/gokcl/kcl/deagg"
)

// A consumer unpacks each Kinesis record, and delivers it as one plain
// record when it is not an aggregate or does not decode.
func ExampleAppendUnpacked() {
	var a deagg.Aggregator
	for i, pk := range []string{"user-1", "user-2", "user-1"} {
		if _, err := a.Add(pk, "", fmt.Appendf(nil, "event %d", i)); err != nil {
			panic(err)
		}
	}
	agg := a.Flush()
	fmt.Printf("put %d records with partition key %q\n", agg.Records, agg.PartitionKey)

	var buf []deagg.UserRecord // reused across Kinesis records
	for _, data := range [][]byte{agg.Data, []byte("a plain record")} {
		var err error
		buf, err = deagg.AppendUnpacked(buf[:0], data)
		switch {
		case errors.Is(err, deagg.ErrNotAggregated):
			fmt.Printf("plain: %s\n", data)
		case err != nil: // ErrChecksum or ErrMalformed: deliver as is too
			fmt.Printf("undecodable (%v), delivered as one record\n", err)
		}
		for _, u := range buf {
			fmt.Printf("%d %s: %s\n", u.SubSequenceNumber, u.PartitionKey, u.Data)
		}
	}
	// Output:
	// put 3 records with partition key "user-1"
	// 0 user-1: event 0
	// 1 user-2: event 1
	// 2 user-1: event 2
	// plain: a plain record
}

// A consumer drops user records whose hash key its shard does not own, as
// the KCL does after a reshard.
func ExampleHashKey() {
	start, _ := deagg.ParseKey("0")
	end, _ := deagg.ParseKey("170141183460469231731687303715884105727") // the lower half
	for _, pk := range []string{"a", "b"} {
		k, err := deagg.HashKey(pk, "")
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: %v owned=%v\n", pk, k, k.InRange(start, end))
	}
	// Output:
	// a: 16955237001963240173058271559858726497 owned=true
	// b: 195289424170611159128911017612795795343 owned=false
}
