//go:build integration

package main

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/internal/testenv"
)

// Errors name what is wrong: the table or stream that does not exist, a
// multi-stream table, a row that cannot be read.
func TestIntegrationErrorsNameTheProblem(t *testing.T) {
	a := newApp(t, 1)
	ctx := testenv.Context(t, time.Minute)

	r := gokcl(t, "status", "-app", "no-such-app", "-stream", a.stream)
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, `lease table "no-such-app" (region us-east-1) not found`)

	r = gokcl(t, "status", "-app", a.stream, "-stream", "no-such-stream")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, `stream "no-such-stream" (region us-east-1) not found`)

	r = gokcl(t, "workers", "-app", "no-such-app")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, `lease table "no-such-app" (region us-east-1) not found`)

	r = gokcl(t, "import", "-app", a.stream, "-stream", a.stream, "-from", "vmware", "-source-table", "no-such-table")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, `source table "no-such-table" (region us-east-1) not found`)

	r = gokcl(t, "import", "-app", "x-"+a.stream, "-stream", a.stream, "-from", "vmware", "-source-table", a.stream)
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, "not a vmware-go-kcl-v2 checkpoint table: table")
	require.Contains(t, r.stderr, "has the key [leaseKey HASH], want [ShardID HASH]")

	// A row with no counter: listed as malformed, with the attribute named.
	s := func(v string) ddb.AttributeValue { return &ddb.AttributeValueMemberS{Value: v} }
	_, err := a.dc.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(a.stream), Item: map[string]ddb.AttributeValue{
		"leaseKey": s(shardID(0)), "checkpoint": s("TRIM_HORIZON")}})
	require.NoError(t, err)
	var st statusReport
	gokclJSON(t, &st, "status", "-app", a.stream, "-stream", a.stream, "-watch", "0")
	require.Len(t, st.Leases, 1)
	require.Equal(t, stateMalformed, st.Leases[0].State)
	require.Contains(t, st.Leases[0].Error, "leaseCounter")

	// A Java KCL multi-stream lease: refused, not guessed.
	_, err = a.dc.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(a.stream), Item: map[string]ddb.AttributeValue{
		"leaseKey": s("123456789012:orders:1700000000:shardId-000000000000"), "leaseCounter": &ddb.AttributeValueMemberN{Value: "1"},
		"checkpoint": s("TRIM_HORIZON"), "streamName": s("123456789012:orders:1700000000"), "shardId": s("shardId-000000000000")}})
	require.NoError(t, err)
	r = gokcl(t, "status", "-app", a.stream, "-stream", a.stream, "-watch", "0")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, "multi-stream key")
	r = gokcl(t, "reset", "-app", a.stream, "-all", "-to", "latest")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stderr, "multi-stream key")
}
