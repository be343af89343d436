// Command demo is what `make demo` runs: a producer writes KPL-aggregated
// records to a new stream while three gokcl workers in this process consume
// it; midway the stream is split and merged and one worker is stopped and
// restarted. A live view shows each shard's owner, state, checkpoint,
// records and lag, from the workers' Status, and where their metrics are
// served for Prometheus. It ends with one line such as
//
//	produced 200000, processed 200000, lost 0, duplicates 0, out of order 0
//
// and exits non-zero if any record was lost, a partition key's records were
// processed out of order, or it gave up waiting. It waits for the last
// records as long as they keep being processed, and gives up after a minute
// without progress; it then tells the records lost (a checkpoint in the
// lease table passed them: no worker will read them again) from those only
// not processed yet, which the line reports as ", not processed yet N".
//
// With -fanout (make demo FANOUT=1) the workers read with enhanced fan-out:
// one stream consumer registered for the application, one subscription per
// shard, renewed across the reshards.
//
// It talks to the servers named by GOKCL_KINESIS_ENDPOINT and
// GOKCL_DYNAMODB_ENDPOINT (the test servers `make demo` starts, or
// LocalStack).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	kinesisURL, dynamoURL string
	records               int
	shards                int
	rate                  int
	logFile               string
	fanOut                bool
	metricsAddr           string
}

func main() {
	var o options
	flag.StringVar(&o.kinesisURL, "kinesis-endpoint", os.Getenv("GOKCL_KINESIS_ENDPOINT"), "Kinesis endpoint URL")
	flag.StringVar(&o.dynamoURL, "dynamodb-endpoint", os.Getenv("GOKCL_DYNAMODB_ENDPOINT"), "DynamoDB endpoint URL")
	flag.IntVar(&o.records, "records", 200000, "user records to produce")
	flag.IntVar(&o.shards, "shards", 4, "shards of the new stream")
	flag.IntVar(&o.rate, "rate", 5000, "user records produced per second")
	flag.StringVar(&o.logFile, "log", "", "write the workers' logs to this file")
	flag.BoolVar(&o.fanOut, "fanout", false, "read with enhanced fan-out (SubscribeToShard) instead of polling")
	flag.StringVar(&o.metricsAddr, "metrics-addr", "127.0.0.1:0", "serve the workers' metrics (/metrics) and status (/status) here; port 0 picks one")
	flag.Parse()
	if o.kinesisURL == "" || o.dynamoURL == "" {
		fmt.Fprintln(os.Stderr, "demo: set GOKCL_KINESIS_ENDPOINT and GOKCL_DYNAMODB_ENDPOINT (make demo does), or pass -kinesis-endpoint and -dynamodb-endpoint")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := run(ctx, o)
	if sum != nil {
		fmt.Println(sum.line())
	}
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	case sum.lost > 0 || sum.outOfOrder > 0 || sum.unprocessed > 0:
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (*summary, error) {
	logger := slog.New(slog.DiscardHandler)
	if o.logFile != "" {
		f, err := os.Create(o.logFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	env, err := newEnv(ctx, o, logger)
	if err != nil {
		return nil, err
	}
	defer env.cleanup()
	defer func() { _ = env.metrics.shutdown() }()
	return env.play(ctx)
}

var errStalled = fmt.Errorf("gave up: no record processed for %v", stallTimeout)

// stallTimeout bounds the wait for the last records: the demo gives up when
// no record has been processed for this long. It is well above the longest
// quiet spell of a healthy run: a lease expiring (FailoverTime, 10 s) and
// being taken on the next taker cycle (5 s), a shard sync (5 s).
const stallTimeout = time.Minute
