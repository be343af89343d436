// Package testenv connects integration tests to the Kinesis and DynamoDB
// servers named by GOKCL_KINESIS_ENDPOINT and GOKCL_DYNAMODB_ENDPOINT: the
// emulators started by test/localstack/emulators.sh, LocalStack, or real AWS.
package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Variables naming the servers.
const (
	KinesisEndpointVar  = "GOKCL_KINESIS_ENDPOINT"
	DynamoDBEndpointVar = "GOKCL_DYNAMODB_ENDPOINT"
)

const howToStart = `start the test servers with:
    test/localstack/emulators.sh start && eval "$(test/localstack/emulators.sh env)"
or run "make test", which starts and stops them itself`

// Endpoints returns the two endpoints. When either variable is unset the test
// is skipped, except when CI is set: CI must never pass by skipping.
func Endpoints(t testing.TB) (kinesisURL, dynamoURL string) {
	t.Helper()
	kinesisURL, dynamoURL = os.Getenv(KinesisEndpointVar), os.Getenv(DynamoDBEndpointVar)
	if kinesisURL != "" && dynamoURL != "" {
		return kinesisURL, dynamoURL
	}
	msg := fmt.Sprintf("%s and %s must be set; %s", KinesisEndpointVar, DynamoDBEndpointVar, howToStart)
	if os.Getenv("CI") != "" {
		t.Fatalf("integration test cannot run in CI: %s", msg)
	}
	t.Skip(msg)
	return "", ""
}

// AWSConfig returns an SDK configuration for the test servers: static test
// credentials unless real ones are configured, and region us-east-1 unless
// AWS_REGION is set.
func AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	opts := []func(*config.LoadOptions) error{}
	if os.Getenv("AWS_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return cfg
}

// Kinesis returns a client for the Kinesis test server. Options, if any, are
// applied after the endpoint is set (for example to wrap the HTTP client).
func Kinesis(t testing.TB, optFns ...func(*kinesis.Options)) *kinesis.Client {
	t.Helper()
	k, _ := Endpoints(t)
	cfg := AWSConfig(t)
	return kinesis.NewFromConfig(cfg, append([]func(*kinesis.Options){func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(k)
	}}, optFns...)...)
}

// DynamoDB returns a client for the DynamoDB test server.
func DynamoDB(t testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	_, d := Endpoints(t)
	cfg := AWSConfig(t)
	return dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(d)
	}}, optFns...)...)
}

var seq atomic.Int64

// Name returns a stream or table name unique to this test run, built from the
// test's name so that the servers' logs say which test made what.
func Name(t testing.TB) string {
	base := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, t.Name())
	if len(base) > 60 {
		base = base[len(base)-60:]
	}
	return fmt.Sprintf("%s-%d-%d", base, time.Now().UnixNano()%1e9, seq.Add(1))
}

// Context returns a context cancelled when the test ends or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// CreateStream creates a provisioned stream with the given number of shards,
// waits until it is ACTIVE, and deletes it when the test ends.
func CreateStream(t testing.TB, client *kinesis.Client, shards int32) string {
	t.Helper()
	name := Name(t)
	ctx := Context(t, time.Minute)
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	WaitStreamActive(t, client, name)
	t.Cleanup(func() {
		_, _ = client.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{
			StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)})
	})
	return name
}

// WaitStreamActive waits (up to a minute) until the stream is ACTIVE, as it is
// again after a split or a merge.
func WaitStreamActive(t testing.TB, client *kinesis.Client, name string) {
	t.Helper()
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(Context(t, time.Minute), &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("stream %s not active: %v", name, err)
	}
}

// WaitFor polls cond every 50 ms until it holds, failing the test after
// timeout. Inside a testing/synctest bubble the clock is virtual, so the
// wait costs no real time.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
