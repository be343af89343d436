package efotest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/eventstream"
)

// HTTPClient is the HTTP client of a Kinesis client (kinesis.HTTPClient).
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// KinesisLocal wraps the HTTP client of a *kinesis.Client talking to
// kinesis-local so that the SDK can use its SubscribeToShard:
//
//   - it puts the initial-response event the server never sends in front of
//     the event stream (without it the SDK fails with "expected
//     initial-response");
//   - a refusal the server sends as an exception message inside an HTTP 200
//     (ResourceInUseException for a shard whose last subscription was closed
//     less than about 3 seconds ago) becomes the HTTP 400 AWS answers, so
//     that SubscribeToShard returns the typed error;
//   - with Lifetime set, each subscription ends cleanly at the first event
//     boundary after Lifetime, as AWS ends them after 5 minutes: the
//     server's own 5 minutes are too long for tests.
//
// Use it on the service options (AWS_CA_BUNDLE forbids config.WithHTTPClient):
//
//	kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
//		o.HTTPClient = &efotest.KinesisLocal{Next: o.HTTPClient}
//	})
//
// The server never ends a subscription at the end of a closed shard. With
// ShardEnds set, the wrapper supplies that end: after each empty event it
// asks ShardEnds (a client of the same server, without this wrapper) for
// the records after the event's continuation, and when the shard has none
// and is closed, it sends the last event (no continuation, the children)
// and ends the stream. Test the consumer's shard ends with Server; this is
// for demonstrations on the test server.
type KinesisLocal struct {
	Next      HTTPClient
	Lifetime  time.Duration
	ShardEnds Source
}

// maxFrame bounds one event-stream message: Kinesis events are at most a
// few MiB; anything larger is a corrupt length.
const maxFrame = 16 << 20

var initialResponseFrame = func() []byte {
	var b bytes.Buffer
	if err := newEncoder().initialResponse(&b); err != nil {
		panic(err) // encoding into memory cannot fail
	}
	return b.Bytes()
}()

// Do passes every call on, and fixes the answers to SubscribeToShard. It
// blocks until the first message of a subscription arrives (kinesis-local
// sends one a second).
func (k *KinesisLocal) Do(req *http.Request) (*http.Response, error) {
	start := time.Now()
	subscribe := strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".SubscribeToShard")
	var streamARN, shardID string
	if subscribe && k.ShardEnds != nil && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		streamARN, shardID = subscribedShard(body)
	}
	resp, err := k.Next.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || !subscribe {
		return resp, err
	}
	first, err := readFrame(resp.Body, nil)
	if err != nil {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("efotest: first message of SubscribeToShard: %w", err)
	}
	if code, msg, ok := exceptionOf(first); ok {
		_ = resp.Body.Close()
		return errorResponse(req, code, msg), nil
	}
	body := &localBody{src: resp.Body, pending: append(append([]byte(nil), initialResponseFrame...), first...)}
	if k.Lifetime > 0 {
		body.deadline = start.Add(k.Lifetime)
	}
	if k.ShardEnds != nil {
		body.ends, body.ctx = k.ShardEnds, req.Context()
		body.streamARN, body.shardID = streamARN, shardID
	}
	resp.Body = body
	return resp, nil
}

// exceptionOf returns the code and message of an exception message.
func exceptionOf(frame []byte) (code, msg string, ok bool) {
	m, err := eventstream.NewDecoder().Decode(bytes.NewReader(frame), nil)
	if err != nil {
		return "", "", false
	}
	if t := m.Headers.Get(eventstream.MessageTypeHeader); t == nil || t.String() != eventstream.ExceptionMessageType {
		return "", "", false
	}
	if c := m.Headers.Get(eventstream.ExceptionTypeHeader); c != nil {
		code = c.String()
	}
	var body struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(m.Payload, &body) // a message is a nicety
	return code, body.Message, true
}

func errorResponse(req *http.Request, code, msg string) *http.Response {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amzn-ErrorType", code)
	return &http.Response{
		Status: "400 Bad Request", StatusCode: http.StatusBadRequest,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Request: req,
	}
}

// readFrame reads one whole event-stream message from r into buf. It
// returns io.EOF at a clean end between messages, io.ErrUnexpectedEOF
// inside one.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var prelude [4]byte
	if _, err := io.ReadFull(r, prelude[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(prelude[:])
	// A message is at least its 12-byte prelude and 4-byte checksum.
	if n < 16 || n > maxFrame {
		return nil, fmt.Errorf("efotest: event-stream message length %d out of range", n)
	}
	buf = append(buf[:0], prelude[:]...)
	buf = append(buf, make([]byte, n-4)...)
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// subscribedShard returns the stream ARN and shard of a SubscribeToShard
// request body.
func subscribedShard(body []byte) (streamARN, shardID string) {
	var in struct {
		ConsumerARN string
		ShardID     string `json:"ShardId"`
	}
	if json.Unmarshal(body, &in) != nil {
		return "", ""
	}
	streamARN, _, _ = strings.Cut(in.ConsumerARN, "/consumer/")
	return streamARN, in.ShardID
}

// localBody hands out the event stream message by message, so that it can
// end it cleanly between two messages once its deadline has passed, and
// add the end of a closed shard.
type localBody struct {
	src      io.ReadCloser
	deadline time.Time // zero: none

	ends               Source // nil: no shard end supplied
	ctx                context.Context
	streamARN, shardID string

	pending []byte // what is left of the message being handed out
	buf     []byte
	ended   bool
}

// Read is called by one goroutine at a time, as a response body's.
func (b *localBody) Read(p []byte) (int, error) {
	for len(b.pending) == 0 {
		if b.ended || (!b.deadline.IsZero() && !time.Now().Before(b.deadline)) {
			b.ended = true
			return 0, io.EOF
		}
		frame, err := readFrame(b.src, b.buf)
		if err != nil {
			return 0, err
		}
		b.buf = frame
		b.pending = frame
		if end := b.shardEnd(frame); end != nil {
			b.pending, b.ended = end, true
		}
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

func (b *localBody) Close() error { return b.src.Close() }

// shardEnd returns the last event of the shard when frame is an empty event
// and the shard has nothing after its continuation and is closed; else nil.
func (b *localBody) shardEnd(frame []byte) []byte {
	if b.ends == nil || b.shardID == "" {
		return nil
	}
	m, err := eventstream.NewDecoder().Decode(bytes.NewReader(frame), nil)
	if err != nil {
		return nil
	}
	if t := m.Headers.Get(eventstream.EventTypeHeader); t == nil || t.String() != eventSubscribeToShard {
		return nil
	}
	var ev struct {
		Records                    []json.RawMessage
		ContinuationSequenceNumber string
	}
	if json.Unmarshal(m.Payload, &ev) != nil || len(ev.Records) > 0 || ev.ContinuationSequenceNumber == "" {
		return nil
	}
	it, err := b.ends.GetShardIterator(b.ctx, &kinesis.GetShardIteratorInput{
		StreamARN: aws.String(b.streamARN), ShardId: aws.String(b.shardID),
		ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(ev.ContinuationSequenceNumber),
	})
	if err != nil {
		return nil
	}
	out, err := b.ends.GetRecords(b.ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1), StreamARN: aws.String(b.streamARN)})
	if err != nil || len(out.Records) > 0 || out.NextShardIterator != nil {
		return nil
	}
	children := out.ChildShards
	if children == nil {
		children = []types.ChildShard{}
	}
	var buf bytes.Buffer
	if newEncoder().subscribeToShardEvent(&buf, &types.SubscribeToShardEvent{MillisBehindLatest: aws.Int64(0), ChildShards: children}) != nil {
		return nil
	}
	return buf.Bytes()
}
