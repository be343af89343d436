//go:build integration

package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// reset of a live application: refused while a worker holds the lease;
// with -force, done, and honoured: the holder loses the lease at its next
// renewal, and whoever takes it next processes from the new checkpoint.
// Then to a timestamp, and to a sequence number.
//
// Records after a new checkpoint may be processed more than once more (the
// two workers rebalance after a reset, and a steal may come before the
// first checkpoint of the new holder), so the test checks that they were
// processed again, and that nothing at or before the new checkpoint was.
func TestIntegrationResetHonouredByWorkers(t *testing.T) {
	const shards = 2
	a := newApp(t, shards)
	s0, s1 := shardID(0), shardID(1)
	last := map[string]string{s0: lastOf(a.put(0, shards, 0, 50)), s1: lastOf(a.put(1, shards, 100, 150))}
	a.start(a.config("w1", 3*time.Second))
	a.start(a.config("w2", 3*time.Second))
	caughtUp := func() {
		t.Helper()
		waitFor(t, time.Minute, "both shards checkpointed at their last record", func() bool {
			ls := a.leases()
			return ls[s0].Checkpoint.String() == last[s0] && ls[s1].Checkpoint.String() == last[s1]
		})
	}
	caughtUp()
	before := a.leases()[s0]

	r := gokcl(t, "reset", "-app", a.stream, "-shard", s0, "-to", "trim-horizon", "-failover", "3s")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stdout, "held by live worker")
	require.Contains(t, r.stderr, "refused 1 lease; nothing written")
	require.Equal(t, before.Checkpoint, a.leases()[s0].Checkpoint)

	r = gokcl(t, "reset", "-app", a.stream, "-shard", s0, "-to", "trim-horizon", "-force", "-dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "would do")
	require.Equal(t, before.Checkpoint, a.leases()[s0].Checkpoint, "a dry run writes nothing")

	var rep resetReport
	gokclJSON(t, &rep, "reset", "-app", a.stream, "-shard", s0, "-to", "trim-horizon", "-force")
	require.Len(t, rep.Items, 1)
	require.Equal(t, resultDone, rep.Items[0].Result)
	waitFor(t, time.Minute, "shard 0 processed again from its start", func() bool { return a.col.all(0, 50, 2) })
	caughtUp()
	for id := 100; id < 150; id++ {
		require.Equal(t, 1, a.col.times(id), "shard 1 untouched: record %d", id)
	}

	// To a time between two batches: the second batch is processed again.
	seqA := a.put(1, shards, 150, 160)
	time.Sleep(time.Second)
	at := time.Now()
	time.Sleep(time.Second)
	last[s1] = lastOf(a.put(1, shards, 160, 170))
	caughtUp()
	seen := a.col.processed()
	gokclJSON(t, &rep, "reset", "-app", a.stream, "-stream", a.stream, "-shard", s1,
		"-to", "timestamp="+at.UTC().Format(time.RFC3339Nano), "-force")
	require.Equal(t, seqA[9], rep.Items[0].To, "the last record before the time")
	waitFor(t, time.Minute, "the second batch processed again", func() bool { return processedAgain(a.col, seen, 160, 170) })
	caughtUp()
	requireNotAgain(t, a.col, seen, 100, 160)

	// To a sequence number: the records after it are processed again.
	seen = a.col.processed()
	gokclJSON(t, &rep, "reset", "-app", a.stream, "-stream", a.stream, "-shard", s0, "-to", "sequence="+a.seqOf(s0, 39), "-force")
	require.Equal(t, checkpoint.At(a.seqOf(s0, 39), 0).String(), rep.Items[0].To)
	waitFor(t, time.Minute, "records after the sequence number processed again", func() bool { return processedAgain(a.col, seen, 40, 50) })
	caughtUp()
	requireNotAgain(t, a.col, seen, 0, 40)

	// A sequence number the shard does not have is refused.
	r = gokcl(t, "reset", "-app", a.stream, "-stream", a.stream, "-shard", s0, "-to", "sequence=12345", "-force")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stdout, "sequence number 12345: not a record of this shard")
}

func lastOf(seqs []string) string { return seqs[len(seqs)-1] }

// processedAgain reports whether every id in [from, to) was processed since
// the counts seen.
func processedAgain(c *collector, seen map[int]int, from, to int) bool {
	for id := from; id < to; id++ {
		if c.times(id) <= seen[id] {
			return false
		}
	}
	return true
}

// requireNotAgain checks that no id in [from, to) was processed since the
// counts seen.
func requireNotAgain(t *testing.T, c *collector, seen map[int]int, from, to int) {
	t.Helper()
	for id := from; id < to; id++ {
		require.Equal(t, seen[id], c.times(id), "record %d is at or before the new checkpoint", id)
	}
}
