package lease_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

// fakeDynamo answers the calls a test scripts (errUnexpected otherwise) and
// records the operations called. The integration tests run the real thing;
// this one checks requests and error mapping without a server.
type fakeDynamo struct {
	scan     func(*dynamodb.ScanInput) (*dynamodb.ScanOutput, error)
	get      func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	put      func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
	update   func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error)
	del      func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error)
	describe func(*dynamodb.DescribeTableInput) (*dynamodb.DescribeTableOutput, error)
	create   func(*dynamodb.CreateTableInput) (*dynamodb.CreateTableOutput, error)

	mu    sync.Mutex
	calls []string
}

func call[In, Out any](f *fakeDynamo, name string, fn func(In) (Out, error), in In) (Out, error) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
	if fn == nil {
		var zero Out
		return zero, errUnexpected
	}
	return fn(in)
}

func (f *fakeDynamo) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return call(f, "Scan", f.scan, in)
}

func (f *fakeDynamo) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return call(f, "GetItem", f.get, in)
}

func (f *fakeDynamo) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return call(f, "PutItem", f.put, in)
}

func (f *fakeDynamo) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return call(f, "UpdateItem", f.update, in)
}

func (f *fakeDynamo) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return call(f, "DeleteItem", f.del, in)
}

func (f *fakeDynamo) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return call(f, "DescribeTable", f.describe, in)
}

func (f *fakeDynamo) CreateTable(_ context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return call(f, "CreateTable", f.create, in)
}

func (f *fakeDynamo) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func newFakeStore(t *testing.T, f *fakeDynamo) *lease.DynamoStore {
	t.Helper()
	s, err := lease.NewDynamoStore(f, "app-leases")
	require.NoError(t, err)
	return s
}

func leaseItem(key, owner string, counter int) map[string]types.AttributeValue {
	item := validItem()
	item["leaseKey"] = &types.AttributeValueMemberS{Value: key}
	item["leaseOwner"] = &types.AttributeValueMemberS{Value: owner}
	item["leaseCounter"] = &types.AttributeValueMemberN{Value: strconv.Itoa(counter)}
	return item
}

// TestDynamoListPages: List reads every page consistently, skips what is
// not a lease, and sorts by key.
func TestDynamoListPages(t *testing.T) {
	metrics := map[string]types.AttributeValue{
		"leaseKey":   &types.AttributeValueMemberS{Value: "worker-a"},
		"entityType": &types.AttributeValueMemberS{Value: "WORKER_METRIC_STATS"},
	}
	pages := map[string]*dynamodb.ScanOutput{
		"": {Items: []map[string]types.AttributeValue{leaseItem("c", "w", 1), metrics},
			LastEvaluatedKey: map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: "c"}}},
		"c": {Items: []map[string]types.AttributeValue{leaseItem("a", "w", 2)},
			LastEvaluatedKey: map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: "a"}}},
		"a": {Items: []map[string]types.AttributeValue{leaseItem("b", "w", 3)}},
	}
	f := &fakeDynamo{scan: func(in *dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
		require.Equal(t, "app-leases", aws.ToString(in.TableName))
		require.True(t, aws.ToBool(in.ConsistentRead), "consistent read")
		start := ""
		if k, ok := in.ExclusiveStartKey["leaseKey"].(*types.AttributeValueMemberS); ok {
			start = k.Value
		}
		return pages[start], nil
	}}
	got, err := newFakeStore(t, f).List(t.Context())
	require.NoError(t, err)
	require.Equal(t, []string{"Scan", "Scan", "Scan"}, f.called())
	var keys []string
	var counters []int64
	for _, l := range got {
		keys, counters = append(keys, l.Key), append(counters, l.Counter)
	}
	require.Equal(t, []string{"a", "b", "c"}, keys)
	require.Equal(t, []int64{2, 3, 1}, counters)
}

// TestDynamoListMalformed: an unreadable lease row is listed with an error
// naming the table, the lease and the attribute.
func TestDynamoListMalformed(t *testing.T) {
	bad := leaseItem("shardId-000000000009", "w", 1)
	bad["leaseCounter"] = &types.AttributeValueMemberS{Value: "1"}
	f := &fakeDynamo{scan: func(*dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
		return &dynamodb.ScanOutput{Items: []map[string]types.AttributeValue{leaseItem("a", "w", 1), bad}}, nil
	}}
	got, err := newFakeStore(t, f).List(t.Context())
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.ErrorIs(t, got[1].Malformed, lease.ErrMalformedLease)
	require.EqualError(t, got[1].Malformed, `table "app-leases": lease: malformed lease row: `+
		`lease shardId-000000000009: attribute leaseCounter: want a number (N), found S`)
}

// TestDynamoRefusedWrites: a refused condition is ErrLeaseLost, ErrConflict
// or ErrLeaseExists, with the operation, lease, table and (when DynamoDB
// returns the item) what was found.
func TestDynamoRefusedWrites(t *testing.T) {
	found := leaseItem("shardId-000000000001", "worker-b", 9)
	f := &fakeDynamo{
		update: func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
			return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed"), Item: found}
		},
		put: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
			return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
		},
	}
	s := newFakeStore(t, f)
	ctx := t.Context()
	l := lease.Lease{Key: "shardId-000000000001", Owner: "worker-a", Counter: 5, Checkpoint: checkpoint.TrimHorizon}
	const foundText = `expected owner "worker-a" counter 5, found owner "worker-b" counter 9`
	_, err := s.Renew(ctx, l)
	require.ErrorIs(t, err, lease.ErrLeaseLost)
	require.EqualError(t, err, `renew lease shardId-000000000001 in table "app-leases": `+foundText+": checkpoint: lease lost")
	_, err = s.Take(ctx, l, "worker-c")
	require.ErrorIs(t, err, lease.ErrConflict)
	require.ErrorContains(t, err, "take lease shardId-000000000001")
	_, err = s.Release(ctx, l)
	require.ErrorIs(t, err, lease.ErrLeaseLost)
	require.ErrorContains(t, err, "release lease")
	_, err = s.UpdateCheckpoint(ctx, l)
	require.ErrorIs(t, err, lease.ErrLeaseLost)
	require.ErrorContains(t, err, foundText)
	err = s.Create(ctx, l)
	require.ErrorIs(t, err, lease.ErrLeaseExists)
	require.EqualError(t, err, `create lease shardId-000000000001 in table "app-leases": lease: already exists`)

	found = nil // as dynalite answers: no item
	_, err = s.Renew(ctx, l)
	require.ErrorContains(t, err, `expected owner "worker-a" counter 5, found it changed or deleted`)
}

// TestDynamoOtherErrors: any other error is the SDK's, wrapped, and is not
// mistaken for a lost lease.
func TestDynamoOtherErrors(t *testing.T) {
	throttled := &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
	f := &fakeDynamo{
		scan:   func(*dynamodb.ScanInput) (*dynamodb.ScanOutput, error) { return nil, throttled },
		put:    func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, throttled },
		update: func(*dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) { return nil, throttled },
		del:    func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) { return nil, throttled },
	}
	s := newFakeStore(t, f)
	ctx := t.Context()
	l := lease.Lease{Key: "shardId-000000000001", Owner: "worker-a", Counter: 5, Checkpoint: checkpoint.TrimHorizon}
	_, listErr := s.List(ctx)
	_, renewErr := s.Renew(ctx, l)
	_, takeErr := s.Take(ctx, l, "worker-b")
	_, releaseErr := s.Release(ctx, l)
	_, checkpointErr := s.UpdateCheckpoint(ctx, l)
	errs := map[string]error{
		"list leases in table": listErr, "renew lease shardId-000000000001": renewErr,
		"take lease shardId-000000000001": takeErr, "release lease shardId-000000000001": releaseErr,
		"checkpoint lease shardId-000000000001": checkpointErr,
		"create lease shardId-000000000001":     s.Create(ctx, l),
		"delete lease shardId-000000000001":     s.Delete(ctx, l.Key),
	}
	for prefix, err := range errs {
		var pte *types.ProvisionedThroughputExceededException
		require.ErrorAs(t, err, &pte, prefix)
		require.ErrorContains(t, err, prefix)
		require.ErrorContains(t, err, `"app-leases"`, prefix)
		for _, sentinel := range []error{lease.ErrLeaseLost, lease.ErrConflict, lease.ErrLeaseExists} {
			require.NotErrorIs(t, err, sentinel, prefix)
		}
	}
}

// TestDynamoWrites: each write is one conditional UpdateItem that touches
// only the attributes it owns (so that all others survive), and returns the
// lease DynamoDB answers with (ALL_NEW), not one computed locally.
func TestDynamoWrites(t *testing.T) {
	answer := leaseItem("shardId-000000000001", "from-the-table", 8)
	var got *dynamodb.UpdateItemInput
	f := &fakeDynamo{update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
		got = in
		return &dynamodb.UpdateItemOutput{Attributes: answer}, nil
	}}
	s := newFakeStore(t, f)
	ctx := t.Context()
	l := lease.Lease{Key: "shardId-000000000001", Owner: "worker-a", Counter: 5, Checkpoint: checkpoint.At("77", 0),
		ChildShardIDs: []string{"shardId-000000000002"}}
	// During a hand-off from worker-a to worker-b.
	h := l
	h.Owner, h.CheckpointOwner = "worker-b", "worker-a"
	const noCheckpointOwner = " AND (attribute_not_exists(#checkpointOwner) OR NOT (size(#checkpointOwner) > :zero))"
	const heldBy = "#leaseCounter = :expectedCounter AND #leaseOwner = :expectedOwner"
	const handingOff = heldBy + " AND #checkpointOwner = :expectedCheckpointOwner"
	cases := []struct {
		name       string
		write      func() (lease.Lease, error)
		attrs      []string
		update     string
		conditions string
	}{
		{"Renew", func() (lease.Lease, error) { return s.Renew(ctx, l) },
			[]string{"checkpointOwner", "leaseCounter", "leaseOwner"},
			"SET #leaseCounter = :leaseCounter",
			heldBy + noCheckpointOwner},
		{"RenewDuringHandOff", func() (lease.Lease, error) { return s.Renew(ctx, h) },
			[]string{"checkpointOwner", "leaseCounter", "leaseOwner"},
			"SET #leaseCounter = :leaseCounter",
			handingOff},
		{"TakeFromOther", func() (lease.Lease, error) { return s.Take(ctx, l, "worker-b") },
			[]string{"checkpointOwner", "leaseCounter", "leaseOwner", "ownerSwitchesSinceCheckpoint"},
			"SET #leaseCounter = :leaseCounter, #leaseOwner = :leaseOwner REMOVE #checkpointOwner ADD #ownerSwitchesSinceCheckpoint :ownerSwitchesSinceCheckpoint",
			heldBy + noCheckpointOwner},
		{"TakeUnowned", func() (lease.Lease, error) { u := l; u.Owner = ""; return s.Take(ctx, u, "worker-b") },
			[]string{"checkpointOwner", "leaseCounter", "leaseOwner"},
			"SET #leaseCounter = :leaseCounter, #leaseOwner = :leaseOwner REMOVE #checkpointOwner",
			"#leaseCounter = :expectedCounter AND (attribute_not_exists(#leaseOwner) OR NOT (size(#leaseOwner) > :zero))" + noCheckpointOwner},
		// The new owner's plain steal after the hand-off timed out.
		{"TakeDuringHandOff", func() (lease.Lease, error) { return s.Take(ctx, h, "worker-b") },
			[]string{"checkpointOwner", "leaseCounter", "leaseOwner", "ownerSwitchesSinceCheckpoint"},
			"SET #leaseCounter = :leaseCounter, #leaseOwner = :leaseOwner REMOVE #checkpointOwner ADD #ownerSwitchesSinceCheckpoint :ownerSwitchesSinceCheckpoint",
			handingOff},
		{"Release", func() (lease.Lease, error) { return s.Release(ctx, l) },
			[]string{"checkpointOwner", "leaseCounter", "leaseOwner"},
			"SET #leaseCounter = :leaseCounter REMOVE #leaseOwner, #checkpointOwner",
			heldBy + noCheckpointOwner},
		{"ReleaseToNewOwner", func() (lease.Lease, error) { return s.Release(ctx, h) },
			[]string{"checkpointOwner", "leaseCounter", "leaseOwner", "ownerSwitchesSinceCheckpoint"},
			"SET #leaseCounter = :leaseCounter REMOVE #checkpointOwner ADD #ownerSwitchesSinceCheckpoint :ownerSwitchesSinceCheckpoint",
			handingOff},
		{"UpdateCheckpoint", func() (lease.Lease, error) { return s.UpdateCheckpoint(ctx, l) },
			[]string{"checkpoint", "checkpointOwner", "checkpointSubSequenceNumber", "childShardIds", "leaseCounter", "leaseOwner",
				"ownerSwitchesSinceCheckpoint", "pendingCheckpoint", "pendingCheckpointState", "pendingCheckpointSubSequenceNumber"},
			"SET #leaseCounter = :leaseCounter, #checkpoint = :checkpoint, #checkpointSubSequenceNumber = :checkpointSubSequenceNumber, " +
				"#ownerSwitchesSinceCheckpoint = :ownerSwitchesSinceCheckpoint, #childShardIds = :childShardIds " +
				"REMOVE #pendingCheckpoint, #pendingCheckpointSubSequenceNumber, #pendingCheckpointState",
			heldBy + noCheckpointOwner},
	}
	want, _, err := lease.DecodeDynamoItem(answer)
	require.NoError(t, err)
	for _, tc := range cases {
		got = nil
		returned, err := tc.write()
		require.NoError(t, err, tc.name)
		require.Equal(t, want, returned, "%s returns the table's answer", tc.name)
		require.Equal(t, tc.attrs, slices.Sorted(maps.Values(got.ExpressionAttributeNames)), tc.name)
		require.Equal(t, tc.update, aws.ToString(got.UpdateExpression), tc.name)
		require.Equal(t, tc.conditions, aws.ToString(got.ConditionExpression), tc.name)
		require.Equal(t, types.ReturnValueAllNew, got.ReturnValues, tc.name)
		require.Equal(t, &types.AttributeValueMemberN{Value: "6"}, got.ExpressionAttributeValues[":leaseCounter"], tc.name)
		require.Equal(t, &types.AttributeValueMemberN{Value: "5"}, got.ExpressionAttributeValues[":expectedCounter"], tc.name)
	}
	require.NotContains(t, f.called(), "PutItem", "no write replaces an item")
}

// TestDynamoHandOff: a hand-off sets the new owner and the checkpoint
// owner, conditional on the owner, no hand-off pending and an unfinished
// shard, and leaves the counter alone, as the KCL 3.x does.
func TestDynamoHandOff(t *testing.T) {
	var got *dynamodb.UpdateItemInput
	f := &fakeDynamo{update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
		got = in
		item := leaseItem("shardId-000000000001", "worker-b", 5)
		item["checkpointOwner"] = &types.AttributeValueMemberS{Value: "worker-a"}
		return &dynamodb.UpdateItemOutput{Attributes: item}, nil
	}}
	s := newFakeStore(t, f)
	l := lease.Lease{Key: "shardId-000000000001", Owner: "worker-a", Counter: 5, Checkpoint: checkpoint.At("77", 0)}
	res, err := s.HandOff(t.Context(), l, "worker-b")
	require.NoError(t, err)
	require.Equal(t, "worker-b", res.Owner)
	require.Equal(t, "worker-a", res.CheckpointOwner)
	require.Equal(t, "SET #leaseOwner = :leaseOwner, #checkpointOwner = :from", aws.ToString(got.UpdateExpression))
	require.Equal(t, "attribute_exists(#leaseKey) AND #leaseOwner = :expectedOwner AND "+
		"(attribute_not_exists(#checkpointOwner) OR NOT (size(#checkpointOwner) > :zero)) AND #checkpoint <> :shardEnd",
		aws.ToString(got.ConditionExpression))
	require.Equal(t, &types.AttributeValueMemberS{Value: "worker-a"}, got.ExpressionAttributeValues[":from"])
	require.Equal(t, &types.AttributeValueMemberS{Value: "worker-b"}, got.ExpressionAttributeValues[":leaseOwner"])
	require.NotContains(t, got.ExpressionAttributeNames, "#leaseCounter", "the counter is neither checked nor written")

	for _, bad := range []struct{ from, to string }{{"", "worker-b"}, {"worker-a", ""}, {"worker-a", "worker-a"}} {
		l.Owner = bad.from
		_, err := s.HandOff(t.Context(), l, bad.to)
		require.ErrorIs(t, err, lease.ErrConflict, "from %q to %q", bad.from, bad.to)
	}
	require.Equal(t, []string{"UpdateItem"}, f.called(), "a hand-off that cannot succeed is not sent")
}

// TestDynamoWorkerRows: a heartbeat upserts the worker's row without
// overwriting anything but a worker row; ListAll returns the rows beside the
// leases, List only the leases; DeleteWorker is conditional on the counter
// and succeeds on a missing row.
func TestDynamoWorkerRows(t *testing.T) {
	row := map[string]types.AttributeValue{
		"leaseKey":     &types.AttributeValueMemberS{Value: "gokcl-worker:w1"},
		"entityType":   &types.AttributeValueMemberS{Value: "GOKCL_WORKER"},
		"leaseOwner":   &types.AttributeValueMemberS{Value: "w1"},
		"leaseCounter": &types.AttributeValueMemberN{Value: "3"},
		"checkpoint":   &types.AttributeValueMemberS{Value: "SHARD_END"},
	}
	var update *dynamodb.UpdateItemInput
	var del *dynamodb.DeleteItemInput
	f := &fakeDynamo{
		update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
			update = in
			return &dynamodb.UpdateItemOutput{Attributes: row}, nil
		},
		scan: func(*dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
			return &dynamodb.ScanOutput{Items: []map[string]types.AttributeValue{row, leaseItem("shardId-1", "w1", 4)}}, nil
		},
		del: func(in *dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
			del = in
			return &dynamodb.DeleteItemOutput{}, nil
		},
	}
	s := newFakeStore(t, f)
	w, err := s.Heartbeat(t.Context(), "w1")
	require.NoError(t, err)
	require.Equal(t, lease.Worker{ID: "w1", Counter: 3}, w)
	require.Equal(t, &types.AttributeValueMemberS{Value: "gokcl-worker:w1"}, update.Key["leaseKey"])
	require.Equal(t, "SET #entityType = :entityType, #leaseOwner = :leaseOwner, #checkpoint = :checkpoint, "+
		"#checkpointSubSequenceNumber = :checkpointSubSequenceNumber ADD #leaseCounter :leaseCounter", aws.ToString(update.UpdateExpression))
	require.Equal(t, "(attribute_not_exists(#leaseKey) OR #entityType = :entityType)", aws.ToString(update.ConditionExpression))

	leases, workers, err := s.ListAll(t.Context())
	require.NoError(t, err)
	require.Equal(t, []lease.Worker{{ID: "w1", Counter: 3}}, workers)
	require.Len(t, leases, 1)
	only, err := s.List(t.Context())
	require.NoError(t, err)
	require.Equal(t, leases, only, "List skips worker rows")

	require.NoError(t, s.DeleteWorker(t.Context(), w))
	require.Equal(t, "attribute_not_exists(#leaseKey) OR (#entityType = :entityType AND #leaseCounter = :counter)",
		aws.ToString(del.ConditionExpression))
	f.del = func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
		return nil, &types.ConditionalCheckFailedException{}
	}
	require.ErrorIs(t, s.DeleteWorker(t.Context(), w), lease.ErrConflict)
}

var errUnexpected = errors.New("unexpected call")

// TestDynamoListMalformedRowDoesNotStallTheFleet: one unreadable lease row
// is listed with only its key and the reason, and the readable rows are
// listed as usual; a Manager takes the readable leases and never touches the
// unreadable one.
func TestDynamoListMalformedRowDoesNotStallTheFleet(t *testing.T) {
	bad := leaseItem("shardId-000000000009", "w", 1)
	bad["checkpoint"] = &types.AttributeValueMemberS{Value: "LASTEST"}
	f := &fakeDynamo{scan: func(*dynamodb.ScanInput) (*dynamodb.ScanOutput, error) {
		return &dynamodb.ScanOutput{Items: []map[string]types.AttributeValue{leaseItem("a", "", 1), bad}}, nil
	}}
	got, err := newFakeStore(t, f).List(t.Context())
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "a", got[0].Key)
	require.NoError(t, got[0].Malformed)
	require.Equal(t, "shardId-000000000009", got[1].Key)
	require.ErrorIs(t, got[1].Malformed, lease.ErrMalformedLease)
	require.ErrorContains(t, got[1].Malformed, "attribute checkpoint")
	require.ErrorIs(t, got[1].Validate(), lease.ErrInvalidLease, "never written back")
}
