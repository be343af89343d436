package consumer_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
	. "github.com/gokcl/kcl/consumer"
	"github.com/gokcl/kcl/kcltest"
	"github.com/gokcl/kcl/lease"
)

// iteratorLog is a stream that records the iterators asked for.
type iteratorLog struct {
	*kcltest.Stream
	mu  sync.Mutex
	got []*kinesis.GetShardIteratorInput
	at  []time.Time // when each was asked for
}

func (s *iteratorLog) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	s.mu.Lock()
	s.got = append(s.got, in)
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	return s.Stream.GetShardIterator(ctx, in, opts...)
}

func (s *iteratorLog) calls() []*kinesis.GetShardIteratorInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*kinesis.GetShardIteratorInput(nil), s.got...)
}

// Each way a fetcher starts or resumes a shard asks for the right iterator.
func TestIteratorTypes(t *testing.T) {
	const shard = "shardId-000000000000"
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	type want struct {
		typ types.ShardIteratorType
		seq string    // StartingSequenceNumber, if any
		ts  time.Time // Timestamp, if any
		// firstMinus, if set, is the Timestamp expected relative to when
		// the first iterator was asked for.
		firstMinus time.Duration
	}
	tests := []struct {
		name string
		// setup puts records and returns the lease to pre-create (if
		// any) and what to expect, in order, of the iterators asked for.
		setup func(t *testing.T, s *kcltest.Stream, cfg *Config) (*lease.Lease, []want)
		// then runs once the first iterator was asked for.
		then func(t *testing.T, s *kcltest.Stream)
	}{{
		name: "TrimHorizon",
		setup: func(t *testing.T, s *kcltest.Stream, cfg *Config) (*lease.Lease, []want) {
			cfg.InitialPosition = TrimHorizon
			return nil, []want{{typ: types.ShardIteratorTypeTrimHorizon}}
		},
	}, {
		name: "Latest",
		setup: func(t *testing.T, s *kcltest.Stream, cfg *Config) (*lease.Lease, []want) {
			cfg.InitialPosition = Latest
			return nil, []want{{typ: types.ShardIteratorTypeLatest}}
		},
	}, {
		name: "AtTimestamp",
		setup: func(t *testing.T, s *kcltest.Stream, cfg *Config) (*lease.Lease, []want) {
			cfg.InitialPosition = AtTimestamp(at)
			return nil, []want{{typ: types.ShardIteratorTypeAtTimestamp, ts: at}}
		},
	}, {
		name: "AT_TIMESTAMP checkpoint without a timestamp reads from the start",
		setup: func(t *testing.T, s *kcltest.Stream, cfg *Config) (*lease.Lease, []want) {
			cfg.InitialPosition = TrimHorizon
			return &lease.Lease{Key: shard, Checkpoint: checkpoint.AtTimestamp}, []want{{typ: types.ShardIteratorTypeTrimHorizon}}
		},
	}, {
		name: "a checkpoint resumes at its sequence number",
		setup: func(t *testing.T, s *kcltest.Stream, cfg *Config) (*lease.Lease, []want) {
			_, _ = s.Put("k", "", []byte("0"))
			res, err := s.Put("k", "", []byte("1"))
			require.NoError(t, err)
			return &lease.Lease{Key: shard, Checkpoint: checkpoint.At(res.SequenceNumber, 0)},
				[]want{{typ: types.ShardIteratorTypeAtSequenceNumber, seq: res.SequenceNumber}}
		},
	}, {
		name: "an expired iterator resumes after the last record fetched",
		setup: func(t *testing.T, s *kcltest.Stream, cfg *Config) (*lease.Lease, []want) {
			res, err := s.Put("k", "", []byte("0"))
			require.NoError(t, err)
			return nil, []want{{typ: types.ShardIteratorTypeTrimHorizon}, {typ: types.ShardIteratorTypeAfterSequenceNumber, seq: res.SequenceNumber}}
		},
		then: func(t *testing.T, s *kcltest.Stream) {
			time.Sleep(5 * time.Second) // the record is fetched and processed
			s.FailNext(kcltest.OpGetRecords, kcltest.ExpiredIteratorError())
		},
	}, {
		name: "a LATEST iterator that expired before any record restarts a minute before it",
		setup: func(t *testing.T, s *kcltest.Stream, cfg *Config) (*lease.Lease, []want) {
			cfg.InitialPosition = Latest
			return nil, []want{{typ: types.ShardIteratorTypeLatest}, {typ: types.ShardIteratorTypeAtTimestamp, firstMinus: time.Minute}}
		},
		then: func(t *testing.T, s *kcltest.Stream) {
			s.FailNext(kcltest.OpGetRecords, kcltest.ExpiredIteratorError())
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stream := &iteratorLog{Stream: newStream(testStream, 1)}
				store := lease.NewMemoryStore()
				cfg := testConfig(stream.Stream, store, "w1", newCollector().processor())
				cfg.Kinesis = stream
				pre, wants := tt.setup(t, stream.Stream, &cfg)
				if pre != nil {
					require.NoError(t, store.Create(t.Context(), *pre))
				}
				r := start(t, cfg)
				waitFor(t, time.Minute, "the first iterator", func() bool { return len(stream.calls()) > 0 })
				if tt.then != nil {
					tt.then(t, stream.Stream)
				}
				waitFor(t, time.Minute, "every iterator expected", func() bool { return len(stream.calls()) >= len(wants) })
				r.stop(t)
				got := stream.calls()[:len(wants)]
				for i, w := range wants {
					require.Equal(t, w.typ, got[i].ShardIteratorType, "iterator %d", i)
					require.Equal(t, w.seq, aws.ToString(got[i].StartingSequenceNumber), "iterator %d", i)
					if w.firstMinus != 0 {
						stream.mu.Lock()
						first := stream.at[0]
						stream.mu.Unlock()
						// The first LATEST iterator is taken just before it
						// is asked for: within the same instant, in a bubble.
						require.WithinDuration(t, first.Add(-w.firstMinus), aws.ToTime(got[i].Timestamp), 10*time.Millisecond, "iterator %d", i)
					} else if w.ts.IsZero() {
						require.Nil(t, got[i].Timestamp, "iterator %d", i)
					} else {
						require.WithinDuration(t, w.ts, aws.ToTime(got[i].Timestamp), time.Second, "iterator %d", i)
					}
				}
			})
		})
	}
}
