// Package efotest serves Kinesis enhanced fan-out for tests: an http.Handler
// that speaks SubscribeToShard in the real event-stream encoding (and the
// stream-consumer registration calls around it) on top of any stream that
// answers GetShardIterator and GetRecords, an in-memory transport that lets a
// real *kinesis.Client talk to it without sockets (so it works inside
// testing/synctest bubbles), and an HTTP client wrapper that makes
// kinesis-local's SubscribeToShard usable by the SDK.
//
// The server does what the test servers cannot: ChildShards at the end of a
// closed shard, subscriptions that end after a configurable lifetime (5
// minutes on AWS), exceptions in the middle of a stream, a subscription
// taken over by another (ResourceInUseException), and a writer that encodes
// the next event only once the client has read the previous one, so a slow
// reader is seen as on a real connection.
package efotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Source is the stream a Server serves subscriptions from: the polling half
// of the Kinesis API, which an in-memory stream and a real client both have.
// A subscription takes one iterator at its starting position and calls
// GetRecords with it until the shard ends (NextShardIterator nil, with
// ChildShards) or the subscription does. Its methods are called from
// several subscriptions at once.
type Source interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// Notifier is implemented by a Source that can say when a shard changes, so
// that subscriptions push new records at once instead of polling for them
// every Options.PollInterval.
type Notifier interface {
	// Changed returns a channel closed at the shard's next change: a record
	// put, or the shard closed.
	Changed(shardID string) <-chan struct{}
}

// Defaults of Options.
const (
	DefaultLifetime      = 5 * time.Minute
	DefaultTakeoverAfter = 5 * time.Second
	DefaultHeartbeat     = time.Second
	DefaultPollInterval  = 50 * time.Millisecond
	DefaultEventRecords  = 1000
)

// Options configure a Server. Zero fields take the documented defaults.
type Options struct {
	// Lifetime ends every subscription this long after it started, as
	// Kinesis does after 5 minutes: the stream ends cleanly after the event
	// in flight. Default DefaultLifetime.
	Lifetime time.Duration
	// TakeoverAfter: a SubscribeToShard for a consumer and shard that have
	// an open subscription is refused with ResourceInUseException while the
	// open one is younger than this; after it, the new subscription takes
	// over and the open one ends with a ResourceInUseException event.
	// Default DefaultTakeoverAfter (AWS: 5 seconds).
	TakeoverAfter time.Duration
	// ActivationDelay is how long a registered consumer stays CREATING
	// before it is ACTIVE. Default 0: ACTIVE at once.
	ActivationDelay time.Duration
	// Heartbeat is how long a subscription with nothing new waits before it
	// sends an empty event (with the position to continue from and the
	// current MillisBehindLatest). Default DefaultHeartbeat.
	Heartbeat time.Duration
	// PollInterval is how often a Source that is not a Notifier is read for
	// new records. Default DefaultPollInterval.
	PollInterval time.Duration
	// EventRecords caps the records of one event (the Limit of each
	// GetRecords call on the Source). Default DefaultEventRecords.
	EventRecords int
	// Fault, if set, is consulted before every API call and before every
	// event of a subscription; a non-nil error replaces what would have
	// happened. For a call, an error implementing smithy.APIError is
	// answered with its code (HTTP 400, or 500 for a server fault), any
	// other with InternalFailureException. For an event, an APIError is sent
	// as an exception message that ends the subscription; ErrExpire ends it
	// cleanly, as its lifetime would; ErrDisconnect breaks the connection
	// in the middle of a message. Fault is called from the subscriptions'
	// goroutines, concurrently.
	Fault func(FaultPoint) error
}

// FaultPoint says where Options.Fault is consulted.
type FaultPoint struct {
	// Op is the API operation, or EventOp before an event.
	Op string
	// ShardID is the shard of SubscribeToShard and of its events.
	ShardID string
	// Subscription counts the SubscribeToShard calls for this shard (all
	// consumers, accepted or not), from 1: the call itself, or the one
	// whose events these are.
	Subscription int
	// Event counts the SubscribeToShardEvents sent by this subscription
	// before this one, from 0.
	Event int
}

// EventOp is FaultPoint.Op before each SubscribeToShardEvent.
const EventOp = "SubscribeToShardEvent"

var (
	// ErrExpire, returned by Options.Fault for an event, ends the
	// subscription cleanly, as its lifetime would.
	ErrExpire = errors.New("efotest: subscription expired")
	// ErrDisconnect, returned by Options.Fault for an event, breaks the
	// connection in the middle of a message.
	ErrDisconnect = errors.New("efotest: disconnected")
)

// Server is an http.Handler for the Kinesis enhanced fan-out API:
// SubscribeToShard, RegisterStreamConsumer, DescribeStreamConsumer,
// ListStreamConsumers, DeregisterStreamConsumer and DescribeStreamSummary,
// for the streams added with AddStream. It also passes GetShardIterator,
// GetRecords and (for a ShardLister) ListShards to the stream's Source, so
// that a whole consumer can run through the SDK. Other operations are
// answered with UnknownOperationException. Its methods are safe for
// concurrent use.
type Server struct {
	opts Options

	mu        sync.Mutex
	streams   map[string]*stream   // by ARN
	consumers map[string]*consumer // by ARN
	open      map[subKey]*subscription
	attempts  map[string]int // SubscribeToShard calls per shard
	calls     map[string]int
	history   []Subscription
	eventsOut int
}

type stream struct {
	name, arn string
	src       Source
}

type consumer struct {
	name, arn, streamARN string
	created, activeAt    time.Time
}

func (c *consumer) status(now time.Time) types.ConsumerStatus {
	if now.Before(c.activeAt) {
		return types.ConsumerStatusCreating
	}
	return types.ConsumerStatusActive
}

type subKey struct{ consumerARN, shardID string }

// subscription is one open SubscribeToShard.
type subscription struct {
	started time.Time
	end     chan struct{} // closed to end it with endErr
	endOnce sync.Once
	endErr  error
}

func (s *subscription) stop(err error) {
	s.endOnce.Do(func() {
		s.endErr = err
		close(s.end)
	})
}

// Subscription is one SubscribeToShard the server received.
type Subscription struct {
	ConsumerARN string
	ShardID     string
	Position    types.StartingPosition
	// Err is why the call was refused; nil if it was accepted.
	Err error
}

// NewServer returns a server with no streams.
func NewServer(opts Options) *Server {
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultLifetime
	}
	if opts.TakeoverAfter <= 0 {
		opts.TakeoverAfter = DefaultTakeoverAfter
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.EventRecords <= 0 {
		opts.EventRecords = DefaultEventRecords
	}
	return &Server{
		opts:      opts,
		streams:   map[string]*stream{},
		consumers: map[string]*consumer{},
		open:      map[subKey]*subscription{},
		attempts:  map[string]int{},
		calls:     map[string]int{},
	}
}

// StreamARN is the ARN the server gives the stream named name (region
// us-east-1, account 000000000000, like the test servers).
func StreamARN(name string) string {
	return "arn:aws:kinesis:us-east-1:000000000000:stream/" + name
}

// AddStream serves the stream named name from src and returns its ARN:
// src's own if it has an ARN() string method (as kcltest.Stream does), else
// StreamARN(name).
func (s *Server) AddStream(name string, src Source) string {
	arn := StreamARN(name)
	if a, ok := src.(interface{ ARN() string }); ok {
		arn = a.ARN()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[arn] = &stream{name: name, arn: arn, src: src}
	return arn
}

// Calls returns how many times the operation op was called (EventOp: how
// many events were sent).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == EventOp {
		return s.eventsOut
	}
	return s.calls[op]
}

// Open returns how many subscriptions are open now.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// Subscriptions returns every SubscribeToShard received so far, in order.
func (s *Server) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Subscription(nil), s.history...)
}

const targetPrefix = "Kinesis_20131202."

// ServeHTTP answers one awsJson1_1 call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok || r.Method != http.MethodPost {
		writeError(w, &smithy.GenericAPIError{Code: "UnknownOperationException", Message: "not a Kinesis call"})
		return
	}
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return // the client is gone
	}
	if op != "SubscribeToShard" && s.fault(FaultPoint{Op: op}, w) {
		return
	}
	var out any
	switch op {
	case "SubscribeToShard":
		s.subscribeToShard(w, r, body)
		return
	case "RegisterStreamConsumer":
		out, err = s.registerStreamConsumer(body)
	case "DescribeStreamConsumer":
		out, err = s.describeStreamConsumer(body)
	case "ListStreamConsumers":
		out, err = s.listStreamConsumers(body)
	case "DeregisterStreamConsumer":
		out, err = s.deregisterStreamConsumer(body)
	case "DescribeStreamSummary":
		out, err = s.describeStreamSummary(body)
	case "ListShards":
		out, err = s.listShards(r.Context(), body)
	case "GetShardIterator":
		out, err = s.getShardIterator(r.Context(), body)
	case "GetRecords":
		s.getRecords(r.Context(), w, body)
		return
	default:
		err = &smithy.GenericAPIError{Code: "UnknownOperationException", Message: op + " is not served by efotest"}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// fault consults Options.Fault for a call and answers with its error, if
// any; it reports whether it did.
func (s *Server) fault(p FaultPoint, w http.ResponseWriter) bool {
	if s.opts.Fault == nil {
		return false
	}
	err := s.opts.Fault(p)
	if err == nil {
		return false
	}
	writeError(w, err)
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"__type":"InternalFailureException","message":"efotest: cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError answers with err as Kinesis would: its code in __type, HTTP 400
// for a client fault and 500 for a server fault.
func writeError(w http.ResponseWriter, err error) {
	code, msg, status := errorParts(err)
	w.Header().Set("X-Amzn-ErrorType", code)
	writeJSON(w, status, map[string]string{"__type": code, "message": msg})
}

func errorParts(err error) (code, msg string, status int) {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return "InternalFailureException", err.Error(), http.StatusInternalServerError
	}
	status = http.StatusBadRequest
	if api.ErrorFault() == smithy.FaultServer {
		status = http.StatusInternalServerError
	}
	return api.ErrorCode(), api.ErrorMessage(), status
}

func notFound(format string, args ...any) error {
	return &types.ResourceNotFoundException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func inUse(format string, args ...any) error {
	return &types.ResourceInUseException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func invalid(format string, args ...any) error {
	return &types.InvalidArgumentException{Message: aws.String(fmt.Sprintf(format, args...))}
}
