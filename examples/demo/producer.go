package main

import (
	"context"
	"crypto/md5"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/deagg"
)

const keys = 1000 // distinct partition keys

// producer writes user records "<id>" with partition key "user-<id mod
// 1000>", packed in KPL aggregates. Like the KPL, it aggregates only records
// bound for the same shard (by the current shard map), so that no aggregate
// straddles shards; it refreshes the map after each reshard.
type producer struct {
	e      *env
	shards []shardRange
	next   int
}

func newProducer(ctx context.Context, e *env) (*producer, error) {
	shards, err := e.openShards(ctx)
	if err != nil {
		return nil, fmt.Errorf("list shards: %w", err)
	}
	return &producer{e: e, shards: shards}, nil
}

// produceUntil writes records until n have been written, at the configured
// rate, in ticks of 100 ms.
func (p *producer) produceUntil(ctx context.Context, n int) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	perTick := max(p.e.o.rate/10, 1)
	for p.next < n {
		if err := p.putBatch(ctx, min(p.next+perTick, n)); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// aggregate is a pending aggregate and the ids of the records in it.
type aggregate struct {
	a   deagg.Aggregator
	ids []int
}

// entry is a record to put, with the ids of the user records it holds.
type entry struct {
	put types.PutRecordsRequestEntry
	ids []int
}

// putBatch aggregates records p.next..to-1 per shard and puts them.
func (p *producer) putBatch(ctx context.Context, to int) error {
	aggs := make(map[string]*aggregate)
	var entries []entry
	add := func(r *deagg.AggregatedRecord, ids []int) {
		if r != nil {
			entries = append(entries, entry{put: types.PutRecordsRequestEntry{
				Data: r.Data, PartitionKey: aws.String(r.PartitionKey), ExplicitHashKey: optional(r.ExplicitHashKey)}, ids: ids})
		}
	}
	for ; p.next < to; p.next++ {
		pk := fmt.Sprintf("user-%d", p.next%keys)
		shard := p.shardFor(pk)
		a := aggs[shard]
		if a == nil {
			a = &aggregate{}
			aggs[shard] = a
		}
		r, err := a.a.Add(pk, "", []byte(fmt.Sprintf("%d", p.next)))
		if err != nil {
			return err
		}
		if r != nil { // full: it holds the pending ids, not this one
			add(r, a.ids)
			a.ids = nil
		}
		a.ids = append(a.ids, p.next)
	}
	for _, a := range aggs {
		add(a.a.Flush(), a.ids)
	}
	return p.put(ctx, entries)
}

// put sends entries with PutRecords, resending the ones that failed after
// a pause (a loaded server may refuse some for a while), and tells the
// tracker where each record was stored.
func (p *producer) put(ctx context.Context, entries []entry) error {
	for attempt := 0; len(entries) > 0; attempt++ {
		if attempt == 10 {
			return fmt.Errorf("put records: %d entries still failing after %d attempts", len(entries), attempt)
		}
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		chunk := entries[:min(len(entries), 500)]
		in := &kinesis.PutRecordsInput{StreamName: aws.String(p.e.stream)}
		for _, e := range chunk {
			in.Records = append(in.Records, e.put)
		}
		out, err := p.e.kc.PutRecords(ctx, in)
		if err != nil {
			return fmt.Errorf("put records: %w", err)
		}
		var failed []entry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed = append(failed, chunk[i])
				continue
			}
			p.e.tracker.produced(chunk[i].ids, aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber))
		}
		entries = append(failed, entries[len(chunk):]...)
		if len(failed) == 0 {
			attempt = -1
		}
	}
	return nil
}

func (p *producer) shardFor(pk string) string {
	sum := md5.Sum([]byte(pk))
	k := new(big.Int).SetBytes(sum[:])
	for _, s := range p.shards {
		if k.Cmp(s.start) >= 0 && k.Cmp(s.end) <= 0 {
			return s.id
		}
	}
	return p.shards[0].id // unreachable while the map covers the key space
}

// split splits the shard with the widest hash key range in the middle.
func (p *producer) split(ctx context.Context) error {
	widest := slices.MaxFunc(p.shards, func(a, b shardRange) int { return width(a).Cmp(width(b)) })
	mid := new(big.Int).Add(widest.start, new(big.Int).Rsh(width(widest), 1))
	_, err := p.e.kc.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(p.e.stream), ShardToSplit: aws.String(widest.id), NewStartingHashKey: aws.String(mid.String())})
	if err != nil {
		return err
	}
	return p.refresh(ctx)
}

// merge merges the first two adjacent open shards.
func (p *producer) merge(ctx context.Context) error {
	s := slices.Clone(p.shards)
	slices.SortFunc(s, func(a, b shardRange) int { return a.start.Cmp(b.start) })
	for i := 0; i+1 < len(s); i++ {
		if new(big.Int).Add(s[i].end, big.NewInt(1)).Cmp(s[i+1].start) == 0 {
			_, err := p.e.kc.MergeShards(ctx, &kinesis.MergeShardsInput{
				StreamName: aws.String(p.e.stream), ShardToMerge: aws.String(s[i].id), AdjacentShardToMerge: aws.String(s[i+1].id)})
			if err != nil {
				return err
			}
			return p.refresh(ctx)
		}
	}
	return fmt.Errorf("no adjacent open shards")
}

func (p *producer) refresh(ctx context.Context) error {
	if err := p.e.waitActive(ctx); err != nil {
		return err
	}
	shards, err := p.e.openShards(ctx)
	if err != nil {
		return err
	}
	p.shards = shards
	return nil
}

func width(s shardRange) *big.Int { return new(big.Int).Sub(s.end, s.start) }

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
