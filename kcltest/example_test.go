package kcltest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// A processor that keeps, per partition key, the values in the order it
// received them, tested across a split and a merge: the consumer finishes a
// parent shard before it starts its children, so each key's values arrive in
// the order they were written.
func Example_splitAndMerge() {
	var mu sync.Mutex
	byKey := map[string][]string{}
	keep := func(string) consumer.RecordProcessor {
		return consumer.RecordProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range b.Records {
				byKey[r.PartitionKey] = append(byKey[r.PartitionKey], string(r.Data))
			}
			return nil
		})
	}

	stream := kcltest.NewStream(2)
	rec := kcltest.NewRecorder()
	w, err := kcltest.Start(context.Background(), kcltest.Config(stream, lease.NewMemoryStore(), "worker-1", rec.Wrap(keep)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Stop()

	var written []kcltest.PutResult
	put := func(value string) {
		for _, key := range []string{"alice", "bob", "carol", "dave"} {
			res, err := stream.Put(key, "", []byte(value))
			if err != nil {
				panic(err)
			}
			written = append(written, res)
		}
	}
	put("1")
	shards := stream.OpenShards()
	left, right, _ := stream.Split(shards[0], nil) // in the middle of its hash key range
	put("2")
	merged, _ := stream.Merge(left, right)
	put("3")
	_, _ = stream.Merge(merged, shards[1]) // one shard left
	put("4")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rec.WaitProcessed(ctx, written...); err != nil {
		fmt.Println(err)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for _, key := range []string{"alice", "bob", "carol", "dave"} {
		fmt.Println(key, byKey[key])
	}
	// Output:
	// alice [1 2 3 4]
	// bob [1 2 3 4]
	// carol [1 2 3 4]
	// dave [1 2 3 4]
}

// A processor whose downstream fails twice: the consumer delivers the same
// batch again until it succeeds, and skips nothing.
func Example_retry() {
	var mu sync.Mutex
	var attempts []int
	flaky := func(string) consumer.RecordProcessor {
		return consumer.RecordProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, b.Attempt)
			if b.Attempt <= 2 {
				return errors.New("downstream unavailable")
			}
			return nil
		})
	}

	stream := kcltest.NewStream(1)
	var written []kcltest.PutResult
	for i := range 5 {
		res, _ := stream.Put(fmt.Sprintf("order-%d", i), "", []byte("payload"))
		written = append(written, res)
	}
	rec := kcltest.NewRecorder()
	w, err := kcltest.Start(context.Background(), kcltest.Config(stream, lease.NewMemoryStore(), "worker-1", rec.Wrap(flaky)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rec.WaitProcessed(ctx, written...); err != nil {
		fmt.Println(err)
		return
	}
	if err := w.Stop(); err != nil {
		fmt.Println(err)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Println("attempts:", attempts)
	fmt.Println("processed:", rec.Unique(), "duplicates:", rec.Duplicates())
	// Output:
	// attempts: [1 2 3]
	// processed: 5 duplicates: 0
}

// A worker that checkpoints after the third record, then crashes; the worker
// that takes its lease over (once it expires) resumes after that checkpoint.
func Example_restart() {
	stream := kcltest.NewStream(1)
	var written []kcltest.PutResult
	for i := range 6 {
		res, _ := stream.Put("key", "", []byte(fmt.Sprintf("record-%d", i)))
		written = append(written, res)
	}
	store := lease.NewMemoryStore()

	// The first worker processes everything but checkpoints only after
	// record-2, as a processor that checkpoints its own progress may.
	first := kcltest.NewRecorder()
	cfg := kcltest.Config(stream, store, "worker-1", first.Wrap(func(string) consumer.RecordProcessor {
		return consumer.RecordProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
			for _, r := range b.Records {
				if string(r.Data) == "record-2" {
					return b.CheckpointAt(ctx, r)
				}
			}
			return nil
		})
	}))
	cfg.ManualCheckpoint = true
	w1, err := kcltest.Start(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := first.WaitProcessed(ctx, written...); err != nil {
		fmt.Println(err)
		return
	}
	w1.Crash()

	second := kcltest.NewRecorder()
	cfg = kcltest.Config(stream, store, "worker-2", second.Wrap(nil))
	w2, err := kcltest.Start(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w2.Stop()
	if err := second.WaitProcessed(ctx, written[3:]...); err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range second.Records() {
		fmt.Println(string(r.Data))
	}
	// Output:
	// record-3
	// record-4
	// record-5
}
