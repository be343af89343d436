package kcltest_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
)

var _ consumer.KinesisAPI = (*kcltest.Account)(nil)

func describeStream(t *testing.T, a *kcltest.Account, name string) *types.StreamDescriptionSummary {
	t.Helper()
	out := ok[*kinesis.DescribeStreamSummaryOutput](t)(a.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)}))
	return out.StreamDescriptionSummary
}

// TestAccountRoutesByStream: each call reaches the stream it names, by
// name, ARN, iterator or NextToken, and streams keep their own shards.
func TestAccountRoutesByStream(t *testing.T) {
	a := kcltest.NewAccount(kcltest.WithShardsPerPage(1))
	orders := ok[*kcltest.Stream](t)(a.CreateStream("orders", 2))
	audit := ok[*kcltest.Stream](t)(a.CreateStream("audit", 1))
	put(t, orders, "k", "", "order")
	put(t, audit, "k", "", "audit")

	for _, in := range []*kinesis.ListShardsInput{{StreamName: aws.String("orders")}, {StreamARN: aws.String(orders.ARN())}} {
		page := ok[*kinesis.ListShardsOutput](t)(a.ListShards(bg, in))
		if len(page.Shards) != 1 || page.NextToken == nil {
			t.Fatalf("first page: %+v", page)
		}
		next := ok[*kinesis.ListShardsOutput](t)(a.ListShards(bg, &kinesis.ListShardsInput{NextToken: page.NextToken}))
		if len(next.Shards) != 1 || aws.ToString(next.Shards[0].ShardId) != "shardId-000000000001" {
			t.Fatalf("second page of orders: %+v", next.Shards)
		}
	}
	for _, s := range []*kcltest.Stream{orders, audit} {
		shard := s.OpenShards()[0]
		if s == orders {
			shard = put(t, orders, "k", "", "again").ShardID
		}
		it := ok[*kinesis.GetShardIteratorOutput](t)(a.GetShardIterator(bg, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(s.Name()), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})).ShardIterator
		out := ok[*kinesis.GetRecordsOutput](t)(a.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: it}))
		if got := data(out); len(got) == 0 || got[0] != map[*kcltest.Stream]string{orders: "order", audit: "audit"}[s] {
			t.Fatalf("%s: read %q", s.Name(), got)
		}
	}
	if n := a.Calls(kcltest.OpGetRecords); n != 2 {
		t.Fatalf("GetRecords calls on the account: %d, want 2", n)
	}
	_, err := a.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("missing")})
	wantErrorAs[*types.ResourceNotFoundException](t, err)
	_, err = a.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String("garbage")})
	wantErrorAs[*types.InvalidArgumentException](t, err)
	_, err = a.CreateStream("orders", 1)
	wantErrorAs[*types.ResourceInUseException](t, err)
	_, err = a.CreateStream("bad name", 1)
	wantErrorAs[*types.InvalidArgumentException](t, err)
}

// TestAccountDescribeStreamSummary: the summary names the account (in the
// ARN) and the creation time, the stream identity of a multi-stream lease
// table.
func TestAccountDescribeStreamSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := kcltest.NewAccount(kcltest.WithAccount("210987654321"))
		time.Sleep(1500 * time.Millisecond)
		s := ok[*kcltest.Stream](t)(a.CreateStream("orders", 3))
		d := describeStream(t, a, "orders")
		if got, want := aws.ToString(d.StreamARN), "arn:aws:kinesis:us-east-1:210987654321:stream/orders"; got != want {
			t.Fatalf("ARN %s, want %s", got, want)
		}
		if got := aws.ToTime(d.StreamCreationTimestamp); !got.Equal(time.Now().Truncate(time.Second)) || !got.Equal(s.CreatedAt()) {
			t.Fatalf("created %v, want %v (to the second)", got, time.Now())
		}
		if d.StreamStatus != types.StreamStatusActive || aws.ToInt32(d.OpenShardCount) != 3 || aws.ToString(d.StreamName) != "orders" {
			t.Fatalf("summary %+v", d)
		}
		byARN := ok[*kinesis.DescribeStreamSummaryOutput](t)(s.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(s.ARN())}))
		if aws.ToString(byARN.StreamDescriptionSummary.StreamName) != "orders" {
			t.Fatal("by ARN on the stream itself")
		}
		if s.AccountID() != "210987654321" || a.ID() != "210987654321" {
			t.Fatal("account id")
		}
		if one := kcltest.NewStream(1); one.AccountID() != kcltest.DefaultAccount {
			t.Fatal("a stream of its own belongs to the default account")
		}
	})
}

// TestAccountDeleteAndRecreate: a deleted stream and its iterators answer
// ResourceNotFound, also once a stream of the same name exists again; that
// stream was created later and has shards, records and iterators of its
// own.
func TestAccountDeleteAndRecreate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := kcltest.NewAccount()
		old := ok[*kcltest.Stream](t)(a.CreateStream("orders", 1))
		first := put(t, old, "k", "", "old")
		it := iterator(t, old, first.ShardID, types.ShardIteratorTypeTrimHorizon, "")
		page := ok[*kinesis.ListShardsOutput](t)(a.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("orders"), MaxResults: aws.Int32(1)}))
		_ = page

		if err := a.DeleteStream("orders"); err != nil {
			t.Fatal(err)
		}
		wantErrorAs[*types.ResourceNotFoundException](t, a.DeleteStream("orders"))
		if !old.Deleted() || a.Stream("orders") != nil || len(a.Streams()) != 0 {
			t.Fatal("deleted")
		}
		_, err := a.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: it})
		wantErrorAs[*types.ResourceNotFoundException](t, err)
		_, err = old.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: it})
		wantErrorAs[*types.ResourceNotFoundException](t, err)
		_, err = a.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orders")})
		wantErrorAs[*types.ResourceNotFoundException](t, err)
		_, err = old.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("orders")})
		wantErrorAs[*types.ResourceNotFoundException](t, err)
		_, err = old.Put("k", "", []byte("lost"))
		wantErrorAs[*types.ResourceNotFoundException](t, err)
		_, _, err = old.Split(first.ShardID, nil)
		wantErrorAs[*types.ResourceNotFoundException](t, err)

		// Re-created at once: a second later, as far as its creation time
		// says, and with the same shard ids.
		fresh := ok[*kcltest.Stream](t)(a.CreateStream("orders", 1))
		if !fresh.CreatedAt().After(old.CreatedAt()) {
			t.Fatalf("re-created at %v, the deleted one at %v", fresh.CreatedAt(), old.CreatedAt())
		}
		if fresh.ARN() != old.ARN() || fresh.OpenShards()[0] != first.ShardID {
			t.Fatal("same ARN and shard ids")
		}
		_, err = a.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: it})
		wantErrorAs[*types.ResourceNotFoundException](t, err)
		_, err = a.GetShardIterator(bg, &kinesis.GetShardIteratorInput{
			StreamName: aws.String("orders"), ShardId: aws.String(first.ShardID),
			ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(first.SequenceNumber),
		})
		wantErrorAs[*types.InvalidArgumentException](t, err) // the old stream's sequence number
		put(t, fresh, "k", "", "new")
		fit := iterator(t, fresh, first.ShardID, types.ShardIteratorTypeTrimHorizon, "")
		if got := data(getRecords(t, fresh, fit, 10)); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("the new stream holds %q", got)
		}
		if d := describeStream(t, a, "orders"); !aws.ToTime(d.StreamCreationTimestamp).Equal(fresh.CreatedAt()) {
			t.Fatal("describe shows the new stream")
		}
	})
}

// TestAccountListStreams: the live streams with their creation times, in
// pages.
func TestAccountListStreams(t *testing.T) {
	a := kcltest.NewAccount()
	for _, name := range []string{"c", "a", "b"} {
		ok[*kcltest.Stream](t)(a.CreateStream(name, 1))
	}
	if err := a.DeleteStream("b"); err != nil {
		t.Fatal(err)
	}
	var names []string
	in := &kinesis.ListStreamsInput{Limit: aws.Int32(1)}
	for {
		out := ok[*kinesis.ListStreamsOutput](t)(a.ListStreams(bg, in))
		names = append(names, out.StreamNames...)
		if len(out.StreamSummaries) != len(out.StreamNames) || out.StreamSummaries[0].StreamCreationTimestamp == nil {
			t.Fatalf("summaries %+v", out.StreamSummaries)
		}
		if !aws.ToBool(out.HasMoreStreams) {
			break
		}
		in = &kinesis.ListStreamsInput{NextToken: out.NextToken, Limit: aws.Int32(1)}
	}
	if !slices.Equal(names, []string{"a", "c"}) {
		t.Fatalf("listed %q", names)
	}
	if n := a.Calls(kcltest.OpListStreams); n != 2 {
		t.Fatalf("ListStreams calls: %d", n)
	}
}

func TestAccountRefusesGarbageTokens(t *testing.T) {
	a := kcltest.NewAccount()
	ok[*kcltest.Stream](t)(a.CreateStream("orders", 1))
	_, err := a.ListShards(bg, &kinesis.ListShardsInput{NextToken: aws.String("garbage")})
	wantErrorAs[*types.InvalidArgumentException](t, err)
	_, err = a.ListStreams(bg, &kinesis.ListStreamsInput{NextToken: aws.String("")})
	wantErrorAs[*types.InvalidArgumentException](t, err)
	_, err = a.GetShardIterator(bg, &kinesis.GetShardIteratorInput{ShardId: aws.String("shardId-000000000000")})
	wantErrorAs[*types.InvalidArgumentException](t, err)
}
