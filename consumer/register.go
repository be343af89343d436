package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// errConsumerDeleting is retried: once the consumer is gone (deregistered
// by someone else), it is registered again.
var errConsumerDeleting = errors.New("the stream consumer is being deleted")

// fanOutConsumer returns the ARN of the stream consumer the application
// reads through, once it is ACTIVE: the configured one, or the one named by
// EnhancedFanOut, registered here when it does not exist. Many workers may
// run this at once: all but one registration fail with
// ResourceInUseException, and those workers describe the consumer the
// winner registered. Faults are retried with backoff until ctx is done; a
// missing stream, a refused permission or an invalid argument is returned.
//
// The stream is named by its ARN, or by its name when the ARN is not known;
// log is the stream's logger.
func (c *Consumer) fanOutConsumer(ctx context.Context, log *slog.Logger, streamName, streamARN string) (string, error) {
	r := c.cfg.Retrieval
	if r.kind == retrievalFanOutARN {
		return r.arn, nil
	}
	name := r.consumerName(&c.cfg)
	bo := registerBackoff
	for {
		arn, err := c.registerConsumer(ctx, log, streamName, &streamARN, name)
		if err == nil {
			log.Info("enhanced fan-out consumer ACTIVE", "consumer", arn)
			return arn, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if permanent(err) {
			return "", fmt.Errorf("stream consumer %s: %w", name, err)
		}
		d := bo.next()
		log.Warn("stream consumer registration failed; retrying", "consumer", name, "attempt", bo.attempt, "wait", d, "error", err)
		sleep(ctx, d)
	}
}

// registerConsumer makes one attempt: describe, register if missing, wait
// until ACTIVE.
func (c *Consumer) registerConsumer(ctx context.Context, log *slog.Logger, streamName string, streamARN *string, name string) (string, error) {
	if *streamARN == "" {
		out, err := c.cfg.Kinesis.(streamDescriber).DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(streamName)})
		if err != nil {
			return "", fmt.Errorf("describe stream %s: %w", streamName, err)
		}
		if out.StreamDescriptionSummary == nil || aws.ToString(out.StreamDescriptionSummary.StreamARN) == "" {
			return "", fmt.Errorf("describe stream %s: no ARN in the response", streamName)
		}
		*streamARN = aws.ToString(out.StreamDescriptionSummary.StreamARN)
	}
	describe := c.cfg.Kinesis.(consumerDescriber)
	byName := &kinesis.DescribeStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String(name)}
	d, err := describe.DescribeStreamConsumer(ctx, byName)
	if isNotFound(err) {
		var reg *kinesis.RegisterStreamConsumerOutput
		reg, err = c.cfg.Kinesis.(consumerRegisterer).RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
			StreamARN: streamARN, ConsumerName: aws.String(name)})
		switch {
		case isInUse(err):
			// Another worker registered it first.
			if d, err = describe.DescribeStreamConsumer(ctx, byName); isNotFound(err) {
				err = errConsumerDeleting // and deleted since: register again
			}
		case err == nil && reg.Consumer != nil:
			log.Info("registered the enhanced fan-out consumer", "consumer", aws.ToString(reg.Consumer.ConsumerARN))
			d = &kinesis.DescribeStreamConsumerOutput{ConsumerDescription: &types.ConsumerDescription{
				ConsumerARN: reg.Consumer.ConsumerARN, ConsumerStatus: reg.Consumer.ConsumerStatus}}
		case err == nil:
			err = errors.New("no consumer in the response")
		default:
			err = fmt.Errorf("register: %w", err)
		}
	}
	if err != nil {
		return "", fmt.Errorf("describe: %w", err)
	}
	return c.waitActive(ctx, log, d.ConsumerDescription)
}

// waitActive polls the consumer until it is ACTIVE (a few seconds after its
// registration on AWS).
func (c *Consumer) waitActive(ctx context.Context, log *slog.Logger, desc *types.ConsumerDescription) (string, error) {
	if desc == nil || aws.ToString(desc.ConsumerARN) == "" {
		return "", errors.New("describe: no consumer in the response")
	}
	arn := aws.ToString(desc.ConsumerARN)
	bo := activeBackoff
	for status := desc.ConsumerStatus; status != types.ConsumerStatusActive; {
		if status == types.ConsumerStatusDeleting {
			return "", errConsumerDeleting
		}
		log.Debug("waiting for the stream consumer to be ACTIVE", "consumer", arn, "status", status)
		if !sleep(ctx, bo.next()) {
			return "", ctx.Err()
		}
		out, err := c.cfg.Kinesis.(consumerDescriber).DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
		if isNotFound(err) {
			return "", errConsumerDeleting // deleted since: register again
		}
		if err != nil {
			return "", fmt.Errorf("describe %s: %w", arn, err)
		}
		if out.ConsumerDescription == nil {
			return "", fmt.Errorf("describe %s: no consumer in the response", arn)
		}
		status = out.ConsumerDescription.ConsumerStatus
	}
	return arn, nil
}

// permanent reports errors that retrying will not fix: a missing stream, a
// refused permission, an invalid argument.
func permanent(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "ResourceNotFoundException", "AccessDeniedException", "InvalidArgumentException", "ValidationException":
		return true
	}
	return false
}

func isInUse(err error) bool {
	var inUse *types.ResourceInUseException
	return errors.As(err, &inUse)
}
