package consumer

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Retrieval selects how a consumer reads records (Config.Retrieval): by
// polling GetRecords, or through an enhanced fan-out stream consumer. The
// zero value is Polling.
type Retrieval struct {
	kind retrievalKind
	name string // EnhancedFanOut's consumer name; "" means AppName
	arn  string // EnhancedFanOutARN's consumer ARN
}

type retrievalKind uint8

const (
	retrievalPolling retrievalKind = iota
	retrievalFanOut
	retrievalFanOutARN
)

// Polling reads each shard with GetRecords, every PollInterval once it is
// caught up. Every application polling a stream shares each shard's 5 reads
// a second and 2 MB/s. It is the default.
func Polling() Retrieval { return Retrieval{} }

// EnhancedFanOut reads each shard through the stream consumer named
// consumerName ("" means AppName) with SubscribeToShard: records are pushed
// over HTTP/2 as they arrive (about 70 ms after the put on AWS), and the
// consumer has its own 2 MB/s per shard, shared with no other application.
//
// Run registers the stream consumer when it does not exist, waits until it
// is ACTIVE, and uses it from every worker of the application: many workers
// starting at once register it once. Run never deregisters it, since other
// workers of the application use it: deregister it (gokcl fanout
// deregister, or DeregisterStreamConsumer) once no worker uses it.
// Registered consumers are billed by the hour and a stream has at most 20.
// A multi-stream consumer registers (or finds) a stream consumer of that
// name on each of its streams, before it reads the stream.
//
// Config.Kinesis must then also provide SubscribeToShard,
// RegisterStreamConsumer and DescribeStreamConsumer, and
// DescribeStreamSummary when Config.StreamARN is not set (to learn the ARN
// that registration needs); *kinesis.Client does. The application needs
// the kinesis:SubscribeToShard, RegisterStreamConsumer,
// DescribeStreamConsumer and DescribeStreamSummary permissions.
func EnhancedFanOut(consumerName string) Retrieval {
	return Retrieval{kind: retrievalFanOut, name: consumerName}
}

// EnhancedFanOutARN reads each shard through the stream consumer
// consumerARN, already registered (by an operator, or infrastructure code)
// with RegisterStreamConsumer on this stream: Run makes no registration
// calls. Config.Kinesis must also provide SubscribeToShard. A consumer not
// yet ACTIVE is retried like any refused subscription.
func EnhancedFanOutARN(consumerARN string) Retrieval {
	return Retrieval{kind: retrievalFanOutARN, arn: consumerARN}
}

// FanOut reports whether records are read with enhanced fan-out.
func (r Retrieval) FanOut() bool { return r.kind != retrievalPolling }

// String describes the retrieval, for logs.
func (r Retrieval) String() string {
	switch r.kind {
	case retrievalFanOut:
		return "EnhancedFanOut(" + r.name + ")"
	case retrievalFanOutARN:
		return "EnhancedFanOutARN(" + r.arn + ")"
	}
	return "Polling"
}

// The calls enhanced fan-out makes besides KinesisAPI's; *kinesis.Client has
// them all.
type (
	shardSubscriber interface {
		SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
	}
	consumerRegisterer interface {
		RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
	}
	consumerDescriber interface {
		DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	}
	streamDescriber interface {
		DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	}
)

var (
	consumerNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
	consumerARNRE  = regexp.MustCompile(`^arn:[^:]+:kinesis:[^:]*:[0-9]*:stream/[a-zA-Z0-9_.-]+/consumer/[a-zA-Z0-9_.-]+:[0-9]+$`)
)

// check validates the retrieval against cfg (defaults filled in): the
// consumer's name or ARN, and the calls cfg.Kinesis must provide.
func (r Retrieval) check(cfg *Config) error {
	var missing []string
	need := func(name string, ok bool) {
		if !ok {
			missing = append(missing, name)
		}
	}
	switch r.kind {
	case retrievalPolling:
		return nil
	case retrievalFanOut:
		if name := r.consumerName(cfg); !consumerNameRE.MatchString(name) {
			return retrievalError("%q is not a valid stream consumer name (1-128 of a-z A-Z 0-9 _ . -)", name)
		}
		_, ok := cfg.Kinesis.(consumerRegisterer)
		need("RegisterStreamConsumer", ok)
		_, ok = cfg.Kinesis.(consumerDescriber)
		need("DescribeStreamConsumer", ok)
		if cfg.StreamARN == "" {
			_, ok = cfg.Kinesis.(streamDescriber)
			need("DescribeStreamSummary (or set StreamARN)", ok)
		}
	case retrievalFanOutARN:
		if cfg.multiStream() {
			return retrievalError("a stream consumer ARN belongs to one stream: a multi-stream consumer takes EnhancedFanOut(name), registered on each stream")
		}
		if !consumerARNRE.MatchString(r.arn) {
			return retrievalError("%q is not a stream consumer ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/NAME:TIMESTAMP)", r.arn)
		}
		if cfg.StreamARN != "" && !strings.HasPrefix(r.arn, cfg.StreamARN+"/consumer/") {
			return retrievalError("consumer %s is not a consumer of stream %s", r.arn, cfg.StreamARN)
		}
		if cfg.StreamName != "" && !strings.Contains(r.arn, ":stream/"+cfg.StreamName+"/consumer/") {
			return retrievalError("consumer %s is not a consumer of stream %s", r.arn, cfg.StreamName)
		}
	}
	_, ok := cfg.Kinesis.(shardSubscriber)
	need("SubscribeToShard", ok)
	if len(missing) > 0 {
		return &ConfigError{Field: "Kinesis", Problem: fmt.Sprintf("enhanced fan-out needs %s, which %T does not have", strings.Join(missing, ", "), cfg.Kinesis)}
	}
	return nil
}

func retrievalError(format string, args ...any) error {
	return &ConfigError{Field: "Retrieval", Problem: fmt.Sprintf(format, args...)}
}

func (r Retrieval) consumerName(cfg *Config) string {
	if r.name == "" {
		return cfg.AppName
	}
	return r.name
}
