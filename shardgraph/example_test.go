package shardgraph_test

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/gokcl/kcl/shardgraph"
)

// listed is what ListShards returns for a one-shard stream whose shard was
// split in two, after which the two children were merged again.
var listed = []types.Shard{
	kinesisShard("shardId-000000000000", "", "", "0", "340282366920938463463374607431768211455", true),
	kinesisShard("shardId-000000000001", "shardId-000000000000", "", "0", "170141183460469231731687303715884105727", true),
	kinesisShard("shardId-000000000002", "shardId-000000000000", "", "170141183460469231731687303715884105728", "340282366920938463463374607431768211455", true),
	kinesisShard("shardId-000000000003", "shardId-000000000001", "shardId-000000000002", "0", "340282366920938463463374607431768211455", false),
}

func ExampleGraph_Ready() {
	shards, err := shardgraph.FromKinesis(listed)
	if err != nil {
		panic(err)
	}
	g := shardgraph.New(shards)
	if err := g.Coverage(); err != nil {
		panic(err) // a real consumer lists the shards again on ErrGap
	}
	done := map[string]bool{}
	for _, id := range g.StartShards(shardgraph.TrimHorizon) {
		fmt.Println("start:", id)
	}
	for ready := g.Ready(nil); len(ready) > 0; ready = g.Ready(func(id string) bool { return done[id] }) {
		fmt.Println("ready:", ready)
		for _, id := range ready {
			done[id] = true // processed to the end of the shard
		}
	}
	// Output:
	// start: shardId-000000000000
	// ready: [shardId-000000000000]
	// ready: [shardId-000000000001 shardId-000000000002]
	// ready: [shardId-000000000003]
}

func ExampleGraph_Coverage() {
	// A listing taken while shard 0 was being split: one child is missing.
	shards, _ := shardgraph.FromKinesis([]types.Shard{
		listed[0],
		kinesisShard("shardId-000000000001", "shardId-000000000000", "", "0", "170141183460469231731687303715884105727", false),
	})
	err := shardgraph.New(shards).Coverage()
	fmt.Println(errors.Is(err, shardgraph.ErrGap))
	fmt.Println(err)
	// Output:
	// true
	// shardgraph: gap in the hash key space: keys 170141183460469231731687303715884105728 to 340282366920938463463374607431768211455 covered by no open shard, above shardId-000000000001
}

func kinesisShard(id, parent, adjacent, start, end string, closed bool) types.Shard {
	s := types.Shard{
		ShardId:             aws.String(id),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(start), EndingHashKey: aws.String(end)},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("49590338271490256608559692538361571095921575989136588898")},
	}
	if parent != "" {
		s.ParentShardId = aws.String(parent)
	}
	if adjacent != "" {
		s.AdjacentParentShardId = aws.String(adjacent)
	}
	if closed {
		s.SequenceNumberRange.EndingSequenceNumber = aws.String("49590338271490256608559692540925702759324208523137515618")
	}
	return s
}
