package consumer

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/checkpoint"
)

// fetchedBatch is one GetRecords response or SubscribeToShard event,
// converted, or a part of one (see reader.nextBatch).
type fetchedBatch struct {
	records      []Record
	res          convertResult
	millisBehind int64
	fetchedAt    time.Time // when its response came
	// end is set on the last batch of a closed shard; children are the
	// shard's children as the response named them.
	end      bool
	children []types.ChildShard
	held     int64 // budget bytes to release once processed
}

// response is a GetRecords response or SubscribeToShard event not yet
// wholly handed over.
type response struct {
	recs         []types.Record // not converted yet
	count        int            // Kinesis records in the response
	users        int64          // user records converted so far
	data         int64          // payload bytes of the whole response
	held         int64          // budget held for it until its last part is done
	millisBehind int64
	at           time.Time     // when it came
	latency      time.Duration // the GetRecords call's, or the wait for the event
	end          bool
	children     []types.ChildShard
}

// source reads one shard ahead of its processor, in its own goroutine owned
// by the shard worker, and hands converted batches over an unbuffered
// channel: the polling fetcher, or the enhanced fan-out subscriber.
type source interface {
	// run reads until the shard ends or ctx is done, then closes the
	// channel of batches. Faults are retried with backoff; it returns only
	// ctx's error.
	run(ctx context.Context) error
	// batches is the channel the batches come through.
	batches() <-chan *fetchedBatch
	// done returns a batch's budget once it has been processed (or dropped).
	done(b *fetchedBatch)
}

// reader is what the fetcher and the subscriber share, so that both read
// a shard the same way: the starting position, the memory budget, the
// conversion of a response into batches (in parts when its user records
// would exceed the budget), and the hand-over to the shard worker. A stuck
// processor thus holds two batches with either: the one it is processing
// and the one the reader is blocked handing over.
type reader struct {
	c       *Consumer
	st      *stream
	shardID string
	start   checkpoint.Position // the lease's checkpoint when the worker began
	conv    converter
	out     chan *fetchedBatch
	stat    *shardStat // the worker's, for Status; nil in tests of a source alone
	fanOut  bool       // the subscriber's: batches come from SubscribeToShard events

	size   sizer // what the last responses held
	resp   *response
	warned bool // about a response larger than its budget

	held    atomic.Int64  // budget bytes of batches handed over and not yet done
	pending atomic.Int32  // batches handed over and not yet done
	freed   chan struct{} // capacity 1: a batch was done

	latestAt time.Time // when the first LATEST position was used
	notFound time.Time // first ResourceNotFoundException for the shard, if any

	callTime time.Duration // the last call's duration (or wait's), until a failure reports it (see fetchFailed)
}

func newReader(c *Consumer, st *stream, shardID string, start checkpoint.Position, conv converter) reader {
	return reader{c: c, st: st, shardID: shardID, start: start, conv: conv,
		out:   make(chan *fetchedBatch),
		size:  sizer{maxRecords: c.cfg.MaxRecords, budget: c.budget.size},
		freed: make(chan struct{}, 1)}
}

func (r *reader) batches() <-chan *fetchedBatch { return r.out }

// deliver reports r.resp to Status and the hooks, then hands it over, in
// parts if it must (see nextBatch), each part once the previous one is
// done, and returns the last batch handed over.
func (r *reader) deliver(ctx context.Context) (*fetchedBatch, error) {
	r.fetched(r.resp)
	for {
		b := r.nextBatch()
		if err := r.handOver(ctx, b); err != nil {
			return nil, err
		}
		if r.resp == nil {
			return b, nil
		}
		// A part: the next one shares its reservation.
		if err := r.waitDone(ctx); err != nil {
			return nil, err
		}
	}
}

// nextBatch converts the response in r.resp into a batch: the whole of it
// when its user records fit in what the reader holds for it, which is the
// usual case. Otherwise (aggregates holding more user records than the last
// responses did, with no budget free to cover them) it converts as many as
// fit, and the rest in later parts, each once the previous one is done:
// the payload is in memory already, but the Records describing it are not,
// and they are what would exceed the budget.
//
// A response larger than its reservation (a server breaking the limits the
// reservation relies on, or an event larger than the whole budget) is
// converted whole, exceeding the budget by the difference, as it is in
// memory already.
func (r *reader) nextBatch() *fetchedBatch {
	resp := r.resp
	limit := -1
	if resp.held >= resp.data {
		limit = max(int((resp.held-resp.data)/recordSize), 1)
	} else if !r.warned {
		r.warned = true
		r.st.log.Warn("a response held more than its reservation allows; the buffered bytes exceed MaxBufferedBytes by the difference",
			"shard", r.shardID, "bytes", resp.data, "reserved", resp.held)
	}
	b := &fetchedBatch{millisBehind: resp.millisBehind, fetchedAt: resp.at}
	// Size the slice from the last response's user records per Kinesis
	// record, so that unpacking aggregates rarely grows it.
	hint := len(resp.recs)
	if r.size.records > 0 {
		hint = len(resp.recs) * int((r.size.users+r.size.records-1)/r.size.records)
	}
	if limit >= 0 {
		hint = min(hint, limit)
	}
	var n int
	b.records, b.res, n = r.conv.convert(make([]Record, 0, hint), resp.recs, limit)
	resp.recs = resp.recs[n:]
	resp.users += int64(len(b.records))
	if len(resp.recs) > 0 {
		return b // a part: the reader keeps holding the reservation
	}
	// The last part: it holds the payload and its own Records; the rest of
	// the reservation goes back to the budget.
	b.held = r.c.budget.settle(resp.held, resp.data+int64(len(b.records))*recordSize)
	b.end, b.children = resp.end, resp.children
	r.size.observe(resp.count, resp.users, resp.data, resp.millisBehind > 0)
	r.resp = nil
	return b
}

// handOver gives b to the worker, waiting until it takes it.
func (r *reader) handOver(ctx context.Context, b *fetchedBatch) error {
	r.held.Add(b.held)
	r.pending.Add(1)
	select {
	case r.out <- b:
		return nil
	case <-ctx.Done():
		r.done(b)
		return ctx.Err()
	}
}

// releaseResponse returns the budget of a response left between two of its
// parts, when the reader stops.
func (r *reader) releaseResponse() {
	if r.resp != nil {
		r.c.budget.release(r.resp.held)
		r.resp = nil
	}
}

// waitDone waits until every batch handed over has been processed.
func (r *reader) waitDone(ctx context.Context) error {
	for r.pending.Load() > 0 {
		select {
		case <-r.freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// reserveBudget reserves n bytes: waiting for them if this shard holds
// nothing, else only if they are free at once (see budget).
func (r *reader) reserveBudget(ctx context.Context, n int64) (int64, error) {
	if n <= 0 {
		return 0, nil // nothing to hold: never wait
	}
	for {
		if r.held.Load() == 0 {
			return r.c.budget.acquire(ctx, n)
		}
		if n, ok := r.c.budget.tryReadAhead(n); ok {
			return n, nil
		}
		select {
		case <-r.freed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// done returns a batch's budget once it has been processed (or dropped).
func (r *reader) done(b *fetchedBatch) {
	r.c.budget.release(b.held)
	r.held.Add(-b.held)
	r.pending.Add(-1)
	select {
	case r.freed <- struct{}{}:
	default:
	}
}

// position is where a read of the shard starts.
type position struct {
	typ types.ShardIteratorType
	seq *string
	at  *time.Time
}

// position returns where to read from: after the sequence number after, if
// any, else at the lease's checkpoint.
func (r *reader) position(after string) position {
	switch {
	case after != "":
		return position{typ: types.ShardIteratorTypeAfterSequenceNumber, seq: aws.String(after)}
	case r.start.SequenceNumber == checkpoint.SentinelTrimHorizon:
		return position{typ: types.ShardIteratorTypeTrimHorizon}
	case r.start.SequenceNumber == checkpoint.SentinelLatest && !r.latestAt.IsZero():
		// The first LATEST position expired before any record came: records
		// may have arrived since, so a new LATEST would skip them.
		return position{typ: types.ShardIteratorTypeAtTimestamp, at: aws.Time(r.latestAt.Add(-latestMargin))}
	case r.start.SequenceNumber == checkpoint.SentinelLatest:
		r.latestAt = time.Now()
		return position{typ: types.ShardIteratorTypeLatest}
	case r.start.SequenceNumber == checkpoint.SentinelAtTimestamp:
		ip := r.st.initial
		if ip.kind != initialAtTimestamp {
			// The table says AT_TIMESTAMP but this worker was not given a
			// time (the KCL does not store it): read everything.
			r.st.log.Warn("lease checkpoint is AT_TIMESTAMP but InitialPosition has no timestamp; reading from TRIM_HORIZON",
				"shard", r.shardID)
			return position{typ: types.ShardIteratorTypeTrimHorizon}
		}
		return position{typ: types.ShardIteratorTypeAtTimestamp, at: aws.Time(ip.at)}
	}
	// AT, not AFTER: the checkpoint may point inside an aggregate whose later
	// user records are still to be processed; the converter skips those at
	// or before the checkpoint.
	return position{typ: types.ShardIteratorTypeAtSequenceNumber, seq: aws.String(r.start.SequenceNumber)}
}

func isInvalidArgument(err error) bool {
	var ia *types.InvalidArgumentException
	return errors.As(err, &ia)
}

// trimmed reports whether err says the shard no longer exists and a shard
// listing taken since agrees: retention removed it before it was read to its
// end. The shard is then finished, so that its children are not blocked
// forever; what it held after the checkpoint is gone from Kinesis already.
// last is the last sequence number read, for the log.
func (r *reader) trimmed(err error, last string) bool {
	if !isNotFound(err) {
		return false
	}
	r.c.co.suspect(r.st) // or the whole stream was deleted
	if r.notFound.IsZero() {
		r.notFound = time.Now()
	}
	if !r.st.syncer.absentSince(r.shardID, r.notFound) {
		return false
	}
	r.st.log.Error("shard is no longer in the stream: retention removed it before it was read to its end; finishing it so that its children start",
		"shard", r.shardID, "last_fetched", last)
	return true
}

func (r *reader) logFetchError(err error, attempt int, wait time.Duration) {
	if isInvalidArgument(err) {
		// A checkpoint's sequence number the stream does not know: the
		// stream may have been deleted and created again since.
		r.c.co.suspect(r.st)
	}
	level := r.st.log.Warn
	if isThrottle(err) || isExpired(err) || isInUse(err) {
		level = r.st.log.Info
	}
	level("fetch failed; retrying", "shard", r.shardID, "attempt", attempt, "wait", wait, "error", err)
}
