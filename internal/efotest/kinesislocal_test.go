package efotest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// likeKinesisLocal answers SubscribeToShard as kinesis-local does: events
// with no initial-response first, one every second, or a refusal as an
// exception inside a 200.
type likeKinesisLocal struct {
	refuse bool
	events int
}

func (h likeKinesisLocal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	enc := newEncoder()
	if h.refuse {
		_ = enc.exception(w, "ResourceInUseException", "Another active subscription exists")
		return
	}
	for i := range h.events {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(time.Second):
		}
		seq := string(rune('a' + i))
		ev := &types.SubscribeToShardEvent{ContinuationSequenceNumber: aws.String(seq), MillisBehindLatest: aws.Int64(0),
			Records: []types.Record{{Data: []byte(seq), PartitionKey: aws.String("k"), SequenceNumber: aws.String(seq)}}}
		if enc.subscribeToShardEvent(w, ev) != nil {
			return
		}
	}
}

func localClient(h http.Handler, lifetime time.Duration) *kinesis.Client {
	return NewClient(h, func(o *kinesis.Options) {
		o.RetryMaxAttempts = 1
		o.HTTPClient = &KinesisLocal{Next: o.HTTPClient, Lifetime: lifetime}
	})
}

func subscribeLocal(k *kinesis.Client) (*kinesis.SubscribeToShardOutput, error) {
	return k.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{
		ConsumerARN: aws.String("arn"), ShardId: aws.String("shard"), StartingPosition: &trimHorizon}, ownCodec)
}

func TestKinesisLocalPrependsTheInitialResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Without the wrapper the SDK refuses the stream.
		if _, err := subscribeLocal(NewClient(likeKinesisLocal{events: 1}, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })); err == nil {
			t.Fatal("the SDK accepted a stream without initial-response: the wrapper may be useless now")
		}
		out, err := subscribeLocal(localClient(likeKinesisLocal{events: 3}, 0))
		if err != nil {
			t.Fatal(err)
		}
		es := out.GetStream()
		defer es.Close()
		var got []string
		for range 3 {
			got = append(got, data(next(t, es))...)
		}
		if !equal(got, []string{"a", "b", "c"}) {
			t.Errorf("records %q, want a b c", got)
		}
		if err := ended(t, es); err != nil {
			t.Errorf("end: %v", err)
		}
	})
}

func TestKinesisLocalRefusalBecomesAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, err := subscribeLocal(localClient(likeKinesisLocal{refuse: true}, 0))
		var inUse *types.ResourceInUseException
		if !errors.As(err, &inUse) || aws.ToString(inUse.Message) != "Another active subscription exists" {
			t.Errorf("SubscribeToShard: %v, want ResourceInUseException", err)
		}
	})
}

func TestKinesisLocalLifetimeEndsBetweenEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		out, err := subscribeLocal(localClient(likeKinesisLocal{events: 10}, 2500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		es := out.GetStream()
		defer es.Close()
		var got []string
		for ev := range es.Events() {
			got = append(got, data(&ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value)...)
		}
		if err := es.Err(); err != nil {
			t.Fatalf("end: %v, want a clean end", err)
		}
		// Events come at 1, 2, 3 s: the first read after the deadline ends
		// the stream.
		if !equal(got, []string{"a", "b", "c"}) {
			t.Errorf("records %q, want a b c", got)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("ended after %v, want 3s", d)
		}
	})
}

func TestReadFrame(t *testing.T) {
	var b bytes.Buffer
	enc := newEncoder()
	_ = enc.initialResponse(&b)
	_ = enc.exception(&b, "X", "y")
	whole := b.Bytes()
	r := bytes.NewReader(whole)
	f1, err := readFrame(r, nil)
	if err != nil || !bytes.Equal(f1, initialResponseFrame) {
		t.Fatalf("first frame %x, %v", f1, err)
	}
	f2, err := readFrame(r, nil)
	if err != nil || len(f1)+len(f2) != len(whole) {
		t.Fatalf("second frame %d bytes, %v", len(f2), err)
	}
	if code, msg, ok := exceptionOf(f2); !ok || code != "X" || msg != "y" {
		t.Errorf("exceptionOf = %q %q %v", code, msg, ok)
	}
	if _, err := readFrame(r, nil); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
	if _, err := readFrame(bytes.NewReader(whole[:len(f1)+5]), f1); err != nil {
		t.Fatalf("first of a truncated pair: %v", err)
	}
	r = bytes.NewReader(whole[:len(f1)+5])
	_, _ = readFrame(r, nil)
	if _, err := readFrame(r, nil); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated frame: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0}), nil); err == nil {
		t.Error("a 4 GiB length was accepted")
	}
}

// emptyAfterFirst answers like kinesis-local on a closed shard: its record
// (sequence number 101), then empty events continuing from it, forever.
type emptyAfterFirst struct{}

func (emptyAfterFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	enc := newEncoder()
	for i := 0; ; i++ {
		ev := &types.SubscribeToShardEvent{ContinuationSequenceNumber: aws.String("101"), MillisBehindLatest: aws.Int64(0), Records: []types.Record{}}
		if i == 0 {
			ev.Records = []types.Record{{Data: []byte("a"), PartitionKey: aws.String("k"), SequenceNumber: aws.String("101")}}
		}
		if enc.subscribeToShardEvent(w, ev) != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func TestKinesisLocalSuppliesTheShardEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newMemSource("shard")
		if seqs := src.put("shard", "a"); seqs[0] != "101" {
			t.Fatalf("sequence %s", seqs[0])
		}
		src.close("shard", "child")
		k := NewClient(emptyAfterFirst{}, func(o *kinesis.Options) {
			o.RetryMaxAttempts = 1
			o.HTTPClient = &KinesisLocal{Next: o.HTTPClient, ShardEnds: src}
		})
		out, err := k.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{
			ConsumerARN: aws.String(StreamARN("s") + "/consumer/app:1"), ShardId: aws.String("shard"), StartingPosition: &trimHorizon}, ownCodec)
		if err != nil {
			t.Fatal(err)
		}
		es := out.GetStream()
		defer es.Close()
		if got := data(next(t, es)); !equal(got, []string{"a"}) {
			t.Fatalf("records %q, want a", got)
		}
		last := next(t, es)
		if last.ContinuationSequenceNumber != nil || len(last.ChildShards) != 1 || aws.ToString(last.ChildShards[0].ShardId) != "child" {
			t.Fatalf("last event %+v, want no continuation and the child", last)
		}
		if err := ended(t, es); err != nil {
			t.Errorf("end: %v", err)
		}
	})
}
