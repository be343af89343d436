package kcltest

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Region is the region in every stream's ARN.
const Region = "us-east-1"

// OpDescribeStreamSummary and OpListStreams name the calls a multi-stream
// consumer makes besides a single-stream consumer's.
const (
	OpDescribeStreamSummary Op = "DescribeStreamSummary"
	OpListStreams           Op = "ListStreams"
)

// AccountID returns the id of the account the stream belongs to.
func (s *Stream) AccountID() string { return s.account }

// CreatedAt returns when the stream was created, to the second, as
// DescribeStreamSummary reports it. A stream deleted and created again
// under the same name (see Account) is another Stream, created later.
func (s *Stream) CreatedAt() time.Time { return s.created }

// Deleted reports whether the stream was deleted (Account.DeleteStream).
func (s *Stream) Deleted() bool { return s.isDeleted() }

func (s *Stream) isDeleted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleted
}

// DescribeStreamSummary implements the call of the Kinesis API: the
// stream's name, ARN, creation time, status (ACTIVE), retention and open
// shards. A deleted stream, or one named otherwise, gets a
// *types.ResourceNotFoundException.
func (s *Stream) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	if err := s.call(ctx, OpDescribeStreamSummary); err != nil {
		return nil, err
	}
	if err := s.checkStream(in.StreamName, in.StreamARN); err != nil {
		return nil, err
	}
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: s.summary()}, nil
}

// summary describes the stream as DescribeStreamSummary does.
func (s *Stream) summary() *types.StreamDescriptionSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	open := 0
	for _, sh := range s.shards {
		if !sh.closed {
			open++
		}
	}
	return &types.StreamDescriptionSummary{
		StreamName:              aws.String(s.name),
		StreamARN:               aws.String(s.arn),
		StreamStatus:            types.StreamStatusActive,
		StreamCreationTimestamp: aws.Time(s.created),
		RetentionPeriodHours:    aws.Int32(int32(max(s.options.retention/time.Hour, 1))),
		OpenShardCount:          aws.Int32(int32(open)),
		EnhancedMonitoring:      []types.EnhancedMetrics{},
		EncryptionType:          types.EncryptionTypeNone,
		StreamModeDetails:       &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned},
		ConsumerCount:           aws.Int32(0),
	}
}

// streamSummary is the stream's entry of a ListStreams answer.
func (s *Stream) streamSummary() types.StreamSummary {
	return types.StreamSummary{
		StreamName:              aws.String(s.name),
		StreamARN:               aws.String(s.arn),
		StreamStatus:            types.StreamStatusActive,
		StreamCreationTimestamp: aws.Time(s.created),
		StreamModeDetails:       &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned},
	}
}

// markDeleted makes every later call fail as for a missing stream.
func (s *Stream) markDeleted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = true
}

// token encodes an opaque token of the stream (an iterator, a NextToken):
// its name, its creation time and the fields, so that a token of a deleted
// stream is refused by the stream re-created under the same name.
func (s *Stream) token(fields ...string) string {
	raw := s.name + "|" + strconv.FormatInt(s.created.UnixNano(), 10) + "|" + strings.Join(fields, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// readToken decodes a token of the stream into its n fields. A token of
// another stream, or not a token, is an *types.InvalidArgumentException; a
// token of this stream's name issued by a stream since deleted, or by this
// one after its deletion, a *types.ResourceNotFoundException, as the service
// answers for a deleted stream.
func (s *Stream) readToken(token, what string, n int) ([]string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	parts := strings.Split(string(raw), "|")
	if err != nil || len(parts) != n+2 || parts[0] != s.name {
		return nil, invalidArgument("invalid " + what)
	}
	if parts[1] != strconv.FormatInt(s.created.UnixNano(), 10) || s.isDeleted() {
		return nil, s.streamNotFound(s.name)
	}
	return parts[2:], nil
}

// tokenStream returns the name of the stream a token (an iterator or a
// NextToken) was issued by, or "" if it is not a token.
func tokenStream(token string) string {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return ""
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || !validStreamName(parts[0]) {
		return ""
	}
	if _, err := strconv.ParseInt(parts[1], 10, 64); err != nil {
		return ""
	}
	return parts[0]
}

func isAccountID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for i := range len(id) {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
