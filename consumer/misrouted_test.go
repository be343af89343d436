package consumer_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/deagg"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// putMixedAggregates writes n aggregates of per user records each, as the
// kinesis-aggregation libraries do for a producer that gives each record its
// own explicit hash key: user records alternate between the two halves of
// the key space (shard 0 and shard 1 of a two-shard stream), and the
// aggregate goes where its first user record's key says (shard 0).
func putMixedAggregates(t *testing.T, s *kcltest.Stream, n, per int) {
	t.Helper()
	for a := range n {
		var agg deagg.Aggregator
		for i := range per {
			key := hashIn(1, 4) // shard 0
			if i%2 == 1 {
				key = hashIn(3, 4) // shard 1
			}
			if r, err := agg.Add(fmt.Sprintf("pk-%d", i), key, []byte(fmt.Sprintf("agg%d-%d", a, i))); err != nil || r != nil {
				t.Fatalf("aggregate of %d records did not stay whole: %v", per, err)
			}
		}
		r := agg.Flush()
		s.Put(r.PartitionKey, r.ExplicitHashKey, r.Data)
	}
}

func TestMixedKeyAggregates(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("DropMisroutedAggregates=%v", drop), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stream := newStream(testStream, 2)
				putMixedAggregates(t, stream, 3, 20)
				stream.Put("after", hashIn(1, 8), []byte("plain-0"))
				store := lease.NewMemoryStore()
				col := newCollector()
				cfg := testConfig(stream, store, "w1", col.processor())
				cfg.DropMisroutedAggregates = drop
				r := start(t, cfg)
				waitFor(t, time.Minute, "the plain record after the aggregates", func() bool {
					col.mu.Lock()
					defer col.mu.Unlock()
					recs := col.records["shardId-000000000000"]
					return len(recs) > 0 && string(recs[len(recs)-1].Data) == "plain-0"
				})
				r.stop(t)
				got := col.records["shardId-000000000000"]
				if drop {
					// The KCL's behaviour: the aggregates are dropped whole.
					require.Len(t, got, 1)
					require.Equal(t, got[0].Position(), leaseOf(t, store, "shardId-000000000000").Checkpoint,
						"checkpointed past the dropped aggregates")
					return
				}
				require.Len(t, got, 61, "every user record, those whose keys belong to shard 1 too")
				for a := range 3 {
					for i := range 20 {
						require.Equal(t, fmt.Sprintf("agg%d-%d", a, i), string(got[a*20+i].Data))
					}
				}
			})
		})
	}
}
