// Package kcltest tests record processors, and anything else built on a
// gokcl consumer, without Kinesis or DynamoDB: an in-memory stream, workers
// that can be crashed and restarted, and a recorder of what was processed.
// It imports neither testing nor an assertion library: its functions return
// errors, so they serve tests, benchmarks and examples alike.
//
//   - [Stream] is an in-memory Kinesis data stream that satisfies
//     consumer.KinesisAPI: Put and PutAggregated write plain records and KPL
//     aggregates, routed by hash key as the service routes them; Split,
//     Merge, Trim and retention reshape it; FailNext, FailRate and SetFault
//     inject the service's own errors (ThrottlingError, ExpiredIteratorError,
//     InternalFailureError); iterators expire, and MillisBehindLatest and
//     arrival timestamps behave as the service's.
//   - [Account] holds several streams of one AWS account, for a consumer of
//     many streams: it routes each call to the stream it names, answers
//     DescribeStreamSummary and ListStreams with each stream's ARN and
//     creation time (a multi-stream lease table's stream identity), and
//     deletes and re-creates streams while consumers run.
//   - The lease table is lease.NewMemoryStore(), shared by the workers of
//     one application.
//   - [Start] runs a consumer as a [Worker]; [Worker.Crash] stops it as a
//     killed process stops (no more writes, no more callbacks, leases left
//     to expire), and Start again with the same stream and store is the
//     restart or the other instance that takes over. [Config] fills in a
//     consumer.Config with intervals short enough for a test.
//   - [Recorder] wraps the processors and records what they processed;
//     [Recorder.WaitProcessed] waits for given records.
//
// # Virtual time
//
// Nothing in the package sleeps or reads a clock but through the time
// package, and the stream starts no goroutine, so inside a testing/synctest
// bubble every duration — FailoverTime, backoffs, iterator expiry,
// retention — passes in virtual time: a test of a 10-second failover runs in
// milliseconds:
//
//	func TestFailover(t *testing.T) {
//		synctest.Test(t, func(t *testing.T) {
//			stream := kcltest.NewStream(1)
//			store := lease.NewMemoryStore()
//			rec := kcltest.NewRecorder()
//			cfg := kcltest.Config(stream, store, "a", rec.Wrap(newMyProcessor))
//			cfg.FailoverTime = 10 * time.Second
//			a, err := kcltest.Start(t.Context(), cfg)
//			if err != nil {
//				t.Fatal(err)
//			}
//			first, _ := stream.Put("key", "", []byte("one"))
//			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
//			defer cancel()
//			if err := rec.WaitProcessed(ctx, first); err != nil {
//				t.Fatal(err)
//			}
//			a.Crash()
//			cfg.WorkerID = "b"
//			b, err := kcltest.Start(t.Context(), cfg) // takes the lease once it expires
//			if err != nil {
//				t.Fatal(err)
//			}
//			second, _ := stream.Put("key", "", []byte("two"))
//			if err := rec.WaitProcessed(ctx, second); err != nil {
//				t.Fatal(err)
//			}
//			if err := b.Stop(); err != nil {
//				t.Fatal(err)
//			}
//		})
//	}
//
// Make the stream, the store, the workers and the contexts inside the
// bubble, give every wait a deadline (a minute of virtual time costs
// nothing), and let the test end with its workers stopped: Start with
// t.Context() does that for a test that fails half-way. Time in a bubble
// moves only when every goroutine in it is blocked, so a processor that
// calls a real network service, or waits on something outside the bubble,
// stalls it.
//
// The package's examples run in real time instead (an example cannot open a
// bubble), with [Config]'s short intervals: each takes a second or two.
//
// # Why the package imports consumer
//
// kcltest imports consumer (a Worker runs one, and wraps its processors), so
// consumer's own tests that use kcltest are in the external test package
// consumer_test; the few internals they check are exported to it by an
// export_test.go file. Keeping the stream in a package of its own, so that
// consumer's in-package tests could import it, would have split this
// package in two for users, or left the stream's methods documented only in
// an internal package behind a type alias.
package kcltest
