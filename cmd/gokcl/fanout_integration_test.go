//go:build integration

package main

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/internal/testenv"
)

// fanout list shows a registered consumer; deregister removes it.
func TestIntegrationFanoutListAndDeregister(t *testing.T) {
	kc := testenv.Kinesis(t)
	stream := testenv.CreateStream(t, kc, 1)
	ctx := testenv.Context(t, time.Minute)

	var rep fanoutReport
	gokclJSON(t, &rep, "fanout", "list", "-stream", stream)
	require.Empty(t, rep.Consumers)

	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	require.NoError(t, err)
	arn := sum.StreamDescriptionSummary.StreamARN
	reg, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: arn, ConsumerName: aws.String("billing")})
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "the consumer ACTIVE", func() bool {
		gokclJSON(t, &rep, "fanout", "list", "-stream", stream)
		return len(rep.Consumers) == 1 && rep.Consumers[0].Status == string(types.ConsumerStatusActive)
	})
	require.Equal(t, "billing", rep.Consumers[0].Name)
	require.Equal(t, aws.ToString(reg.Consumer.ConsumerARN), rep.Consumers[0].ARN)
	require.Equal(t, aws.ToString(arn), rep.Stream)

	r := gokcl(t, "fanout", "list", "-stream-arn", aws.ToString(arn))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "billing")
	require.Contains(t, r.stdout, "ACTIVE")

	r = gokcl(t, "fanout", "deregister", "-stream", stream, "-name", "billing")
	require.Equal(t, exitOK, r.code, r.stderr)
	waitFor(t, 30*time.Second, "the consumer gone", func() bool {
		gokclJSON(t, &rep, "fanout", "list", "-stream", stream)
		return len(rep.Consumers) == 0
	})

	r = gokcl(t, "fanout", "deregister", "-stream", stream, "-name", "billing")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, `consumer "billing"`)
}
