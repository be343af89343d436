package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/gokcl/kcl/lease"
)

// Multi-stream lease tables (the Java KCL's multi-stream mode, and gokcl's):
// each lease names its stream, account:name:creationEpoch. The commands show
// the stream of every lease, and tell a stream's own leases from those of a
// former stream of the same name: one deleted, or deleted and created again
// (another creation time, so other leases).

// streamDescriber is the Kinesis call that tells whether a stream of the
// table still exists, and since when.
type streamDescriber interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// The states of a stream of a multi-stream table.
const (
	streamCurrent   = "current"    // the stream exists, created when the table says
	streamDeleted   = "deleted"    // no stream of that name and account
	streamRecreated = "re-created" // a stream of that name, created later: another stream
	streamUnknown   = "unknown"    // Kinesis could not say (see the note)
)

// tableStream is one stream of a multi-stream table, as Kinesis knows it.
type tableStream struct {
	id     lease.StreamID
	ref    streamRef // by ARN
	state  string
	note   string      // why the state is not current
	shards []shardInfo // when current
}

// streamIDs returns the distinct streams the leases name, in order.
func streamIDs(leases []lease.Lease) []lease.StreamID {
	seen := map[lease.StreamID]bool{}
	var out []lease.StreamID
	for _, l := range leases {
		id := l.StreamID
		if !l.MultiStream() {
			id, _, _ = lease.ParseLeaseKey(l.Key)
		}
		if !id.IsZero() && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b lease.StreamID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// selectStreams returns the streams that -stream or -stream-arn name, or
// all of them when neither is set.
func selectStreams(ids []lease.StreamID, o *options) ([]lease.StreamID, error) {
	if !o.hasStream() {
		return ids, nil
	}
	name, account := o.stream, ""
	if o.streamARN != "" {
		id, err := lease.NewStreamID(o.streamARN, time.Unix(1, 0)) // only the ARN's parts are wanted
		if err != nil {
			return nil, usagef("-stream-arn: %v", err)
		}
		name, account = id.Name, id.Account
	}
	var out []lease.StreamID
	for _, id := range ids {
		if id.Name == name && (account == "" || id.Account == account) {
			out = append(out, id)
		}
	}
	return out, nil
}

// arnOf returns the ARN of the stream the identifier names, in the
// region of the command (a Kinesis client reads the streams of its region,
// in any account).
func arnOf(id lease.StreamID, region string) string {
	partition := "aws"
	switch {
	case strings.HasPrefix(region, "cn-"):
		partition = "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		partition = "aws-us-gov"
	}
	return "arn:" + partition + ":kinesis:" + region + ":" + id.Account + ":stream/" + id.Name
}

// describeStream asks Kinesis whether the stream the table names still
// exists (the same creation time) and, if so, lists its shards.
func describeStream(ctx context.Context, d deps, id lease.StreamID) tableStream {
	ts := tableStream{id: id, ref: streamRef{arn: arnOf(id, d.region)}, state: streamUnknown}
	sd, ok := d.kinesis.(streamDescriber)
	if !ok {
		ts.note = "the Kinesis client cannot describe streams"
		return ts
	}
	out, err := sd.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(ts.ref.arn)})
	switch {
	case isNotFound(err):
		ts.state, ts.note = streamDeleted, "the stream no longer exists: these leases are a former stream's"
		return ts
	case err != nil:
		ts.note = "DescribeStreamSummary: " + apiMessage(err)
		return ts
	case out.StreamDescriptionSummary == nil || out.StreamDescriptionSummary.StreamCreationTimestamp == nil:
		ts.note = "DescribeStreamSummary: no creation time in the response"
		return ts
	}
	created := *out.StreamDescriptionSummary.StreamCreationTimestamp
	now, err := lease.NewStreamID(ts.ref.arn, created)
	if err != nil || !now.SameStream(id) {
		ts.state = streamRecreated
		ts.note = fmt.Sprintf("the stream was deleted and created again (at %s): these leases are the former stream's", created.UTC().Format("2006-01-02T15:04:05Z"))
		return ts
	}
	shards, err := listShards(ctx, d.kinesis, ts.ref)
	if err != nil {
		ts.note = "ListShards: " + apiMessage(err)
		return ts
	}
	ts.state, ts.shards = streamCurrent, shards
	return ts
}

// currentStream picks, among the streams of one name that the table holds
// leases of, the one that exists now: a command that writes must not pick a
// former stream's leases by mistake.
func currentStream(ctx context.Context, d deps, ids []lease.StreamID, label string) (tableStream, error) {
	var streams []tableStream
	for _, id := range ids {
		ts := describeStream(ctx, d, id)
		if ts.state == streamCurrent {
			return ts, nil
		}
		streams = append(streams, ts)
	}
	if len(streams) == 1 {
		return streams[0], nil // a former stream's leases may be moved too
	}
	var names []string
	for _, ts := range streams {
		names = append(names, ts.id.String()+" ("+ts.state+")")
	}
	return tableStream{}, errors.New(label + " names several streams of that name, none of which exists now: " + strings.Join(names, ", "))
}
