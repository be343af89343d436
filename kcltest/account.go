package kcltest

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Account is an AWS account's Kinesis in memory: several streams, which a
// test creates, deletes and creates again while consumers run. It serves
// the calls a consumer makes (ListShards, GetShardIterator, GetRecords,
// DescribeStreamSummary) and ListStreams, routing each to the stream it
// names by StreamName or StreamARN, or by the iterator or NextToken it
// carries, so it satisfies consumer.KinesisAPI for a consumer of several
// streams. Each stream is a Stream: write to it, reshard it and inject its
// faults through it.
//
// A deleted stream answers every call with a *types.ResourceNotFoundException,
// as do its iterators, also once a stream of the same name was created
// again: that one is another stream, created later (at least a second after
// the deleted one, as deleting a stream takes the service seconds), whose
// shards start again at shardId-000000000000.
//
// The zero Account is not usable; call NewAccount. Its methods are safe for
// concurrent use.
type Account struct {
	id       string
	defaults []Option

	mu      sync.Mutex
	streams map[string]*Stream // live streams, by name
	all     []*Stream          // every stream ever created, for Calls
	created map[string]time.Time
	calls   map[Op]int    // calls that reached no stream
	seq     atomic.Uint64 // the streams' sequence numbers
}

// NewAccount returns an account with no stream. The options are the
// defaults of every stream it creates (CreateStream's own come after them);
// WithAccount among them sets the account's id (default DefaultAccount),
// WithName is ignored.
func NewAccount(defaults ...Option) *Account {
	o := options{account: DefaultAccount}
	for _, opt := range defaults {
		opt(&o)
	}
	if !isAccountID(o.account) {
		o.account = DefaultAccount
	}
	return &Account{
		id:       o.account,
		defaults: slices.Clone(defaults),
		streams:  map[string]*Stream{},
		created:  map[string]time.Time{},
		calls:    map[Op]int{},
	}
}

// ID returns the account's id, which every stream's ARN holds.
func (a *Account) ID() string { return a.id }

// CreateStream creates a stream with the given number of open shards (see
// NewStream) and returns it. It returns a *types.ResourceInUseException if
// a stream of that name exists, and an *types.InvalidArgumentException for
// a name the service refuses (1 to 128 of a-z A-Z 0-9 _ . -).
func (a *Account) CreateStream(name string, shards int, opts ...Option) (*Stream, error) {
	if !validStreamName(name) {
		return nil, invalidArgument(fmt.Sprintf("stream name %q: 1 to 128 of a-z A-Z 0-9 _ . -", name))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.streams[name]; ok {
		return nil, &types.ResourceInUseException{Message: aws.String("Stream " + name + " under account " + a.id + " already exists.")}
	}
	var notBefore time.Time
	if prev, ok := a.created[name]; ok {
		notBefore = prev.Add(time.Second)
	}
	all := append(slices.Clone(a.defaults), opts...)
	all = append(all, WithName(name), WithAccount(a.id))
	s := newStream(shards, notBefore, &a.seq, all...)
	a.streams[name] = s
	a.all = append(a.all, s)
	a.created[name] = s.created
	return s, nil
}

// DeleteStream deletes the stream at once: from now on it, its iterators
// and its NextTokens answer every call with a
// *types.ResourceNotFoundException, and Put to it fails the same way. It
// returns that error itself if no stream has the name.
func (a *Account) DeleteStream(name string) error {
	a.mu.Lock()
	s, ok := a.streams[name]
	delete(a.streams, name)
	a.mu.Unlock()
	if !ok {
		return a.streamNotFound(name)
	}
	s.markDeleted()
	return nil
}

// Stream returns the live stream of that name, or nil.
func (a *Account) Stream(name string) *Stream {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.streams[name]
}

// Streams returns the live streams, by name.
func (a *Account) Streams() []*Stream {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*Stream, 0, len(a.streams))
	for _, s := range a.streams {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *Stream) int { return strings.Compare(x.name, y.name) })
	return out
}

// Calls returns how many times op was called on the account: on every
// stream it ever held, deleted ones included, and the calls that named no
// stream.
func (a *Account) Calls(op Op) int {
	a.mu.Lock()
	n := a.calls[op]
	all := slices.Clone(a.all)
	a.mu.Unlock()
	for _, s := range all {
		n += s.Calls(op)
	}
	return n
}

func (a *Account) streamNotFound(id string) error {
	return &types.ResourceNotFoundException{Message: aws.String("Stream " + id + " under account " + a.id + " not found.")}
}

// route returns the live stream a call names, by name, ARN or token; when
// it names none, it counts the call on the account and returns the
// service's error.
func (a *Account) route(op Op, name, arn *string, token string) (*Stream, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var s *Stream
	id := aws.ToString(name)
	switch {
	case name != nil:
		s = a.streams[*name]
	case arn != nil:
		id = *arn
		for _, x := range a.streams {
			if x.arn == *arn {
				s = x
			}
		}
	case token != "":
		// A token of a deleted stream goes to the stream created since
		// under its name, if any: that one refuses it.
		id = tokenStream(token)
		if id == "" {
			a.calls[op]++
			return nil, invalidArgument("invalid NextToken")
		}
		s = a.streams[id]
	default:
		a.calls[op]++
		return nil, invalidArgument("either StreamName or StreamARN must be provided")
	}
	if s == nil {
		a.calls[op]++
		return nil, a.streamNotFound(id)
	}
	return s, nil
}

// ListShards implements the call of the Kinesis API on the stream it names
// (see Stream.ListShards).
func (a *Account) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	s, err := a.route(OpListShards, in.StreamName, in.StreamARN, aws.ToString(in.NextToken))
	if err != nil {
		return nil, err
	}
	return s.ListShards(ctx, in, optFns...)
}

// GetShardIterator implements the call of the Kinesis API on the stream it
// names (see Stream.GetShardIterator).
func (a *Account) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	s, err := a.route(OpGetShardIterator, in.StreamName, in.StreamARN, "")
	if err != nil {
		return nil, err
	}
	return s.GetShardIterator(ctx, in, optFns...)
}

// GetRecords implements the call of the Kinesis API on the stream of the
// iterator (see Stream.GetRecords).
func (a *Account) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	if tokenStream(aws.ToString(in.ShardIterator)) == "" {
		a.mu.Lock()
		a.calls[OpGetRecords]++
		a.mu.Unlock()
		return nil, invalidArgument("invalid ShardIterator")
	}
	s, err := a.route(OpGetRecords, nil, nil, aws.ToString(in.ShardIterator))
	if err != nil {
		return nil, err
	}
	return s.GetRecords(ctx, in, optFns...)
}

// DescribeStreamSummary implements the call of the Kinesis API on the
// stream it names (see Stream.DescribeStreamSummary).
func (a *Account) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	s, err := a.route(OpDescribeStreamSummary, in.StreamName, in.StreamARN, "")
	if err != nil {
		return nil, err
	}
	return s.DescribeStreamSummary(ctx, in, optFns...)
}

// listStreamsPage is ListStreams' default and largest page.
const listStreamsPage = 100

// ListStreams implements the call of the Kinesis API: the live streams'
// names and summaries (ARN, status, creation time), by name, in pages of
// Limit (default and most 100) from ExclusiveStartStreamName or NextToken.
func (a *Account) ListStreams(ctx context.Context, in *kinesis.ListStreamsInput, _ ...func(*kinesis.Options)) (*kinesis.ListStreamsOutput, error) {
	a.mu.Lock()
	a.calls[OpListStreams]++
	a.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := listStreamsPage
	if in.Limit != nil {
		if n := aws.ToInt32(in.Limit); n < 1 || n > 10000 {
			return nil, invalidArgument(fmt.Sprintf("Limit %d: must be 1 to 10000", n))
		}
		limit = min(int(aws.ToInt32(in.Limit)), listStreamsPage)
	}
	after := aws.ToString(in.ExclusiveStartStreamName)
	if in.NextToken != nil {
		if in.ExclusiveStartStreamName != nil {
			return nil, invalidArgument("NextToken and ExclusiveStartStreamName cannot be provided together")
		}
		raw, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		if err != nil || len(raw) == 0 {
			return nil, invalidArgument("invalid NextToken")
		}
		after = string(raw)
	}
	out := &kinesis.ListStreamsOutput{StreamNames: []string{}, HasMoreStreams: aws.Bool(false)}
	for _, s := range a.Streams() {
		if s.name <= after {
			continue
		}
		if len(out.StreamNames) == limit {
			out.HasMoreStreams = aws.Bool(true)
			out.NextToken = aws.String(base64.RawURLEncoding.EncodeToString([]byte(out.StreamNames[limit-1])))
			break
		}
		out.StreamNames = append(out.StreamNames, s.name)
		out.StreamSummaries = append(out.StreamSummaries, s.streamSummary())
	}
	return out, nil
}

func validStreamName(name string) bool {
	if len(name) < 1 || len(name) > 128 {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
