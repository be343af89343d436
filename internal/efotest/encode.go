package efotest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/eventstream"
)

// The messages of a SubscribeToShard response body, in the AWS event-stream
// framing (application/vnd.amazon.eventstream) with JSON payloads, as the
// awsJson1_1 protocol sends them: an "initial-response" event, then
// "SubscribeToShardEvent" events, or an exception message that ends the
// stream. The JSON is written here rather than by the SDK's own serializer,
// so that the SDK's decoder is checked against the documented wire format
// (base64 Data, timestamps in epoch seconds) and not against itself.

const (
	eventInitialResponse  = "initial-response"
	eventSubscribeToShard = "SubscribeToShardEvent"
	contentTypeJSON       = "application/json"
)

// encoder writes event-stream messages. It is not safe for concurrent use:
// each subscription has its own.
type encoder struct {
	enc     *eventstream.Encoder
	payload []byte
}

func newEncoder() *encoder { return &encoder{enc: eventstream.NewEncoder()} }

// initialResponse writes the message that opens every subscription: the
// operation's (empty) output.
func (e *encoder) initialResponse(w io.Writer) error {
	return e.event(w, eventInitialResponse, []byte("{}"))
}

// subscribeToShardEvent writes one SubscribeToShardEvent.
func (e *encoder) subscribeToShardEvent(w io.Writer, ev *types.SubscribeToShardEvent) error {
	e.payload = appendEventJSON(e.payload[:0], ev)
	return e.event(w, eventSubscribeToShard, e.payload)
}

func (e *encoder) event(w io.Writer, eventType string, payload []byte) error {
	var msg eventstream.Message
	msg.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
	msg.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue(eventType))
	msg.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue(contentTypeJSON))
	msg.Payload = payload
	return e.enc.Encode(w, msg)
}

// exception writes an exception message, such as a ResourceInUseException
// sent when another subscription takes the shard over.
func (e *encoder) exception(w io.Writer, code, message string) error {
	var msg eventstream.Message
	msg.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.ExceptionMessageType))
	msg.Headers.Set(eventstream.ExceptionTypeHeader, eventstream.StringValue(code))
	msg.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue(contentTypeJSON))
	msg.Payload, _ = json.Marshal(struct {
		Message string `json:"message"`
	}{message})
	return e.enc.Encode(w, msg)
}

// appendEventJSON appends ev as Kinesis writes it. It is hand-written
// because it is the hot path of the throughput benchmark: encoding/json
// would spend more than the consumer under test.
func appendEventJSON(b []byte, ev *types.SubscribeToShardEvent) []byte {
	b = append(b, `{"Records":[`...)
	for i := range ev.Records {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRecordJSON(b, &ev.Records[i])
	}
	b = append(b, ']')
	if ev.ContinuationSequenceNumber != nil {
		b = append(b, `,"ContinuationSequenceNumber":`...)
		b = appendString(b, *ev.ContinuationSequenceNumber)
	}
	b = append(b, `,"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, aws.ToInt64(ev.MillisBehindLatest), 10)
	if ev.ChildShards != nil {
		b = append(b, `,"ChildShards":`...)
		b = appendChildShardsJSON(b, ev.ChildShards)
	}
	return append(b, '}')
}

func appendRecordJSON(b []byte, r *types.Record) []byte {
	b = append(b, '{')
	if r.ApproximateArrivalTimestamp != nil {
		b = append(b, `"ApproximateArrivalTimestamp":`...)
		b = appendEpochSeconds(b, *r.ApproximateArrivalTimestamp)
		b = append(b, ',')
	}
	b = append(b, `"Data":"`...)
	b = base64.StdEncoding.AppendEncode(b, r.Data)
	b = append(b, `","EncryptionType":`...)
	enc := r.EncryptionType
	if enc == "" {
		enc = types.EncryptionTypeNone
	}
	b = appendString(b, string(enc))
	b = append(b, `,"PartitionKey":`...)
	b = appendString(b, aws.ToString(r.PartitionKey))
	b = append(b, `,"SequenceNumber":`...)
	b = appendString(b, aws.ToString(r.SequenceNumber))
	return append(b, '}')
}

func appendChildShardsJSON(b []byte, children []types.ChildShard) []byte {
	b = append(b, '[')
	for i, c := range children {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ShardId":`...)
		b = appendString(b, aws.ToString(c.ShardId))
		b = append(b, `,"ParentShards":[`...)
		for j, p := range c.ParentShards {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p)
		}
		b = append(b, ']')
		if c.HashKeyRange != nil {
			b = append(b, `,"HashKeyRange":{"StartingHashKey":`...)
			b = appendString(b, aws.ToString(c.HashKeyRange.StartingHashKey))
			b = append(b, `,"EndingHashKey":`...)
			b = appendString(b, aws.ToString(c.HashKeyRange.EndingHashKey))
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendEpochSeconds writes t as Kinesis does: seconds since the epoch, with
// milliseconds as the fraction.
func appendEpochSeconds(b []byte, t time.Time) []byte {
	return strconv.AppendFloat(b, float64(t.UnixMilli())/1e3, 'f', -1, 64)
}

// appendString appends s as a JSON string. Plain ASCII (sequence numbers,
// shard ids, most partition keys) is copied; anything else goes through
// encoding/json, which escapes it correctly.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
