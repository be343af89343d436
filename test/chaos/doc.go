// Package chaos is gokcl's chaos suite: it runs examples/worker processes
// against the test servers while injecting faults, and checks that nothing
// was lost.
//
// # A run
//
// Each run is drawn from one seed (math/rand/v2): a new stream and lease
// table; Profile.Workers worker processes, each talking to Kinesis and
// DynamoDB through its own pair of fault proxies (package faultproxy:
// throttling, internal errors, resets, latency, lost answers, expired
// iterators), their processors failing or panicking on some batches; a
// producer writing records straight to the stream; and a schedule
// (NewSchedule) of kills (SIGKILL, then a restart), graceful restarts
// (SIGTERM), pauses past the failover time (SIGSTOP, SIGCONT: zombies),
// network partitions, fault storms, splits, merges, UpdateShardCount and one
// lineage: shard P splits into B and X, then A and B merge into C, while the
// workers are behind on P. After the chaos phase the faults stop, every
// worker runs, the run waits for every record to be processed, stops the
// workers gracefully and reads the lease table.
//
// # What is checked
//
// The producer writes, for each partition key, records "<key>:<n>" with n
// counting up, plain or in KPL aggregates of one key. The workers print
// every record they process with the time. The DynamoDB proxies log every
// lease write the server applied, with the lease as it stood after it (the
// UpdateItem answer's ALL_NEW attributes), even when the worker never got
// the answer. Check then reports:
//
//   - lost records: a checkpoint passed the record before anyone processed
//     it (none allowed), apart from records simply not processed yet when
//     the run stopped waiting (reported as unprocessed: a stall);
//   - per key, records first processed out of the order they were written;
//   - per lease, in counter order, a checkpoint before the previous one, and
//     two writes with the same resulting counter (two owners);
//   - records processed by a worker whose lease had expired;
//   - duplicates, counted, allowed.
//
// The run fails on any of these, or when a worker exits on its own or does
// not stop when asked. A failure prints the seed and the command that
// replays the run; the workers' outputs and logs are kept.
//
// # Running it
//
//	make chaos RUNS=5 [SEED=S] [PROFILE=long|short]
//
// runs RUNS runs with seeds S, S+1, …, printing one line per run and a table
// of totals. `make test` runs one short run with a seed from the clock. See
// TestIntegrationChaos for the environment variables.
//
// A run is reproducible from its seed as far as the servers allow: the
// schedule, the records produced and the sequence of faults each operation
// of each worker meets are the same, but which request is the n-th depends
// on timing.
package chaos
