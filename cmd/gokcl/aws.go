package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"

	"github.com/gokcl/kcl/lease"
)

// shardReader is the part of the Kinesis API that reads shards; the
// in-memory stream of the unit tests implements it too.
type shardReader interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// adminStore is a lease table an operator writes to: the workers' Store,
// plus the reset write.
type adminStore interface {
	lease.Store
	lease.CheckpointResetter
}

// clients are the AWS clients of one command.
type clients struct {
	region  string
	kinesis *kinesis.Client
	dynamo  *dynamodb.Client
}

// connect loads the SDK's configuration (default credential chain) and
// makes the clients, with the endpoints of o when set.
func connect(ctx context.Context, e *env, o *options) (*clients, error) {
	opts := append([]func(*config.LoadOptions) error{}, e.awsOptions...)
	if o.region != "" {
		opts = append(opts, config.WithRegion(o.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, usagef("no AWS region: set -region, or AWS_REGION, or a region in the shared configuration")
	}
	c := &clients{region: cfg.Region}
	c.kinesis = kinesis.NewFromConfig(cfg, func(ko *kinesis.Options) {
		if o.kinesisURL != "" {
			ko.BaseEndpoint = aws.String(o.kinesisURL)
		}
	})
	c.dynamo = dynamodb.NewFromConfig(cfg, func(do *dynamodb.Options) {
		if o.dynamoURL != "" {
			do.BaseEndpoint = aws.String(o.dynamoURL)
		}
	})
	return c, nil
}

// deps are what a command reads and writes: the AWS clients, or the
// in-memory fakes of the unit tests.
type deps struct {
	kinesis     shardReader
	store       adminStore
	tableLabel  string // the lease table, for messages
	streamLabel string // the stream, for messages
	region      string // of the clients: the streams of a multi-stream table are read in it
}

// deps returns the clients' deps for o.
func (c *clients) deps(o *options) (deps, error) {
	d := deps{kinesis: c.kinesis, tableLabel: c.tableLabel(o), streamLabel: c.streamLabel(o), region: c.region}
	if o.table != "" {
		s, err := c.leaseStore(o)
		if err != nil {
			return deps{}, err
		}
		d.store = s
	}
	return d, nil
}

// connectDeps connects and returns the deps for o.
func connectDeps(ctx context.Context, e *env, o *options) (deps, error) {
	c, err := connect(ctx, e, o)
	if err != nil {
		return deps{}, err
	}
	return c.deps(o)
}

// leaseStore returns the lease table of o.
func (c *clients) leaseStore(o *options) (*lease.DynamoStore, error) {
	s, err := lease.NewDynamoStore(c.dynamo, o.table)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return s, nil
}

// tableLabel names the lease table in messages.
func (c *clients) tableLabel(o *options) string {
	return fmt.Sprintf("lease table %q (region %s)", o.table, c.region)
}

// streamLabel names the stream in messages.
func (c *clients) streamLabel(o *options) string {
	return fmt.Sprintf("%s (region %s)", o.streamLabel(), c.region)
}

// explain puts first, in an AWS error about what, the few words an operator
// acts on: not found, access denied, no credentials.
func explain(err error, what string) error {
	if err == nil {
		return nil
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ResourceNotFoundException":
			return fmt.Errorf("%s not found: %w", what, err)
		case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException",
			"InvalidSignatureException", "ExpiredTokenException", "KMSAccessDeniedException":
			return fmt.Errorf("access to %s denied (check the credentials and their IAM permissions): %w", what, err)
		}
	}
	if strings.Contains(err.Error(), "get credentials") || strings.Contains(err.Error(), "retrieve credentials") {
		return fmt.Errorf("no AWS credentials for %s (the SDK's default chain: environment, shared configuration, SSO, instance role): %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// apiMessage returns the code and message of an AWS error, without the
// SDK's wrapping (operation, status, request id), or err's text.
func apiMessage(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode() + ": " + api.ErrorMessage()
	}
	return err.Error()
}

// isNotFound reports whether err is a ResourceNotFoundException.
func isNotFound(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ResourceNotFoundException"
}
