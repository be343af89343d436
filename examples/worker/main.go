// Command worker runs one gokcl worker and prints every user record it
// processes as one line on standard output:
//
//	<shard> <sequence>/<sub> <partition key> <data>
//
// It is what the crash tests start as separate processes (and kill), and a
// template for a worker process of your own. With -metrics-addr it serves
// the consumer's metrics for Prometheus on /metrics and its health on
// /healthz (200 while it runs and renews its leases, 503 otherwise, with
// the consumer's Status as JSON), and says where on standard error.
// Endpoints can point at local test servers or LocalStack; without them the
// SDK's defaults (AWS) apply. The examples are a module of their own: run
// them from examples/.
//
//	cd examples && go run ./worker -stream s -app a \
//	    -kinesis-endpoint http://127.0.0.1:4567 -dynamodb-endpoint http://127.0.0.1:4568
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/gokcl/kcl/consumer"
)

func main() {
	var o options
	flag.StringVar(&o.stream, "stream", "", "stream name (required)")
	flag.StringVar(&o.app, "app", "", "application name and lease table (required)")
	flag.StringVar(&o.worker, "worker", "", "worker id (default: host name and a random suffix)")
	flag.StringVar(&o.kinesisURL, "kinesis-endpoint", os.Getenv("GOKCL_KINESIS_ENDPOINT"), "Kinesis endpoint URL")
	flag.StringVar(&o.dynamoURL, "dynamodb-endpoint", os.Getenv("GOKCL_DYNAMODB_ENDPOINT"), "DynamoDB endpoint URL")
	flag.DurationVar(&o.failover, "failover", 0, "lease failover time (default: the consumer's)")
	flag.BoolVar(&o.trimHorizon, "from-start", true, "start a new application at TRIM_HORIZON")
	flag.BoolVar(&o.verbose, "v", false, "log to standard error")
	flag.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics and /healthz on this address (host:port; port 0 picks one)")
	flag.Parse()
	if o.stream == "" || o.app == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

type options struct {
	stream, app, worker   string
	kinesisURL, dynamoURL string
	failover              time.Duration
	trimHorizon, verbose  bool
	metricsAddr           string
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	awsCfg, err := loadAWS(ctx, o)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	start := consumer.Latest
	if o.trimHorizon {
		start = consumer.TrimHorizon
	}
	var ms *metricsServer
	if o.metricsAddr != "" {
		if ms, err = newMetricsServer(o.metricsAddr); err != nil {
			return err
		}
	}
	c, err := consumer.New(consumer.Config{
		StreamName:      o.stream,
		AppName:         o.app,
		WorkerID:        o.worker,
		Kinesis:         kinesis.NewFromConfig(awsCfg, endpoint[kinesis.Options](o.kinesisURL, func(opt *kinesis.Options, u *string) { opt.BaseEndpoint = u })),
		DynamoDB:        dynamodb.NewFromConfig(awsCfg, endpoint[dynamodb.Options](o.dynamoURL, func(opt *dynamodb.Options, u *string) { opt.BaseEndpoint = u })),
		InitialPosition: start,
		FailoverTime:    o.failover,
		Logger:          logger,
		Hooks:           ms.hooks(),
		NewProcessor: func(string) consumer.RecordProcessor {
			return consumer.RecordProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range b.Records {
					fmt.Fprintf(out, "%s %s/%d %s %s\n", b.ShardID, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data)
				}
				// Flushed before returning, so that nothing is checkpointed
				// that was not printed.
				return out.Flush()
			})
		},
	})
	if err != nil {
		return err
	}
	if ms == nil {
		return c.Run(ctx)
	}
	ms.serve(c)
	err = c.Run(ctx)
	return errors.Join(err, ms.shutdown())
}

func loadAWS(ctx context.Context, o options) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if os.Getenv("AWS_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	if o.kinesisURL != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	return config.LoadDefaultConfig(ctx, opts...)
}

// endpoint returns a client option setting the endpoint URL, if any.
func endpoint[O any](url string, set func(*O, *string)) func(*O) {
	return func(o *O) {
		if url != "" {
			set(o, aws.String(url))
		}
	}
}
