package efotest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
)

// The hand-written event JSON must decode, through the SDK's own decoder,
// to what was encoded, whatever the payloads and partition keys hold.
func FuzzEventRoundTrip(f *testing.F) {
	f.Add([]byte("data"), "pk", "49590338271490256608559692538361571095921575989136588898", int64(1700000000123), true)
	f.Add([]byte{0, 0xff}, "clé \"\\\n\x00<&>", "1", int64(0), false)
	f.Fuzz(func(t *testing.T, data []byte, pk, seq string, ms int64, end bool) {
		ms %= 1 << 45 // epoch seconds within float64's exact range
		ev := &types.SubscribeToShardEvent{MillisBehindLatest: aws.Int64(ms), Records: []types.Record{{
			Data: data, PartitionKey: aws.String(pk), SequenceNumber: aws.String(seq),
			ApproximateArrivalTimestamp: aws.Time(time.UnixMilli(ms)),
		}}}
		if end {
			ev.ChildShards = []types.ChildShard{{ShardId: aws.String(seq), ParentShards: []string{pk},
				HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String(pk)}}}
		} else {
			ev.ContinuationSequenceNumber = aws.String(seq)
		}
		var b bytes.Buffer
		if err := newEncoder().subscribeToShardEvent(&b, ev); err != nil {
			t.Fatal(err)
		}
		got, err := awsjson.New11(schemas.Kinesis_20131202).DeserializeEventMessage(schemas.SubscribeToShardEventStream, kinesis.TypeRegistry, &b)
		if err != nil {
			if !utf8Valid(pk) || !utf8Valid(seq) {
				return // JSON cannot carry invalid UTF-8; Kinesis strings are UTF-8
			}
			t.Fatalf("decode: %v", err)
		}
		e, ok := got.(*types.SubscribeToShardEvent)
		if !ok {
			t.Fatalf("decoded %T", got)
		}
		r := e.Records[0]
		if !bytes.Equal(r.Data, data) || !utf8Valid(pk) || aws.ToString(r.PartitionKey) != pk || aws.ToString(r.SequenceNumber) != seq {
			if utf8Valid(pk) && utf8Valid(seq) {
				t.Errorf("record %q/%q/%q, want %q/%q/%q", r.Data, aws.ToString(r.PartitionKey), aws.ToString(r.SequenceNumber), data, pk, seq)
			}
		}
		if !r.ApproximateArrivalTimestamp.Equal(time.UnixMilli(ms)) || aws.ToInt64(e.MillisBehindLatest) != ms {
			t.Errorf("timestamp %v behind %d, want %v %d", r.ApproximateArrivalTimestamp, aws.ToInt64(e.MillisBehindLatest), time.UnixMilli(ms), ms)
		}
		if end != (e.ContinuationSequenceNumber == nil) || end != (len(e.ChildShards) == 1) {
			t.Errorf("end %v: continuation %v, children %v", end, e.ContinuationSequenceNumber, e.ChildShards)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// readFrame and exceptionOf take a server's bytes: never a panic, never a
// frame longer than the input.
func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	enc := newEncoder()
	_ = enc.initialResponse(&b)
	_ = enc.exception(&b, "ResourceInUseException", "busy")
	f.Add(b.Bytes())
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		total := 0
		var buf []byte
		for {
			frame, err := readFrame(r, buf)
			if err != nil {
				return
			}
			total += len(frame)
			if total > len(in) {
				t.Fatalf("read %d bytes of frames from %d", total, len(in))
			}
			exceptionOf(frame)
			buf = frame
		}
	})
}

// Any request body gets an answer, never a panic.
func FuzzSubscribeRequest(f *testing.F) {
	f.Add(`{"ConsumerARN":"c","ShardId":"shard-0","StartingPosition":{"Type":"AT_TIMESTAMP","Timestamp":1.5e9}}`)
	f.Add(`{"ConsumerARN":"c","ShardId":"shard-0","StartingPosition":{"Type":"AT_SEQUENCE_NUMBER","SequenceNumber":"x"}}`)
	f.Add(`{"StartingPosition":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		srv := NewServer(Options{})
		src := newMemSource("shard-0")
		src.put("shard-0", "a")
		srv.AddStream("s", src)
		srv.consumers["c"] = &consumer{name: "c", arn: "c", streamARN: StreamARN("s")}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // an accepted subscription ends at once
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", targetPrefix+"SubscribeToShard")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Errorf("status %d: %s", w.Code, w.Body)
		}
		_, _ = io.Copy(io.Discard, w.Body)
	})
}
