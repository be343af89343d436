//go:build integration

package lease_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/lease"
	"github.com/gokcl/kcl/lease/leasetest"
)

// newTable creates a lease table for one test through EnsureTable and
// deletes it when the test ends.
func newTable(t *testing.T, client *dynamodb.Client, api lease.DynamoDBAPI) *lease.DynamoStore {
	t.Helper()
	name := testenv.Name(t)
	s, err := lease.NewDynamoStore(api, name)
	require.NoError(t, err)
	require.NoError(t, s.EnsureTable(testenv.Context(t, time.Minute), lease.TableOptions{PollInterval: 50 * time.Millisecond}))
	t.Cleanup(func() { deleteTable(client, name) })
	return s
}

func deleteTable(client *dynamodb.Client, name string) {
	_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
}

func TestIntegrationDynamoStoreConformance(t *testing.T) {
	client := testenv.DynamoDB(t)
	leasetest.RunStoreSuite(t, func(t *testing.T) lease.Store { return newTable(t, client, client) })
}

func putItems(t *testing.T, client *dynamodb.Client, table string, items []map[string]types.AttributeValue) {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	for _, item := range items {
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
		require.NoError(t, err, itemKey(item))
	}
}

func getItem(t *testing.T, client *dynamodb.Client, table, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(testenv.Context(t, time.Minute), &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	require.NoError(t, err)
	require.NotEmpty(t, out.Item, "item %s", key)
	return out.Item
}

// operatorNote is an attribute no KCL writes, added to every golden item to
// check that gokcl neither trips on nor drops attributes it does not know.
var operatorNote = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
	"by":   &types.AttributeValueMemberS{Value: "ops"},
	"tags": &types.AttributeValueMemberSS{Value: []string{"keep", "migrated"}},
	"n":    &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}}},
}}

// goldenTable fills a table with the golden KCL items (plus operatorNote)
// and returns the raw items by key.
func goldenTable(t *testing.T, client *dynamodb.Client) (*lease.DynamoStore, map[string]map[string]types.AttributeValue) {
	s := newTable(t, client, client)
	raw := map[string]map[string]types.AttributeValue{}
	for _, path := range []string{kcl2Items, kcl3Items} {
		for _, item := range loadItems(t, path) {
			item["operatorNote"] = operatorNote
			raw[itemKey(item)] = item
		}
	}
	putItems(t, client, s.Table(), slices.Collect(maps.Values(raw)))
	return s, raw
}

// TestIntegrationKCLGoldenList: a table written by the Java KCL lists as the
// leases it holds; what is not a lease is skipped.
func TestIntegrationKCLGoldenList(t *testing.T) {
	client := testenv.DynamoDB(t)
	s, _ := goldenTable(t, client)
	got, err := s.List(testenv.Context(t, time.Minute))
	require.NoError(t, err)
	require.Len(t, got, len(kclLeases))
	for _, l := range got {
		require.Equal(t, kclLeases[l.Key], l, l.Key)
	}
}

// requireRawChanges checks that after a write the raw item is before with
// exactly the given changes (a nil value: removed), attribute types included.
func requireRawChanges(t *testing.T, before, after map[string]types.AttributeValue, changes map[string]types.AttributeValue) {
	t.Helper()
	want := maps.Clone(before)
	for name, v := range changes {
		if v == nil {
			delete(want, name)
		} else {
			want[name] = v
		}
	}
	require.Equal(t, sortedSets(want), sortedSets(after))
}

// TestIntegrationKCLGoldenWrites: gokcl's writes to KCL items change only
// the attributes they own, with the KCL's types, and keep everything else.
func TestIntegrationKCLGoldenWrites(t *testing.T) {
	client := testenv.DynamoDB(t)
	s, raw := goldenTable(t, client)
	ctx := testenv.Context(t, time.Minute)
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

	renewed, err := s.Renew(ctx, kclLeases["shardId-000000000001"])
	require.NoError(t, err)
	require.Equal(t, int64(1235), renewed.Counter)
	requireRawChanges(t, raw["shardId-000000000001"], getItem(t, client, s.Table(), "shardId-000000000001"),
		map[string]types.AttributeValue{"leaseCounter": n("1235")})

	// A KCL 3.x lease mid hand-off: taking it ends the hand-off.
	taken, err := s.Take(ctx, kclLeases["shardId-000000000007"], "gokcl-1")
	require.NoError(t, err)
	require.Equal(t, "gokcl-1", taken.Owner)
	requireRawChanges(t, raw["shardId-000000000007"], getItem(t, client, s.Table(), "shardId-000000000007"),
		map[string]types.AttributeValue{"leaseCounter": n("5022"), "leaseOwner": str("gokcl-1"),
			"ownerSwitchesSinceCheckpoint": n("1"), "checkpointOwner": nil})

	l := kclLeases["shardId-000000000006"]
	l.Checkpoint = checkpoint.At("49590338271490256608559692540925702759324208523137515800", 4)
	l.PendingCheckpoint = nil
	l.ChildShardIDs = []string{"shardId-000000000010", "shardId-000000000009"}
	_, err = s.UpdateCheckpoint(ctx, l)
	require.NoError(t, err)
	requireRawChanges(t, raw["shardId-000000000006"], getItem(t, client, s.Table(), "shardId-000000000006"),
		map[string]types.AttributeValue{"leaseCounter": n("18"),
			"checkpoint": str("49590338271490256608559692540925702759324208523137515800"), "checkpointSubSequenceNumber": n("4"),
			"pendingCheckpoint": nil, "pendingCheckpointSubSequenceNumber": nil, "pendingCheckpointState": nil,
			"childShardIds": &types.AttributeValueMemberSS{Value: []string{"shardId-000000000009", "shardId-000000000010"}}})

	_, err = s.Release(ctx, kclLeases["shardId-000000000002"])
	require.NoError(t, err)
	requireRawChanges(t, raw["shardId-000000000002"], getItem(t, client, s.Table(), "shardId-000000000002"),
		map[string]types.AttributeValue{"leaseCounter": n("97"), "leaseOwner": nil})

	// The items that are not leases were not touched.
	for _, key := range kclSkipped {
		require.Equal(t, raw[key], getItem(t, client, s.Table(), key), key)
	}
}

// TestIntegrationKCLGoldenCreate: the item gokcl creates for a lease is the
// item the KCL creates for it, as DynamoDB stores it.
func TestIntegrationKCLGoldenCreate(t *testing.T) {
	client := testenv.DynamoDB(t)
	s := newTable(t, client, client)
	ctx := testenv.Context(t, time.Minute)
	for _, item := range loadItems(t, kcl2Items) {
		key := itemKey(item)
		require.NoError(t, s.Create(ctx, kclLeases[key]), key)
		require.Equal(t, sortedSets(item), sortedSets(getItem(t, client, s.Table(), key)), key)
	}
}

// smallPages makes every Scan return at most two items, so that List must
// follow LastEvaluatedKey across many pages.
type smallPages struct {
	lease.DynamoDBAPI
	scans atomic.Int32
}

func (p *smallPages) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	p.scans.Add(1)
	page := *in
	page.Limit = aws.Int32(2)
	return p.DynamoDBAPI.Scan(ctx, &page, optFns...)
}

func TestIntegrationDynamoListPages(t *testing.T) {
	client := testenv.DynamoDB(t)
	pages := &smallPages{DynamoDBAPI: client}
	s := newTable(t, client, pages)
	ctx := testenv.Context(t, time.Minute)
	var want []string
	for i := range 9 {
		l := lease.Lease{Key: fmt.Sprintf("shardId-%012d", i), Counter: int64(i), Checkpoint: checkpoint.TrimHorizon}
		require.NoError(t, s.Create(ctx, l))
		want = append(want, l.Key)
	}
	putItems(t, client, s.Table(), []map[string]types.AttributeValue{
		{"leaseKey": &types.AttributeValueMemberS{Value: "worker-a"}, "entityType": &types.AttributeValueMemberS{Value: "WORKER_METRIC_STATS"}},
		{"leaseKey": &types.AttributeValueMemberS{Value: "LeaderLock"}, "entityType": &types.AttributeValueMemberS{Value: "LEADER"}},
	})
	got, err := s.List(ctx)
	require.NoError(t, err)
	var keys []string
	for _, l := range got {
		keys = append(keys, l.Key)
	}
	require.Equal(t, want, keys)
	require.GreaterOrEqual(t, pages.scans.Load(), int32(6), "11 items in pages of 2")
}

// TestIntegrationDynamoListMalformed: a broken lease row is listed with an
// error naming it until it is repaired; the other rows are listed as usual.
func TestIntegrationDynamoListMalformed(t *testing.T) {
	client := testenv.DynamoDB(t)
	s := newTable(t, client, client)
	ctx := testenv.Context(t, time.Minute)
	require.NoError(t, s.Create(ctx, lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.Latest}))
	bad := validItem()
	bad["checkpoint"] = &types.AttributeValueMemberS{Value: "LASTEST"}
	putItems(t, client, s.Table(), []map[string]types.AttributeValue{bad})
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.NoError(t, got[0].Malformed)
	require.Equal(t, "shardId-000000000001", got[1].Key)
	require.ErrorIs(t, got[1].Malformed, lease.ErrMalformedLease)
	require.ErrorContains(t, got[1].Malformed, fmt.Sprintf("table %q: lease: malformed lease row: lease shardId-000000000001: attribute checkpoint:", s.Table()))

	bad["checkpoint"] = &types.AttributeValueMemberS{Value: "LATEST"}
	bad["checkpointSubSequenceNumber"] = &types.AttributeValueMemberN{Value: "0"}
	putItems(t, client, s.Table(), []map[string]types.AttributeValue{bad})
	got, err = s.List(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.NoError(t, got[1].Malformed)
}

func describe(t *testing.T, client *dynamodb.Client, table string) *types.TableDescription {
	t.Helper()
	out, err := client.DescribeTable(testenv.Context(t, time.Minute), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	require.NoError(t, err)
	return out.Table
}

func TestIntegrationEnsureTable(t *testing.T) {
	client := testenv.DynamoDB(t)
	ctx := testenv.Context(t, time.Minute)

	s := newTable(t, client, client)
	d := describe(t, client, s.Table())
	require.Equal(t, types.TableStatusActive, d.TableStatus)
	require.Equal(t, types.BillingModePayPerRequest, d.BillingModeSummary.BillingMode)
	require.Equal(t, []types.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: types.KeyTypeHash}}, d.KeySchema)
	require.NoError(t, s.EnsureTable(ctx, lease.TableOptions{}), "an existing table is fine")

	name := testenv.Name(t)
	t.Cleanup(func() { deleteTable(client, name) })
	p, err := lease.NewDynamoStore(client, name)
	require.NoError(t, err)
	require.NoError(t, p.EnsureTable(ctx, lease.TableOptions{ReadCapacity: 5, WriteCapacity: 7}))
	d = describe(t, client, name)
	require.Equal(t, int64(5), aws.ToInt64(d.ProvisionedThroughput.ReadCapacityUnits))
	require.Equal(t, int64(7), aws.ToInt64(d.ProvisionedThroughput.WriteCapacityUnits))
}

// TestIntegrationEnsureTableConcurrently: workers starting together all
// create the table; one wins, the others wait for it.
func TestIntegrationEnsureTableConcurrently(t *testing.T) {
	client := testenv.DynamoDB(t)
	name := testenv.Name(t)
	t.Cleanup(func() { deleteTable(client, name) })
	ctx := testenv.Context(t, time.Minute)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			s, err := lease.NewDynamoStore(client, name)
			if err == nil {
				err = s.EnsureTable(ctx, lease.TableOptions{PollInterval: 20 * time.Millisecond})
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "worker %d", i)
	}
	require.Equal(t, types.TableStatusActive, describe(t, client, name).TableStatus)
}

func TestIntegrationEnsureTableWrongSchema(t *testing.T) {
	client := testenv.DynamoDB(t)
	name := testenv.Name(t)
	t.Cleanup(func() { deleteTable(client, name) })
	ctx := testenv.Context(t, time.Minute)
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("ts"), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("ts"), KeyType: types.KeyTypeRange},
		},
	})
	require.NoError(t, err)
	s, err := lease.NewDynamoStore(client, name)
	require.NoError(t, err)
	err = s.EnsureTable(ctx, lease.TableOptions{})
	require.ErrorIs(t, err, lease.ErrTableSchema)
	require.ErrorContains(t, err, fmt.Sprintf(`lease table %q has key schema [id HASH (S), ts RANGE (N)]; want [leaseKey HASH (S)]`, name))
}

// TestIntegrationEmptyOwner: a row whose leaseOwner is an empty string (no
// KCL writes one, but a hand-edited table may hold it) reads as unowned and
// can be taken as such.
func TestIntegrationEmptyOwner(t *testing.T) {
	client := testenv.DynamoDB(t)
	s := newTable(t, client, client)
	ctx := testenv.Context(t, time.Minute)
	item := validItem()
	item["leaseOwner"] = &types.AttributeValueMemberS{Value: ""}
	putItems(t, client, s.Table(), []map[string]types.AttributeValue{item})
	got, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Empty(t, got[0].Owner)
	taken, err := s.Take(ctx, got[0], "gokcl-1")
	require.NoError(t, err)
	require.Equal(t, "gokcl-1", taken.Owner)
	require.Equal(t, int64(0), taken.OwnerSwitchesSinceCheckpoint, "taking an unowned lease is no owner switch")
}
