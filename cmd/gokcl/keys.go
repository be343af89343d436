package main

import (
	"fmt"
	"strings"

	"github.com/gokcl/kcl/lease"
)

// shardOf returns the shard id a single-stream lease key names: a
// single-stream lease table (gokcl's, the KCL's default) is keyed by shard
// id. A key of the Java KCL's multi-stream form,
// "account:stream:epoch:shardId", is refused here: a multi-stream lease
// carries its stream and shard in attributes of their own (streamName,
// shardId), and one without them is not a lease gokcl guesses about.
func shardOf(key string) (string, error) {
	if strings.Count(key, ":") == 3 {
		return "", fmt.Errorf("lease key %q is a multi-stream key (account:stream:epoch:shard) without the streamName and shardId attributes the Java KCL writes with it", key)
	}
	if !validShardID(key) {
		return "", fmt.Errorf("lease key %q is not a shard id", key)
	}
	return key, nil
}

// validShardID reports whether s can be a Kinesis shard id: 1 to 128
// letters, digits, '_', '.' or '-'.
func validShardID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// tableMode reads whether a lease table is multi-stream (its leases name
// their streams, as the Java KCL's multi-stream mode and gokcl's write
// them) or single-stream (keyed by shard id), and refuses a table that is
// neither: a key that is not a shard id, or both kinds of lease in one table
// (two applications sharing a table by mistake). A multi-stream row that
// cannot be read counts as multi-stream when its key has that form.
func tableMode(leases []lease.Lease, table string) (multi bool, err error) {
	for _, l := range leases {
		multi = multi || l.MultiStream()
	}
	for _, l := range leases {
		switch {
		case l.MultiStream():
		case multi && l.Malformed != nil:
			if _, _, err := lease.ParseLeaseKey(l.Key); err != nil {
				return false, fmt.Errorf("%s: lease key %q is neither a shard id nor a multi-stream key", table, l.Key)
			}
		case multi:
			return false, fmt.Errorf("%s holds multi-stream leases and single-stream ones (such as %q): two applications share it by mistake; repair it by hand", table, l.Key)
		default:
			if _, err := shardOf(l.Key); err != nil {
				return false, fmt.Errorf("%s: %w", table, err)
			}
		}
	}
	return multi, nil
}

// checkSingleStream refuses a table that is not a single-stream one, naming
// the table and the first offending key.
func checkSingleStream(leases []lease.Lease, table string) error {
	multi, err := tableMode(leases, table)
	if err == nil && multi {
		err = fmt.Errorf("%s is a multi-stream lease table: this command reads single-stream tables only", table)
	}
	return err
}

// leaseStream returns the stream identifier of a lease of a multi-stream
// table (parsed from the key of a row that cannot be read), or "".
func leaseStream(l lease.Lease) string {
	if l.MultiStream() {
		return l.StreamID.String()
	}
	if id, _, err := lease.ParseLeaseKey(l.Key); err == nil {
		return id.String()
	}
	return ""
}

// leaseShard returns the shard id of a lease: its shardId in a multi-stream
// table (parsed from the key of a row that cannot be read), else its key.
func leaseShard(l lease.Lease) string {
	if l.MultiStream() {
		return l.ShardID
	}
	if _, shard, err := lease.ParseLeaseKey(l.Key); err == nil {
		return shard
	}
	return l.Key
}
