package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/checkpoint"
)

// fetchedBatch is one GetRecords response, converted, or a part of one
// (see fetcher.nextBatch).
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

// response is a GetRecords response not yet wholly handed over.
type response struct {
	recs         []types.Record // not converted yet
	count        int            // Kinesis records in the response
	users        int64          // user records converted so far
	data         int64          // payload bytes of the whole response
	held         int64          // budget held for it until its last part is done
	millisBehind int64
	at           time.Time // when it came
	end          bool
	children     []types.ChildShard
}

// fetcher reads one shard ahead of its processor: it runs in its own
// goroutine, owned by the shard worker, and hands converted batches over an
// unbuffered channel, so the next GetRecords overlaps the processing of the
// previous batch. A stuck processor thus holds two batches: the one it is
// processing and the one the fetcher is blocked handing over (a channel
// holding one would add a third).
type fetcher struct {
	c       *Consumer
	shardID string
	start   checkpoint.Position // the lease's checkpoint when the worker began
	conv    converter
	out     chan *fetchedBatch
	stat    *shardStat // the worker's, for Status; nil in tests of the fetcher alone

	iterator *string
	lastSeq  string // sequence number of the last Kinesis record fetched
	size     sizer  // Limit and reservation of the next call
	resp     *response
	warned   bool // about a response larger than Kinesis allows

	held    atomic.Int64  // budget bytes of batches handed over and not yet done
	pending atomic.Int32  // batches handed over and not yet done
	freed   chan struct{} // capacity 1: a batch was done

	lastCall time.Time // of the last GetRecords call
	latestAt time.Time // when the first LATEST iterator was taken
	notFound time.Time // first ResourceNotFoundException for the shard, if any

	callTime time.Duration // the last call's duration, until reported (see fetched)
}

// minCallGap spaces one shard's GetRecords calls: Kinesis allows 5 reads a
// second per shard, shared by every application reading the stream.
const minCallGap = 200 * time.Millisecond

// latestMargin is how far before the first LATEST iterator a replacement
// iterator starts (AT_TIMESTAMP) when that one expired before any record came:
// a little early, to cover clock differences with Kinesis, rather than late.
const latestMargin = time.Minute

func newFetcher(c *Consumer, shardID string, start checkpoint.Position, conv converter) *fetcher {
	return &fetcher{c: c, shardID: shardID, start: start, conv: conv,
		out:   make(chan *fetchedBatch),
		size:  sizer{maxRecords: c.cfg.MaxRecords, budget: c.budget.size},
		freed: make(chan struct{}, 1)}
}

// run fetches until the shard ends or ctx is done, then closes f.out. Errors
// are retried with backoff; run returns only ctx's error.
func (f *fetcher) run(ctx context.Context) error {
	defer close(f.out)
	defer func() {
		if f.resp != nil { // cancelled between the parts of a response
			f.c.budget.release(f.resp.held)
		}
	}()
	bo := fetchBackoff
	for {
		var b *fetchedBatch
		var err error
		if f.resp == nil {
			err = f.fetch(ctx)
			if err != nil && f.trimmed(err) {
				b, err = &fetchedBatch{end: true}, nil
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d := bo.next()
			f.logFetchError(err, bo.attempt, d)
			f.fetchFailed(err, bo.attempt, d)
			sleep(ctx, d)
			continue
		}
		bo.reset()
		if b == nil {
			b = f.nextBatch()
		}
		f.held.Add(b.held)
		f.pending.Add(1)
		select {
		case f.out <- b:
		case <-ctx.Done():
			f.done(b)
			return ctx.Err()
		}
		switch {
		case b.end:
			return nil
		case f.resp != nil:
			// A part: the next one shares its reservation.
			if err := f.waitDone(ctx); err != nil {
				return err
			}
		case b.millisBehind == 0:
			// Caught up: pause before polling again. While behind, read on.
			sleep(ctx, f.c.cfg.PollInterval)
		}
	}
}

// fetch makes one GetRecords call (getting an iterator first if needed) and
// keeps the response in f.resp.
func (f *fetcher) fetch(ctx context.Context) error {
	if f.iterator == nil {
		it, err := f.newIterator(ctx)
		if err != nil {
			return err
		}
		f.iterator = it
	}
	if !sleep(ctx, minCallGap-time.Since(f.lastCall)) {
		return ctx.Err()
	}
	limit, reserve := f.size.next()
	held, err := f.reserveBudget(ctx, reserve)
	if err != nil {
		return err
	}
	f.lastCall = time.Now()
	out, err := f.c.cfg.Kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{
		ShardIterator: f.iterator,
		Limit:         aws.Int32(int32(limit)),
		StreamARN:     optional(f.c.cfg.StreamARN),
	})
	f.callTime = time.Since(f.lastCall)
	if err != nil {
		f.c.budget.release(held)
		var expired *types.ExpiredIteratorException
		if errors.As(err, &expired) {
			// Renew the iterator from the last record fetched; the records
			// before it are already on their way to the processor.
			f.iterator = nil
		}
		return fmt.Errorf("get records of shard %s: %w", f.shardID, err)
	}
	r := &response{recs: out.Records, count: len(out.Records), held: held, millisBehind: aws.ToInt64(out.MillisBehindLatest), at: time.Now()}
	for i := range out.Records {
		r.data += int64(len(out.Records[i].Data))
	}
	if n := len(out.Records); n > 0 {
		f.lastSeq = aws.ToString(out.Records[n-1].SequenceNumber)
	}
	f.iterator = out.NextShardIterator
	if f.iterator == nil {
		r.end, r.children = true, out.ChildShards
	}
	f.resp = r
	f.fetched(r)
	return nil
}

// nextBatch converts the response in f.resp into a batch: the whole of it
// when its user records fit in what the fetcher holds for it, which is the
// usual case. Otherwise (aggregates holding more user records than the last
// responses did, with no budget free to cover them) it converts as many as
// fit, and the rest in later parts, each once the previous one is done:
// the payload is in memory already, but the Records describing it are not,
// and they are what would exceed the budget.
//
// A response larger than Kinesis allows (a server breaking the limits the
// reservation relies on) is converted whole, exceeding the budget by the
// difference, as it is in memory already.
func (f *fetcher) nextBatch() *fetchedBatch {
	r := f.resp
	limit := -1
	if r.held >= r.data {
		limit = max(int((r.held-r.data)/recordSize), 1)
	} else if !f.warned {
		f.warned = true
		f.c.log.Warn("GetRecords returned more than Kinesis allows for the Limit sent; the buffered bytes exceed MaxBufferedBytes by the difference",
			"shard", f.shardID, "bytes", r.data, "reserved", r.held)
	}
	b := &fetchedBatch{millisBehind: r.millisBehind, fetchedAt: r.at}
	// Size the slice from the last response's user records per Kinesis
	// record, so that unpacking aggregates rarely grows it.
	hint := len(r.recs)
	if f.size.records > 0 {
		hint = len(r.recs) * int((f.size.users+f.size.records-1)/f.size.records)
	}
	if limit >= 0 {
		hint = min(hint, limit)
	}
	var n int
	b.records, b.res, n = f.conv.convert(make([]Record, 0, hint), r.recs, limit)
	r.recs = r.recs[n:]
	r.users += int64(len(b.records))
	if len(r.recs) > 0 {
		return b // a part: the fetcher keeps holding the reservation
	}
	// The last part: it holds the payload and its own Records; the rest of
	// the reservation goes back to the budget.
	b.held = f.c.budget.settle(r.held, r.data+int64(len(b.records))*recordSize)
	b.end, b.children = r.end, r.children
	f.size.observe(r.count, r.users, r.data, r.millisBehind > 0)
	f.resp = nil
	return b
}

// waitDone waits until every batch handed over has been processed.
func (f *fetcher) waitDone(ctx context.Context) error {
	for f.pending.Load() > 0 {
		select {
		case <-f.freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// reserveBudget reserves n bytes for the next call: waiting for them if
// this shard holds nothing, else only if they are free at once (see budget).
func (f *fetcher) reserveBudget(ctx context.Context, n int64) (int64, error) {
	for {
		if f.held.Load() == 0 {
			return f.c.budget.acquire(ctx, n)
		}
		if n, ok := f.c.budget.tryReadAhead(n); ok {
			return n, nil
		}
		select {
		case <-f.freed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// done returns a batch's budget once it has been processed (or dropped).
func (f *fetcher) done(b *fetchedBatch) {
	f.c.budget.release(b.held)
	f.held.Add(-b.held)
	f.pending.Add(-1)
	select {
	case f.freed <- struct{}{}:
	default:
	}
}

// newIterator returns an iterator after the last record fetched or, before
// the first, at the lease's checkpoint.
func (f *fetcher) newIterator(ctx context.Context) (*string, error) {
	in := &kinesis.GetShardIteratorInput{
		ShardId:    aws.String(f.shardID),
		StreamName: optional(f.c.cfg.StreamName),
		StreamARN:  optional(f.c.cfg.StreamARN),
	}
	switch {
	case f.lastSeq != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(f.lastSeq)
	case f.start.SequenceNumber == checkpoint.SentinelTrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case f.start.SequenceNumber == checkpoint.SentinelLatest && !f.latestAt.IsZero():
		// The first LATEST iterator expired before any record came: records
		// may have arrived since, so a new LATEST would skip them.
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(f.latestAt.Add(-latestMargin))
	case f.start.SequenceNumber == checkpoint.SentinelLatest:
		in.ShardIteratorType = types.ShardIteratorTypeLatest
		f.latestAt = time.Now()
	case f.start.SequenceNumber == checkpoint.SentinelAtTimestamp:
		ip := f.c.cfg.InitialPosition
		if ip.kind != initialAtTimestamp {
			// The table says AT_TIMESTAMP but this worker was not given a
			// time (the KCL does not store it): read everything.
			f.c.log.Warn("lease checkpoint is AT_TIMESTAMP but InitialPosition has no timestamp; reading from TRIM_HORIZON",
				"shard", f.shardID)
			in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
			break
		}
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(ip.at)
	default:
		// AT, not AFTER: the checkpoint may point inside an aggregate whose
		// later user records are still to be processed; the converter skips
		// those at or before the checkpoint.
		in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
		in.StartingSequenceNumber = aws.String(f.start.SequenceNumber)
	}
	out, err := f.c.cfg.Kinesis.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("get %s iterator of shard %s: %w", in.ShardIteratorType, f.shardID, err)
	}
	if out.ShardIterator == nil {
		return nil, fmt.Errorf("get %s iterator of shard %s: no iterator in the response", in.ShardIteratorType, f.shardID)
	}
	return out.ShardIterator, nil
}

// trimmed reports whether err says the shard no longer exists and a shard
// listing taken since agrees: retention removed it before it was read to its
// end. The shard is then finished, so that its children are not blocked
// forever; what it held after the checkpoint is gone from Kinesis already.
func (f *fetcher) trimmed(err error) bool {
	if !isNotFound(err) {
		return false
	}
	if f.notFound.IsZero() {
		f.notFound = time.Now()
	}
	if !f.c.co.syncer.absentSince(f.shardID, f.notFound) {
		return false
	}
	f.c.log.Error("shard is no longer in the stream: retention removed it before it was read to its end; finishing it so that its children start",
		"shard", f.shardID, "last_fetched", f.lastSeq)
	return true
}

func (f *fetcher) logFetchError(err error, attempt int, wait time.Duration) {
	level := f.c.log.Warn
	if isThrottle(err) || isExpired(err) {
		level = f.c.log.Info
	}
	level("fetch failed; retrying", "shard", f.shardID, "attempt", attempt, "wait", wait, "error", err)
}

func isThrottle(err error) bool {
	var (
		pte *types.ProvisionedThroughputExceededException
		kms *types.KMSThrottlingException
		lim *types.LimitExceededException
	)
	return errors.As(err, &pte) || errors.As(err, &kms) || errors.As(err, &lim)
}

func isExpired(err error) bool {
	var expired *types.ExpiredIteratorException
	return errors.As(err, &expired)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
