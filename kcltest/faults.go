package kcltest

import (
	"math/rand/v2"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Op names an operation of the Kinesis API that the stream serves, for
// faults and call counts.
type Op string

// The operations of the Kinesis API that the stream serves.
const (
	OpListShards       Op = "ListShards"
	OpGetShardIterator Op = "GetShardIterator"
	OpGetRecords       Op = "GetRecords"
)

// faults holds the injected faults; the stream's mutex guards it.
type faults struct {
	hook  func(Op) error
	next  map[Op][]error
	rates map[Op]faultRate
	rng   *rand.Rand
}

type faultRate struct {
	p   float64
	err error
}

func newFaults(seed uint64) faults {
	return faults{next: map[Op][]error{}, rates: map[Op]faultRate{}, rng: rand.New(rand.NewPCG(seed, seed))}
}

// take returns the error the next call of op fails with, if any.
func (f *faults) take(op Op) error {
	if q := f.next[op]; len(q) > 0 {
		f.next[op] = q[1:]
		return q[0]
	}
	if r, ok := f.rates[op]; ok && f.rng.Float64() < r.p {
		return r.err
	}
	return nil
}

// FailNext makes the next call of op fail with err, doing nothing else (an
// iterator passed to a failed GetRecords stays valid). Calls queue: calling
// FailNext twice fails the next two calls.
func (s *Stream) FailNext(op Op, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.next[op] = append(s.faults.next[op], err)
}

// FailRate makes each call of op fail with err with probability rate (from 0
// to 1), drawn from the stream's random source (see WithSeed). A rate of 0 or
// less removes the fault. Calls failed by FailNext do not draw.
func (s *Stream) FailRate(op Op, rate float64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rate <= 0 {
		delete(s.faults.rates, op)
		return
	}
	s.faults.rates[op] = faultRate{p: rate, err: err}
}

// SetFault sets a function called at the start of every call of the Kinesis
// API, before the faults of FailNext and FailRate: a non-nil error fails the
// call. nil removes it. It is called without the stream's lock, from the
// caller's goroutine, so it may call the stream's other methods (to write or
// reshard between two calls, for example) and may block.
func (s *Stream) SetFault(f func(op Op) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.hook = f
}

// ClearFaults removes every fault: the SetFault function, the calls queued
// by FailNext and the rates of FailRate.
func (s *Stream) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.hook = nil
	clear(s.faults.next)
	clear(s.faults.rates)
}

// enter counts a call of op and returns the fault it must fail with, if any.
func (s *Stream) enter(op Op) error {
	s.mu.Lock()
	s.calls[op]++
	hook := s.faults.hook
	s.mu.Unlock()
	if hook != nil {
		if err := hook(op); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.take(op)
}

// The errors below are the service's, as the SDK returns them. A real
// client retries throttling and internal failures a few times before it
// returns them; the stream returns them at once, as if every retry failed.

// ThrottlingError returns the error of a call over a shard's limits: a
// *types.ProvisionedThroughputExceededException.
func ThrottlingError() error {
	return &types.ProvisionedThroughputExceededException{
		Message: aws.String("Rate exceeded for shard in stream under account 123456789012."),
	}
}

// ExpiredIteratorError returns the error of GetRecords with an iterator
// older than 5 minutes: a *types.ExpiredIteratorException. The stream also
// returns it by itself for iterators that old.
func ExpiredIteratorError() error {
	return &types.ExpiredIteratorException{Message: aws.String("Iterator expired.")}
}

// InternalFailureError returns the error of a call that failed inside the
// service (HTTP 500): a smithy.APIError with the code InternalFailure and a
// server fault.
func InternalFailureError() error {
	return &smithy.GenericAPIError{Code: "InternalFailure", Message: "Internal service failure.", Fault: smithy.FaultServer}
}

func invalidArgument(msg string) error {
	return &types.InvalidArgumentException{Message: aws.String(msg)}
}

func (s *Stream) shardNotFound(id string) error {
	return &types.ResourceNotFoundException{
		Message: aws.String("Shard " + id + " in stream " + s.name + " under account " + s.account + " does not exist"),
	}
}

// streamNotFound is the error of a call naming a stream that does not
// exist (or no longer does), by name or ARN.
func (s *Stream) streamNotFound(nameOrARN string) error {
	return &types.ResourceNotFoundException{Message: aws.String("Stream " + nameOrARN + " under account " + s.account + " not found.")}
}
