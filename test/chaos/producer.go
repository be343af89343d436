package chaos

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/deagg"
)

// PutRecordsAPI is the Kinesis call the producer makes.
type PutRecordsAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// producer writes the run's records straight to the stream (no faults):
// rounds of one Kinesis record per partition key, each either a plain record
// or a KPL aggregate of up to maxAggregate user records of that key. Every
// user record's data is "<key>:<n>", n counting the key's records from 0, so
// the checker can tell the order a key's records were written in.
//
// An aggregate holds one key only, so it always lands on the shard that owns
// the key, even while the stream is resharded (an aggregate spanning shards
// would be dropped by the consumer, as the KCL does).
type producer struct {
	kc           PutRecordsAPI
	stream       string
	r            *rand.Rand
	keys         []string
	maxAggregate int

	next []int // per key, n of its next record

	mu      sync.Mutex
	records []Record
}

func newProducer(kc PutRecordsAPI, stream string, seed uint64, keys, maxAggregate int) *producer {
	p := &producer{kc: kc, stream: stream, r: rand.New(rand.NewPCG(seed, 0x9e0d)), maxAggregate: maxAggregate, next: make([]int, keys)}
	for i := range keys {
		p.keys = append(p.keys, fmt.Sprintf("key-%02d", i))
	}
	return p
}

// run writes a round every interval until ctx is done. A round under way
// finishes first: a PutRecords call given up on may have written records
// the checker would not know of.
func (p *producer) run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		err := p.round(rctx)
		cancel()
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// entry is one Kinesis record of a round, with the user records it holds.
type entry struct {
	key        string
	first, n   int // user records first..first+n-1 of key
	aggregated bool
	put        types.PutRecordsRequestEntry
}

// round writes one Kinesis record per key.
func (p *producer) round(ctx context.Context) error {
	var entries []entry
	for i, key := range p.keys {
		n := 1 + p.r.IntN(p.maxAggregate)
		plain := n == 1 && p.r.IntN(2) == 0
		e := entry{key: key, first: p.next[i], n: n, aggregated: !plain}
		if plain {
			e.put = types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: []byte(recordData(key, e.first))}
		} else {
			var a deagg.Aggregator
			for j := range n {
				if _, err := a.Add(key, "", []byte(recordData(key, e.first+j))); err != nil {
					return err
				}
			}
			r := a.Flush()
			e.put = types.PutRecordsRequestEntry{PartitionKey: aws.String(r.PartitionKey), Data: r.Data}
		}
		p.next[i] += n
		entries = append(entries, e)
	}
	return p.put(ctx, entries)
}

// put writes entries, again and again for those that fail, and records
// where each user record landed. A key has one entry per round, so retrying
// a failed entry keeps the key's order.
func (p *producer) put(ctx context.Context, entries []entry) error {
	for attempt := 0; len(entries) > 0; attempt++ {
		if attempt == 50 {
			return fmt.Errorf("put records: %d entries still failing after %d attempts", len(entries), attempt)
		}
		if attempt > 0 && !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
		in := &kinesis.PutRecordsInput{StreamName: aws.String(p.stream)}
		for _, e := range entries {
			in.Records = append(in.Records, e.put)
		}
		out, err := p.kc.PutRecords(ctx, in)
		if err != nil {
			var inUse *types.ResourceInUseException
			var limit *types.LimitExceededException
			if errors.As(err, &inUse) || errors.As(err, &limit) {
				continue // refused while the stream reshards: nothing was written
			}
			return fmt.Errorf("put records: %w", err)
		}
		var failed []entry
		for i, res := range out.Records {
			if res.ErrorCode != nil {
				failed = append(failed, entries[i])
				continue
			}
			p.landed(entries[i], aws.ToString(res.ShardId), aws.ToString(res.SequenceNumber))
		}
		entries = failed
	}
	return nil
}

func (p *producer) landed(e entry, shard, seq string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for j := range e.n {
		sub := uint64(0)
		if e.aggregated {
			sub = uint64(j)
		}
		p.records = append(p.records, Record{Key: e.key, N: e.first + j, Shard: shard, Pos: checkpoint.At(seq, sub)})
	}
}

// hasKeyIn reports whether one of the producer's keys hashes into the
// range [start, end].
func (p *producer) hasKeyIn(start, end *big.Int) bool {
	for _, k := range p.keys {
		sum := md5.Sum([]byte(k))
		h := new(big.Int).SetBytes(sum[:])
		if h.Cmp(start) >= 0 && h.Cmp(end) <= 0 {
			return true
		}
	}
	return false
}

func (p *producer) produced() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Record(nil), p.records...)
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.records)
}

// sleepCtx waits d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
