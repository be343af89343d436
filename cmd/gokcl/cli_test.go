package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"
)

// runArgs runs the command line with no environment; none of the cases
// below gets as far as AWS.
func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, newEnv(&out, &errb, func(string) string { return "" }))
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, out, _ := runArgs(args...)
		require.Equal(t, exitOK, code, args)
		for _, c := range commands() {
			require.Contains(t, out, "  "+c.name+" ", "%v lists %s", args, c.name)
		}
	}
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "-h"}, {"help", c.name}} {
			code, out, _ := runArgs(args...)
			require.Equal(t, exitOK, code, args)
			require.Contains(t, out, "Usage:\n  gokcl "+c.name, args)
			require.Contains(t, out, "\nExamples:\n  gokcl "+c.name, args)
			require.Contains(t, out, "-o format", "%v: every command has -o", args)
		}
	}
	code, out, _ := runArgs("fanout", "list", "-h")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "gokcl fanout deregister")
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "Commands:"},
		{[]string{"stats"}, `unknown command "stats"`},
		{[]string{"help", "stats"}, `unknown command "stats"`},
		{[]string{"status", "-stream", "s"}, "name the application with -app"},
		{[]string{"status", "-app", "a"}, "name the stream with -stream"},
		{[]string{"status", "-app", "a", "-stream", "s", "-stream-arn", "arn"}, "not both"},
		{[]string{"status", "-app", "a", "-stream", "s", "-o", "yaml"}, `-o "yaml": want table or json`},
		{[]string{"status", "-app", "a", "-stream", "s", "-watch", "-1s"}, "must not be negative"},
		{[]string{"status", "-app", "a", "-stream", "s", "-failover", "0s"}, "must be positive"},
		{[]string{"status", "-app", "a", "-stream", "s", "extra"}, `unexpected argument "extra"`},
		{[]string{"status", "-nope"}, "flag provided but not defined: -nope"},
		{[]string{"workers"}, "name the application with -app"},
		{[]string{"reset", "-app", "a", "-to", "latest"}, "name one shard with -shard, or every unfinished shard with -all"},
		{[]string{"reset", "-app", "a", "-all", "-shard", "x", "-to", "latest"}, "name one shard with -shard"},
		{[]string{"reset", "-app", "a", "-all"}, "-to is required"},
		{[]string{"reset", "-app", "a", "-all", "-to", "TRIM_HORIZON"}, "want trim-horizon, latest"},
		{[]string{"reset", "-app", "a", "-all", "-to", "sequence=12", "-stream", "s"}, "use -shard, not -all"},
		{[]string{"reset", "-app", "a", "-shard", "x", "-to", "sequence=12"}, "reads the stream: name it with -stream"},
		{[]string{"reset", "-app", "a", "-shard", "x", "-to", "timestamp=yesterday", "-stream", "s"}, "want an RFC 3339 time"},
		{[]string{"reset", "-app", "a", "-shard", "x", "-to", "timestamp=2400-01-01T00:00:00Z", "-stream", "s"}, "is in the future"},
		{[]string{"evict", "-app", "a"}, "name the worker to evict with -worker"},
		{[]string{"evict", "-app", "a", "-worker", "w", "-watch", "0"}, "-watch 0 cannot tell"},
		{[]string{"import", "-app", "a", "-stream", "s", "-source-table", "t"}, `-from "": the only source is vmware`},
		{[]string{"import", "-app", "a", "-stream", "s", "-from", "vmware"}, "name the vmware-go-kcl table with -source-table"},
		{[]string{"import", "-app", "a", "-stream", "s", "-from", "vmware", "-source-table", "a"}, "is the source table"},
		{[]string{"fanout"}, "fanout needs an action"},
		{[]string{"fanout", "-stream", "s"}, "fanout needs an action"},
		{[]string{"fanout", "show", "-stream", "s"}, `fanout "show": the actions are list and deregister`},
		{[]string{"fanout", "list"}, "name the stream with -stream"},
		{[]string{"fanout", "deregister", "-stream", "s"}, "name the consumer to deregister with -name"},
	}
	for _, tc := range cases {
		code, out, errOut := runArgs(tc.args...)
		require.Equal(t, exitUsage, code, "%v: %s", tc.args, errOut)
		require.Empty(t, out, "%v: usage goes to standard error", tc.args)
		require.Contains(t, errOut, tc.want, tc.args)
	}
}

// The endpoint variables fill in the flags; the flags win.
func TestEndpointVariables(t *testing.T) {
	vars := map[string]string{kinesisEndpointVar: "http://k", dynamoDBEndpointVar: "http://d"}
	c := statusCommand()
	o := &options{}
	fs := newFlagSet(c, o)
	require.NoError(t, parse(c, fs, o, []string{"-app", "a", "-stream", "s", "-dynamodb-endpoint", "http://flag"}, &env{getenv: func(k string) string { return vars[k] }}))
	require.Equal(t, "http://k", o.kinesisURL)
	require.Equal(t, "http://flag", o.dynamoURL)
	require.Equal(t, "a", o.table, "the table is named after the app")
	require.Equal(t, defaultFailover*2/3, o.watch, "watch 2/3 of the failover time")
}

func TestExplain(t *testing.T) {
	api := func(code string) error {
		return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "Scan", Err: &smithy.GenericAPIError{Code: code, Message: "m"}}
	}
	require.True(t, strings.HasPrefix(explain(api("ResourceNotFoundException"), `lease table "t"`).Error(), `lease table "t" not found: `))
	require.True(t, strings.HasPrefix(explain(api("AccessDeniedException"), `lease table "t"`).Error(), `access to lease table "t" denied`))
	require.True(t, strings.HasPrefix(explain(api("UnrecognizedClientException"), `stream "s"`).Error(), `access to stream "s" denied`))
	err := explain(errors.New("operation error Kinesis: ListShards, get identity: get credentials: failed to refresh cached credentials"), `stream "s"`)
	require.True(t, strings.HasPrefix(err.Error(), `no AWS credentials for stream "s"`), err)
	other := errors.New("boom")
	require.ErrorIs(t, explain(other, "x"), other)
	require.Equal(t, "x: boom", explain(other, "x").Error())
	require.NoError(t, explain(nil, "x"))
}
