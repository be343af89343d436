package kcltest_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/kcltest"
)

var _ consumer.KinesisAPI = (*kcltest.Stream)(nil)

var bg = context.Background()

// ok fails the test on err and returns v.
func ok[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func put(t *testing.T, s *kcltest.Stream, pk, ehk, data string) kcltest.PutResult {
	t.Helper()
	return ok[kcltest.PutResult](t)(s.Put(pk, ehk, []byte(data)))
}

func iterator(t *testing.T, s *kcltest.Stream, shardID string, typ types.ShardIteratorType, seq string) *string {
	t.Helper()
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(s.Name()), ShardId: aws.String(shardID), ShardIteratorType: typ}
	if seq != "" {
		in.StartingSequenceNumber = aws.String(seq)
	}
	return ok[*kinesis.GetShardIteratorOutput](t)(s.GetShardIterator(bg, in)).ShardIterator
}

func getRecords(t *testing.T, s *kcltest.Stream, it *string, limit int32) *kinesis.GetRecordsOutput {
	t.Helper()
	return ok[*kinesis.GetRecordsOutput](t)(s.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(limit)}))
}

func data(out *kinesis.GetRecordsOutput) []string {
	var d []string
	for _, r := range out.Records {
		d = append(d, string(r.Data))
	}
	return d
}

func wantErrorAs[E error](t *testing.T, err error) {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("got error %v, want a %T", err, target)
	}
}

func TestPutRoutesByHashKey(t *testing.T) {
	s := kcltest.NewStream(4)
	quarter := new(big.Int).Lsh(big.NewInt(1), 126)
	for i, want := range []string{"shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000003"} {
		first := new(big.Int).Mul(quarter, big.NewInt(int64(i)))
		last := new(big.Int).Sub(new(big.Int).Add(first, quarter), big.NewInt(1))
		for _, k := range []*big.Int{first, last} {
			if got := put(t, s, "pk", k.String(), "x").ShardID; got != want {
				t.Errorf("explicit hash key %s went to %s, want %s", k, got, want)
			}
		}
	}
	// Without an explicit hash key: the MD5 of the partition key.
	for i := range 50 {
		pk := fmt.Sprintf("key-%d", i)
		k := deagg.PartitionKeyHash(pk).Big()
		want := fmt.Sprintf("shardId-%012d", new(big.Int).Div(k, quarter).Int64())
		if got := put(t, s, pk, "", "x").ShardID; got != want {
			t.Errorf("partition key %s (hash %s) went to %s, want %s", pk, k, got, want)
		}
	}
}

func TestPutRefusesWhatTheServiceRefuses(t *testing.T) {
	s := kcltest.NewStream(1)
	cases := map[string]func() error{
		"empty partition key": func() error { _, err := s.Put("", "", []byte("x")); return err },
		"long partition key":  func() error { _, err := s.Put(strings.Repeat("é", 257), "", nil); return err },
		"bad hash key":        func() error { _, err := s.Put("pk", "12a", nil); return err },
		"hash key over 2^128": func() error { _, err := s.Put("pk", new(big.Int).Lsh(big.NewInt(1), 128).String(), nil); return err },
		"record over 1 MiB":   func() error { _, err := s.Put("pk", "", make([]byte, kcltest.MaxRecordBytes-1)); return err },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) { wantErrorAs[*types.InvalidArgumentException](t, f()) })
	}
	if _, err := s.Put(strings.Repeat("é", 256), "", make([]byte, kcltest.MaxRecordBytes-512)); err != nil {
		t.Errorf("a record at the limits: %v", err)
	}
}

func TestSequenceNumbersLookLikeTheServicesAndIncrease(t *testing.T) {
	s := kcltest.NewStream(3)
	var last *big.Int
	for i := range 20 {
		seq := put(t, s, fmt.Sprintf("k%d", i), "", "x").SequenceNumber
		n, ok := new(big.Int).SetString(seq, 10)
		if len(seq) != 56 || !ok {
			t.Fatalf("sequence number %q: want 56 decimal digits", seq)
		}
		if last != nil && n.Cmp(last) <= 0 {
			t.Fatalf("sequence number %s after %s", n, last)
		}
		last = n
	}
}

func TestGetRecordsReadsInOrderWithLimitsAndLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(1)
		put(t, s, "a", "", "0")
		time.Sleep(time.Second)
		put(t, s, "a", "", "1")
		put(t, s, "a", "", "2")
		time.Sleep(4 * time.Second)
		out := getRecords(t, s, iterator(t, s, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, ""), 1)
		if got := data(out); !slices.Equal(got, []string{"0"}) {
			t.Fatalf("first page %v", got)
		}
		if got := aws.ToInt64(out.MillisBehindLatest); got != 4000 {
			t.Errorf("MillisBehindLatest %d, want 4000: the age of the oldest record not returned", got)
		}
		if got := out.Records[0].ApproximateArrivalTimestamp; !got.Equal(time.Now().Add(-5 * time.Second)) {
			t.Errorf("arrival %v, want 5s ago", got)
		}
		out = getRecords(t, s, out.NextShardIterator, 10)
		if got := data(out); !slices.Equal(got, []string{"1", "2"}) {
			t.Fatalf("second page %v", got)
		}
		if got := aws.ToInt64(out.MillisBehindLatest); got != 0 {
			t.Errorf("MillisBehindLatest %d at the tip, want 0", got)
		}
		if out.NextShardIterator == nil || out.ChildShards != nil {
			t.Fatal("an open shard has no end")
		}
		// Behind by less than a millisecond is still behind.
		put(t, s, "a", "", "3")
		put(t, s, "a", "", "4")
		out = getRecords(t, s, out.NextShardIterator, 1)
		if got := aws.ToInt64(out.MillisBehindLatest); got != 1 {
			t.Errorf("MillisBehindLatest %d behind records of this instant, want 1", got)
		}
	})
}

func TestResponsesCarryTheirOwnData(t *testing.T) {
	s := kcltest.NewStream(1)
	put(t, s, "a", "", "abc")
	put(t, s, "a", "", "def")
	it := iterator(t, s, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
	out := getRecords(t, s, it, 10)
	out.Records[0].Data[0] = 'X'
	out.Records[0].Data = append(out.Records[0].Data, 'Y') // must not overwrite the next record
	if got := data(getRecords(t, s, it, 10)); !slices.Equal(got, []string{"abc", "def"}) {
		t.Fatalf("after a caller changed its copy: %v", got)
	}
	if got := string(out.Records[1].Data); got != "def" {
		t.Fatalf("appending to one record's data changed the next: %q", got)
	}
}

func TestResponsesStopAtTenMebibytes(t *testing.T) {
	s := kcltest.NewStream(1)
	for range 12 {
		if _, err := s.Put("k", "", make([]byte, 1000_000)); err != nil {
			t.Fatal(err)
		}
	}
	out := getRecords(t, s, iterator(t, s, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, ""), 10000)
	if len(out.Records) != 10 {
		t.Fatalf("%d records of 1 MB in one response, want 10", len(out.Records))
	}
}

func TestIteratorTypes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(2)
		var seqs []string
		for i := range 4 {
			seqs = append(seqs, put(t, s, "k", "0", fmt.Sprint(i)).SequenceNumber)
			time.Sleep(time.Second)
		}
		other := put(t, s, "k", deagg.MaxKey.String(), "other shard").SequenceNumber
		const id = "shardId-000000000000"
		read := func(it *string) []string { return data(getRecords(t, s, it, 100)) }
		cases := []struct {
			name string
			it   *string
			want []string
		}{
			{"TRIM_HORIZON", iterator(t, s, id, types.ShardIteratorTypeTrimHorizon, ""), []string{"0", "1", "2", "3"}},
			{"AT_SEQUENCE_NUMBER", iterator(t, s, id, types.ShardIteratorTypeAtSequenceNumber, seqs[1]), []string{"1", "2", "3"}},
			{"AFTER_SEQUENCE_NUMBER", iterator(t, s, id, types.ShardIteratorTypeAfterSequenceNumber, seqs[1]), []string{"2", "3"}},
			{"LATEST", iterator(t, s, id, types.ShardIteratorTypeLatest, ""), nil},
		}
		at := ok[*kinesis.GetShardIteratorOutput](t)(s.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String(s.Name()), ShardId: aws.String(id),
			ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(time.Now().Add(-2500 * time.Millisecond))}))
		cases = append(cases, struct {
			name string
			it   *string
			want []string
		}{"AT_TIMESTAMP", at.ShardIterator, []string{"2", "3"}})
		for _, c := range cases {
			if got := read(c.it); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		latest := iterator(t, s, id, types.ShardIteratorTypeLatest, "")
		put(t, s, "k", "0", "4")
		if got := read(latest); !slices.Equal(got, []string{"4"}) {
			t.Errorf("LATEST then a write: %v", got)
		}
		for _, bad := range []string{other, "123", seqs[0] + "0", ""} {
			_, err := s.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String(s.Name()), ShardId: aws.String(id),
				ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(bad)})
			wantErrorAs[*types.InvalidArgumentException](t, err)
		}
		_, err := s.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String("nope"), ShardId: aws.String(id),
			ShardIteratorType: types.ShardIteratorTypeLatest})
		wantErrorAs[*types.ResourceNotFoundException](t, err)
		_, err = s.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamARN: aws.String(s.ARN()), ShardId: aws.String("shardId-000000000009"),
			ShardIteratorType: types.ShardIteratorTypeLatest})
		wantErrorAs[*types.ResourceNotFoundException](t, err)
	})
}

func TestIteratorsExpireAfterFiveMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(1)
		it := iterator(t, s, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
		time.Sleep(kcltest.IteratorLifetime - time.Millisecond)
		next := getRecords(t, s, it, 10).NextShardIterator
		time.Sleep(time.Millisecond)
		_, err := s.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: it})
		wantErrorAs[*types.ExpiredIteratorException](t, err)
		getRecords(t, s, next, 10) // the iterator a response returns is new
	})
}

func TestBadIteratorsAndLimits(t *testing.T) {
	s := kcltest.NewStream(1)
	other := kcltest.NewStream(1, kcltest.WithName("other"))
	it := iterator(t, s, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
	for name, in := range map[string]*kinesis.GetRecordsInput{
		"garbage":      {ShardIterator: aws.String("shardId-000000000000/0")},
		"other stream": {ShardIterator: iterator(t, other, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")},
		"limit 0":      {ShardIterator: it, Limit: aws.Int32(0)},
		"limit 10001":  {ShardIterator: it, Limit: aws.Int32(10001)},
		"other ARN":    {ShardIterator: it, StreamARN: aws.String(other.ARN())},
	} {
		_, err := s.GetRecords(bg, in)
		if ia := new(*types.InvalidArgumentException); !errors.As(err, ia) {
			t.Errorf("%s: %v, want an InvalidArgumentException", name, err)
		}
	}
}

func TestSplitAndMergeShowInListingsAndReads(t *testing.T) {
	s := kcltest.NewStream(2)
	put(t, s, "k", "0", "before")
	left, right := must2(t)(s.Split("shardId-000000000000", nil))
	if left != "shardId-000000000002" || right != "shardId-000000000003" {
		t.Fatalf("children %s %s", left, right)
	}
	if got := put(t, s, "k", "0", "after").ShardID; got != left {
		t.Fatalf("a write after the split went to %s, want %s", got, left)
	}
	merged := ok[string](t)(s.Merge(right, "shardId-000000000001"))
	shards := s.Shards()
	byID := map[string]types.Shard{}
	for _, sh := range shards {
		byID[aws.ToString(sh.ShardId)] = sh
	}
	parent := byID["shardId-000000000000"]
	if parent.SequenceNumberRange.EndingSequenceNumber == nil {
		t.Error("the split shard is not closed")
	}
	half := new(big.Int).Lsh(big.NewInt(1), 126)
	if got := aws.ToString(byID[right].HashKeyRange.StartingHashKey); got != half.String() {
		t.Errorf("the split's second child starts at %s, want %s", got, half)
	}
	m := byID[merged]
	if aws.ToString(m.ParentShardId) != right || aws.ToString(m.AdjacentParentShardId) != "shardId-000000000001" {
		t.Errorf("merged child's parents %s and %s", aws.ToString(m.ParentShardId), aws.ToString(m.AdjacentParentShardId))
	}
	if got := s.OpenShards(); !slices.Equal(got, []string{left, merged}) {
		t.Errorf("open shards %v", got)
	}
	out := getRecords(t, s, iterator(t, s, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, ""), 100)
	if got := data(out); !slices.Equal(got, []string{"before"}) || out.NextShardIterator != nil {
		t.Fatalf("reading the closed parent: %v, next iterator %v", got, out.NextShardIterator)
	}
	var children []string
	for _, c := range out.ChildShards {
		children = append(children, aws.ToString(c.ShardId))
	}
	if !slices.Equal(children, []string{left, right}) {
		t.Errorf("ChildShards %v", children)
	}
	for name, err := range map[string]error{
		"split a closed shard":  splitErr(s, "shardId-000000000000", nil),
		"split outside":         splitErr(s, left, big.NewInt(0)),
		"merge non-adjacent":    mergeErr(s, left, left),
		"merge unknown":         mergeErr(s, left, "shardId-000000000042"),
		"trim an open shard":    s.Trim(left),
		"trim an unknown shard": s.Trim("shardId-000000000042"),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := s.Trim("shardId-000000000000"); err != nil {
		t.Fatal(err)
	}
	if len(s.Shards()) != len(shards)-1 {
		t.Error("the trimmed shard is still listed")
	}
}

func must2(t *testing.T) func(a, b string, err error) (string, string) {
	return func(a, b string, err error) (string, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func splitErr(s *kcltest.Stream, id string, at *big.Int) error {
	_, _, err := s.Split(id, at)
	return err
}

func mergeErr(s *kcltest.Stream, a, b string) error {
	_, err := s.Merge(a, b)
	return err
}

func TestRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(1, kcltest.WithRetention(time.Hour))
		old := put(t, s, "k", "", "old")
		time.Sleep(30 * time.Minute)
		put(t, s, "k", "", "mid")
		it := iterator(t, s, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
		left, _ := must2(t)(s.Split("shardId-000000000000", nil))
		time.Sleep(kcltest.IteratorLifetime - time.Nanosecond)
		if got := data(getRecords(t, s, it, 10)); !slices.Equal(got, []string{"old", "mid"}) {
			t.Fatalf("after 35 minutes: %v", got)
		}
		time.Sleep(30*time.Minute - kcltest.IteratorLifetime + time.Nanosecond)
		it = iterator(t, s, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, "")
		if got := data(getRecords(t, s, it, 10)); !slices.Equal(got, []string{"mid"}) {
			t.Fatalf("after an hour: %v, want the younger record only", got)
		}
		// A sequence number retention removed still starts an iterator.
		iterator(t, s, "shardId-000000000000", types.ShardIteratorTypeAtSequenceNumber, old.SequenceNumber)
		time.Sleep(30 * time.Minute)
		if got := len(s.Shards()); got != 2 {
			t.Fatalf("%d shards listed an hour after the split, want the 2 children", got)
		}
		_, err := s.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: iterator(t, s, left, types.ShardIteratorTypeLatest, "")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String(s.Name()),
			ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		wantErrorAs[*types.ResourceNotFoundException](t, err)
	})
}

func TestListShardsPagesAsTheService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := kcltest.NewStream(5, kcltest.WithShardsPerPage(2))
		var ids []string
		out := ok[*kinesis.ListShardsOutput](t)(s.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String(s.Name())}))
		pages := 1
		for {
			for _, sh := range out.Shards {
				ids = append(ids, aws.ToString(sh.ShardId))
			}
			if out.NextToken == nil {
				break
			}
			out = ok[*kinesis.ListShardsOutput](t)(s.ListShards(bg, &kinesis.ListShardsInput{NextToken: out.NextToken}))
			pages++
		}
		if len(ids) != 5 || pages != 3 {
			t.Fatalf("%d shards in %d pages, want 5 in 3", len(ids), pages)
		}
		one := ok[*kinesis.ListShardsOutput](t)(s.ListShards(bg, &kinesis.ListShardsInput{StreamARN: aws.String(s.ARN()), MaxResults: aws.Int32(1)}))
		if len(one.Shards) != 1 {
			t.Errorf("MaxResults 1: %d shards", len(one.Shards))
		}
		after := ok[*kinesis.ListShardsOutput](t)(s.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String(s.Name()), ExclusiveStartShardId: aws.String(ids[3])}))
		if len(after.Shards) != 1 || aws.ToString(after.Shards[0].ShardId) != ids[4] {
			t.Errorf("after %s: %v", ids[3], after.Shards)
		}
		_, err := s.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String(s.Name()), NextToken: one.NextToken})
		wantErrorAs[*types.InvalidArgumentException](t, err)
		_, err = s.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String(s.Name()),
			ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
		wantErrorAs[*types.InvalidArgumentException](t, err)
		time.Sleep(300 * time.Second)
		_, err = s.ListShards(bg, &kinesis.ListShardsInput{NextToken: one.NextToken})
		wantErrorAs[*types.ExpiredNextTokenException](t, err)
	})
}

func TestFaults(t *testing.T) {
	s := kcltest.NewStream(1)
	list := func() error {
		_, err := s.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String(s.Name())})
		return err
	}
	s.FailNext(kcltest.OpListShards, kcltest.ThrottlingError())
	s.FailNext(kcltest.OpListShards, kcltest.InternalFailureError())
	wantErrorAs[*types.ProvisionedThroughputExceededException](t, list())
	err := list()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InternalFailure" || api.ErrorFault() != smithy.FaultServer {
		t.Fatalf("internal failure: %v", err)
	}
	if err := list(); err != nil {
		t.Fatalf("after the queued faults: %v", err)
	}
	if got := s.Calls(kcltest.OpListShards); got != 3 {
		t.Errorf("%d calls counted, want 3", got)
	}

	var seen []kcltest.Op
	s.SetFault(func(op kcltest.Op) error {
		seen = append(seen, op)
		if op == kcltest.OpGetShardIterator {
			return kcltest.ExpiredIteratorError()
		}
		return nil
	})
	_, err = s.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String(s.Name()),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
	wantErrorAs[*types.ExpiredIteratorException](t, err)
	if err := list(); err != nil || !slices.Equal(seen, []kcltest.Op{kcltest.OpGetShardIterator, kcltest.OpListShards}) {
		t.Fatalf("SetFault saw %v; %v", seen, err)
	}
	s.ClearFaults()

	failures := func(seed uint64) []int {
		s := kcltest.NewStream(1, kcltest.WithSeed(seed))
		s.FailRate(kcltest.OpListShards, 0.25, kcltest.ThrottlingError())
		var failed []int
		for i := range 1000 {
			if _, err := s.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String(s.Name())}); err != nil {
				failed = append(failed, i)
			}
		}
		return failed
	}
	a, b, c := failures(7), failures(7), failures(8)
	if len(a) < 200 || len(a) > 300 {
		t.Errorf("%d failures in 1000 calls at rate 0.25", len(a))
	}
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Error("the same seed must fail the same calls, another seed others")
	}
}

func TestCancelledContext(t *testing.T) {
	s := kcltest.NewStream(1)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err := s.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(s.Name())})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
}

func TestPutAggregated(t *testing.T) {
	s := kcltest.NewStream(2)
	var recs []deagg.UserRecord
	for i := range 10 {
		recs = append(recs, deagg.UserRecord{PartitionKey: fmt.Sprintf("k%d", i), Data: []byte(fmt.Sprint(i))})
	}
	res := ok[kcltest.PutResult](t)(s.PutAggregated(recs...))
	wantShard := put(t, s, "k0", "", "routed like its first user record").ShardID
	if res.UserRecords != 10 || res.ShardID != wantShard {
		t.Fatalf("%+v, want 10 user records in %s", res, wantShard)
	}
	out := getRecords(t, s, iterator(t, s, res.ShardID, types.ShardIteratorTypeAtSequenceNumber, res.SequenceNumber), 1)
	users, err := deagg.Unpack(out.Records[0].Data)
	if err != nil || len(users) != 10 || string(users[9].Data) != "9" {
		t.Fatalf("unpacked %d user records: %v", len(users), err)
	}
	if _, err := s.PutAggregated(); err == nil {
		t.Error("an aggregate of nothing")
	}
	if _, err := s.PutAggregated(deagg.UserRecord{PartitionKey: "a", Data: make([]byte, 600<<10)},
		deagg.UserRecord{PartitionKey: "b", Data: make([]byte, 600<<10)}); !errors.Is(err, deagg.ErrRecordTooLarge) {
		t.Errorf("1.2 MB in one aggregate: %v", err)
	}
	// Put counts the user records of an aggregate built by hand.
	var agg deagg.Aggregator
	_, _ = agg.Add("x", "", []byte("1"))
	_, _ = agg.Add("y", "", []byte("2"))
	a := agg.Flush()
	if got := ok[kcltest.PutResult](t)(s.Put(a.PartitionKey, a.ExplicitHashKey, a.Data)).UserRecords; got != 2 {
		t.Errorf("Put of an aggregate of 2: UserRecords %d", got)
	}
}

func TestNewStreamOptions(t *testing.T) {
	s := kcltest.NewStream(0, kcltest.WithName("orders"))
	if s.Name() != "orders" || !strings.HasSuffix(s.ARN(), ":stream/orders") || len(s.OpenShards()) != 1 {
		t.Fatalf("name %s, ARN %s, %d shards", s.Name(), s.ARN(), len(s.OpenShards()))
	}
	s = kcltest.NewStream(3)
	shards := s.Shards()
	if aws.ToString(shards[0].HashKeyRange.StartingHashKey) != "0" ||
		aws.ToString(shards[2].HashKeyRange.EndingHashKey) != deagg.MaxKey.String() {
		t.Errorf("3 shards do not cover the key space: %v ... %v", shards[0].HashKeyRange, shards[2].HashKeyRange)
	}
	for i := 1; i < 3; i++ {
		end, _ := new(big.Int).SetString(aws.ToString(shards[i-1].HashKeyRange.EndingHashKey), 10)
		start, _ := new(big.Int).SetString(aws.ToString(shards[i].HashKeyRange.StartingHashKey), 10)
		if end.Add(end, big.NewInt(1)).Cmp(start) != 0 {
			t.Errorf("gap or overlap between shards %d and %d", i-1, i)
		}
	}
}
