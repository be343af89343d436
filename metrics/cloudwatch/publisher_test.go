package kclcw

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/internal/testenv"
	"github.com/gokcl/kcl/lease"
)

func newPublisher(t *testing.T, s *cwServer, o Options) *Publisher {
	t.Helper()
	o.Client, o.Namespace = s.client(), "billing"
	p, err := New(o)
	require.NoError(t, err)
	return p
}

func processed(shard string, records int, lag int64, d time.Duration, err error) consumer.BatchProcessed {
	return consumer.BatchProcessed{Stream: "orders", Worker: "w1", Shard: shard, Records: records, Bytes: int64(records) * 10,
		MillisBehindLatest: lag, Duration: d, Attempt: 1, Err: err}
}

// The KCL's ProcessTask metrics, accumulated into statistic sets, reach
// CloudWatch through the SDK in the KCL's namespace and dimensions.
func TestProcessTaskMetrics(t *testing.T) {
	s := newServer(t)
	p := newPublisher(t, s, Options{})
	p.OnBatchProcessed(processed("shardId-1", 100, 5000, 20*time.Millisecond, nil))
	p.OnBatchProcessed(processed("shardId-1", 50, 1000, 40*time.Millisecond, errors.New("downstream down")))
	p.OnBatchProcessed(processed("shardId-1", 50, 3000, 30*time.Millisecond, nil))
	p.OnBatchProcessed(processed("shardId-2", 7, 0, 10*time.Millisecond, nil))
	require.NoError(t, p.Flush(context.Background()))

	reqs := s.received()
	require.Len(t, reqs, 1)
	require.Equal(t, "PutMetricData", reqs[0].Operation)
	require.Equal(t, "billing", reqs[0].Namespace)
	got := s.data()
	shard1 := "Operation=ProcessTask,ShardId=shardId-1"
	rp := got["RecordsProcessed "+shard1]
	require.Equal(t, "Count", rp.Unit)
	require.Equal(t, []float64{3, 150, 0, 100}, []float64{rp.Count, rp.Sum, rp.Min, rp.Max}, "a failed batch counts as 0 records")
	require.Equal(t, 1500.0, got["DataBytesProcessed "+shard1].Sum)
	require.Equal(t, "Bytes", got["DataBytesProcessed "+shard1].Unit)
	lag := got["MillisBehindLatest "+shard1]
	require.Equal(t, []float64{3, 1000, 5000}, []float64{lag.Count, lag.Min, lag.Max})
	require.Equal(t, "Milliseconds", lag.Unit)
	require.Equal(t, []float64{3, 2}, []float64{got["Success "+shard1].Count, got["Success "+shard1].Sum})
	require.Equal(t, 90.0, got["Time "+shard1].Sum)
	require.Equal(t, 90.0, got["RecordProcessor.processRecords.Time "+shard1].Sum)
	require.Equal(t, 4.0, got["MillisBehindLatest Operation=ApplicationTracker"].Count, "every shard's lag, without a shard")
	require.Equal(t, 7.0, got["RecordsProcessed Operation=ProcessTask,ShardId=shardId-2"].Sum)
	for _, d := range got {
		require.WithinDuration(t, time.Now(), d.Timestamp, time.Minute, d.Name)
	}

	require.NoError(t, p.Flush(context.Background()))
	require.Len(t, s.received(), 1, "nothing left to send: no request")
}

func TestFetchAndLeaseMetrics(t *testing.T) {
	s := newServer(t)
	p := newPublisher(t, s, Options{})
	p.OnBatchFetched(consumer.BatchFetched{Stream: "orders", Worker: "w1", Shard: "shardId-1", Records: 2, Latency: 15 * time.Millisecond})
	p.OnBatchFetched(consumer.BatchFetched{Stream: "orders", Worker: "w1", Shard: "shardId-1", MillisBehindLatest: 0, Latency: 5 * time.Millisecond})
	p.OnFetchError(consumer.FetchError{Shard: "shardId-1", ExpiredIterator: true, Latency: 3 * time.Millisecond})
	lost := fmt.Errorf("refused: %w", lease.ErrLeaseLost)
	p.OnCheckpoint(lease.CheckpointWrite{Worker: "w1", Shard: "shardId-1", Kind: lease.CheckpointNow, Latency: 8 * time.Millisecond})
	p.OnCheckpoint(lease.CheckpointWrite{Worker: "w1", Shard: "shardId-1", Kind: lease.CheckpointDeferred, Err: lost})
	p.OnCheckpoint(lease.CheckpointWrite{Worker: "w1", Shard: "shardId-1", Kind: lease.CheckpointShardEnd, Latency: 9 * time.Millisecond})
	p.OnRenewal(lease.Renewal{Worker: "w1", Shard: "shardId-1", Latency: 4 * time.Millisecond})
	p.OnRenewal(lease.Renewal{Worker: "w1", Shard: "shardId-2", Err: lost})
	p.OnLeaseEvent(lease.LeaseEvent{Worker: "w1", Shard: "shardId-2", Kind: lease.LeaseLost, Reason: lease.ReasonRefused})
	p.OnLeaseEvent(lease.LeaseEvent{Worker: "w1", Shard: "shardId-3", Kind: lease.LeaseTaken, Reason: lease.ReasonUnowned})
	p.OnLeaseEvent(lease.LeaseEvent{Worker: "w1", Shard: "shardId-4", Kind: lease.LeaseHandedOff, Reason: lease.ReasonHandOff, NewOwner: "w2"})
	p.OnTakerCycle(lease.TakerCycle{Worker: "w1", Duration: 30 * time.Millisecond, Scan: 20 * time.Millisecond,
		Leases: 10, Unfinished: 8, Held: 3, Available: 2, Workers: 3, Planned: 3, Taken: 1, Asked: 1})
	p.OnTakerCycle(lease.TakerCycle{Worker: "w1", Duration: 50 * time.Millisecond, Scan: 50 * time.Millisecond, Err: errors.New("scan failed")})
	require.NoError(t, p.Flush(context.Background()))
	got := s.data()

	shard := "Operation=ProcessTask,ShardId=shardId-1"
	require.Equal(t, []float64{3, 2}, []float64{got["KinesisDataFetcher.getRecords.Success "+shard].Count, got["KinesisDataFetcher.getRecords.Success "+shard].Sum})
	require.Equal(t, 23.0, got["KinesisDataFetcher.getRecords.Time "+shard].Sum)
	require.Equal(t, 1.0, got["ExpiredIterator "+shard].Sum)
	require.Equal(t, 1.0, got["RecordsProcessed "+shard].Count, "the empty batch's RecordsProcessed 0, as the KCL publishes for idle shards")
	require.Equal(t, 1.0, got["MillisBehindLatest "+shard].Count)
	require.Equal(t, []float64{2, 1}, []float64{got["UpdateLease.Success "+shard].Count, got["UpdateLease.Success "+shard].Sum})
	require.Equal(t, 1.0, got["UpdateLease.Success Operation=ShutdownTask,ShardId=shardId-1"].Sum)

	renew := "Operation=RenewAllLeases,WorkerIdentifier=w1"
	require.Equal(t, []float64{2, 1}, []float64{got["RenewLease.Success "+renew].Count, got["RenewLease.Success "+renew].Sum})
	require.Equal(t, 1.0, got["LostLeases "+renew].Sum, "a hand-off is not a loss")
	require.Equal(t, 3.0, got["CurrentLeases "+renew].Sum)

	take := "Operation=TakeLeases,WorkerIdentifier=w1"
	require.Equal(t, []float64{2, 1}, []float64{got["ListLeases.Success "+take].Count, got["ListLeases.Success "+take].Sum})
	require.Equal(t, 70.0, got["ListLeases.Time "+take].Sum)
	require.Equal(t, []float64{2, 1}, []float64{got["Success "+take].Count, got["Success "+take].Sum})
	require.Equal(t, 80.0, got["Time "+take].Sum)
	// Of 3 leases planned, 1 taken and 1 asked for (a hand-off, which comes
	// later): 1 untaken.
	for name, want := range map[string]float64{"TakenLeases": 1, "UntakenLeases": 1, "LeasesToTake": 3, "NumWorkers": 3, "TotalLeases": 10, "ExpiredLeases": 2} {
		require.Equal(t, 1.0, got[name+" "+take].Count, name)
		require.Equal(t, want, got[name+" "+take].Sum, name)
	}
}

func TestSummaryLevelLeavesOutDetailedMetrics(t *testing.T) {
	s := newServer(t)
	p := newPublisher(t, s, Options{Level: LevelSummary})
	p.OnBatchFetched(consumer.BatchFetched{Shard: "shardId-1"})
	p.OnFetchError(consumer.FetchError{Shard: "shardId-1"})
	p.OnCheckpoint(lease.CheckpointWrite{Shard: "shardId-1", Kind: lease.CheckpointNow})
	p.OnRenewal(lease.Renewal{Worker: "w1"})
	p.OnTakerCycle(lease.TakerCycle{Worker: "w1", Leases: 4})
	require.NoError(t, p.Flush(context.Background()))
	names := map[string]bool{}
	for _, d := range s.data() {
		names[d.Name] = true
	}
	for _, detailed := range []string{"KinesisDataFetcher.getRecords.Success", "KinesisDataFetcher.getRecords.Time", "UpdateLease.Success",
		"RenewLease.Time", "ListLeases.Time", "LeasesToTake", "TotalLeases"} {
		require.False(t, names[detailed], detailed)
	}
	for _, summary := range []string{"RecordsProcessed", "MillisBehindLatest", "NumWorkers", "CurrentLeases", "Success", "Time"} {
		require.True(t, names[summary], summary)
	}
}

// Many distinct metrics go out in calls of at most BatchSize; large bodies
// are gzip-compressed by the SDK and read back by the server.
func TestBatches(t *testing.T) {
	s := newServer(t)
	p := newPublisher(t, s, Options{BatchSize: 400})
	const shards = 200 // 7 metrics each, 1 shared
	for i := range shards {
		p.OnBatchProcessed(processed(fmt.Sprintf("shardId-%012d", i), 10, 0, time.Millisecond, nil))
	}
	require.NoError(t, p.Flush(context.Background()))
	total, gzipped := 0, false
	for _, r := range s.received() {
		require.LessOrEqual(t, len(r.Data), 400)
		total += len(r.Data)
		gzipped = gzipped || r.Gzipped
	}
	require.Equal(t, shards*6+1, total)
	require.Len(t, s.received(), 4)
	require.True(t, gzipped, "the SDK compresses bodies above 10 KiB")
	require.Len(t, s.data(), total, "every metric sent once")
}

func TestRunSendsEveryBufferTimeAndAtTheEnd(t *testing.T) {
	s := newServer(t)
	p := newPublisher(t, s, Options{BufferTime: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	p.OnBatchProcessed(processed("shardId-1", 10, 0, time.Millisecond, nil))
	testenv.WaitFor(t, 10*time.Second, "a send within BufferTime", func() bool { return len(s.data()) > 0 })
	require.Error(t, p.Run(ctx), "Run twice")

	p.OnBatchProcessed(processed("shardId-9", 10, 0, time.Millisecond, nil))
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, 10.0, s.data()["RecordsProcessed Operation=ProcessTask,ShardId=shardId-9"].Sum, "the last values are sent before Run returns")
}

func TestFlushSizeStartsASendEarly(t *testing.T) {
	s := newServer(t)
	p := newPublisher(t, s, Options{BufferTime: time.Hour, FlushSize: 12})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	p.OnBatchProcessed(processed("shardId-1", 10, 0, time.Millisecond, nil)) // 7 metrics
	p.OnBatchProcessed(processed("shardId-2", 10, 0, time.Millisecond, nil)) // 6 more
	testenv.WaitFor(t, 10*time.Second, "a send once FlushSize metrics wait", func() bool { return len(s.received()) == 1 })
}

func TestMaxQueueSizeDropsNewMetrics(t *testing.T) {
	s := newServer(t)
	p := newPublisher(t, s, Options{MaxQueueSize: 7})
	p.OnBatchProcessed(processed("shardId-1", 10, 0, time.Millisecond, nil)) // 7 metrics: full
	p.OnBatchProcessed(processed("shardId-1", 5, 0, time.Millisecond, nil))  // same metrics: accumulated
	p.OnBatchProcessed(processed("shardId-2", 5, 0, time.Millisecond, nil))  // 6 new ones: dropped
	require.Equal(t, int64(6), p.Dropped())
	require.NoError(t, p.Flush(context.Background()))
	require.Len(t, s.data(), 7)
	require.Equal(t, 15.0, s.data()["RecordsProcessed Operation=ProcessTask,ShardId=shardId-1"].Sum)
}

func TestFailedSendIsReportedAndDropped(t *testing.T) {
	s := newServer(t)
	p := newPublisher(t, s, Options{})
	s.set(func(s *cwServer) { s.fail = true })
	p.OnBatchProcessed(processed("shardId-1", 10, 0, time.Millisecond, nil))
	err := p.Flush(context.Background())
	require.ErrorContains(t, err, "InternalServiceFault")
	s.set(func(s *cwServer) { s.fail = false })
	require.NoError(t, p.Flush(context.Background()))
	require.Len(t, s.received(), 1, "the failed metrics are not sent again")
}

// Hooks only touch memory: they return while a send hangs.
func TestHooksDoNotWaitForCloudWatch(t *testing.T) {
	s := newServer(t)
	hold := make(chan struct{})
	s.set(func(s *cwServer) { s.hold = hold })
	p := newPublisher(t, s, Options{})
	p.OnBatchProcessed(processed("shardId-1", 10, 0, time.Millisecond, nil))
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(context.Background()) }()
	testenv.WaitFor(t, 10*time.Second, "the send under way", func() bool { return len(s.received()) == 1 })
	for range 1000 {
		p.OnBatchProcessed(processed("shardId-2", 10, 0, time.Millisecond, nil))
	}
	close(hold)
	require.NoError(t, <-flushed)
	require.NoError(t, p.Flush(context.Background()))
	require.Equal(t, 10000.0, s.data()["RecordsProcessed Operation=ProcessTask,ShardId=shardId-2"].Sum)
}

func TestPutTimeoutBoundsASend(t *testing.T) {
	s := newServer(t)
	hold := make(chan struct{})
	defer close(hold)
	s.set(func(s *cwServer) { s.hold = hold })
	p := newPublisher(t, s, Options{PutTimeout: 50 * time.Millisecond})
	p.OnBatchProcessed(processed("shardId-1", 10, 0, time.Millisecond, nil))
	require.ErrorIs(t, p.Flush(context.Background()), context.DeadlineExceeded)
}

func TestOptionsValidated(t *testing.T) {
	s := newServer(t)
	for name, o := range map[string]Options{
		"no client":     {Namespace: "billing"},
		"no namespace":  {Client: s.client()},
		"negative":      {Client: s.client(), Namespace: "billing", BufferTime: -time.Second},
		"batch too big": {Client: s.client(), Namespace: "billing", BatchSize: 1001},
	} {
		_, err := New(o)
		require.ErrorIs(t, err, ErrInvalidOptions, name)
	}
	p, err := New(Options{Client: s.client(), Namespace: "billing"})
	require.NoError(t, err)
	require.Equal(t, DefaultBufferTime, p.o.BufferTime)
	require.Equal(t, DefaultBatchSize, p.o.BatchSize)
	require.Equal(t, DefaultMaxQueueSize, p.o.MaxQueueSize)
}
