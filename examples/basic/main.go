// Command basic is the smallest useful gokcl program: it consumes a stream
// on AWS and prints each record. Run several copies with the same -app and
// they share the shards.
//
//	cd examples && go run ./basic -stream orders -app orders-printer -region eu-west-1
//
// Credentials come from the usual AWS sources (environment, profile, role).
// The lease table (named after -app) is created if missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/gokcl/kcl/consumer"
)

func main() {
	stream := flag.String("stream", "", "Kinesis stream name (required)")
	app := flag.String("app", "", "application name; also the lease table's name (required)")
	region := flag.String("region", "", "AWS region (default: from the environment)")
	trim := flag.Bool("from-start", false, "start a new application at the oldest record instead of the newest")
	flag.Parse()
	if *stream == "" || *app == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*stream, *app, *region, *trim); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(stream, app, region string, fromStart bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return err
	}
	start := consumer.Latest
	if fromStart {
		start = consumer.TrimHorizon
	}
	c, err := consumer.New(consumer.Config{
		StreamName:      stream,
		AppName:         app,
		Kinesis:         kinesis.NewFromConfig(awsCfg),
		DynamoDB:        dynamodb.NewFromConfig(awsCfg),
		InitialPosition: start,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, nil)),
		NewProcessor: func(shardID string) consumer.RecordProcessor {
			return consumer.RecordProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
				for _, r := range b.Records {
					fmt.Printf("%s %s/%d %s: %q\n", b.ShardID, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data)
				}
				return nil // the consumer checkpoints after the batch
			})
		},
	})
	if err != nil {
		return err
	}
	// Run returns after a graceful shutdown (Ctrl-C): final checkpoints
	// written, leases released for the other copies to take at once.
	return c.Run(ctx)
}
