package efotest

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The stream-consumer registry: RegisterStreamConsumer,
// DescribeStreamConsumer, ListStreamConsumers, DeregisterStreamConsumer, and
// DescribeStreamSummary (which a consumer calls to learn its stream's ARN).

// epochSeconds is a time in Kinesis's JSON form.
type epochSeconds time.Time

func (t epochSeconds) MarshalJSON() ([]byte, error) {
	return appendEpochSeconds(nil, time.Time(t)), nil
}

type consumerJSON struct {
	ConsumerName              string
	ConsumerARN               string
	ConsumerStatus            types.ConsumerStatus
	ConsumerCreationTimestamp epochSeconds
	StreamARN                 string `json:",omitempty"`
}

func (c *consumer) json(now time.Time, withStream bool) consumerJSON {
	j := consumerJSON{ConsumerName: c.name, ConsumerARN: c.arn, ConsumerStatus: c.status(now),
		ConsumerCreationTimestamp: epochSeconds(c.created)}
	if withStream {
		j.StreamARN = c.streamARN
	}
	return j
}

type consumerInput struct {
	StreamARN    string
	ConsumerName string
	ConsumerARN  string
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &types.InvalidArgumentException{Message: ptr("malformed request: " + err.Error())}
	}
	return nil
}

func ptr(s string) *string { return &s }

func (s *Server) registerStreamConsumer(body []byte) (any, error) {
	var in consumerInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ConsumerName == "" {
		return nil, invalid("ConsumerName is required")
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[in.StreamARN] == nil {
		return nil, notFound("stream %s not found", in.StreamARN)
	}
	if c := s.lookupLocked(in); c != nil {
		return nil, inUse("consumer %s of stream %s exists", in.ConsumerName, in.StreamARN)
	}
	c := &consumer{
		name: in.ConsumerName, streamARN: in.StreamARN, created: now,
		arn:      in.StreamARN + "/consumer/" + in.ConsumerName + ":" + strconv.FormatInt(now.Unix(), 10),
		activeAt: now.Add(s.opts.ActivationDelay),
	}
	// AWS answers CREATING even when the consumer is ready soon after.
	out := c.json(now, false)
	out.ConsumerStatus = types.ConsumerStatusCreating
	s.consumers[c.arn] = c
	return map[string]any{"Consumer": out}, nil
}

// lookupLocked finds a consumer by ARN, or by stream ARN and name.
func (s *Server) lookupLocked(in consumerInput) *consumer {
	if in.ConsumerARN != "" {
		return s.consumers[in.ConsumerARN]
	}
	for _, c := range s.consumers {
		if c.streamARN == in.StreamARN && c.name == in.ConsumerName {
			return c
		}
	}
	return nil
}

func (s *Server) describeStreamConsumer(body []byte) (any, error) {
	var in consumerInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookupLocked(in)
	if c == nil {
		return nil, notFound("consumer %s%s not found", in.ConsumerARN, in.ConsumerName)
	}
	return map[string]any{"ConsumerDescription": c.json(time.Now(), true)}, nil
}

func (s *Server) listStreamConsumers(body []byte) (any, error) {
	var in consumerInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[in.StreamARN] == nil {
		return nil, notFound("stream %s not found", in.StreamARN)
	}
	out := []consumerJSON{}
	for _, c := range s.consumers {
		if c.streamARN == in.StreamARN {
			out = append(out, c.json(now, false))
		}
	}
	slices.SortFunc(out, func(a, b consumerJSON) int { return strings.Compare(a.ConsumerName, b.ConsumerName) })
	return map[string]any{"Consumers": out}, nil
}

// deregisterStreamConsumer removes the consumer at once and ends its open
// subscriptions with ResourceNotFoundException.
func (s *Server) deregisterStreamConsumer(body []byte) (any, error) {
	var in consumerInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookupLocked(in)
	if c == nil {
		return nil, notFound("consumer %s%s not found", in.ConsumerARN, in.ConsumerName)
	}
	delete(s.consumers, c.arn)
	for k, sub := range s.open {
		if k.consumerARN == c.arn {
			sub.stop(notFound("consumer %s was deregistered", c.arn))
		}
	}
	return struct{}{}, nil
}

func (s *Server) describeStreamSummary(body []byte) (any, error) {
	var in struct{ StreamName, StreamARN string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.streamFor(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	arn := st.arn
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.consumers {
		if c.streamARN == arn {
			n++
		}
	}
	return map[string]any{"StreamDescriptionSummary": map[string]any{
		"StreamName": st.name, "StreamARN": st.arn, "StreamStatus": types.StreamStatusActive,
		"ConsumerCount": n, "RetentionPeriodHours": 24,
		"StreamCreationTimestamp": epochSeconds(time.Unix(0, 0)), "EnhancedMonitoring": []any{},
	}}, nil
}
