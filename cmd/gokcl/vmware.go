package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The checkpoint table of vmware-go-kcl-v2 (clientlibrary/checkpoint in
// github.com/vmware/vmware-go-kcl-v2): one item per shard, every attribute
// a string.
const (
	vmShardID      = "ShardID"       // the table's hash key
	vmCheckpoint   = "Checkpoint"    // last processed sequence number, or SHARD_END; absent before the first
	vmAssignedTo   = "AssignedTo"    // the worker holding the shard; removed when it lets go
	vmLeaseTimeout = "LeaseTimeout"  // RFC 3339 (nanoseconds) time the lease expires, by the holder's clock
	vmParent       = "ParentShardId" // the shard's parent (vmware-go-kcl ignores a merge's adjacent parent)
	vmClaimRequest = "ClaimRequest"  // a worker's request to steal the shard

	vmShardEnd = "SHARD_END"
)

// errNotVmwareTable reports a source table with another key schema.
var errNotVmwareTable = errors.New("not a vmware-go-kcl-v2 checkpoint table")

// vmwareRow is one item of a vmware-go-kcl-v2 checkpoint table.
type vmwareRow struct {
	shardID, checkpoint, assignedTo, leaseTimeout, parent, claim string
	problem                                                      string // why the item cannot be read
}

// decodeVmwareItem reads an item; a missing or mistyped attribute sets
// problem rather than guessing.
func decodeVmwareItem(item map[string]types.AttributeValue) vmwareRow {
	var r vmwareRow
	str := func(attr string) string {
		switch v := item[attr].(type) {
		case nil:
			return ""
		case *types.AttributeValueMemberS:
			return v.Value
		default:
			if r.problem == "" {
				r.problem = fmt.Sprintf("attribute %s: want a string (S), found %T", attr, v)
			}
			return ""
		}
	}
	r.shardID, r.checkpoint, r.assignedTo = str(vmShardID), str(vmCheckpoint), str(vmAssignedTo)
	r.leaseTimeout, r.parent, r.claim = str(vmLeaseTimeout), str(vmParent), str(vmClaimRequest)
	if r.shardID == "" && r.problem == "" {
		r.problem = "no " + vmShardID
	}
	return r
}

// held reports whether a vmware-go-kcl worker may still hold the row's
// lease, by vmware-go-kcl's own rule: an owner and a lease timeout not yet
// passed. A timeout that cannot be read counts as held.
func (r vmwareRow) held(now time.Time) bool {
	if r.assignedTo == "" {
		return false
	}
	until, err := time.Parse(time.RFC3339Nano, r.leaseTimeout)
	return err != nil || until.After(now)
}

// readVmwareTable checks that table has vmware-go-kcl's key schema and
// reads all its items, consistently.
func readVmwareTable(ctx context.Context, client *dynamodb.Client, table string) ([]vmwareRow, error) {
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return nil, err
	}
	if k := desc.Table.KeySchema; len(k) != 1 || aws.ToString(k[0].AttributeName) != vmShardID {
		var found []string
		for _, e := range k {
			found = append(found, aws.ToString(e.AttributeName)+" "+string(e.KeyType))
		}
		return nil, fmt.Errorf("%w: table %q has the key [%s], want [%s HASH]",
			errNotVmwareTable, table, strings.Join(found, ", "), vmShardID)
	}
	pages := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	var rows []vmwareRow
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			rows = append(rows, decodeVmwareItem(item))
		}
	}
	return rows, nil
}
