package efotest

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/gokcl/kcl/internal/testenv"
)

type fixture struct {
	src         *memSource
	srv         *Server
	k           *kinesis.Client
	streamARN   string
	consumerARN string
}

// newFixture serves shards from a memSource (as a Notifier if notify) and
// registers the consumer "app". Call it inside a synctest bubble.
func newFixture(t *testing.T, opts Options, notify bool, shards ...string) *fixture {
	t.Helper()
	f := &fixture{src: newMemSource(shards...), srv: NewServer(opts)}
	var src Source = f.src
	if notify {
		src = memNotifier{f.src}
	}
	f.streamARN = f.srv.AddStream("s", src)
	f.k = NewClient(f.srv, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	out, err := f.k.RegisterStreamConsumer(context.Background(), &kinesis.RegisterStreamConsumerInput{
		StreamARN: aws.String(f.streamARN), ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatalf("RegisterStreamConsumer: %v", err)
	}
	f.consumerARN = aws.ToString(out.Consumer.ConsumerARN)
	return f
}

// ownCodec gives one call its own protocol codec: the client's is shared by
// every event stream it opens, and racy (aws/smithy-go#714).
func ownCodec(o *kinesis.Options) { o.Protocol = awsjson.New11(schemas.Kinesis_20131202) }

func (f *fixture) subscribe(shard string, pos types.StartingPosition) (*kinesis.SubscribeToShardEventStream, error) {
	out, err := f.k.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{
		ConsumerARN: aws.String(f.consumerARN), ShardId: aws.String(shard), StartingPosition: &pos}, ownCodec)
	if err != nil {
		return nil, err
	}
	return out.GetStream(), nil
}

func (f *fixture) mustSubscribe(t *testing.T, shard string, pos types.StartingPosition) *kinesis.SubscribeToShardEventStream {
	t.Helper()
	es, err := f.subscribe(shard, pos)
	if err != nil {
		t.Fatalf("SubscribeToShard %s: %v", shard, err)
	}
	t.Cleanup(func() { es.Close() })
	return es
}

var trimHorizon = types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}

func after(seq string) types.StartingPosition {
	return types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(seq)}
}

// next returns the stream's next event; it fails the test if the stream
// ends instead.
func next(t *testing.T, es *kinesis.SubscribeToShardEventStream) *types.SubscribeToShardEvent {
	t.Helper()
	ev, ok := <-es.Events()
	if !ok {
		t.Fatalf("stream ended (err %v), want an event", es.Err())
	}
	e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
	if !ok {
		t.Fatalf("event %T, want a SubscribeToShardEvent", ev)
	}
	return &e.Value
}

// ended waits for the stream's end and returns its error.
func ended(t *testing.T, es *kinesis.SubscribeToShardEventStream) error {
	t.Helper()
	for ev := range es.Events() {
		t.Fatalf("got %#v, want the end of the stream", ev)
	}
	return es.Err()
}

func data(ev *types.SubscribeToShardEvent) []string {
	var out []string
	for _, r := range ev.Records {
		out = append(out, string(r.Data))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSubscribeDeliversRecordsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{}, false, "shard-0")
		seqs := f.src.put("shard-0", "a", "b", "c")
		before := time.Now().Truncate(time.Millisecond)
		es := f.mustSubscribe(t, "shard-0", trimHorizon)
		ev := next(t, es)
		if got := data(ev); !equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("records %q, want a b c", got)
		}
		if got := aws.ToString(ev.ContinuationSequenceNumber); got != seqs[2] {
			t.Errorf("ContinuationSequenceNumber %s, want the last record's %s", got, seqs[2])
		}
		r := ev.Records[0]
		if aws.ToString(r.PartitionKey) != "pk-a" || aws.ToString(r.SequenceNumber) != seqs[0] || !r.ApproximateArrivalTimestamp.Equal(before) {
			t.Errorf("record %+v: fields not carried over (want pk-a, %s, %v)", r, seqs[0], before)
		}
		if ev.ChildShards != nil {
			t.Errorf("ChildShards %v on an open shard", ev.ChildShards)
		}
		// Records put later are pushed on the same subscription.
		f.src.put("shard-0", "d")
		if got := data(next(t, es)); !equal(got, []string{"d"}) {
			t.Fatalf("records %q, want d", got)
		}
	})
}

func TestSubscribeNotifierPushesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{PollInterval: time.Hour, Heartbeat: time.Hour}, true, "shard-0")
		es := f.mustSubscribe(t, "shard-0", trimHorizon)
		synctest.Wait()
		start := time.Now()
		f.src.put("shard-0", "a")
		if got := data(next(t, es)); !equal(got, []string{"a"}) {
			t.Fatalf("records %q, want a", got)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("record pushed after %v of virtual time, want at once", d)
		}
	})
}

func TestSubscribeSpecialCharactersAndBinaryData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{}, false, "shard-0")
		f.src.mu.Lock()
		f.src.shards["shard-0"].records = append(f.src.shards["shard-0"].records, types.Record{
			Data: []byte{0, 0xff, '"', '\n'}, PartitionKey: aws.String("clé \"quoted\" \\ <&>\x01"),
			SequenceNumber: aws.String("7"), ApproximateArrivalTimestamp: aws.Time(time.UnixMilli(1700000000123)),
		})
		f.src.mu.Unlock()
		ev := next(t, f.mustSubscribe(t, "shard-0", trimHorizon))
		r := ev.Records[0]
		if string(r.Data) != "\x00\xff\"\n" || aws.ToString(r.PartitionKey) != "clé \"quoted\" \\ <&>\x01" {
			t.Errorf("record %q / %q did not survive encoding", r.Data, aws.ToString(r.PartitionKey))
		}
		if !r.ApproximateArrivalTimestamp.Equal(time.UnixMilli(1700000000123)) {
			t.Errorf("timestamp %v, want %v", r.ApproximateArrivalTimestamp, time.UnixMilli(1700000000123))
		}
	})
}

func TestSubscribeShardEndCarriesChildShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{}, true, "parent")
		f.src.put("parent", "a")
		es := f.mustSubscribe(t, "parent", trimHorizon)
		if got := data(next(t, es)); !equal(got, []string{"a"}) {
			t.Fatalf("records %q, want a", got)
		}
		f.src.put("parent", "b")
		f.src.close("parent", "left", "right")
		var last *types.SubscribeToShardEvent
		var got []string
		for last == nil || last.ContinuationSequenceNumber != nil {
			last = next(t, es)
			got = append(got, data(last)...)
		}
		if !equal(got, []string{"b"}) {
			t.Errorf("records before the end %q, want b", got)
		}
		if len(last.ChildShards) != 2 || aws.ToString(last.ChildShards[0].ShardId) != "left" ||
			aws.ToString(last.ChildShards[1].ShardId) != "right" || last.ChildShards[0].ParentShards[0] != "parent" {
			t.Errorf("ChildShards %+v, want left and right of parent", last.ChildShards)
		}
		if err := ended(t, es); err != nil {
			t.Errorf("stream ended with %v, want a clean end", err)
		}
	})
}

func TestSubscribeAtAndAfterSequenceNumber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{}, false, "shard-0")
		seqs := f.src.put("shard-0", "a", "b", "c")
		es := f.mustSubscribe(t, "shard-0", types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(seqs[1])})
		if got := data(next(t, es)); !equal(got, []string{"b", "c"}) {
			t.Errorf("AT %s: %q, want b c", seqs[1], got)
		}
		es.Close()
		synctest.Wait()
		f.srv.opts.TakeoverAfter = time.Nanosecond
		es = f.mustSubscribe(t, "shard-0", after(seqs[1]))
		if got := data(next(t, es)); !equal(got, []string{"c"}) {
			t.Errorf("AFTER %s: %q, want c", seqs[1], got)
		}
	})
}

func TestSubscriptionEndsAfterLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{Lifetime: time.Minute, Heartbeat: 10 * time.Second}, true, "shard-0")
		f.src.put("shard-0", "a")
		start := time.Now()
		es := f.mustSubscribe(t, "shard-0", trimHorizon)
		last := next(t, es)
		heartbeats := 0
		for ev := range es.Events() {
			e := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value
			if len(e.Records) != 0 || aws.ToString(e.ContinuationSequenceNumber) != aws.ToString(last.ContinuationSequenceNumber) {
				t.Fatalf("heartbeat %+v, want no records and continuation %s", e, aws.ToString(last.ContinuationSequenceNumber))
			}
			heartbeats++
		}
		if err := es.Err(); err != nil {
			t.Fatalf("stream ended with %v, want a clean end", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("subscription lasted %v, want the 1m lifetime", d)
		}
		if heartbeats < 4 || heartbeats > 6 {
			t.Errorf("%d empty events in 1m with a 10s heartbeat, want about 5", heartbeats)
		}
		if n := f.srv.Open(); n != 0 {
			t.Errorf("%d subscriptions open after the end", n)
		}
	})
}

func TestSecondSubscriptionRefusedThenTakesOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{TakeoverAfter: 5 * time.Second, Heartbeat: time.Hour}, true, "shard-0")
		f.src.put("shard-0", "a")
		first := f.mustSubscribe(t, "shard-0", trimHorizon)
		next(t, first)
		_, err := f.subscribe("shard-0", trimHorizon)
		var inUse *types.ResourceInUseException
		if !errors.As(err, &inUse) {
			t.Fatalf("second subscription within 5s: %v, want ResourceInUseException", err)
		}
		time.Sleep(5 * time.Second)
		second := f.mustSubscribe(t, "shard-0", trimHorizon)
		if err := ended(t, first); !errors.As(err, &inUse) {
			t.Errorf("first subscription after the takeover ended with %v, want ResourceInUseException", err)
		}
		if got := data(next(t, second)); !equal(got, []string{"a"}) {
			t.Errorf("second subscription: %q, want a", got)
		}
		subs := f.srv.Subscriptions()
		if len(subs) != 3 || subs[1].Err == nil || subs[0].Err != nil || subs[2].Err != nil {
			t.Errorf("history %+v, want accepted, refused, accepted", subs)
		}
	})
}

func TestSubscribeRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{}, false, "shard-0")
		var notFound *types.ResourceNotFoundException
		if _, err := f.subscribe("shard-9", trimHorizon); !errors.As(err, &notFound) {
			t.Errorf("unknown shard: %v, want ResourceNotFoundException", err)
		}
		f.consumerARN += "-nope"
		if _, err := f.subscribe("shard-0", trimHorizon); !errors.As(err, &notFound) {
			t.Errorf("unknown consumer: %v, want ResourceNotFoundException", err)
		}
		if n := f.srv.Open(); n != 0 {
			t.Errorf("%d subscriptions open after refusals", n)
		}
	})
}

func TestFaultsMidStream(t *testing.T) {
	cases := []struct {
		name  string
		fault error
		check func(error) bool
	}{
		{"exception", &types.InternalFailureException{Message: aws.String("boom")}, func(err error) bool {
			var e *types.InternalFailureException
			return errors.As(err, &e) && aws.ToString(e.Message) == "boom"
		}},
		{"KMS exception", &types.KMSThrottlingException{Message: aws.String("slow down")}, func(err error) bool {
			var e *types.KMSThrottlingException
			return errors.As(err, &e)
		}},
		{"expire", ErrExpire, func(err error) bool { return err == nil }},
		{"disconnect", ErrDisconnect, func(err error) bool { return errors.Is(err, ErrConnectionReset) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fault := func(p FaultPoint) error {
					if p.Op == EventOp && p.Event == 1 {
						return tc.fault
					}
					return nil
				}
				f := newFixture(t, Options{Fault: fault, EventRecords: 1}, true, "shard-0")
				f.src.put("shard-0", "a", "b")
				es := f.mustSubscribe(t, "shard-0", trimHorizon)
				if got := data(next(t, es)); !equal(got, []string{"a"}) {
					t.Fatalf("first event %q, want a", got)
				}
				if err := ended(t, es); !tc.check(err) {
					t.Errorf("stream ended with %v (%T)", err, err)
				}
				synctest.Wait()
				if n := f.srv.Open(); n != 0 {
					t.Errorf("%d subscriptions open after the fault", n)
				}
			})
		})
	}
}

func TestFaultOnCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{}, false, "shard-0")
		f.srv.opts.Fault = func(p FaultPoint) error {
			switch {
			case p.Op == "SubscribeToShard" && p.Subscription == 1:
				return &types.LimitExceededException{Message: aws.String("too many")}
			case p.Op == "DescribeStreamConsumer":
				return errors.New("any other error")
			}
			return nil
		}
		var lim *types.LimitExceededException
		if _, err := f.subscribe("shard-0", trimHorizon); !errors.As(err, &lim) {
			t.Errorf("SubscribeToShard: %v, want LimitExceededException", err)
		}
		var internal *types.InternalFailureException
		_, err := f.k.DescribeStreamConsumer(context.Background(), &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(f.consumerARN)})
		if !errors.As(err, &internal) {
			t.Errorf("DescribeStreamConsumer: %v, want InternalFailureException", err)
		}
		f.mustSubscribe(t, "shard-0", trimHorizon) // the second is accepted
	})
}

// A reader that does not read holds the server back: events are encoded
// only as they are read, so a stuck consumer costs a bounded amount.
func TestSlowReaderHoldsTheServerBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{EventRecords: 1}, true, "shard-0")
		for range 100 {
			f.src.put("shard-0", "x")
		}
		es := f.mustSubscribe(t, "shard-0", trimHorizon)
		synctest.Wait()
		// The SDK holds one event in each of its two goroutines, the server
		// one in its blocked write.
		t.Logf("events encoded before any read: %d", f.srv.Calls(EventOp))
		if n := f.srv.Calls(EventOp); n > 4 {
			t.Fatalf("%d events encoded for a reader that read none, want at most 4", n)
		}
		for range 10 {
			next(t, es)
		}
		synctest.Wait()
		if n := f.srv.Calls(EventOp); n > 14 {
			t.Fatalf("%d events encoded after 10 read, want at most 14", n)
		}
	})
}

// Closing the client's stream ends the server's side at once, even while it
// is blocked writing or waiting for records; the bubble's end checks that
// no goroutine is left.
func TestCloseEndsTheSubscription(t *testing.T) {
	for _, busy := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			f := newFixture(t, Options{EventRecords: 1}, true, "shard-0")
			if busy {
				for range 10 {
					f.src.put("shard-0", "x")
				}
			}
			es := f.mustSubscribe(t, "shard-0", trimHorizon)
			synctest.Wait()
			if n := f.srv.Open(); n != 1 {
				t.Fatalf("%d open subscriptions, want 1", n)
			}
			es.Close()
			synctest.Wait()
			if n := f.srv.Open(); n != 0 {
				t.Errorf("busy=%v: %d subscriptions open after Close", busy, n)
			}
		})
	}
}

func TestCancelledContextEndsTheSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, Options{}, true, "shard-0")
		ctx, cancel := context.WithCancel(context.Background())
		out, err := f.k.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
			ConsumerARN: aws.String(f.consumerARN), ShardId: aws.String("shard-0"), StartingPosition: &trimHorizon}, ownCodec)
		if err != nil {
			t.Fatal(err)
		}
		es := out.GetStream()
		defer es.Close()
		synctest.Wait()
		cancel()
		for range es.Events() {
		}
		synctest.Wait()
		if n := f.srv.Open(); n != 0 {
			t.Errorf("%d subscriptions open after the context was cancelled", n)
		}
	})
}

// Over a real connection (HTTP/1.1 and HTTP/2 with TLS), each event is
// flushed at once and a client that goes away ends the subscription.
func TestServerOverNetHTTP(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		srv := NewServer(Options{Heartbeat: time.Hour})
		src := newMemSource("shard-0")
		arn := srv.AddStream("s", memNotifier{src})
		ts := httptest.NewUnstartedServer(srv)
		if h2 {
			ts.EnableHTTP2 = true
			ts.StartTLS()
		} else {
			ts.Start()
		}
		k := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.URL),
			Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), HTTPClient: ts.Client()})
		f := &fixture{src: src, srv: srv, k: k, streamARN: arn}
		out, err := k.RegisterStreamConsumer(context.Background(), &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn), ConsumerName: aws.String("app")})
		if err != nil {
			t.Fatal(err)
		}
		f.consumerARN = aws.ToString(out.Consumer.ConsumerARN)
		sub, err := k.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{
			ConsumerARN: out.Consumer.ConsumerARN, ShardId: aws.String("shard-0"), StartingPosition: &trimHorizon}, ownCodec)
		if err != nil {
			t.Fatalf("h2=%v: %v", h2, err)
		}
		es := sub.GetStream()
		for _, d := range []string{"a", "b"} {
			src.put("shard-0", d)
			if got := data(next(t, es)); !equal(got, []string{d}) {
				t.Fatalf("h2=%v: records %q, want %s", h2, got, d)
			}
		}
		es.Close()
		testenv.WaitFor(t, 5*time.Second, "the subscription to end on the server", func() bool { return srv.Open() == 0 })
		ts.Close()
	}
}

func TestConsumerRegistry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t, Options{ActivationDelay: 2 * time.Second}, true, "shard-0")
		arn := aws.String(f.streamARN)
		_, err := f.k.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: arn, ConsumerName: aws.String("app")})
		var inUse *types.ResourceInUseException
		if !errors.As(err, &inUse) {
			t.Errorf("second registration: %v, want ResourceInUseException", err)
		}
		byName := &kinesis.DescribeStreamConsumerInput{StreamARN: arn, ConsumerName: aws.String("app")}
		d, err := f.k.DescribeStreamConsumer(ctx, byName)
		if err != nil || d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusCreating ||
			aws.ToString(d.ConsumerDescription.ConsumerARN) != f.consumerARN || aws.ToString(d.ConsumerDescription.StreamARN) != f.streamARN {
			t.Fatalf("describe by name: %+v, %v; want CREATING %s", d, err, f.consumerARN)
		}
		var notActive *types.ResourceInUseException
		if _, err := f.subscribe("shard-0", trimHorizon); !errors.As(err, &notActive) {
			t.Errorf("subscription of a CREATING consumer: %v, want ResourceInUseException", err)
		}
		time.Sleep(2 * time.Second)
		d, err = f.k.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(f.consumerARN)})
		if err != nil || d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusActive {
			t.Fatalf("describe by ARN after the delay: %+v, %v; want ACTIVE", d, err)
		}
		l, err := f.k.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: arn})
		if err != nil || len(l.Consumers) != 1 || aws.ToString(l.Consumers[0].ConsumerName) != "app" {
			t.Errorf("list: %+v, %v", l, err)
		}
		sum, err := f.k.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
		if err != nil || aws.ToString(sum.StreamDescriptionSummary.StreamARN) != f.streamARN || aws.ToInt32(sum.StreamDescriptionSummary.ConsumerCount) != 1 {
			t.Errorf("stream summary: %+v, %v", sum, err)
		}

		es := f.mustSubscribe(t, "shard-0", trimHorizon)
		synctest.Wait()
		if _, err := f.k.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(f.consumerARN)}); err != nil {
			t.Fatal(err)
		}
		var notFound *types.ResourceNotFoundException
		if err := ended(t, es); !errors.As(err, &notFound) {
			t.Errorf("subscription of a deregistered consumer ended with %v, want ResourceNotFoundException", err)
		}
		if _, err := f.k.DescribeStreamConsumer(ctx, byName); !errors.As(err, &notFound) {
			t.Errorf("describe after deregistration: %v, want ResourceNotFoundException", err)
		}
		if n := f.srv.Calls("RegisterStreamConsumer"); n != 2 {
			t.Errorf("Calls(RegisterStreamConsumer) = %d, want 2", n)
		}
	})
}
