package faultproxy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind is a fault the proxy injects into one request.
type Kind uint8

// The faults. The first three answer without forwarding the request, so the
// server never sees it; the Lost* kinds forward it, so the server applies it,
// and then lose the server's answer; Latency delays the request and forwards
// it even if the client gave up meanwhile.
const (
	// None forwards the request and returns the server's answer.
	None Kind = iota
	// Throttle answers HTTP 400 with a throttling error of the service:
	// ProvisionedThroughputExceededException or LimitExceededException
	// (Kinesis), ProvisionedThroughputExceededException, ThrottlingException
	// or RequestLimitExceeded (DynamoDB).
	Throttle
	// Internal answers HTTP 500 InternalFailure.
	Internal
	// Reset resets the connection (TCP RST) before forwarding.
	Reset
	// Latency waits a random time up to Options.MaxLatency, then forwards
	// the request whatever the client did meanwhile: a client that timed out
	// cannot tell whether its request was applied.
	Latency
	// LostReset forwards the request, then resets the connection instead of
	// answering: the request was applied and the client does not know.
	LostReset
	// Lost500 forwards the request, then answers HTTP 500 InternalFailure
	// instead of the server's answer.
	Lost500
	// Partitioned counts requests held while the proxy was partitioned (see
	// Proxy.Partition); it is never drawn at random.
	Partitioned
	// Expired answers HTTP 400 ExpiredIteratorException, as Kinesis does to
	// a GetRecords with an iterator older than 5 minutes: the client must get
	// a new iterator where it stood. Meant for GetRecords only.
	Expired

	numKinds
)

// Kinds lists the faults, None excluded, in the order of their names in
// reports.
var Kinds = []Kind{Throttle, Internal, Reset, Latency, LostReset, Lost500, Expired, Partitioned}

var kindNames = [numKinds]string{"none", "throttle", "internal", "reset", "latency", "lost-reset", "lost-500", "partitioned", "expired"}

// String names the fault as reports print it.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Mix gives each fault's probability for one request; the rest of the
// probability is None. The probabilities must add up to at most 1.
type Mix struct {
	Throttle, Internal, Reset, Latency, LostReset, Lost500, Expired float64
}

// Scale returns m with every probability multiplied by f.
func (m Mix) Scale(f float64) Mix {
	return Mix{m.Throttle * f, m.Internal * f, m.Reset * f, m.Latency * f, m.LostReset * f, m.Lost500 * f, m.Expired * f}
}

func (m Mix) weights() [numKinds]float64 {
	return [numKinds]float64{Throttle: m.Throttle, Internal: m.Internal, Reset: m.Reset,
		Latency: m.Latency, LostReset: m.LostReset, Lost500: m.Lost500, Expired: m.Expired}
}

// Validate reports whether every probability is at least 0 and they add up
// to at most 1.
func (m Mix) Validate() error {
	sum := 0.0
	for k, w := range m.weights() {
		if w < 0 {
			return fmt.Errorf("probability of %s is negative: %v", Kind(k), w)
		}
		sum += w
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("probabilities add up to %v, more than 1", sum)
	}
	return nil
}

// draw picks a fault with probability r in [0, 1).
func (m Mix) draw(r float64) Kind {
	for k, w := range m.weights() {
		if r < w {
			return Kind(k)
		}
		r -= w
	}
	return None
}

// Plan gives the fault mix per operation, keyed by the X-Amz-Target header's
// value ("Kinesis_20131202.GetRecords", "DynamoDB_20120810.UpdateItem"). An
// operation missing from the plan gets the mix under the key "*", or none.
type Plan map[string]Mix

// For returns the mix for the operation op.
func (p Plan) For(op string) Mix {
	if m, ok := p[op]; ok {
		return m
	}
	return p["*"]
}

func (p Plan) validate() error {
	for op, m := range p {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("faultproxy: plan for %s: %w", op, err)
		}
	}
	return nil
}

// errorBody is the JSON body of an AWS JSON-protocol error; the SDK reads the
// error code from __type (ignoring any "namespace#" prefix).
func errorBody(code, message string) []byte {
	return fmt.Appendf(nil, `{"__type":%q,"message":%q}`, code, message)
}

// throttleCode picks a throttling error code that the service of op returns
// for op; the SDK's retryer treats each as a throttle.
func throttleCode(op string, r *rand.Rand) string {
	switch {
	case isDynamoDB(op):
		codes := []string{"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
		return "com.amazonaws.dynamodb.v20120810#" + codes[r.IntN(len(codes))]
	case strings.HasSuffix(op, ".GetRecords"), strings.HasSuffix(op, ".GetShardIterator"), strings.HasSuffix(op, ".PutRecords"):
		return "ProvisionedThroughputExceededException"
	}
	return "LimitExceededException"
}

// latency draws a delay in [0, max).
func latency(r *rand.Rand, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(max)))
}
