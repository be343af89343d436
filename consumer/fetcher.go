package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/checkpoint"
)

// fetcher polls one shard with GetRecords: a source whose next call
// overlaps the processing of the previous batch.
type fetcher struct {
	reader

	iterator *string
	lastSeq  string    // sequence number of the last Kinesis record fetched
	lastCall time.Time // of the last GetRecords call
}

// minCallGap spaces one shard's GetRecords calls: Kinesis allows 5 reads a
// second per shard, shared by every application reading the stream.
const minCallGap = 200 * time.Millisecond

// latestMargin is how far before the first LATEST iterator a replacement
// iterator starts (AT_TIMESTAMP) when that one expired before any record came:
// a little early, to cover clock differences with Kinesis, rather than late.
const latestMargin = time.Minute

func newFetcher(c *Consumer, st *stream, shardID string, start checkpoint.Position, conv converter) *fetcher {
	return &fetcher{reader: newReader(c, st, shardID, start, conv)}
}

// run fetches until the shard ends or ctx is done, then closes f.out. Errors
// are retried with backoff; run returns only ctx's error.
func (f *fetcher) run(ctx context.Context) error {
	defer close(f.out)
	defer f.releaseResponse() // cancelled between the parts of a response
	bo := fetchBackoff
	for {
		b, err := f.next(ctx)
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
		switch {
		case b.end:
			return nil
		case b.millisBehind == 0:
			// Caught up: pause before polling again. While behind, read on.
			sleep(ctx, f.c.cfg.PollInterval)
		}
	}
}

// next makes one GetRecords call and hands the response over; it returns
// the last batch handed over.
func (f *fetcher) next(ctx context.Context) (*fetchedBatch, error) {
	err := f.fetch(ctx)
	if err != nil && f.trimmed(err, f.lastSeq) {
		b := &fetchedBatch{end: true}
		return b, f.handOver(ctx, b)
	}
	if err != nil {
		return nil, err
	}
	return f.deliver(ctx)
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
		StreamARN:     optional(f.st.arn),
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
	r := &response{recs: out.Records, count: len(out.Records), held: held, millisBehind: aws.ToInt64(out.MillisBehindLatest),
		at: time.Now(), latency: f.callTime}
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
	return nil
}

// newIterator returns an iterator after the last record fetched or, before
// the first, at the lease's checkpoint.
func (f *fetcher) newIterator(ctx context.Context) (*string, error) {
	in := &kinesis.GetShardIteratorInput{ShardId: aws.String(f.shardID)}
	in.StreamName, in.StreamARN = f.st.ids()
	p := f.position(f.lastSeq)
	in.ShardIteratorType, in.StartingSequenceNumber, in.Timestamp = p.typ, p.seq, p.at
	out, err := f.c.cfg.Kinesis.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("get %s iterator of shard %s: %w", in.ShardIteratorType, f.shardID, err)
	}
	if out.ShardIterator == nil {
		return nil, fmt.Errorf("get %s iterator of shard %s: no iterator in the response", in.ShardIteratorType, f.shardID)
	}
	return out.ShardIterator, nil
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
