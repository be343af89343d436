package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"golang.org/x/sync/errgroup"

	"github.com/gokcl/kcl/checkpoint"
)

// lagParallelism bounds the shards measured at once: each measure is two
// calls against the shard's read limits (5 per second), which its worker
// shares.
const lagParallelism = 8

// lag is how far a checkpoint is behind the newest record of its shard.
type lag struct {
	millis int64
	ok     bool   // measured
	why    string // when not measured
}

// measureLag returns the MillisBehindLatest of one GetRecords of limit 1 at
// the checkpoint: how far the last processed record is behind the newest
// one (0 when it is the newest). The iterator is AT the checkpoint's
// sequence number, not after it, because a checkpoint inside a KPL
// aggregate leaves the rest of that record to process. TRIM_HORIZON reads
// from the oldest record; LATEST is at the tip by definition. AT_TIMESTAMP
// cannot be measured: the KCL does not store the timestamp.
func measureLag(ctx context.Context, k shardReader, s streamRef, shard string, cp checkpoint.Position) lag {
	var typ types.ShardIteratorType
	switch cp.SequenceNumber {
	case checkpoint.SentinelLatest:
		return lag{ok: true}
	case checkpoint.SentinelAtTimestamp:
		return lag{why: "AT_TIMESTAMP: the application's timestamp is not in the lease table"}
	case checkpoint.SentinelShardEnd:
		return lag{why: "finished"}
	case checkpoint.SentinelTrimHorizon:
		typ = types.ShardIteratorTypeTrimHorizon
	default:
		typ = types.ShardIteratorTypeAtSequenceNumber
	}
	it, err := iterator(ctx, k, s, shard, typ, cp.SequenceNumber, timeZero)
	if isBadSequence(err) {
		return lag{why: "Kinesis does not find the checkpoint's record in the shard (trimmed by retention, or the table is another stream's): " + apiMessage(err)}
	}
	if err != nil {
		return lag{why: "GetShardIterator: " + apiMessage(err)}
	}
	out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1)})
	if err != nil {
		return lag{why: "GetRecords: " + apiMessage(err)}
	}
	if out.MillisBehindLatest == nil {
		return lag{why: "no MillisBehindLatest in the GetRecords response"}
	}
	return lag{millis: *out.MillisBehindLatest, ok: true}
}

// lagJob is one lag to measure.
type lagJob struct {
	shard string
	cp    checkpoint.Position
	out   *lag
}

// measureLags measures the jobs, lagParallelism at a time. A failure is
// recorded in the job's lag, never returned: one shard's lag must not hide
// the others.
func measureLags(ctx context.Context, k shardReader, s streamRef, jobs []lagJob) {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(lagParallelism)
	for _, j := range jobs {
		g.Go(func() error {
			*j.out = measureLag(ctx, k, s, j.shard, j.cp)
			return nil
		})
	}
	_ = g.Wait()
}

// formatMillis formats a lag for the table: "0s", "850ms", "12.3s", "4m5s",
// "3h2m".
func formatMillis(ms int64) string {
	switch {
	case ms == 0:
		return "0s"
	case ms < 1000:
		return fmt.Sprintf("%dms", ms)
	case ms < 60_000:
		return fmt.Sprintf("%.1fs", float64(ms)/1000)
	case ms < 3_600_000:
		return fmt.Sprintf("%dm%ds", ms/60_000, ms%60_000/1000)
	}
	return fmt.Sprintf("%dh%dm", ms/3_600_000, ms%3_600_000/60_000)
}
