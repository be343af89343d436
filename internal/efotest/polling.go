package efotest

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The polling calls (ListShards, GetShardIterator, GetRecords), passed to
// the Source, so that a whole consumer can run through the SDK and its JSON
// decoding: to compare polling and fan-out at the same cost, for example.

// ShardLister is implemented by a Source that can list its shards, for
// ListShards.
type ShardLister interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// streamFor returns the stream a call names (by name or ARN).
func (s *Server) streamFor(name, arn string) (*stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streamLocked(name, arn); st != nil {
		return st, nil
	}
	if arn == "" {
		arn = name
	}
	return nil, notFound("stream %s not found", arn)
}

func (s *Server) streamLocked(name, arn string) *stream {
	if arn != "" {
		return s.streams[arn]
	}
	for _, st := range s.streams {
		if st.name == name {
			return st
		}
	}
	return nil
}

func (s *Server) listShards(ctx context.Context, body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN, NextToken string
		ExclusiveStartShardID            string `json:"ExclusiveStartShardId"`
		MaxResults                       int32
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	token := in.NextToken
	if token != "" {
		// Our tokens carry the stream's name: "name|source token".
		name, rest, _ := strings.Cut(token, "|")
		in.StreamName, token = name, rest
	}
	st, err := s.streamFor(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	lister, ok := st.src.(ShardLister)
	if !ok {
		return nil, invalid("efotest: the source of stream %s cannot list its shards", st.name)
	}
	kin := &kinesis.ListShardsInput{NextToken: optional(token), ExclusiveStartShardId: optional(in.ExclusiveStartShardID)}
	if token == "" {
		kin.StreamName = aws.String(st.name)
	}
	if in.MaxResults > 0 {
		kin.MaxResults = aws.Int32(in.MaxResults)
	}
	out, err := lister.ListShards(ctx, kin)
	if err != nil {
		return nil, err
	}
	type seqRange struct {
		StartingSequenceNumber string
		EndingSequenceNumber   string `json:",omitempty"`
	}
	type shard struct {
		ShardID               string `json:"ShardId"`
		ParentShardId         string `json:",omitempty"`
		AdjacentParentShardId string `json:",omitempty"`
		HashKeyRange          *types.HashKeyRange
		SequenceNumberRange   seqRange
	}
	shards := []shard{}
	for _, sh := range out.Shards {
		j := shard{ShardID: aws.ToString(sh.ShardId), ParentShardId: aws.ToString(sh.ParentShardId),
			AdjacentParentShardId: aws.ToString(sh.AdjacentParentShardId), HashKeyRange: sh.HashKeyRange}
		if r := sh.SequenceNumberRange; r != nil {
			j.SequenceNumberRange = seqRange{aws.ToString(r.StartingSequenceNumber), aws.ToString(r.EndingSequenceNumber)}
		}
		shards = append(shards, j)
	}
	res := map[string]any{"Shards": shards}
	if out.NextToken != nil {
		res["NextToken"] = st.name + "|" + aws.ToString(out.NextToken)
	}
	return res, nil
}

func (s *Server) getShardIterator(ctx context.Context, body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN, StartingSequenceNumber string
		ShardID                                       string `json:"ShardId"`
		ShardIteratorType                             types.ShardIteratorType
		Timestamp                                     *float64
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.streamFor(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	kin := &kinesis.GetShardIteratorInput{StreamName: aws.String(st.name), ShardId: aws.String(in.ShardID),
		ShardIteratorType: in.ShardIteratorType, StartingSequenceNumber: optional(in.StartingSequenceNumber)}
	if in.Timestamp != nil {
		sec, frac := math.Modf(*in.Timestamp)
		kin.Timestamp = aws.Time(time.Unix(int64(sec), int64(frac*1e9)))
	}
	out, err := st.src.GetShardIterator(ctx, kin)
	if err != nil {
		return nil, err
	}
	// Our iterators carry the stream's name, as Kinesis's identify theirs.
	return map[string]string{"ShardIterator": st.name + "|" + aws.ToString(out.ShardIterator)}, nil
}

// getRecords answers GetRecords with hand-written JSON, as fast as the
// events': it is the hot path of the polling benchmark through the SDK.
func (s *Server) getRecords(ctx context.Context, w http.ResponseWriter, body []byte) {
	var in struct {
		ShardIterator string
		Limit         int32
	}
	if err := decode(body, &in); err != nil {
		writeError(w, err)
		return
	}
	name, it, ok := strings.Cut(in.ShardIterator, "|")
	if !ok {
		writeError(w, invalid("malformed shard iterator"))
		return
	}
	st, err := s.streamFor(name, "")
	if err != nil {
		writeError(w, err)
		return
	}
	kin := &kinesis.GetRecordsInput{ShardIterator: aws.String(it)}
	if in.Limit > 0 {
		kin.Limit = aws.Int32(in.Limit)
	}
	out, err := st.src.GetRecords(ctx, kin)
	if err != nil {
		writeError(w, err)
		return
	}
	b := []byte(`{"Records":[`)
	for i := range out.Records {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRecordJSON(b, &out.Records[i])
	}
	b = append(b, `],"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, aws.ToInt64(out.MillisBehindLatest), 10)
	if out.NextShardIterator != nil {
		b = append(b, `,"NextShardIterator":`...)
		b = appendString(b, st.name+"|"+aws.ToString(out.NextShardIterator))
	}
	if out.ChildShards != nil {
		b = append(b, `,"ChildShards":`...)
		b = appendChildShardsJSON(b, out.ChildShards)
	}
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
