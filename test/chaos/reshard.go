package chaos

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// reshardTimeline does the resharding events one after the other, each at
// its time (or when the previous one is done), until sched is done. The
// operations themselves run under ctx: one under way when the chaos phase
// ends is completed.
func (r *Run) reshardTimeline(ctx, sched context.Context, events []Event) error {
	for _, e := range events {
		if !sleepCtx(sched, time.Until(r.started.Add(e.At))) {
			return nil
		}
		if err := r.reshard(ctx, e); err != nil {
			return fmt.Errorf("%s: %w", e.Action, err)
		}
	}
	return nil
}

func (r *Run) reshard(ctx context.Context, e Event) error {
	shards, err := r.openShards(ctx)
	if err != nil {
		return err
	}
	switch e.Action {
	case Split:
		s := shards[pickIndex(e.Pick, len(shards))]
		_, err = r.split(ctx, s)
	case Merge:
		pairs := adjacentPairs(shards)
		if len(pairs) == 0 {
			r.skip(e.Action)
			return nil
		}
		p := pairs[pickIndex(e.Pick, len(pairs))]
		_, err = r.merge(ctx, p[0], p[1])
	case ShardCount:
		err = r.updateShardCount(ctx, len(shards), e.Pick)
	case Lineage:
		err = r.lineage(ctx, shards, e)
	}
	if err == nil {
		r.count(e.Action)
	}
	return err
}

func pickIndex(pick float64, n int) int { return min(int(pick*float64(n)), n-1) }

// shardRange is an open shard and its hash key range.
type shardRange struct {
	id         string
	start, end *big.Int
	parents    []string
}

// openShards lists the open shards, sorted by hash key.
func (r *Run) openShards(ctx context.Context) ([]shardRange, error) {
	all, err := r.listShards(ctx)
	if err != nil {
		return nil, err
	}
	var out []shardRange
	for _, s := range all {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			out = append(out, newShardRange(s))
		}
	}
	slices.SortFunc(out, func(a, b shardRange) int { return a.start.Cmp(b.start) })
	return out, nil
}

func (r *Run) listShards(ctx context.Context) ([]types.Shard, error) {
	var out []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(r.stream)}
	for {
		page, err := r.env.Kinesis.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		out = append(out, page.Shards...)
		if page.NextToken == nil {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}

func newShardRange(s types.Shard) shardRange {
	start, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
	end, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
	sr := shardRange{id: aws.ToString(s.ShardId), start: start, end: end}
	for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
		if p != nil {
			sr.parents = append(sr.parents, *p)
		}
	}
	return sr
}

// adjacentPairs lists the pairs of open shards whose ranges touch, in hash
// key order.
func adjacentPairs(shards []shardRange) [][2]shardRange {
	var out [][2]shardRange
	for i := 0; i+1 < len(shards); i++ {
		if new(big.Int).Add(shards[i].end, big.NewInt(1)).Cmp(shards[i+1].start) == 0 {
			out = append(out, [2]shardRange{shards[i], shards[i+1]})
		}
	}
	return out
}

// splitPoint is where split splits s: the first hash key of its upper half.
func splitPoint(s shardRange) *big.Int {
	mid := new(big.Int).Add(s.start, new(big.Int).Rsh(new(big.Int).Sub(s.end, s.start), 1))
	return mid.Add(mid, big.NewInt(1))
}

// split splits s in the middle and returns its children, lower range first.
func (r *Run) split(ctx context.Context, s shardRange) ([2]shardRange, error) {
	mid := splitPoint(s)
	_, err := r.env.Kinesis.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(r.stream),
		ShardToSplit: aws.String(s.id), NewStartingHashKey: aws.String(mid.String())})
	if err != nil {
		return [2]shardRange{}, fmt.Errorf("split %s: %w", s.id, err)
	}
	children, err := r.childrenOf(ctx, s.id)
	if err != nil || len(children) != 2 {
		return [2]shardRange{}, fmt.Errorf("split %s: children %v: %w", s.id, children, err)
	}
	r.logf("split %s into %s and %s", s.id, children[0].id, children[1].id)
	return [2]shardRange{children[0], children[1]}, nil
}

// merge merges two adjacent shards, lower range first, and returns the child.
func (r *Run) merge(ctx context.Context, lo, hi shardRange) (shardRange, error) {
	_, err := r.env.Kinesis.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(r.stream),
		ShardToMerge: aws.String(lo.id), AdjacentShardToMerge: aws.String(hi.id)})
	if err != nil {
		return shardRange{}, fmt.Errorf("merge %s and %s: %w", lo.id, hi.id, err)
	}
	children, err := r.childrenOf(ctx, lo.id)
	if err != nil || len(children) != 1 {
		return shardRange{}, fmt.Errorf("merge %s and %s: children %v: %w", lo.id, hi.id, children, err)
	}
	r.logf("merged %s and %s into %s", lo.id, hi.id, children[0].id)
	return children[0], nil
}

// childrenOf waits for the stream to be active again and returns the open
// children of parent, in hash key order.
func (r *Run) childrenOf(ctx context.Context, parent string) ([]shardRange, error) {
	if err := r.waitActive(ctx); err != nil {
		return nil, err
	}
	shards, err := r.openShards(ctx)
	if err != nil {
		return nil, err
	}
	var out []shardRange
	for _, s := range shards {
		if slices.Contains(s.parents, parent) {
			out = append(out, s)
		}
	}
	return out, nil
}

// updateShardCount moves the number of open shards one up or down.
func (r *Run) updateShardCount(ctx context.Context, open int, pick float64) error {
	target := open + 1
	if pick < 0.5 && open > 2 {
		target = open - 1
	}
	_, err := r.env.Kinesis.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(r.stream),
		TargetShardCount: aws.Int32(int32(target)), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil {
		return fmt.Errorf("update shard count %d → %d: %w", open, target, err)
	}
	if err := r.waitActive(ctx); err != nil {
		return err
	}
	r.logf("updated the shard count from %d to %d", open, target)
	return nil
}

func (r *Run) waitActive(ctx context.Context) error {
	w := kinesis.NewStreamExistsWaiter(r.env.Kinesis, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 500*time.Millisecond
	})
	return w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(r.stream)}, time.Minute)
}
