package faultproxy

import (
	"context"
	"encoding/json"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/internal/testenv"
)

const (
	getRecords = "Kinesis_20131202.GetRecords"
	listShards = "Kinesis_20131202.ListShards"
	updateItem = "DynamoDB_20120810.UpdateItem"
	getItem    = "DynamoDB_20120810.GetItem"
)

// server stands in for Kinesis and DynamoDB behind the proxy: it records the
// operations it receives and answers each with a fixed, well-formed body, as
// the SDK expects it (DynamoDB answers carry X-Amz-Crc32, which the SDK
// checks).
type server struct {
	srv *httptest.Server

	mu       sync.Mutex
	ops      []string
	bodies   []string
	refuse   bool // UpdateItem fails its condition
	received chan string
}

func newServer(t *testing.T) *server {
	s := &server{received: make(chan string, 100)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	op := r.Header.Get("X-Amz-Target")
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.ops = append(s.ops, op)
	s.bodies = append(s.bodies, string(body))
	refuse := s.refuse
	s.mu.Unlock()
	select {
	case s.received <- op:
	default:
	}
	status, answer := http.StatusOK, `{}`
	switch op {
	case listShards:
		answer = `{"Shards":[]}`
	case getRecords:
		answer = `{"Records":[],"NextShardIterator":"next","MillisBehindLatest":0}`
	case updateItem:
		answer = `{"Attributes":{"leaseKey":{"S":"k"},"leaseCounter":{"N":"2"}}}`
		if refuse {
			status, answer = http.StatusBadRequest, `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}`
		}
	case getItem:
		answer = `{"Item":{"leaseKey":{"S":"k"},"leaseOwner":{"S":"w1"},"leaseCounter":{"N":"7"}}}`
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(answer))), 10))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (s *server) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.ops {
		if o == op {
			n++
		}
	}
	return n
}

func (s *server) lastBody(op string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.ops) - 1; i >= 0; i-- {
		if s.ops[i] == op {
			return s.bodies[i]
		}
	}
	return ""
}

func startProxy(t *testing.T, s *server, opts Options) *Proxy {
	p, err := New(s.srv.URL, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// kinesisClient talks to the proxy with the SDK's standard retryer, making
// at most attempts attempts (1: no retries) with short back-offs.
func kinesisClient(t *testing.T, p *Proxy, attempts int) *kinesis.Client {
	return kinesis.NewFromConfig(testenv.AWSConfig(t), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.Retryer = retryer(attempts)
	})
}

func dynamoClient(t *testing.T, p *Proxy, attempts int) *dynamodb.Client {
	return dynamodb.NewFromConfig(testenv.AWSConfig(t), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.Retryer = retryer(attempts)
	})
}

func retryer(attempts int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.MaxBackoff = 10 * time.Millisecond
		o.RateLimiter = ratelimit.None
	})
}

func getRecordsCall(ctx context.Context, c *kinesis.Client) error {
	_, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
	return err
}

func updateItemCall(ctx context.Context, c *dynamodb.Client) (*dynamodb.UpdateItemOutput, error) {
	return c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String("leases"),
		Key:                                 map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "k"}},
		UpdateExpression:                    aws.String("SET leaseCounter = :n"),
		ConditionExpression:                 aws.String("leaseCounter = :c"),
		ExpressionAttributeValues:           map[string]ddbtypes.AttributeValue{":n": &ddbtypes.AttributeValueMemberN{Value: "2"}, ":c": &ddbtypes.AttributeValueMemberN{Value: "1"}},
		ReturnValues:                        ddbtypes.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
	})
}

func TestNoFaultsForwardsEverything(t *testing.T) {
	s := newServer(t)
	var observed []Exchange
	var mu sync.Mutex
	p := startProxy(t, s, Options{Observe: func(e Exchange) {
		mu.Lock()
		observed = append(observed, e)
		mu.Unlock()
	}})
	ctx := testenv.Context(t, 10*time.Second)
	require.NoError(t, getRecordsCall(ctx, kinesisClient(t, p, 1)))
	out, err := updateItemCall(ctx, dynamoClient(t, p, 1))
	require.NoError(t, err, "the SDK accepts the answer and its checksum")
	require.Equal(t, "2", out.Attributes["leaseCounter"].(*ddbtypes.AttributeValueMemberN).Value)
	require.Len(t, observed, 2)
	require.Equal(t, getRecords, observed[0].Op)
	require.Equal(t, updateItem, observed[1].Op)
	require.Equal(t, http.StatusOK, observed[1].Status)
	require.Contains(t, string(observed[1].Request), `"leaseKey"`)
	require.Contains(t, string(observed[1].Response), `"Attributes"`)
	require.False(t, observed[1].Answered.Before(observed[1].Sent))
	require.Equal(t, map[Kind]int{None: 2}, p.Stats().Totals())
}

// The SDK must see an injected throttle as the service's typed, retryable
// throttling error, from the 400 JSON body alone.
func TestThrottleIsTheServicesThrottlingError(t *testing.T) {
	s := newServer(t)
	p := startProxy(t, s, Options{Plan: Plan{"*": {Throttle: 1}}})
	ctx := testenv.Context(t, 10*time.Second)

	err := getRecordsCall(ctx, kinesisClient(t, p, 1))
	var pte *types.ProvisionedThroughputExceededException
	require.ErrorAs(t, err, &pte)
	require.True(t, retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool())

	_, err = kinesisClient(t, p, 1).ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	var lee *types.LimitExceededException
	require.ErrorAs(t, err, &lee)

	_, err = updateItemCall(ctx, dynamoClient(t, p, 1))
	var api smithy.APIError
	require.ErrorAs(t, err, &api)
	require.Contains(t, []string{"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}, api.ErrorCode())
	require.True(t, retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool(), "%v", err)

	require.Zero(t, s.count(getRecords)+s.count(listShards)+s.count(updateItem), "nothing forwarded")
	require.Equal(t, 3, p.Stats().Totals()[Throttle])
}

func TestExpiredIterator(t *testing.T) {
	s := newServer(t)
	p := startProxy(t, s, Options{Plan: Plan{getRecords: {Expired: 1}}})
	err := getRecordsCall(testenv.Context(t, 10*time.Second), kinesisClient(t, p, 3))
	var expired *types.ExpiredIteratorException
	require.ErrorAs(t, err, &expired)
	require.Zero(t, s.count(getRecords))
	require.Equal(t, 1, p.Stats().Totals()[Expired], "not retried by the SDK")
}

func TestInternalErrorIs500(t *testing.T) {
	s := newServer(t)
	p := startProxy(t, s, Options{Plan: Plan{getRecords: {Internal: 1}}})
	err := getRecordsCall(testenv.Context(t, 10*time.Second), kinesisClient(t, p, 1))
	var api smithy.APIError
	require.ErrorAs(t, err, &api)
	require.Equal(t, "InternalFailure", api.ErrorCode())
	require.True(t, retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool(), "the SDK retries it")
	require.Zero(t, s.count(getRecords))
}

func TestResetBeforeForwarding(t *testing.T) {
	s := newServer(t)
	p := startProxy(t, s, Options{Plan: Plan{getRecords: {Reset: 1}}})
	err := getRecordsCall(testenv.Context(t, 10*time.Second), kinesisClient(t, p, 1))
	require.ErrorContains(t, err, "connection reset")
	require.True(t, retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool(), "the SDK retries it")
	require.Zero(t, s.count(getRecords))
}

// A lost answer: the server applied the request, the client got an error,
// and Observe saw the real answer.
func TestLostAnswers(t *testing.T) {
	for _, kind := range []Kind{LostReset, Lost500} {
		t.Run(kind.String(), func(t *testing.T) {
			s := newServer(t)
			var observed []Exchange
			var mu sync.Mutex
			mix := Mix{LostReset: 1}
			if kind == Lost500 {
				mix = Mix{Lost500: 1}
			}
			p := startProxy(t, s, Options{Plan: Plan{updateItem: mix}, Observe: func(e Exchange) {
				mu.Lock()
				observed = append(observed, e)
				mu.Unlock()
			}})
			_, err := updateItemCall(testenv.Context(t, 10*time.Second), dynamoClient(t, p, 1))
			require.Error(t, err)
			require.Equal(t, 1, s.count(updateItem), "applied")
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, observed, 1)
			require.Equal(t, kind, observed[0].Fault)
			require.Equal(t, http.StatusOK, observed[0].Status)
			require.Contains(t, string(observed[0].Response), `"leaseCounter":{"N":"2"}`)
		})
	}
}

// With the SDK's retries, calls get through a mix of every fault.
func TestSDKRetriesThroughFaults(t *testing.T) {
	s := newServer(t)
	p := startProxy(t, s, Options{Seed: 7, MaxLatency: 5 * time.Millisecond,
		Plan: Plan{"*": {Throttle: 0.1, Internal: 0.1, Reset: 0.1, Latency: 0.1, LostReset: 0.05, Lost500: 0.05}}})
	c := kinesisClient(t, p, 10)
	ctx := testenv.Context(t, 30*time.Second)
	for range 20 {
		require.NoError(t, getRecordsCall(ctx, c))
	}
	totals := p.Stats().Totals()
	faults := 0
	for _, k := range Kinds {
		faults += totals[k]
	}
	require.Positive(t, faults, "some faults injected: %v", totals)
	require.Equal(t, 20+totals[Throttle]+totals[Internal]+totals[Reset]+totals[LostReset]+totals[Lost500], totals[None]+faults)
}

// A delayed request reaches the server even though its client gave up.
func TestLatencyForwardsAfterTheClientGaveUp(t *testing.T) {
	const maxLatency = time.Second
	seed := uint64(0)
	for twin(seed, maxLatency).decide(updateItem).delay < maxLatency/2 {
		seed++ // a seed whose first delay leaves time to give up first
	}
	s := newServer(t)
	p := startProxy(t, s, Options{Seed: seed, Plan: Plan{updateItem: {Latency: 1}}, MaxLatency: maxLatency})
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := updateItemCall(ctx, dynamoClient(t, p, 1))
		res <- err
	}()
	testenv.WaitFor(t, 10*time.Second, "the request to arrive", func() bool { return p.Stats()[updateItem][Latency] == 1 })
	cancel()
	require.ErrorIs(t, <-res, context.Canceled)
	require.Zero(t, s.count(updateItem), "still delayed")
	select {
	case op := <-s.received:
		require.Equal(t, updateItem, op)
	case <-time.After(10 * time.Second):
		t.Fatal("the delayed request never reached the server")
	}
}

// twin is a proxy that only draws, as one with the same seed would.
func twin(seed uint64, maxLatency time.Duration) *Proxy {
	return &Proxy{opts: Options{Seed: seed, MaxLatency: maxLatency}, plan: Plan{"*": {Latency: 1}},
		rands: map[string]*rand.Rand{}, stats: map[string]*[numKinds]int{}}
}

func TestPartitionHoldsRequestsUntilHealed(t *testing.T) {
	s := newServer(t)
	p := startProxy(t, s, Options{})
	c := kinesisClient(t, p, 1)
	p.Partition(true)

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, getRecordsCall(short, c), context.DeadlineExceeded)

	held := make(chan error, 1)
	go func() { held <- getRecordsCall(testenv.Context(t, 30*time.Second), c) }()
	testenv.WaitFor(t, 10*time.Second, "the second request to be held", func() bool {
		return p.Stats()[getRecords][Partitioned] == 2
	})
	require.Zero(t, s.count(getRecords), "nothing forwarded while partitioned")
	p.Partition(false)
	require.NoError(t, <-held, "forwarded once healed")
	require.Equal(t, 1, s.count(getRecords))
}

// With ConditionItems, a refused UpdateItem carries the item, as DynamoDB's
// does with ReturnValuesOnConditionCheckFailure; the SDK decodes it (and
// accepts the recomputed checksum).
func TestConditionItems(t *testing.T) {
	s := newServer(t)
	s.refuse = true
	p := startProxy(t, s, Options{ConditionItems: true})
	_, err := updateItemCall(testenv.Context(t, 10*time.Second), dynamoClient(t, p, 1))
	var ccf *ddbtypes.ConditionalCheckFailedException
	require.ErrorAs(t, err, &ccf)
	require.Equal(t, "7", ccf.Item["leaseCounter"].(*ddbtypes.AttributeValueMemberN).Value)
	require.Equal(t, "w1", ccf.Item["leaseOwner"].(*ddbtypes.AttributeValueMemberS).Value)

	var get struct {
		TableName      string
		Key            map[string]map[string]string
		ConsistentRead bool
	}
	require.NoError(t, json.Unmarshal([]byte(s.lastBody(getItem)), &get))
	require.Equal(t, "leases", get.TableName)
	require.Equal(t, "k", get.Key["leaseKey"]["S"])
	require.True(t, get.ConsistentRead)

	// Without the option, the server's answer passes unchanged.
	p2 := startProxy(t, s, Options{})
	_, err = updateItemCall(testenv.Context(t, 10*time.Second), dynamoClient(t, p2, 1))
	require.ErrorAs(t, err, &ccf)
	require.Empty(t, ccf.Item)
}

// The faults an operation meets depend on the seed and on how many requests
// of that operation came before, not on other operations.
func TestDrawsAreReproducible(t *testing.T) {
	plan := Plan{"*": {Throttle: 0.2, Internal: 0.2, Reset: 0.2, Latency: 0.2}}
	draws := func(seed uint64, interleave bool) []decision {
		p := twin(seed, time.Second)
		p.plan = plan
		var out []decision
		for range 50 {
			if interleave {
				p.decide(listShards)
			}
			out = append(out, p.decide(getRecords))
		}
		return out
	}
	require.Equal(t, draws(1, false), draws(1, true))
	require.NotEqual(t, draws(1, false), draws(2, false))
}

func TestPlanValidation(t *testing.T) {
	_, err := New("http://127.0.0.1:1", Options{Plan: Plan{"*": {Throttle: 0.6, Reset: 0.6}}})
	require.ErrorContains(t, err, "more than 1")
	_, err = New("http://127.0.0.1:1", Options{Plan: Plan{"*": {Internal: -0.1}}})
	require.ErrorContains(t, err, "negative")
	_, err = New("not a url", Options{})
	require.Error(t, err)
	require.Equal(t, Mix{Throttle: 0.5, Lost500: 0.1, Expired: 0.2}, Mix{Throttle: 0.25, Lost500: 0.05, Expired: 0.1}.Scale(2))
}

// Close returns promptly even with a request waiting out a delay, and the
// client gets an error.
func TestCloseEndsRequestsInFlight(t *testing.T) {
	s := newServer(t)
	p, err := New(s.srv.URL, Options{Plan: Plan{"*": {Latency: 1}}, MaxLatency: time.Hour})
	require.NoError(t, err)
	c := kinesisClient(t, p, 1)
	res := make(chan error, 1)
	go func() { res <- getRecordsCall(testenv.Context(t, time.Minute), c) }()
	testenv.WaitFor(t, 10*time.Second, "the request to arrive", func() bool { return p.Stats()[getRecords][Latency] == 1 })
	require.NoError(t, p.Close())
	require.Error(t, <-res)
	require.Zero(t, s.count(getRecords))
}
