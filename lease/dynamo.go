package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBAPI is the part of *dynamodb.Client that DynamoStore uses, with the
// SDK's signatures, so that a *dynamodb.Client satisfies it and a test can
// wrap one (to count requests or inject faults).
type DynamoDBAPI interface {
	Scan(ctx context.Context, params *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, params *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, params *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

var (
	_ HandOffStore = (*DynamoStore)(nil)
	_ WorkerStore  = (*DynamoStore)(nil)
)

// DynamoStore is a Store in a DynamoDB table with the Java KCL's lease
// schema, so that gokcl resumes from a KCL application's checkpoints (and
// the KCL from gokcl's). It is safe for concurrent use; the zero value is
// not usable: call NewDynamoStore.
//
// # Attributes
//
// One item per lease, keyed by leaseKey (S): the shard id, or in a
// multi-stream table the stream identifier and the shard id joined by a
// colon (StreamID.LeaseKey). gokcl treats the
// KCL's attributes as follows:
//
//   - leaseKey (S): read; written by Create.
//   - leaseOwner (S): read, absent or empty meaning unowned; written by
//     Create, Take and HandOff (the new owner), removed by Release without
//     a hand-off pending, by ResetCheckpoint (and by Take with an empty
//     owner).
//   - leaseCounter (N): read; every write but Create, Delete and HandOff is
//     conditional on it and sets it one higher.
//   - checkpoint (S), checkpointSubSequenceNumber (N): read (an absent
//     sub-sequence number is 0); written by Create, UpdateCheckpoint and
//     ResetCheckpoint.
//   - ownerSwitchesSinceCheckpoint (N): read (absent: 0); written by Create,
//     incremented by Take from another holder and by a Release that
//     completes a hand-off, reset by UpdateCheckpoint and ResetCheckpoint.
//   - parentShardId (SS): read, sorted; written by Create.
//   - childShardIds (SS): read, sorted; written by Create, and by
//     UpdateCheckpoint when known.
//   - startingHashKey, endingHashKey (S): read; written by Create.
//   - pendingCheckpoint (S), pendingCheckpointSubSequenceNumber (N): read (an
//     empty pendingCheckpoint means none); written by Create and
//     UpdateCheckpoint, which removes them when PendingCheckpoint is nil.
//   - pendingCheckpointState (B): read (another type is ignored and kept);
//     written by Create; removed with the pending checkpoint.
//   - checkpointOwner (S): the KCL 3.x graceful hand-off: the worker that
//     still holds a lease being handed to leaseOwner. Read; written by
//     HandOff; removed by Take and Release, as the KCL's take, assign and
//     evict do; every conditional write but HandOff expects it as read.
//   - entityType (S): KCL 3.x; items whose entityType is not LEASE (worker
//     metrics, coordinator state) are skipped by List and never written,
//     but for gokcl's own worker rows (below).
//   - throughputKBps (N): KCL 3.x load statistics; preserved.
//   - streamName, shardId (S): a multi-stream lease's stream identifier
//     (account:name:creationEpoch; the KCL keeps the name streamName for
//     it) and shard id; read, an unparsable identifier making the row
//     malformed; written by Create. No other write changes them: a lease key
//     names one shard of one stream for good. See StreamID.
//
// Any other attribute is preserved: every write but Create is an UpdateItem
// that sets or removes only the attributes named above, and Create writes a
// new item only (attribute_not_exists(leaseKey)). List reads consistently;
// a lease row it cannot read (a missing or unparsable counter or checkpoint,
// a wrong attribute type) is listed with only its key and Lease.Malformed,
// an error wrapping ErrMalformedLease that names the table, the lease key
// and the attribute: guessing a position could skip or replay records, so
// the operator must repair the row, and meanwhile the other leases work.
//
// # Worker rows
//
// Heartbeat keeps one row per running worker (see Worker and WorkerStore):
// leaseKey "gokcl-worker:<id>", entityType GOKCL_WORKER, leaseOwner the
// worker id, leaseCounter incremented by each heartbeat, and checkpoint
// SHARD_END. The KCL 3.5 and later skip items whose entityType is not LEASE;
// earlier KCLs (2.x, 3.0 to 3.4) read the row as a finished lease held by
// that worker, and leave it alone while its counter moves. gokcl deletes
// its row when it stops taking leases, and deletes rows not renewed for
// twice FailoverTime; a row left by a crashed worker may meanwhile be
// taken by such an older KCL as an expired lease of a shard that does not
// exist, which it then deletes as garbage.
//
// KCL 3.x adds a global secondary index on leaseOwner
// (LeaseOwnerToLeaseKeyIndex); gokcl neither needs nor creates it, and
// DynamoDB keeps it up to date with gokcl's writes.
//
// # Errors and retries
//
// A refused condition is reported as ErrLeaseLost (Renew, Release,
// UpdateCheckpoint), ErrConflict (Take, HandOff, ResetCheckpoint,
// DeleteWorker) or ErrLeaseExists (Create), a refused update as a
// *RefusedError with the item found when DynamoDB returns it; other
// errors are the SDK's, wrapped with the operation, lease key and table.
// DynamoStore sends one request per call and retries nothing itself:
// throttling and transient faults are retried by the client's retryer (by
// default the SDK's standard retryer, 3 attempts with exponential back-off;
// see dynamodb.Options.Retryer). One consequence: a write that succeeded but
// whose response was lost, then retried by the SDK, reports ErrLeaseLost or
// ErrConflict, because the counter has already moved. The Manager recognises
// its own renewal or checkpoint in such a refusal (the lease one write
// further, still its own) and writes again on top of it; a take it retries
// from its next scan, which finds the lease its own.
type DynamoStore struct {
	client DynamoDBAPI
	table  string
}

// NewDynamoStore returns a Store on the table named table, which must exist
// (see EnsureTable). The name must be a valid DynamoDB table name: 3 to 255
// letters, digits, '_', '-' or '.'.
func NewDynamoStore(client DynamoDBAPI, table string) (*DynamoStore, error) {
	if c, ok := client.(*dynamodb.Client); client == nil || ok && c == nil {
		return nil, errors.New("lease: NewDynamoStore: nil DynamoDB client")
	}
	if err := validateTableName(table); err != nil {
		return nil, fmt.Errorf("lease: NewDynamoStore: %w", err)
	}
	return &DynamoStore{client: client, table: table}, nil
}

func validateTableName(name string) error {
	if len(name) < 3 || len(name) > 255 {
		return fmt.Errorf("table name %q: %d characters (3 to 255)", name, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("table name %q: character %q at %d (letters, digits, '_', '-' and '.' only)", name, c, i)
		}
	}
	return nil
}

// Table returns the name of the lease table.
func (s *DynamoStore) Table() string { return s.table }

func (s *DynamoStore) itemKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: attrS(key)}
}

// List implements Store with a consistent Scan of every page.
func (s *DynamoStore) List(ctx context.Context) ([]Lease, error) {
	return s.scan(ctx, nil)
}

// scan reads the whole table consistently and returns its leases, sorted by
// key; other items go to other, if not nil.
func (s *DynamoStore) scan(ctx context.Context, other func(map[string]types.AttributeValue)) ([]Lease, error) {
	pages := dynamodb.NewScanPaginator(s.client, &dynamodb.ScanInput{
		TableName:      aws.String(s.table),
		ConsistentRead: aws.Bool(true),
	})
	var out []Lease
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list leases in table %q: %w", s.table, err)
		}
		for _, item := range page.Items {
			l, ok, err := decodeItem(item)
			if err != nil {
				l = Lease{Key: itemKeyOf(item), Malformed: fmt.Errorf("table %q: %w", s.table, err)}
			}
			switch {
			case ok:
				out = append(out, l)
			case other != nil:
				other(item)
			}
		}
	}
	slices.SortFunc(out, func(a, b Lease) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Create implements Store with a PutItem conditional on the key being absent.
func (s *DynamoStore) Create(ctx context.Context, l Lease) error {
	if err := l.Validate(); err != nil {
		return err
	}
	e := newUpdateExpr()
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     encodeNew(l),
		ConditionExpression:      aws.String("attribute_not_exists(" + e.name(attrKey) + ")"),
		ExpressionAttributeNames: e.names,
	})
	if ccf := (*types.ConditionalCheckFailedException)(nil); errors.As(err, &ccf) {
		return fmt.Errorf("create lease %s in table %q: %w", l.Key, s.table, ErrLeaseExists)
	}
	if err != nil {
		return fmt.Errorf("create lease %s in table %q: %w", l.Key, s.table, err)
	}
	return nil
}

// Get implements HandOffStore with a consistent GetItem.
func (s *DynamoStore) Get(ctx context.Context, key string) (Lease, error) {
	if key == "" {
		return Lease{}, fmt.Errorf("get lease with empty key in table %q: %w", s.table, ErrLeaseNotFound)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            s.itemKey(key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Lease{}, fmt.Errorf("get lease %s in table %q: %w", key, s.table, err)
	}
	l, ok, err := decodeItem(out.Item)
	switch {
	case err != nil:
		return Lease{}, fmt.Errorf("get lease %s in table %q: %w", key, s.table, err)
	case !ok:
		return Lease{}, fmt.Errorf("get lease %s in table %q: %w", key, s.table, ErrLeaseNotFound)
	}
	return l, nil
}

// HandOff implements HandOffStore.
func (s *DynamoStore) HandOff(ctx context.Context, l Lease, to string) (Lease, error) {
	if l.Owner == "" || to == "" || l.Owner == to {
		return Lease{}, fmt.Errorf("hand off lease %s in table %q from %q to %q: %w", l.Key, s.table, l.Owner, to, ErrConflict)
	}
	return s.update(ctx, "hand off", l, ErrConflict, handOffExpr(l, to))
}

// ListAll implements WorkerStore with a consistent Scan of every page.
func (s *DynamoStore) ListAll(ctx context.Context) ([]Lease, []Worker, error) {
	var workers []Worker
	leases, err := s.scan(ctx, func(item map[string]types.AttributeValue) {
		if w, ok := decodeWorker(item); ok {
			workers = append(workers, w)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(workers, func(a, b Worker) int { return strings.Compare(a.ID, b.ID) })
	return leases, workers, nil
}

// Heartbeat implements WorkerStore.
func (s *DynamoStore) Heartbeat(ctx context.Context, id string) (Worker, error) {
	if id == "" {
		return Worker{}, fmt.Errorf("heartbeat in table %q: %w: empty worker id", s.table, ErrInvalidLease)
	}
	e := heartbeatExpr(id)
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       s.itemKey(workerKey(id)),
		UpdateExpression:          aws.String(e.updateExpression()),
		ConditionExpression:       aws.String(e.conditionExpression()),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return Worker{}, fmt.Errorf("heartbeat of worker %s in table %q: %w", id, s.table, err)
	}
	w, ok := decodeWorker(out.Attributes)
	if !ok {
		return Worker{}, fmt.Errorf("heartbeat of worker %s in table %q: the row written is not a worker row", id, s.table)
	}
	return w, nil
}

// DeleteWorker implements WorkerStore.
func (s *DynamoStore) DeleteWorker(ctx context.Context, w Worker) error {
	e := newUpdateExpr()
	cond := "attribute_not_exists(" + e.name(attrKey) + ") OR (" + e.name(attrEntityType) + " = " +
		e.value("entityType", attrS(entityWorker)) + " AND " + e.name(attrCounter) + " = " + e.value("counter", attrN(w.Counter)) + ")"
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       s.itemKey(workerKey(w.ID)),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	if ccf := (*types.ConditionalCheckFailedException)(nil); errors.As(err, &ccf) {
		return fmt.Errorf("delete worker %s in table %q: counter no longer %d: %w", w.ID, s.table, w.Counter, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("delete worker %s in table %q: %w", w.ID, s.table, err)
	}
	return nil
}

// Renew implements Store.
func (s *DynamoStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	return s.update(ctx, "renew", l, ErrLeaseLost, renewExpr(l))
}

// Take implements Store.
func (s *DynamoStore) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	return s.update(ctx, "take", l, ErrConflict, takeExpr(l, owner))
}

// Release implements Store.
func (s *DynamoStore) Release(ctx context.Context, l Lease) (Lease, error) {
	return s.update(ctx, "release", l, ErrLeaseLost, releaseExpr(l))
}

// UpdateCheckpoint implements Store.
func (s *DynamoStore) UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error) {
	if err := l.Validate(); err != nil {
		return Lease{}, err
	}
	return s.update(ctx, "checkpoint", l, ErrLeaseLost, checkpointExpr(l))
}

// update runs e as an UpdateItem on l's item and returns the lease as
// stored after it; fail is the error for a refused condition.
func (s *DynamoStore) update(ctx context.Context, op string, l Lease, fail error, e *updateExpr) (Lease, error) {
	if l.Key == "" {
		return Lease{}, fmt.Errorf("%s lease with empty key in table %q: no such lease: %w", op, s.table, fail)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 s.itemKey(l.Key),
		UpdateExpression:                    aws.String(e.updateExpression()),
		ConditionExpression:                 aws.String(e.conditionExpression()),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf := (*types.ConditionalCheckFailedException)(nil); errors.As(err, &ccf) {
		refused := &RefusedError{Err: fmt.Errorf("%s lease %s in table %q: expected %s, %s: %w",
			op, l.Key, s.table, describeHolder(l), describeFound(ccf.Item), fail)}
		if found, ok, derr := decodeItem(ccf.Item); derr == nil && ok {
			refused.Found = &found
		}
		return Lease{}, refused
	}
	if err != nil {
		return Lease{}, fmt.Errorf("%s lease %s in table %q: %w", op, l.Key, s.table, err)
	}
	got, ok, err := decodeItem(out.Attributes)
	if err == nil && !ok {
		err = fmt.Errorf("%w: lease %s: the updated item is not a lease", ErrMalformedLease, l.Key)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("%s lease %s in table %q: %w", op, l.Key, s.table, err)
	}
	return got, nil
}

// describeFound says what a refused write found, when DynamoDB returned the
// item (ReturnValuesOnConditionCheckFailure; some emulators never do).
func describeFound(item map[string]types.AttributeValue) string {
	if len(item) == 0 {
		return "found it changed or deleted"
	}
	r := itemReader{item: item}
	return "found " + describeHolder(Lease{Owner: r.str(attrOwner, false), CheckpointOwner: r.str(attrCheckpointOwner, false), Counter: r.int(attrCounter, false)})
}

// Delete implements Store. Deleting a missing lease is not an error.
func (s *DynamoStore) Delete(ctx context.Context, key string) error {
	if key == "" {
		return ctx.Err() // no item can have an empty key
	}
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table),
		Key:       s.itemKey(key),
	})
	if err != nil {
		return fmt.Errorf("delete lease %s in table %q: %w", key, s.table, err)
	}
	return nil
}
