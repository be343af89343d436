package main

import (
	"fmt"
	"strings"

	"github.com/gokcl/kcl/lease"
)

// shardOf returns the shard id a lease key names. A single-stream lease
// table (gokcl's, the KCL's default) is keyed by shard id; the Java KCL's
// multi-stream tables are keyed by "account:stream:epoch:shardId", which
// gokcl does not read yet: shardOf refuses such keys rather than guess.
// (When multi-stream tables come, this is where the stream column starts.)
func shardOf(key string) (string, error) {
	if strings.Count(key, ":") == 3 {
		return "", fmt.Errorf("lease key %q is a multi-stream key (account:stream:epoch:shard): gokcl reads single-stream lease tables only", key)
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

// checkSingleStream refuses a table holding a lease whose key is not a
// shard id, naming the table and the first such key.
func checkSingleStream(leases []lease.Lease, table string) error {
	for _, l := range leases {
		if _, err := shardOf(l.Key); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
	}
	return nil
}
