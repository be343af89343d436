package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/test/chaos/faultproxy"
)

func exchange(op string, status int, req, resp string) faultproxy.Exchange {
	return faultproxy.Exchange{Op: "DynamoDB_20120810." + op, Status: status, Request: []byte(req), Response: []byte(resp),
		Sent: at(1), Answered: at(2)}
}

func TestAssigns(t *testing.T) {
	names := map[string]string{"#c": "leaseCounter", "#o": "leaseOwner"}
	for expr, want := range map[string]bool{
		"SET #c = :c":                          true,
		"SET #o = :o, #c = :c REMOVE #x":       true,
		"SET #o = :o ADD #c :one":              true,
		"SET leaseCounter = leaseCounter + :1": true,
		"SET #o = :o REMOVE #c":                false,
		"SET #o = :o":                          false,
		"":                                     false,
	} {
		require.Equal(t, want, assigns(expr, names, "leaseCounter"), expr)
	}
}

func TestDecodeLeaseWrite(t *testing.T) {
	update := exchange("UpdateItem", 200,
		`{"TableName":"app","Key":{"leaseKey":{"S":"shard-1"}},"ReturnValues":"ALL_NEW",
		  "UpdateExpression":"SET #checkpoint = :checkpoint, #leaseCounter = :leaseCounter REMOVE #pending",
		  "ExpressionAttributeNames":{"#checkpoint":"checkpoint","#leaseCounter":"leaseCounter","#pending":"pendingCheckpoint"}}`,
		`{"Attributes":{"leaseKey":{"S":"shard-1"},"leaseOwner":{"S":"w1"},"leaseCounter":{"N":"12"},
		  "checkpoint":{"S":"4960"},"checkpointSubSequenceNumber":{"N":"3"},"parentShardId":{"SS":["shard-0"]}}}`)
	w, ok, err := DecodeLeaseWrite(update, "app")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, LeaseWrite{Op: OpUpdate, Sent: at(1), At: at(2), Key: "shard-1", Owner: "w1", Counter: 12,
		Checkpoint: checkpoint.At("4960", 3)}, w)

	update.Fault = faultproxy.Lost500
	w, _, _ = DecodeLeaseWrite(update, "app")
	require.True(t, w.Lost)

	// A hand-off sets the owners only; the answer shows the holder as
	// checkpoint owner.
	handOff := exchange("UpdateItem", 200,
		`{"TableName":"app","Key":{"leaseKey":{"S":"shard-1"}},"ReturnValues":"ALL_NEW",
		  "UpdateExpression":"SET #leaseOwner = :leaseOwner, #checkpointOwner = :from",
		  "ExpressionAttributeNames":{"#leaseOwner":"leaseOwner","#checkpointOwner":"checkpointOwner","#leaseCounter":"leaseCounter"}}`,
		`{"Attributes":{"leaseKey":{"S":"shard-1"},"leaseOwner":{"S":"w2"},"checkpointOwner":{"S":"w1"},"leaseCounter":{"N":"12"},"checkpoint":{"S":"4960"}}}`)
	w, ok, err = DecodeLeaseWrite(handOff, "app")
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, w.KeepsCounter)
	require.Equal(t, "w1", w.Holder())
	require.Equal(t, "w2", w.Owner)

	create := exchange("PutItem", 200,
		`{"TableName":"app","Item":{"leaseKey":{"S":"shard-2"},"leaseCounter":{"N":"0"},"checkpoint":{"S":"TRIM_HORIZON"}}}`, `{}`)
	w, ok, err = DecodeLeaseWrite(create, "app")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, LeaseWrite{Op: OpCreate, Sent: at(1), At: at(2), Key: "shard-2", Checkpoint: checkpoint.TrimHorizon}, w)

	del := exchange("DeleteItem", 200, `{"TableName":"app","Key":{"leaseKey":{"S":"shard-3"}}}`, `{}`)
	w, ok, err = DecodeLeaseWrite(del, "app")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, LeaseWrite{Op: OpDelete, Sent: at(1), At: at(2), Key: "shard-3"}, w)

	for name, e := range map[string]faultproxy.Exchange{
		"refused":     exchange("UpdateItem", 400, `{"TableName":"app"}`, `{"__type":"ConditionalCheckFailedException"}`),
		"other table": exchange("PutItem", 200, `{"TableName":"other","Item":{}}`, `{}`),
		"a read":      exchange("Scan", 200, `{"TableName":"app"}`, `{"Items":[]}`),
		"kinesis":     {Op: "Kinesis_20131202.GetRecords", Status: 200},
	} {
		_, ok, err := DecodeLeaseWrite(e, "app")
		require.NoError(t, err, name)
		require.False(t, ok, name)
	}

	// A worker row: not a lease; the log forgets its writes and deletes.
	heartbeat := exchange("UpdateItem", 200,
		`{"TableName":"app","Key":{"leaseKey":{"S":"gokcl-worker:w1"}},"ReturnValues":"ALL_NEW","UpdateExpression":"ADD #leaseCounter :one","ExpressionAttributeNames":{"#leaseCounter":"leaseCounter"}}`,
		`{"Attributes":{"leaseKey":{"S":"gokcl-worker:w1"},"entityType":{"S":"GOKCL_WORKER"},"leaseOwner":{"S":"w1"},"leaseCounter":{"N":"3"},"checkpoint":{"S":"SHARD_END"}}}`)
	_, _, err = DecodeLeaseWrite(heartbeat, "app")
	var other *notLeaseError
	require.ErrorAs(t, err, &other)
	log := newLeaseLog("app")
	observe := log.observer("w1")
	observe(heartbeat)
	observe(exchange("DeleteItem", 200, `{"TableName":"app","Key":{"leaseKey":{"S":"gokcl-worker:w1"}}}`, `{}`))
	observe(update)
	writes, errs := log.snapshot()
	require.Empty(t, errs)
	require.Len(t, writes, 1, "the lease update only")
	require.Equal(t, "shard-1", writes[0].Key)
	require.Equal(t, "w1", writes[0].Via)

	for name, e := range map[string]faultproxy.Exchange{
		"no ALL_NEW":     exchange("UpdateItem", 200, `{"TableName":"app","Key":{"leaseKey":{"S":"s"}}}`, `{}`),
		"no counter":     exchange("PutItem", 200, `{"TableName":"app","Item":{"leaseKey":{"S":"s"},"checkpoint":{"S":"LATEST"}}}`, `{}`),
		"bad checkpoint": exchange("PutItem", 200, `{"TableName":"app","Item":{"leaseKey":{"S":"s"},"leaseCounter":{"N":"1"},"checkpoint":{"S":"x"}}}`, `{}`),
		"not JSON":       exchange("UpdateItem", 200, `{"TableName":"app","ReturnValues":"ALL_NEW"}`, `{`),
	} {
		_, _, err := DecodeLeaseWrite(e, "app")
		require.Error(t, err, name)
	}
}
