package efotest

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

type subscribeInput struct {
	ConsumerARN      string
	ShardID          string `json:"ShardId"`
	StartingPosition *struct {
		Type           types.ShardIteratorType
		SequenceNumber *string
		Timestamp      *float64 // epoch seconds
	}
}

func (in *subscribeInput) position() types.StartingPosition {
	if in.StartingPosition == nil {
		return types.StartingPosition{}
	}
	p := types.StartingPosition{Type: in.StartingPosition.Type, SequenceNumber: in.StartingPosition.SequenceNumber}
	if ts := in.StartingPosition.Timestamp; ts != nil {
		sec, frac := math.Modf(*ts)
		p.Timestamp = aws.Time(time.Unix(int64(sec), int64(frac*1e9)))
	}
	return p
}

// validate refuses what Kinesis refuses before looking at the stream.
func (in *subscribeInput) validate() error {
	p := in.StartingPosition
	if in.ShardID == "" || p == nil {
		return invalid("ShardId and StartingPosition are required")
	}
	switch p.Type {
	case types.ShardIteratorTypeTrimHorizon, types.ShardIteratorTypeLatest:
	case types.ShardIteratorTypeAtTimestamp:
		if p.Timestamp == nil {
			return invalid("StartingPosition AT_TIMESTAMP needs a Timestamp")
		}
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		if aws.ToString(p.SequenceNumber) == "" {
			return invalid("StartingPosition %s needs a SequenceNumber", p.Type)
		}
	default:
		return invalid("StartingPosition type %q is not valid", p.Type)
	}
	return nil
}

// subscribeToShard answers SubscribeToShard: an HTTP error if the call is
// refused, else a 200 whose body is the event stream, written as the client
// reads it, until the subscription ends.
func (s *Server) subscribeToShard(w http.ResponseWriter, r *http.Request, body []byte) {
	var in subscribeInput
	err := decode(body, &in)
	pos := in.position()
	var sess *session
	if err == nil {
		sess, err = s.accept(&in)
	}
	s.mu.Lock()
	s.history = append(s.history, Subscription{ConsumerARN: in.ConsumerARN, ShardID: in.ShardID, Position: pos, Err: err})
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	defer s.release(sess)
	ctx := r.Context()
	if err := sess.start(ctx, pos); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	sess.w = flushWriter{w: w, rc: http.NewResponseController(w)}
	if sess.enc.initialResponse(sess.w) != nil {
		return
	}
	sess.run(ctx)
}

// accept checks the call and registers the subscription as the open one for
// its consumer and shard.
func (s *Server) accept(in *subscribeInput) (*session, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	key := subKey{in.ConsumerARN, in.ShardID}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.consumers[in.ConsumerARN]
	if c == nil {
		return nil, notFound("consumer %s not found", in.ConsumerARN)
	}
	if st := c.status(time.Now()); st != types.ConsumerStatusActive {
		return nil, inUse("consumer %s is %s, not ACTIVE", in.ConsumerARN, st)
	}
	st := s.streams[c.streamARN]
	if st == nil {
		return nil, notFound("stream %s not found", c.streamARN)
	}
	s.attempts[in.ShardID]++
	n := s.attempts[in.ShardID]
	if s.opts.Fault != nil {
		// Called under the lock so that the count it sees is the one used.
		if err := s.opts.Fault(FaultPoint{Op: "SubscribeToShard", ShardID: in.ShardID, Subscription: n}); err != nil {
			return nil, err
		}
	}
	if old := s.open[key]; old != nil {
		if time.Since(old.started) < s.opts.TakeoverAfter {
			return nil, inUse("another active subscription exists for consumer %s on shard %s", in.ConsumerARN, in.ShardID)
		}
		old.stop(inUse("a newer subscription for consumer %s on shard %s took over", in.ConsumerARN, in.ShardID))
	}
	sub := &subscription{started: time.Now(), end: make(chan struct{})}
	s.open[key] = sub
	return &session{s: s, key: key, sub: sub, n: n, stream: st, enc: newEncoder()}, nil
}

// release forgets the subscription, unless a newer one took its place.
func (s *Server) release(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[sess.key] == sess.sub {
		delete(s.open, sess.key)
	}
}

// session is one accepted subscription being served.
type session struct {
	s      *Server
	key    subKey
	sub    *subscription
	n      int
	stream *stream
	enc    *encoder
	w      io.Writer

	iterator *string
	cont     *string // the position to continue from, once known
	events   int
	lastSent time.Time
}

// start takes the source's iterator at the starting position.
func (ss *session) start(ctx context.Context, pos types.StartingPosition) error {
	in := &kinesis.GetShardIteratorInput{
		StreamName:             aws.String(ss.stream.name),
		ShardId:                aws.String(ss.key.shardID),
		ShardIteratorType:      pos.Type,
		StartingSequenceNumber: pos.SequenceNumber,
		Timestamp:              pos.Timestamp,
	}
	out, err := ss.stream.src.GetShardIterator(ctx, in)
	if err != nil {
		return err
	}
	ss.iterator = out.ShardIterator
	switch pos.Type {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		// Sequence numbers only grow, so continuing after this one misses
		// nothing even before a record is read. For the other types no
		// sequence number is known until the first record: no event is
		// sent before it (AWS would send empty events that carry one).
		ss.cont = pos.SequenceNumber
	}
	return nil
}

// run sends events until the subscription ends.
func (ss *session) run(ctx context.Context) {
	lifetime := time.NewTimer(ss.s.opts.Lifetime)
	defer lifetime.Stop()
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	notifier, _ := ss.stream.src.(Notifier)
	for {
		var changed <-chan struct{}
		if notifier != nil {
			changed = notifier.Changed(ss.key.shardID) // before reading, so no change is missed
		}
		out, err := ss.stream.src.GetRecords(ctx, &kinesis.GetRecordsInput{
			ShardIterator: ss.iterator, Limit: aws.Int32(int32(ss.s.opts.EventRecords)),
		})
		if err != nil {
			if ctx.Err() == nil {
				ss.exception(err)
			}
			return
		}
		more, ok := ss.handle(out)
		if !ok {
			return
		}
		if more {
			// Read on while records come, unless the subscription is over.
			select {
			case <-lifetime.C:
				return
			case <-ss.sub.end:
				ss.exception(ss.sub.endErr)
				return
			default:
				continue
			}
		}
		d := ss.s.opts.PollInterval
		if notifier != nil {
			d = math.MaxInt64
		}
		if ss.cont != nil {
			d = min(d, time.Until(ss.lastSent.Add(ss.s.opts.Heartbeat)))
		}
		wait.Reset(max(d, 0))
		select {
		case <-changed:
		case <-wait.C:
		case <-lifetime.C:
			return
		case <-ss.sub.end:
			ss.exception(ss.sub.endErr)
			return
		case <-ctx.Done():
			return
		}
		wait.Stop() // since Go 1.23, a stopped timer delivers no stale tick
	}
}

// handle sends what one GetRecords returned, if anything is worth an event.
// more reports records were sent (so more may be waiting); ok is false once
// the subscription is over.
func (ss *session) handle(out *kinesis.GetRecordsOutput) (more, ok bool) {
	ev := &types.SubscribeToShardEvent{Records: out.Records, MillisBehindLatest: out.MillisBehindLatest}
	if n := len(out.Records); n > 0 {
		ss.cont = out.Records[n-1].SequenceNumber
	}
	end := out.NextShardIterator == nil
	if end {
		// The last event of a closed shard: no continuation, the children.
		ev.ChildShards = out.ChildShards
		if ev.ChildShards == nil {
			ev.ChildShards = []types.ChildShard{}
		}
	} else {
		ss.iterator = out.NextShardIterator
		ev.ContinuationSequenceNumber = ss.cont
	}
	heartbeat := ss.cont != nil && time.Since(ss.lastSent) >= ss.s.opts.Heartbeat
	if len(out.Records) == 0 && !end && !heartbeat {
		return false, true
	}
	if !ss.send(ev) || end {
		return false, false
	}
	return len(out.Records) > 0, true
}

// send writes one event, unless Options.Fault says otherwise; it reports
// whether the subscription goes on.
func (ss *session) send(ev *types.SubscribeToShardEvent) bool {
	if f := ss.s.opts.Fault; f != nil {
		err := f(FaultPoint{Op: EventOp, ShardID: ss.key.shardID, Subscription: ss.n, Event: ss.events})
		switch {
		case err == nil:
		case errors.Is(err, ErrExpire):
			return false
		case errors.Is(err, ErrDisconnect):
			ss.disconnect(ev)
		default:
			ss.exception(err)
			return false
		}
	}
	if ss.enc.subscribeToShardEvent(ss.w, ev) != nil {
		return false
	}
	ss.events++
	ss.lastSent = time.Now()
	ss.s.mu.Lock()
	ss.s.eventsOut++
	ss.s.mu.Unlock()
	return true
}

// disconnect writes the first half of the event and breaks the connection:
// http.ErrAbortHandler makes net/http reset it, and the in-memory transport
// fail the body's reads.
func (ss *session) disconnect(ev *types.SubscribeToShardEvent) {
	var buf bytesWriter
	_ = ss.enc.subscribeToShardEvent(&buf, ev)
	_, _ = ss.w.Write(buf[:len(buf)/2])
	panic(http.ErrAbortHandler)
}

// exception sends err as an exception message, the way Kinesis ends a
// subscription on an error.
func (ss *session) exception(err error) {
	code, msg, _ := errorParts(err)
	var api smithy.APIError
	if !errors.As(err, &api) {
		code = "InternalFailureException"
	}
	_ = ss.enc.exception(ss.w, code, msg)
}

type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

// flushWriter sends each message at once: over net/http, a response is
// buffered until flushed.
type flushWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		if ferr := f.rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
			err = ferr
		}
	}
	return n, err
}
