// Command worker runs one gokcl worker and prints every user record it
// processes as one line on standard output (or the -out file):
//
//	<shard> <sequence>/<sub> <partition key> <data>
//
// With -streams (several streams, one lease table: multi-stream mode) the
// first field is <stream>/<shard>.
//
// With -stamp each line starts with the time the batch was handed to the
// processor, in Unix nanoseconds:
//
//	<unix nanoseconds> <shard> <sequence>/<sub> <partition key> <data>
//
// It is what the crash and chaos tests start as separate processes (and kill,
// pause and restart), and a template for a worker process of your own. With
// -metrics-addr it serves the consumer's metrics for Prometheus on /metrics
// and its health on /healthz (200 while it runs and renews its leases, 503
// otherwise, with the consumer's Status as JSON), and says where on
// standard error. Endpoints can point at local test servers or LocalStack;
// without them the SDK's defaults (AWS) apply. The examples are a module of
// their own: run them from examples/.
//
//	cd examples && go run ./worker -stream s -app a \
//	    -kinesis-endpoint http://127.0.0.1:4567 -dynamodb-endpoint http://127.0.0.1:4568
//	go run ./examples/worker -streams orders,payments,audit -app a
//
// Flags:
//
//	-stream, -app        stream and application (lease table) names; required
//	-streams             comma-separated stream names instead of -stream: one
//	                     worker of several streams (Config.Streams)
//	-worker              worker id (default: host name and a random suffix)
//	-from-start          start a new application at TRIM_HORIZON (default true)
//	-failover            lease failover time (Config.FailoverTime)
//	-kinesis-endpoint, -dynamodb-endpoint
//	                     endpoint URLs (default: GOKCL_KINESIS_ENDPOINT and
//	                     GOKCL_DYNAMODB_ENDPOINT)
//	-out                 append the lines to this file instead of standard output
//	-stamp               start each line with the delivery time
//	-poll, -shard-sync, -checkpoint-interval, -shutdown-timeout, -max-records
//	                     Config.PollInterval, ShardSyncInterval,
//	                     CheckpointInterval, ShutdownTimeout, MaxRecords
//	                     (default: the consumer's)
//	-delay               time each batch takes to process (simulated work)
//	-fail, -panic        probability that ProcessRecords fails with an error, or
//	                     panics, before printing anything (the consumer must
//	                     retry the batch, never skip it); -seed seeds the draws
//	-metrics-addr        serve /metrics and /healthz on this address (host:port;
//	                     port 0 picks one)
//	-v, -debug           log to standard error at level info, or debug
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
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
	flag.StringVar(&o.stream, "stream", "", "stream name (this or -streams is required)")
	flag.StringVar(&o.streams, "streams", "", "comma-separated stream names, consumed together with one lease table (multi-stream mode)")
	flag.StringVar(&o.app, "app", "", "application name and lease table (required)")
	flag.StringVar(&o.worker, "worker", "", "worker id (default: host name and a random suffix)")
	flag.StringVar(&o.kinesisURL, "kinesis-endpoint", os.Getenv("GOKCL_KINESIS_ENDPOINT"), "Kinesis endpoint URL")
	flag.StringVar(&o.dynamoURL, "dynamodb-endpoint", os.Getenv("GOKCL_DYNAMODB_ENDPOINT"), "DynamoDB endpoint URL")
	flag.DurationVar(&o.failover, "failover", 0, "lease failover time (default: the consumer's)")
	flag.BoolVar(&o.trimHorizon, "from-start", true, "start a new application at TRIM_HORIZON")
	flag.BoolVar(&o.verbose, "v", false, "log to standard error")
	flag.BoolVar(&o.debug, "debug", false, "log to standard error at debug level")
	flag.StringVar(&o.out, "out", "", "append the processed records to this file (default: standard output)")
	flag.BoolVar(&o.stamp, "stamp", false, "start each line with the delivery time in Unix nanoseconds")
	flag.DurationVar(&o.poll, "poll", 0, "pause between GetRecords calls once caught up (default: the consumer's)")
	flag.DurationVar(&o.shardSync, "shard-sync", 0, "shard listing interval (default: the consumer's)")
	flag.DurationVar(&o.checkpointEvery, "checkpoint-interval", 0, "automatic checkpoint interval (default: the consumer's)")
	flag.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 0, "graceful shutdown bound (default: the consumer's)")
	flag.IntVar(&o.maxRecords, "max-records", 0, "records per GetRecords call (default: the consumer's)")
	flag.DurationVar(&o.delay, "delay", 0, "time each batch takes to process, as simulated work")
	flag.Float64Var(&o.failRate, "fail", 0, "probability that ProcessRecords returns an error before printing")
	flag.Float64Var(&o.panicRate, "panic", 0, "probability that ProcessRecords panics before printing")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the -fail and -panic draws (default: from the clock)")
	flag.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics and /healthz on this address (host:port; port 0 picks one)")
	flag.Parse()
	if (o.stream == "") == (o.streams == "") || o.app == "" {
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
	streams               string
	kinesisURL, dynamoURL string
	failover              time.Duration
	trimHorizon, verbose  bool
	debug, stamp          bool
	out                   string
	poll, shardSync       time.Duration
	checkpointEvery       time.Duration
	shutdownTimeout       time.Duration
	maxRecords            int
	delay                 time.Duration
	failRate, panicRate   float64
	seed                  uint64
	metricsAddr           string
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	awsCfg, err := loadAWS(ctx, o)
	if err != nil {
		return err
	}
	dest := os.Stdout
	if o.out != "" {
		if dest, err = os.OpenFile(o.out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return err
		}
		defer dest.Close()
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	p := &printer{out: bufio.NewWriter(dest), stamp: o.stamp, delay: o.delay, multi: o.streams != "",
		failRate: o.failRate, panicRate: o.panicRate, rand: rand.New(rand.NewPCG(o.seed, 0))}
	logger := slog.New(slog.DiscardHandler)
	switch {
	case o.debug:
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	case o.verbose:
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
	cfg := consumer.Config{
		StreamName:         o.stream,
		AppName:            o.app,
		WorkerID:           o.worker,
		Kinesis:            kinesis.NewFromConfig(awsCfg, endpoint[kinesis.Options](o.kinesisURL, func(opt *kinesis.Options, u *string) { opt.BaseEndpoint = u })),
		DynamoDB:           dynamodb.NewFromConfig(awsCfg, endpoint[dynamodb.Options](o.dynamoURL, func(opt *dynamodb.Options, u *string) { opt.BaseEndpoint = u })),
		InitialPosition:    start,
		FailoverTime:       o.failover,
		PollInterval:       o.poll,
		ShardSyncInterval:  o.shardSync,
		CheckpointInterval: o.checkpointEvery,
		ShutdownTimeout:    o.shutdownTimeout,
		MaxRecords:         o.maxRecords,
		Logger:             logger,
		Hooks:              ms.hooks(),
		NewProcessor:       func(string) consumer.RecordProcessor { return p },
	}
	for _, name := range strings.Split(o.streams, ",") {
		if name = strings.TrimSpace(name); name != "" {
			cfg.Streams = append(cfg.Streams, consumer.StreamConfig{Name: name})
		}
	}
	c, err := consumer.New(cfg)
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

// printer is every shard's processor: it prints each record as a line.
type printer struct {
	mu                  sync.Mutex
	out                 *bufio.Writer
	stamp               bool
	multi               bool // name each record's stream
	delay               time.Duration
	failRate, panicRate float64
	rand                *rand.Rand // guarded by mu
}

// errInjected is the error -fail makes ProcessRecords return.
var errInjected = errors.New("worker: injected processing failure (-fail)")

// ProcessRecords prints the batch and flushes it before returning, so that
// nothing is checkpointed that was not printed.
func (p *printer) ProcessRecords(ctx context.Context, b *consumer.Batch) error {
	at := time.Now().UnixNano() // before the lock: when the batch was handed over
	if p.delay > 0 {
		t := time.NewTimer(p.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch x := p.rand.Float64(); {
	case x < p.failRate:
		return errInjected
	case x < p.failRate+p.panicRate:
		panic("worker: injected processing panic (-panic)")
	}
	shard := b.ShardID
	if p.multi {
		shard = b.Stream.Name + "/" + shard
	}
	for _, r := range b.Records {
		if p.stamp {
			fmt.Fprintf(p.out, "%d ", at)
		}
		fmt.Fprintf(p.out, "%s %s/%d %s %s\n", shard, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.Data)
	}
	return p.out.Flush()
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
