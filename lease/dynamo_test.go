package lease_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	"github.com/gokcl/kcl/lease"
)

// A *dynamodb.Client is a DynamoDBAPI.
var _ lease.DynamoDBAPI = (*dynamodb.Client)(nil)

// The golden files: lease tables as the Java KCL writes them, in the format
// `aws dynamodb scan` prints.
const (
	kcl2Items = "testdata/kcl-items-2x.json"
	kcl3Items = "testdata/kcl-items-3x.json"
)

// kclLeases are the leases the golden files hold, by key.
var kclLeases = map[string]lease.Lease{
	// A new lease from a shard sync: unowned, at TRIM_HORIZON.
	"shardId-000000000000": {
		Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon,
		StartingHashKey: "0", EndingHashKey: "85070591730234615865843651857942052863",
	},
	// Owned, mid-stream, inside an aggregated record.
	"shardId-000000000001": {
		Key: "shardId-000000000001", Owner: "ip-10-0-3-17.ec2.internal:4a1c5b6e-8a5e-4f0e-9a44-1c2d3e4f5a6b", Counter: 1234,
		Checkpoint:                   checkpoint.At("49590338271490256608559692538361571095921575989136588898", 3),
		OwnerSwitchesSinceCheckpoint: 1,
		StartingHashKey:              "85070591730234615865843651857942052864", EndingHashKey: "170141183460469231731687303715884105727",
	},
	// Read to its end, split into 3 and 4.
	"shardId-000000000002": {
		Key: "shardId-000000000002", Owner: "worker-b", Counter: 96, Checkpoint: checkpoint.ShardEnd,
		ChildShardIDs:   []string{"shardId-000000000003", "shardId-000000000004"},
		StartingHashKey: "170141183460469231731687303715884105728", EndingHashKey: "340282366920938463463374607431768211455",
	},
	// 3 and 4 merged again.
	"shardId-000000000005": {
		Key: "shardId-000000000005", Counter: 2, Checkpoint: checkpoint.TrimHorizon,
		ParentShardIDs:  []string{"shardId-000000000003", "shardId-000000000004"},
		StartingHashKey: "170141183460469231731687303715884105728", EndingHashKey: "340282366920938463463374607431768211455",
	},
	// A two-phase checkpoint in progress, with application state.
	"shardId-000000000006": {
		Key: "shardId-000000000006", Owner: "worker-a", Counter: 17,
		Checkpoint:             checkpoint.At("49590338271490256608559692540925702759324208523137515618", 0),
		PendingCheckpoint:      &checkpoint.Position{SequenceNumber: "49590338271490256608559692540925702759324208523137515700", SubSequenceNumber: 2},
		PendingCheckpointState: []byte(`{"offset":12}`),
		ParentShardIDs:         []string{"shardId-000000000001"},
		StartingHashKey:        "85070591730234615865843651857942052864", EndingHashKey: "127605887595351923798765477786913079295",
	},
	// KCL 3.x: entityType LEASE, a graceful hand-off from worker-a to
	// worker-c in progress (checkpointOwner), throughput statistics.
	"shardId-000000000007": {
		Key: "shardId-000000000007", Owner: "worker-c", CheckpointOwner: "worker-a", Counter: 5021, Checkpoint: checkpoint.AtTimestamp,
		StartingHashKey: "0", EndingHashKey: "85070591730234615865843651857942052863",
	},
	"shardId-000000000008": {
		Key: "shardId-000000000008", Owner: "worker-a", Counter: 9, Checkpoint: checkpoint.Latest,
		StartingHashKey: "127605887595351923798765477786913079296", EndingHashKey: "170141183460469231731687303715884105727",
	},
}

// kclSkipped are the keys of the KCL 3.x items that are not leases: worker
// metrics and coordinator state.
var kclSkipped = []string{"LeaderLock", "Migration3.0", "worker-a"}

// loadItems reads a file in DynamoDB JSON: {"Items": [{"attr": {"S": "…"}}]}.
func loadItems(t testing.TB, path string) []map[string]types.AttributeValue {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var scan struct{ Items []map[string]json.RawMessage }
	require.NoError(t, json.Unmarshal(data, &scan), path)
	items := make([]map[string]types.AttributeValue, len(scan.Items))
	for i, raw := range scan.Items {
		items[i] = map[string]types.AttributeValue{}
		for name, v := range raw {
			av, err := attributeValueFromJSON(v)
			require.NoError(t, err, "%s: item %d: attribute %s", path, i, name)
			items[i][name] = av
		}
	}
	return items
}

// attributeValueFromJSON decodes one value of DynamoDB JSON, {"TYPE": value}.
func attributeValueFromJSON(raw json.RawMessage) (types.AttributeValue, error) {
	var typed map[string]json.RawMessage
	if err := json.Unmarshal(raw, &typed); err != nil || len(typed) != 1 {
		return nil, fmt.Errorf("want {\"TYPE\": value}, found %s", raw)
	}
	for typ, v := range typed {
		return decodeTyped(typ, v)
	}
	panic("unreachable")
}

func decodeTyped(typ string, v json.RawMessage) (types.AttributeValue, error) {
	var err error
	switch typ {
	case "S":
		var s types.AttributeValueMemberS
		err = json.Unmarshal(v, &s.Value)
		return &s, err
	case "N":
		var n types.AttributeValueMemberN
		err = json.Unmarshal(v, &n.Value)
		return &n, err
	case "B":
		var b types.AttributeValueMemberB
		err = json.Unmarshal(v, &b.Value) // base64, as []byte decodes
		return &b, err
	case "SS":
		var ss types.AttributeValueMemberSS
		err = json.Unmarshal(v, &ss.Value)
		return &ss, err
	case "NS":
		var ns types.AttributeValueMemberNS
		err = json.Unmarshal(v, &ns.Value)
		return &ns, err
	case "BOOL":
		var b types.AttributeValueMemberBOOL
		err = json.Unmarshal(v, &b.Value)
		return &b, err
	case "NULL":
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case "M":
		return decodeMap(v)
	case "L":
		return decodeList(v)
	}
	return nil, fmt.Errorf("unknown type %q", typ)
}

func decodeMap(v json.RawMessage) (types.AttributeValue, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, err
	}
	m := &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}
	for k, e := range raw {
		av, err := attributeValueFromJSON(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		m.Value[k] = av
	}
	return m, nil
}

func decodeList(v json.RawMessage) (types.AttributeValue, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, err
	}
	l := &types.AttributeValueMemberL{}
	for i, e := range raw {
		av, err := attributeValueFromJSON(e)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		l.Value = append(l.Value, av)
	}
	return l, nil
}

func itemKey(item map[string]types.AttributeValue) string {
	return item["leaseKey"].(*types.AttributeValueMemberS).Value
}

// TestDecodeKCLItems: items written by the Java KCL read as the leases they
// hold, and items that are not leases are skipped.
func TestDecodeKCLItems(t *testing.T) {
	var skipped []string
	seen := map[string]bool{}
	for _, path := range []string{kcl2Items, kcl3Items} {
		for _, item := range loadItems(t, path) {
			key := itemKey(item)
			got, ok, err := lease.DecodeDynamoItem(item)
			require.NoError(t, err, key)
			if !ok {
				skipped = append(skipped, key)
				continue
			}
			want, known := kclLeases[key]
			require.True(t, known, "unexpected lease %s in %s", key, path)
			require.Equal(t, want, got, key)
			seen[key] = true
		}
	}
	slices.Sort(skipped)
	require.Equal(t, kclSkipped, skipped)
	require.Len(t, seen, len(kclLeases), "every golden lease was read")
}

// sortedSets returns item with its string sets sorted: sets have no order.
func sortedSets(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for k, v := range item {
		if ss, ok := v.(*types.AttributeValueMemberSS); ok {
			v = &types.AttributeValueMemberSS{Value: slices.Sorted(slices.Values(ss.Value))}
		}
		out[k] = v
	}
	return out
}

// TestEncodeMatchesKCL: for every KCL 2.x lease, gokcl writes exactly the
// item the KCL writes: the same attributes, types and values.
func TestEncodeMatchesKCL(t *testing.T) {
	for _, item := range loadItems(t, kcl2Items) {
		key := itemKey(item)
		l, ok, err := lease.DecodeDynamoItem(item)
		require.True(t, ok)
		require.NoError(t, err)
		require.Equal(t, sortedSets(item), sortedSets(lease.EncodeDynamoItem(l)), key)
	}
}

// TestEncodeKCL3Subset: for the KCL 3.x leases, every attribute gokcl
// writes is the KCL's, with its type and value; the rest (entityType,
// throughputKBps) gokcl preserves rather than writes.
func TestEncodeKCL3Subset(t *testing.T) {
	for _, item := range loadItems(t, kcl3Items) {
		l, ok, err := lease.DecodeDynamoItem(item)
		require.NoError(t, err)
		if !ok {
			continue
		}
		for name, v := range lease.EncodeDynamoItem(l) {
			require.Equal(t, item[name], v, "%s: attribute %s", l.Key, name)
		}
	}
}

// validItem is a well-formed lease row for the malformed-row tests to spoil.
func validItem() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"leaseKey":                     &types.AttributeValueMemberS{Value: "shardId-000000000001"},
		"leaseOwner":                   &types.AttributeValueMemberS{Value: "worker-a"},
		"leaseCounter":                 &types.AttributeValueMemberN{Value: "5"},
		"checkpoint":                   &types.AttributeValueMemberS{Value: "12345"},
		"checkpointSubSequenceNumber":  &types.AttributeValueMemberN{Value: "1"},
		"ownerSwitchesSinceCheckpoint": &types.AttributeValueMemberN{Value: "0"},
	}
}

func TestDecodeMalformed(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	ss := func(v ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }
	cases := []struct {
		attr string
		v    types.AttributeValue // nil: removed
		msg  string
	}{
		{"leaseCounter", nil, "missing"},
		{"leaseCounter", n("abc"), `"abc" is not a non-negative 64-bit integer`},
		{"leaseCounter", n("-3"), `"-3" is not a non-negative 64-bit integer`},
		{"leaseCounter", n("1.5"), `"1.5" is not`},
		{"leaseCounter", n("99999999999999999999"), "is not a non-negative 64-bit integer"},
		{"leaseCounter", s("5"), "want a number (N), found S"},
		{"checkpoint", nil, "missing"},
		{"checkpoint", s(""), "empty sequence number"},
		{"checkpoint", s("12x"), "not a decimal number"},
		{"checkpoint", n("12345"), "want a string (S), found N"},
		{"checkpointSubSequenceNumber", n("-1"), "is not a non-negative 64-bit integer"},
		{"checkpointSubSequenceNumber", s("1"), "want a number (N), found S"},
		{"ownerSwitchesSinceCheckpoint", n("x"), "is not a non-negative 64-bit integer"},
		{"leaseOwner", n("7"), "want a string (S), found N"},
		{"checkpointOwner", n("7"), "want a string (S), found N"},
		{"parentShardId", s("shardId-000000000000"), "want a string set (SS), found S"},
		{"parentShardId", ss("a", "b", "c"), "3 parents"},
		{"parentShardId", ss("a", ""), "empty shard id"},
		{"childShardIds", &types.AttributeValueMemberL{}, "want a string set (SS), found L"},
		{"startingHashKey", n("0"), "want a string (S), found N"},
		{"pendingCheckpoint", s("LATEST-ish"), "not a decimal number"},
		{"pendingCheckpointSubSequenceNumber", n("x"), "is not a non-negative 64-bit integer"},
	}
	for _, tc := range cases {
		item := validItem()
		item[tc.attr] = tc.v
		if tc.v == nil {
			delete(item, tc.attr)
		}
		if strings.HasPrefix(tc.attr, "pendingCheckpointSub") {
			item["pendingCheckpoint"] = s("123")
		}
		_, ok, err := lease.DecodeDynamoItem(item)
		require.True(t, ok, "%s: a lease row", tc.attr)
		require.ErrorIs(t, err, lease.ErrMalformedLease, tc.attr)
		require.ErrorContains(t, err, "shardId-000000000001", tc.attr)
		require.ErrorContains(t, err, tc.msg, tc.attr)
		if tc.msg != "3 parents" && tc.msg != "empty shard id" {
			require.ErrorContains(t, err, "attribute "+tc.attr, tc.attr)
		}
	}
	// A sentinel checkpoint has no sub-sequence number.
	item := validItem()
	item["checkpoint"] = s("SHARD_END")
	_, _, err := lease.DecodeDynamoItem(item)
	require.ErrorIs(t, err, lease.ErrMalformedLease)
	require.ErrorContains(t, err, "sentinel SHARD_END with sub-sequence number 1")
}

// TestDecodeFallbacks: the documented readings of odd but harmless rows.
func TestDecodeFallbacks(t *testing.T) {
	base, ok, err := lease.DecodeDynamoItem(validItem())
	require.True(t, ok)
	require.NoError(t, err)
	cases := []struct {
		name string
		edit func(map[string]types.AttributeValue)
		want func(*lease.Lease)
	}{
		{"EmptyOwnerIsUnowned", func(m map[string]types.AttributeValue) {
			m["leaseOwner"] = &types.AttributeValueMemberS{}
		}, func(l *lease.Lease) { l.Owner = "" }},
		{"MissingOwnerIsUnowned", func(m map[string]types.AttributeValue) { delete(m, "leaseOwner") },
			func(l *lease.Lease) { l.Owner = "" }},
		{"MissingSubIsZero", func(m map[string]types.AttributeValue) { delete(m, "checkpointSubSequenceNumber") },
			func(l *lease.Lease) { l.Checkpoint.SubSequenceNumber = 0 }},
		{"MissingOwnerSwitchesIsZero", func(m map[string]types.AttributeValue) { delete(m, "ownerSwitchesSinceCheckpoint") },
			func(*lease.Lease) {}},
		{"EmptyPendingIsNone", func(m map[string]types.AttributeValue) {
			m["pendingCheckpoint"] = &types.AttributeValueMemberS{}
			m["pendingCheckpointSubSequenceNumber"] = &types.AttributeValueMemberN{Value: "4"}
		}, func(*lease.Lease) {}},
		{"NumericPendingStateIgnored", func(m map[string]types.AttributeValue) {
			m["pendingCheckpointState"] = &types.AttributeValueMemberN{Value: "0"}
		}, func(*lease.Lease) {}},
		{"NumberNormalised", func(m map[string]types.AttributeValue) {
			m["leaseCounter"] = &types.AttributeValueMemberN{Value: "0005"}
		}, func(*lease.Lease) {}},
		{"EntityTypeLease", func(m map[string]types.AttributeValue) {
			m["entityType"] = &types.AttributeValueMemberS{Value: "LEASE"}
		}, func(*lease.Lease) {}},
		{"CheckpointOwnerRead", func(m map[string]types.AttributeValue) {
			m["checkpointOwner"] = &types.AttributeValueMemberS{Value: "worker-b"}
		}, func(l *lease.Lease) { l.CheckpointOwner = "worker-b" }},
		{"EmptyCheckpointOwnerIsNone", func(m map[string]types.AttributeValue) {
			m["checkpointOwner"] = &types.AttributeValueMemberS{Value: ""}
		}, func(*lease.Lease) {}},
		{"UnknownAttributesIgnored", func(m map[string]types.AttributeValue) {
			m["throughputKBps"] = &types.AttributeValueMemberN{Value: "1.5"}
			m["myTag"] = &types.AttributeValueMemberM{}
		}, func(*lease.Lease) {}},
	}
	for _, tc := range cases {
		item := validItem()
		tc.edit(item)
		got, ok, err := lease.DecodeDynamoItem(item)
		require.True(t, ok, tc.name)
		require.NoError(t, err, tc.name)
		want := base.Clone()
		tc.want(&want)
		require.Equal(t, want, got, tc.name)
	}
}

func TestDecodeSkipsNonLeases(t *testing.T) {
	cases := map[string]func(map[string]types.AttributeValue){
		"WorkerMetrics": func(m map[string]types.AttributeValue) {
			m["entityType"] = &types.AttributeValueMemberS{Value: "WORKER_METRIC_STATS"}
		},
		"FutureEntity": func(m map[string]types.AttributeValue) {
			m["entityType"] = &types.AttributeValueMemberS{Value: "SOMETHING_NEW"}
		},
		"EntityTypeNotString": func(m map[string]types.AttributeValue) {
			m["entityType"] = &types.AttributeValueMemberN{Value: "1"}
		},
		"NoLeaseKey":     func(m map[string]types.AttributeValue) { delete(m, "leaseKey") },
		"NumberLeaseKey": func(m map[string]types.AttributeValue) { m["leaseKey"] = &types.AttributeValueMemberN{Value: "1"} },
	}
	for name, edit := range cases {
		item := validItem()
		edit(item)
		delete(item, "leaseCounter") // even a broken row is skipped, not reported
		_, ok, err := lease.DecodeDynamoItem(item)
		require.False(t, ok, name)
		require.NoError(t, err, name)
	}
}

// FuzzDecodeItem: whatever a row holds, decoding never panics; a row it
// accepts is a valid lease that gokcl writes back and reads back equal; a
// row it refuses is reported as ErrMalformedLease.
func FuzzDecodeItem(f *testing.F) {
	f.Add("worker-a", "5", "12345", "1", "shardId-1,shardId-2", "", "", "", "0", "1")
	f.Add("", "0", "TRIM_HORIZON", "0", "", "", "", "LEASE", "", "")
	f.Add("w", "9223372036854775807", "SHARD_END", "0", "", "shardId-3", "777", "", "N:4", "x")
	f.Fuzz(func(t *testing.T, owner, counter, seq, sub, parents, children, pending, entity, pendingSub, hash string) {
		item := fuzzItem(owner, counter, seq, sub, parents, children, pending, entity, pendingSub, hash)
		l, ok, err := lease.DecodeDynamoItem(item)
		if err != nil {
			require.ErrorIs(t, err, lease.ErrMalformedLease)
			return
		}
		if !ok {
			return
		}
		require.NoError(t, l.Validate())
		again, ok, err := lease.DecodeDynamoItem(lease.EncodeDynamoItem(l))
		require.True(t, ok)
		require.NoError(t, err)
		require.Equal(t, l, again)

		// The same row during a hand-off (the owner as checkpointOwner), and
		// read as a worker row: never a panic, and a hand-off round-trips.
		item["checkpointOwner"] = &types.AttributeValueMemberS{Value: owner}
		if h, ok, err := lease.DecodeDynamoItem(item); ok && err == nil {
			again, _, err := lease.DecodeDynamoItem(lease.EncodeDynamoItem(h))
			require.NoError(t, err)
			require.Equal(t, h, again)
		}
		item["entityType"] = &types.AttributeValueMemberS{Value: "GOKCL_WORKER"}
		item["leaseKey"] = &types.AttributeValueMemberS{Value: "gokcl-worker:" + owner}
		if w, ok := lease.DecodeWorkerItem(item); ok {
			require.Equal(t, owner, w.ID)
			require.NotEmpty(t, w.ID)
		}
	})
}

// fuzzItem builds a lease row from fuzzed text; an attribute is left out
// when its text is empty, and "N:" asks for a number where a string is due.
func fuzzItem(owner, counter, seq, sub, parents, children, pending, entity, pendingSub, hash string) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: "shardId-000000000001"}}
	str := func(name, v string) {
		if rest, ok := strings.CutPrefix(v, "N:"); ok {
			item[name] = &types.AttributeValueMemberN{Value: rest}
		} else if v != "" {
			item[name] = &types.AttributeValueMemberS{Value: v}
		}
	}
	num := func(name, v string) {
		if v != "" {
			item[name] = &types.AttributeValueMemberN{Value: v}
		}
	}
	set := func(name, v string) {
		if v != "" {
			item[name] = &types.AttributeValueMemberSS{Value: slices.Compact(slices.Sorted(slices.Values(strings.Split(v, ","))))}
		}
	}
	str("leaseOwner", owner)
	num("leaseCounter", counter)
	str("checkpoint", seq)
	num("checkpointSubSequenceNumber", sub)
	set("parentShardId", parents)
	set("childShardIds", children)
	str("pendingCheckpoint", pending)
	num("pendingCheckpointSubSequenceNumber", pendingSub)
	str("entityType", entity)
	str("startingHashKey", hash)
	str("endingHashKey", hash)
	return item
}

func TestNewDynamoStore(t *testing.T) {
	client := &fakeDynamo{}
	for _, name := range []string{"abc", "MyApp.leases_v2-prod", strings.Repeat("x", 255)} {
		s, err := lease.NewDynamoStore(client, name)
		require.NoError(t, err, name)
		require.Equal(t, name, s.Table())
	}
	for _, name := range []string{"", "ab", strings.Repeat("x", 256), "my table", "leases/prod", "lé"} {
		_, err := lease.NewDynamoStore(client, name)
		require.Error(t, err, name)
		require.ErrorContains(t, err, "table name", name)
	}
	_, err := lease.NewDynamoStore(nil, "leases")
	require.ErrorContains(t, err, "nil DynamoDB client")
	var nilClient *dynamodb.Client
	_, err = lease.NewDynamoStore(nilClient, "leases")
	require.Error(t, err, "a typed nil client")
}

// BenchmarkDecodeItem: List decodes every lease row on every taker cycle.
func BenchmarkDecodeItem(b *testing.B) {
	item := loadItems(b, kcl2Items)[4] // the richest: pending checkpoint, state, parents
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := lease.DecodeDynamoItem(item); err != nil {
			b.Fatal(err)
		}
	}
}
