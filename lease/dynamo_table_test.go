package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/lease"
)

// tableStates scripts DescribeTable: each call answers the next state (the
// last one repeats); "" is a missing table. CreateTable answers createErr.
type tableStates struct {
	states    []types.TableStatus
	schema    []types.KeySchemaElement
	defs      []types.AttributeDefinition
	createErr error
	created   []*dynamodb.CreateTableInput
}

func (ts *tableStates) fake() *fakeDynamo {
	if ts.schema == nil {
		ts.schema = []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}}
		ts.defs = []types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}}
	}
	return &fakeDynamo{
		describe: func(in *dynamodb.DescribeTableInput) (*dynamodb.DescribeTableOutput, error) {
			status := ts.states[0]
			if len(ts.states) > 1 {
				ts.states = ts.states[1:]
			}
			if status == "" {
				return nil, &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
			}
			return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{
				TableName: in.TableName, TableStatus: status, KeySchema: ts.schema, AttributeDefinitions: ts.defs,
			}}, nil
		},
		create: func(in *dynamodb.CreateTableInput) (*dynamodb.CreateTableOutput, error) {
			ts.created = append(ts.created, in)
			return &dynamodb.CreateTableOutput{}, ts.createErr
		},
	}
}

var fastPoll = lease.TableOptions{PollInterval: time.Millisecond}

func TestEnsureTableCreatesOnDemand(t *testing.T) {
	ts := &tableStates{states: []types.TableStatus{"", types.TableStatusCreating, types.TableStatusCreating, types.TableStatusActive}}
	f := ts.fake()
	require.NoError(t, newFakeStore(t, f).EnsureTable(t.Context(), fastPoll))
	require.Len(t, ts.created, 1)
	in := ts.created[0]
	require.Equal(t, "app-leases", aws.ToString(in.TableName))
	require.Equal(t, types.BillingModePayPerRequest, in.BillingMode)
	require.Nil(t, in.ProvisionedThroughput)
	require.Equal(t, []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}}, in.KeySchema)
	require.Equal(t, []types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}}, in.AttributeDefinitions)
	require.Equal(t, []string{"DescribeTable", "CreateTable", "DescribeTable", "DescribeTable", "DescribeTable"}, f.called())
}

func TestEnsureTableCreatesProvisioned(t *testing.T) {
	ts := &tableStates{states: []types.TableStatus{"", types.TableStatusActive}}
	opts := fastPoll
	opts.ReadCapacity, opts.WriteCapacity = 5, 7
	require.NoError(t, newFakeStore(t, ts.fake()).EnsureTable(t.Context(), opts))
	require.Len(t, ts.created, 1)
	require.Equal(t, types.BillingModeProvisioned, ts.created[0].BillingMode)
	require.Equal(t, &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(7)},
		ts.created[0].ProvisionedThroughput)
}

func TestEnsureTableExisting(t *testing.T) {
	for _, status := range []types.TableStatus{types.TableStatusActive, types.TableStatusUpdating} {
		ts := &tableStates{states: []types.TableStatus{status}}
		f := ts.fake()
		require.NoError(t, newFakeStore(t, f).EnsureTable(t.Context(), fastPoll), status)
		require.Equal(t, []string{"DescribeTable"}, f.called(), "%s: nothing created", status)
	}
}

// TestEnsureTableCreatedConcurrently: another worker created the table
// between our DescribeTable and CreateTable; we wait for it.
func TestEnsureTableCreatedConcurrently(t *testing.T) {
	ts := &tableStates{
		states:    []types.TableStatus{"", types.TableStatusCreating, types.TableStatusActive},
		createErr: &types.ResourceInUseException{Message: aws.String("Table already exists")},
	}
	f := ts.fake()
	require.NoError(t, newFakeStore(t, f).EnsureTable(t.Context(), fastPoll))
	require.Equal(t, []string{"DescribeTable", "CreateTable", "DescribeTable", "DescribeTable"}, f.called())
}

// TestEnsureTableRecreatesDeleted: a table being deleted is waited for, then
// created again.
func TestEnsureTableRecreatesDeleted(t *testing.T) {
	ts := &tableStates{states: []types.TableStatus{types.TableStatusDeleting, "", types.TableStatusActive}}
	require.NoError(t, newFakeStore(t, ts.fake()).EnsureTable(t.Context(), fastPoll))
	require.Len(t, ts.created, 1)
}

func TestEnsureTableWrongSchema(t *testing.T) {
	cases := []struct {
		schema []types.KeySchemaElement
		defs   []types.AttributeDefinition
		found  string
	}{
		{
			[]types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("ts"), KeyType: types.KeyTypeRange}},
			[]types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}, {AttributeName: aws.String("ts"), AttributeType: types.ScalarAttributeTypeN}},
			"[id HASH (S), ts RANGE (N)]",
		},
		{
			[]types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}},
			[]types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeN}},
			"[leaseKey HASH (N)]",
		},
		{
			[]types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("leaseOwner"), KeyType: types.KeyTypeRange}},
			[]types.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: types.ScalarAttributeTypeS}, {AttributeName: aws.String("leaseOwner"), AttributeType: types.ScalarAttributeTypeS}},
			"[leaseKey HASH (S), leaseOwner RANGE (S)]",
		},
	}
	for _, tc := range cases {
		ts := &tableStates{states: []types.TableStatus{types.TableStatusCreating}, schema: tc.schema, defs: tc.defs}
		err := newFakeStore(t, ts.fake()).EnsureTable(t.Context(), fastPoll)
		require.ErrorIs(t, err, lease.ErrTableSchema, tc.found)
		require.EqualError(t, err, `lease: table has another key schema: lease table "app-leases" has key schema `+
			tc.found+`; want [leaseKey HASH (S)]`)
	}
}

// TestEnsureTableBounded: a table that never becomes ACTIVE ends the wait
// after opts.Wait, or when the caller's context ends.
func TestEnsureTableBounded(t *testing.T) {
	ts := &tableStates{states: []types.TableStatus{types.TableStatusCreating}}
	opts := fastPoll
	opts.Wait = 20 * time.Millisecond
	err := newFakeStore(t, ts.fake()).EnsureTable(t.Context(), opts)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, `lease table "app-leases": not ACTIVE after waiting up to 20ms (status CREATING)`)

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	err = newFakeStore(t, ts.fake()).EnsureTable(ctx, fastPoll)
	require.ErrorIs(t, err, context.Canceled)
}

func TestEnsureTableErrors(t *testing.T) {
	ts := &tableStates{states: []types.TableStatus{types.TableStatusArchived}}
	err := newFakeStore(t, ts.fake()).EnsureTable(t.Context(), fastPoll)
	require.EqualError(t, err, `lease table "app-leases": status ARCHIVED`)

	denied := errors.New("AccessDeniedException: not allowed")
	f := &fakeDynamo{describe: func(*dynamodb.DescribeTableInput) (*dynamodb.DescribeTableOutput, error) { return nil, denied }}
	err = newFakeStore(t, f).EnsureTable(t.Context(), fastPoll)
	require.ErrorIs(t, err, denied)
	require.ErrorContains(t, err, `describe lease table "app-leases"`)

	ts = &tableStates{states: []types.TableStatus{""}, createErr: &types.LimitExceededException{Message: aws.String("too many tables")}}
	err = newFakeStore(t, ts.fake()).EnsureTable(t.Context(), fastPoll)
	var lee *types.LimitExceededException
	require.ErrorAs(t, err, &lee)
	require.ErrorContains(t, err, `create lease table "app-leases"`)

	for _, opts := range []lease.TableOptions{{ReadCapacity: 5}, {WriteCapacity: 5}, {ReadCapacity: -1, WriteCapacity: -1}, {Wait: -time.Second}} {
		f := &fakeDynamo{}
		err := newFakeStore(t, f).EnsureTable(t.Context(), opts)
		require.ErrorContains(t, err, `lease table "app-leases": options:`, "%+v", opts)
		require.Empty(t, f.called(), "%+v: nothing sent", opts)
	}
}
