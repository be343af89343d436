package main

import (
	"flag"
	"fmt"
	"time"
)

// Environment variables naming endpoints (the test servers, LocalStack);
// the flags override them.
const (
	kinesisEndpointVar  = "GOKCL_KINESIS_ENDPOINT"
	dynamoDBEndpointVar = "GOKCL_DYNAMODB_ENDPOINT"
)

// defaultFailover is the consumer's default FailoverTime.
const defaultFailover = 10 * time.Second

// options are the flags of every command; each command registers the ones
// it takes.
type options struct {
	action string // fanout: list or deregister

	app, table        string
	stream, streamARN string
	allStreams        bool // status: every stream of a multi-stream table
	region            string
	kinesisURL        string
	dynamoURL         string
	output            string
	watch, failover   time.Duration
	watchSet          bool

	shard, to     string // reset
	all           bool   // reset
	worker        string // evict
	force, dryRun bool   // reset, evict, import
	from, source  string // import
	name          string // fanout
}

func tableFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.app, "app", "", "application `name`; the lease table is named after it unless -table is set")
	fs.StringVar(&o.table, "table", "", "lease table `name` (default: the -app name)")
}

func streamFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.stream, "stream", "", "stream `name` (or -stream-arn)")
	fs.StringVar(&o.streamARN, "stream-arn", "", "stream `ARN`, for a stream in another account")
}

// awsFlags registers -region and the endpoints of the services the command
// uses.
func awsFlags(fs *flag.FlagSet, o *options, useKinesis, useDynamo bool) {
	fs.StringVar(&o.region, "region", "", "AWS `region` (default: the SDK's, from AWS_REGION or the shared configuration)")
	if useKinesis {
		fs.StringVar(&o.kinesisURL, "kinesis-endpoint", "", "Kinesis endpoint `URL` (default: $"+kinesisEndpointVar+", else AWS)")
	}
	if useDynamo {
		fs.StringVar(&o.dynamoURL, "dynamodb-endpoint", "", "DynamoDB endpoint `URL` (default: $"+dynamoDBEndpointVar+", else AWS)")
	}
}

func outputFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.output, "o", "table", "output `format`: table or json")
}

// watchFlags registers how long to watch the lease counters to tell live
// workers from dead ones.
func watchFlags(fs *flag.FlagSet, o *options) {
	fs.DurationVar(&o.failover, "failover", defaultFailover, "the application's lease failover `time` (consumer.Config.FailoverTime)")
	fs.DurationVar(&o.watch, "watch", 0, "how long to watch the lease counters to tell live workers from dead ones; 0 skips the watch\n(default: 2/3 of -failover, longer than the longest gap between two renewals of a live worker)")
}

// finish fills in defaults from the environment and checks the flags every
// command shares. A command with streamOptional checks the stream itself.
func (o *options) finish(fs *flag.FlagSet, getenv func(string) string, streamOptional bool) error {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "watch" {
			o.watchSet = true
		}
	})
	if fs.Lookup("kinesis-endpoint") != nil && o.kinesisURL == "" {
		o.kinesisURL = getenv(kinesisEndpointVar)
	}
	if fs.Lookup("dynamodb-endpoint") != nil && o.dynamoURL == "" {
		o.dynamoURL = getenv(dynamoDBEndpointVar)
	}
	if fs.Lookup("table") != nil {
		if o.table == "" {
			o.table = o.app
		}
		if o.table == "" {
			return usagef("name the application with -app (or its lease table with -table)")
		}
	}
	if fs.Lookup("stream") != nil {
		if o.stream != "" && o.streamARN != "" {
			return usagef("set -stream or -stream-arn, not both")
		}
		if !streamOptional && o.stream == "" && o.streamARN == "" {
			return usagef("name the stream with -stream (or -stream-arn)")
		}
	}
	if o.output != "table" && o.output != "json" {
		return usagef("-o %q: want table or json", o.output)
	}
	if fs.Lookup("watch") != nil {
		if o.failover <= 0 {
			return usagef("-failover %v: must be positive", o.failover)
		}
		if o.watch < 0 {
			return usagef("-watch %v: must not be negative", o.watch)
		}
		if !o.watchSet {
			o.watch = o.failover * 2 / 3
		}
	}
	return nil
}

// hasStream reports whether a stream was named.
func (o *options) hasStream() bool { return o.stream != "" || o.streamARN != "" }

// streamLabel names the stream in messages.
func (o *options) streamLabel() string {
	if o.stream != "" {
		return fmt.Sprintf("stream %q", o.stream)
	}
	return fmt.Sprintf("stream %s", o.streamARN)
}
