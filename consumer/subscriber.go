package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/gokcl/kcl/checkpoint"
)

// subscriber reads one shard through enhanced fan-out subscriptions: a
// source whose records Kinesis pushes as they arrive. A subscription ends
// after 5 minutes, or on an error; the next one starts after the last event
// handed over (its ContinuationSequenceNumber), so nothing is read twice or
// skipped. Each event is budgeted, converted and handed over as the
// fetcher's GetRecords responses are: as one batch, or in parts.
//
// Backpressure: the subscriber takes the next event from the stream only
// once the previous one has its budget and is handed over (the worker took
// it), so a processor that falls behind stops the reading, and the SDK and
// the transport (HTTP/2 flow control) hold back what Kinesis sends
// meanwhile.
type subscriber struct {
	reader
	consumerARN string

	// cont is where the next subscription continues from: the
	// ContinuationSequenceNumber of the last event handed over, once one
	// counts (see adopt).
	cont          string
	lastSubscribe time.Time
}

// minSubscribeGap spaces one shard's SubscribeToShard calls: Kinesis allows
// one a second per consumer and shard.
const minSubscribeGap = time.Second

func newSubscriber(c *Consumer, st *stream, shardID string, start checkpoint.Position, conv converter) *subscriber {
	s := &subscriber{reader: newReader(c, st, shardID, start, conv), consumerARN: st.consumerARN}
	s.fanOut = true
	return s
}

// run subscribes again and again until the shard ends or ctx is done, then
// closes s.out. Errors are retried with backoff (among them
// ResourceInUseException: the previous owner's subscription is still open);
// a subscription that ended cleanly is renewed at once, one call a second at
// most. It returns only ctx's error.
func (s *subscriber) run(ctx context.Context) error {
	defer close(s.out)
	defer s.releaseResponse() // cancelled between the parts of an event
	bo := subscribeBackoff
	for {
		if !sleep(ctx, minSubscribeGap-time.Since(s.lastSubscribe)) {
			return ctx.Err()
		}
		s.lastSubscribe = time.Now()
		end, got, err := s.subscribe(ctx)
		if err != nil && ctx.Err() == nil && s.trimmed(err, s.cont) {
			return s.handOver(ctx, &fetchedBatch{end: true})
		}
		switch {
		case end:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case got:
			// Events came: whatever ended the subscription, the next one
			// starts without delay.
			bo.reset()
		}
		if err == nil {
			s.st.log.Debug("subscription ended; subscribing again", "shard", s.shardID, "after", s.cont)
			continue
		}
		d := bo.next()
		s.logFetchError(err, bo.attempt, d)
		s.fetchFailed(err, bo.attempt, d)
		sleep(ctx, d)
	}
}

// subscribe reads one subscription to its end. It reports whether the
// shard ended, and whether any event came.
//
// The wait for each event is its latency for the hooks (what a GetRecords
// call's duration is to polling): from the SubscribeToShard call for the
// first event, then from the hand-over of the previous one.
func (s *subscriber) subscribe(ctx context.Context) (end, got bool, err error) {
	waitFrom := time.Now()
	defer func() { s.callTime = time.Since(waitFrom) }() // for fetchFailed
	p := s.position(s.cont)
	in := &kinesis.SubscribeToShardInput{
		ConsumerARN:      aws.String(s.consumerARN),
		ShardId:          aws.String(s.shardID),
		StartingPosition: &types.StartingPosition{Type: p.typ, SequenceNumber: p.seq, Timestamp: p.at},
	}
	// Cancelling the call's context when the subscription is left aborts
	// the response body, whatever the transport.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out, err := s.c.cfg.Kinesis.(shardSubscriber).SubscribeToShard(sctx, in, ownCodec)
	if err != nil {
		return false, false, fmt.Errorf("subscribe to shard %s at %s: %w", s.shardID, p.typ, err)
	}
	es := out.GetStream()
	defer closeStream(es, cancel)
	for {
		var ev types.SubscribeToShardEventStream
		var ok bool
		select {
		case ev, ok = <-es.Events():
		case <-ctx.Done():
			return false, got, ctx.Err()
		}
		if !ok {
			if err := es.Err(); err != nil {
				return false, got, fmt.Errorf("subscription to shard %s: %w", s.shardID, err)
			}
			return false, got, nil
		}
		got = true
		e, isEvent := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEvent {
			continue // a kind of event newer than this code
		}
		if end, err := s.handle(ctx, &e.Value, time.Since(waitFrom)); end || err != nil {
			return end, got, err
		}
		waitFrom = time.Now()
	}
}

// handle hands one event over, as one batch or in parts like a GetRecords
// response, once it has its budget, and reports whether it was the shard's
// last. The budget is taken after the event is received, since only then
// is its size known (reserving ahead would hold budget for every idle
// subscription); the subscriber takes no further event meanwhile.
func (s *subscriber) handle(ctx context.Context, ev *types.SubscribeToShardEvent, waited time.Duration) (bool, error) {
	r := &response{recs: ev.Records, count: len(ev.Records), millisBehind: aws.ToInt64(ev.MillisBehindLatest),
		at: time.Now(), latency: waited}
	for i := range ev.Records {
		r.data += int64(len(ev.Records[i].Data))
	}
	// The last event of a closed shard has no continuation, and names the
	// shard's children.
	if ev.ContinuationSequenceNumber == nil {
		r.end, r.children = true, ev.ChildShards
	}
	held, err := s.reserveBudget(ctx, s.reservation(r))
	if err != nil {
		return false, err
	}
	r.held = held
	s.resp = r
	if _, err := s.deliver(ctx); err != nil {
		return false, err
	}
	if !r.end {
		s.adopt(aws.ToString(ev.ContinuationSequenceNumber), len(ev.Records) > 0)
	}
	return r.end, nil
}

// reservation is the budget to take for an event before converting it: its
// payload, and the Records of as many user records as the last events'
// ratio predicts. Before the first event with records, that ratio is
// unknown (KPL aggregates hold hundreds): a quarter of the budget is taken,
// as the fetcher's first call takes, and the surplus returned once the
// event is converted. An event holding more user records than predicted is
// converted in parts rather than exceed the budget.
func (s *subscriber) reservation(r *response) int64 {
	if r.count == 0 {
		return 0
	}
	n := s.size.reservation(r.count, r.data)
	if s.size.records == 0 {
		n = max(n, s.c.budget.size/callShare)
	}
	return min(n, s.c.budget.size)
}

// adopt makes cont the position the next subscription continues after. An
// empty event's continuation is not adopted while nothing has been read
// from a checkpoint inside the shard: subscribing again AT the checkpoint,
// rather than after a position Kinesis chose, is what keeps the sub-records
// of an aggregate that follow the checkpoint.
func (s *subscriber) adopt(cont string, records bool) {
	if cont == "" || (!records && s.cont == "" && !s.start.IsSentinel()) {
		return
	}
	s.cont = cont
}

// closeStream closes a subscription's event stream and waits until the
// SDK's goroutine that hands its events over has returned.
func closeStream(es *kinesis.SubscribeToShardEventStream, cancel context.CancelFunc) {
	cancel()
	_ = es.Close()
	for range es.Events() {
	}
}

// ownCodec gives each subscription its own event-stream codec: the SDK's
// default protocol keeps one per client, shared by every event stream the
// client opens and unsynchronized (aws/smithy-go#714: a data race under
// -race, and re-encoded unknown events can mix). Only that default protocol
// is replaced; a client configured with another keeps it.
func ownCodec(o *kinesis.Options) {
	if _, ok := o.Protocol.(*awsjson.Protocol); ok {
		o.Protocol = awsjson.New11(schemas.Kinesis_20131202)
	}
}
