package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gokcl/kcl/checkpoint"
)

// handOffs records OnHandOff calls for a test to act on, as a consumer would.
type handOffs struct {
	mu    sync.Mutex
	asked []Lease
	at    []time.Time
	ch    chan Lease
}

func newHandOffs() *handOffs { return &handOffs{ch: make(chan Lease, 100)} }

func (h *handOffs) on(l Lease) {
	h.mu.Lock()
	h.asked = append(h.asked, l)
	h.at = append(h.at, time.Now())
	h.mu.Unlock()
	h.ch <- l
}

// holdTwo runs worker a holding two leases, with OnHandOff recorded by h and
// OnLost by lost; it returns when a has held them for 10s.
func holdTwo(t *testing.T, s Store, h *handOffs, lost *events) *running {
	createLeases(t, s, 2, "")
	cfg := Config{WorkerID: "a", OnHandOff: h.on}
	if lost != nil {
		cfg = lost.config(cfg)
		cfg.OnHandOff = h.on
	}
	a := runManager(t, s, cfg)
	time.Sleep(10 * time.Second)
	require.Len(t, a.Held(), 2)
	return a
}

// The whole hand-off: b joins and asks for one of a's two leases; a learns
// of it at its next renewal, still holds the lease and can checkpoint it,
// and releases it; b takes it within a poll of the release, at a's last
// checkpoint. Nobody loses anything.
func TestHandOffCompletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		h := newHandOffs()
		var aEvents, bEvents events
		var acquired timeBox
		a := holdTwo(t, s, h, &aEvents)

		// b asks at its second scan: a newcomer steals nothing in its first
		// TakerInterval (see Visibility in balance.go).
		asked := time.Now().Add(defaultTaker)
		bCfg := bEvents.config(Config{WorkerID: "b"})
		onAcquired := bCfg.OnAcquired
		bCfg.OnAcquired = func(l Lease) { acquired.set(time.Now()); onAcquired(l) }
		b := runManager(t, s, bCfg)
		require.Empty(t, b.Held(), "b waits for the holder")
		l := <-h.ch
		require.Equal(t, "b", l.Owner)
		require.Equal(t, "a", l.CheckpointOwner)
		require.LessOrEqual(t, time.Since(asked), defaultRenew, "a learns at its next renewal")

		held, ok := a.Lease(l.Key)
		require.True(t, ok, "still held during the hand-off")
		require.Equal(t, "a", held.Holder())
		ctx := context.Background()
		final := checkpoint.At("4711", 3)
		require.NoError(t, a.Checkpoint(ctx, l.Key, final), "checkpoints succeed during the hand-off")
		time.Sleep(defaultRenew) // and renewals keep it
		require.NoError(t, a.Release(ctx, l.Key))
		released := time.Now()

		time.Sleep(200 * time.Millisecond) // a poll is 167ms
		got, ok := b.Lease(l.Key)
		require.True(t, ok, "b took the lease after the release")
		require.Equal(t, final, got.Checkpoint, "from a's last checkpoint")
		require.Empty(t, got.CheckpointOwner)
		require.Equal(t, int64(1), got.OwnerSwitchesSinceCheckpoint)
		require.Len(t, a.Held(), 1)
		require.Len(t, b.Held(), 1)

		require.LessOrEqual(t, acquired.get().Sub(released), DefaultFailoverTime/3/20+2*time.Millisecond,
			"b takes it within a poll of the release")
		calls := s.callsFor(l.Key)
		require.Contains(t, calls, "HandOff")
		require.Equal(t, "Take", calls[len(calls)-1])
		for _, e := range aEvents.get() {
			require.NotEqual(t, byte('-'), e[0], "no OnLost: the lease was handed over")
		}
		require.Equal(t, []string{"+" + l.Key}, bEvents.get())
	})
}

// A holder that does not release in HandOffTimeout loses the lease: the new
// owner takes it as a plain steal, and the holder's next write is refused.
func TestHandOffTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		h := newHandOffs()
		var lostAt timeBox
		createLeases(t, s, 2, "")
		a := runManager(t, s, Config{WorkerID: "a", OnHandOff: h.on, OnLost: func(Lease) { lostAt.set(time.Now()) }})
		time.Sleep(10 * time.Second)

		asked := time.Now().Add(defaultTaker) // b's second scan
		b := runManager(t, s, Config{WorkerID: "b"})
		l := <-h.ch // and never released
		time.Sleep(DefaultFailoverTime + DefaultFailoverTime/10)
		got, ok := b.Lease(l.Key)
		require.True(t, ok, "taken after the timeout")
		require.Empty(t, got.CheckpointOwner)
		var taken time.Time
		_, _, history := s.snapshot()
		for _, c := range history {
			if c.key == l.Key && c.to == "b" && !c.handOff {
				taken = c.at
			}
		}
		require.GreaterOrEqual(t, taken.Sub(asked), DefaultFailoverTime)
		require.Less(t, taken.Sub(asked), DefaultFailoverTime+DefaultFailoverTime/20)

		time.Sleep(defaultRenew)
		require.Len(t, a.Held(), 1, "a lost it at its next write")
		require.False(t, lostAt.get().IsZero())
		require.ErrorIs(t, a.Checkpoint(context.Background(), l.Key, checkpoint.At("1", 0)), ErrLeaseLost)
	})
}

// A holder that dies during a hand-off costs no more than a crash: the new
// owner takes the lease when it expires, at the last checkpoint written.
func TestHandOffHolderDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		createLeases(t, s, 2, "")
		h := newHandOffs()
		aStore := &crashStore{Store: s}
		a, err := NewManager(aStore, Config{WorkerID: "a", OnHandOff: h.on})
		require.NoError(t, err)
		ra := startManager(t, a)
		time.Sleep(10 * time.Second)
		require.NoError(t, a.Checkpoint(context.Background(), "shard-0", checkpoint.At("77", 0)))
		require.NoError(t, a.Checkpoint(context.Background(), "shard-1", checkpoint.At("77", 0)))

		b := runManager(t, s, Config{WorkerID: "b"})
		l := <-h.ch
		lastRenewal := a.lastRenewed(l.Key)
		aStore.crashed.Store(true) // dies before releasing
		require.NoError(t, ra.stop())

		time.Sleep(2 * DefaultFailoverTime)
		got, ok := b.Lease(l.Key)
		require.True(t, ok)
		require.Equal(t, checkpoint.At("77", 0), got.Checkpoint)
		_, _, history := s.snapshot()
		var taken time.Time
		for _, c := range history {
			if c.key == l.Key && c.to == "b" && !c.handOff {
				taken = c.at
			}
		}
		require.LessOrEqual(t, taken.Sub(lastRenewal), DefaultFailoverTime+defaultTaker, "the failover bound")
	})
}

// A new owner that dies during a hand-off: the holder releases the lease to
// it, nobody renews it, and it expires; the surviving holder takes it back
// at the checkpoint it wrote last. Nothing is lost.
func TestHandOffNewOwnerDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		h := newHandOffs()
		a := holdTwo(t, s, h, nil)
		bStore := &crashStore{Store: s}
		bm, err := NewManager(bStore, Config{WorkerID: "b"})
		require.NoError(t, err)
		rb := startManager(t, bm)
		l := <-h.ch
		bStore.crashed.Store(true)
		require.NoError(t, rb.stop())

		final := checkpoint.At("99", 0)
		require.NoError(t, a.Checkpoint(context.Background(), l.Key, final))
		require.NoError(t, a.Release(context.Background(), l.Key))
		released := time.Now()
		require.Equal(t, "b", stored(t, s, l.Key).Owner, "released to b")

		time.Sleep(DefaultFailoverTime + 2*defaultTaker)
		got, ok := a.Lease(l.Key)
		require.True(t, ok, "taken back after it expired")
		require.Equal(t, final, got.Checkpoint)
		_, _, history := s.snapshot()
		var taken time.Time
		for _, c := range history {
			if c.key == l.Key && c.to == "a" && c.from == "b" {
				taken = c.at
			}
		}
		require.GreaterOrEqual(t, taken.Sub(released), DefaultFailoverTime)
		require.LessOrEqual(t, taken.Sub(released), DefaultFailoverTime+defaultTaker)
	})
}

// A shard that ends during its hand-off: the holder writes SHARD_END and
// releases; the new owner stops waiting and takes nothing.
func TestHandOffRacesShardEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		h := newHandOffs()
		a := holdTwo(t, s, h, nil)
		b := runManager(t, s, Config{WorkerID: "b"})
		l := <-h.ch
		require.NoError(t, a.FinishShard(context.Background(), l.Key, []string{"child"}))
		require.NoError(t, a.Release(context.Background(), l.Key))
		time.Sleep(2 * defaultTaker)
		_, ok := b.Lease(l.Key)
		require.False(t, ok, "a finished lease is not taken")
		b.mu.Lock()
		waiting := len(b.incoming)
		b.mu.Unlock()
		require.Zero(t, waiting, "b stopped waiting")
		require.True(t, stored(t, s, l.Key).Finished())
		calls := s.callsFor(l.Key)
		require.NotContains(t, calls[slices.Index(calls, "HandOff"):], "Take", "nobody takes a finished lease")
	})
}

// A take by a worker that does not know checkpointOwner (a KCL 2.x), which
// moves the counter and leaves the attribute behind, is a loss, never
// mistaken for a hand-off.
func TestForeignTakeNotMistakenForHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		var lostAt timeBox
		h := newHandOffs()
		createLeases(t, s, 1, "")
		a := runManager(t, s, Config{WorkerID: "a", OnHandOff: h.on, OnLost: func(Lease) { lostAt.set(time.Now()) }})
		time.Sleep(time.Second)

		// What a KCL 2.x take leaves after a hand-off to b was asked: its
		// own owner, the counter moved, checkpointOwner still a.
		s.MemoryStore.mu.Lock()
		l := s.MemoryStore.leases["shard-0"]
		l.Owner, l.CheckpointOwner, l.Counter = "kcl2", "a", l.Counter+1
		s.MemoryStore.leases["shard-0"] = l
		s.MemoryStore.mu.Unlock()

		time.Sleep(defaultRenew)
		require.Empty(t, a.Held())
		require.False(t, lostAt.get().IsZero(), "lost")
		require.Empty(t, h.asked, "not a hand-off")
	})
}

// foundlessStore refuses writes without saying what it found, as dynalite
// does; the holder then reads the lease to learn of a hand-off.
type foundlessStore struct{ *hookStore }

func stripFound(err error) error {
	var r *RefusedError
	if errors.As(err, &r) {
		return &RefusedError{Err: r.Err}
	}
	return err
}

func (s foundlessStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	res, err := s.hookStore.Renew(ctx, l)
	return res, stripFound(err)
}

func (s foundlessStore) UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error) {
	res, err := s.hookStore.UpdateCheckpoint(ctx, l)
	return res, stripFound(err)
}

func (s foundlessStore) Release(ctx context.Context, l Lease) (Lease, error) {
	res, err := s.hookStore.Release(ctx, l)
	return res, stripFound(err)
}

func TestHandOffLearnedWithoutFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := foundlessStore{newHookStore()}
		h := newHandOffs()
		a := holdTwo(t, s, h, nil)
		runManager(t, s, Config{WorkerID: "b"})
		l := <-h.ch
		require.Equal(t, "b", l.Owner)
		require.Contains(t, s.callsFor(l.Key), "Get", "read after the refusal")
		require.NoError(t, a.Release(context.Background(), l.Key))
	})
}

// A holder learns of a hand-off from its scan when that comes before its
// next renewal, and renews at once to confirm it.
func TestHandOffLearnedAtScan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		h := newHandOffs()
		createLeases(t, s, 1, "")
		cfg := Config{WorkerID: "a", RenewInterval: 4 * time.Second, TakerInterval: time.Second, OnHandOff: h.on}
		runManager(t, s, cfg)
		time.Sleep(1100 * time.Millisecond) // renewals at 4s, 8s; scans every second
		asked := time.Now()
		_, err := s.HandOff(context.Background(), stored(t, s, "shard-0"), "b")
		require.NoError(t, err)
		<-h.ch
		require.LessOrEqual(t, time.Since(asked), time.Second, "at the next scan, not the renewal 2.9s later")
	})
}

// A hand-off to this worker asked by an earlier process with the same
// WorkerID (or an operator) is found by the first scan and followed.
func TestHandOffFoundAtScan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHookStore()
		createLeases(t, s, 2, "")
		runManager(t, s, Config{WorkerID: "a"}) // OnHandOff nil: releases at once
		time.Sleep(time.Second)
		_, err := s.HandOff(context.Background(), stored(t, s, "shard-1"), "b")
		require.NoError(t, err)

		b := runManager(t, s, Config{WorkerID: "b"})
		time.Sleep(defaultRenew + time.Second)
		_, ok := b.Lease("shard-1")
		require.True(t, ok)
	})
}

// A lone worker owns every lease as soon as they exist: Rescan wakes the
// taker, and with its worker row written it plans in full on its first
// scan instead of probing.
func TestLoneWorkerTakesEverythingAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSimStore()
		s.latency = func() time.Duration { return simLatency }
		start := time.Now()
		a := runManager(t, s, Config{WorkerID: "a"})
		createLeases(t, s, 8, "")
		a.Rescan()
		time.Sleep(50 * time.Millisecond)
		require.Len(t, a.Held(), 8, "within a scan and a round of takes")
		for key, at := range takenAt(s, "a") {
			require.Less(t, at.Sub(start), 50*time.Millisecond, key)
		}
	})
}

// Without worker rows a lone worker still probes: one lease at once, the
// rest a cycle later.
func TestProbeWithoutWorkerRows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := struct{ Store }{NewMemoryStore()}
		createLeases(t, s, 8, "")
		a := runManager(t, s, Config{WorkerID: "a"})
		require.Len(t, a.Held(), 1)
		time.Sleep(defaultTaker + time.Second)
		require.Len(t, a.Held(), 8)
	})
}

// A running worker keeps its row; StopTaking deletes it; a crashed worker's
// row is deleted by the others twice FailoverTime after it stopped.
func TestWorkerRows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemoryStore()
		workers := func() []string {
			_, ws, err := s.ListAll(context.Background())
			require.NoError(t, err)
			var ids []string
			for _, w := range ws {
				ids = append(ids, w.ID)
			}
			return ids
		}
		a := runManager(t, s, Config{WorkerID: "a"})
		cs := &crashStore{Store: s}
		bm, err := NewManager(cs, Config{WorkerID: "b"})
		require.NoError(t, err)
		rb := startManager(t, bm)
		c := runManager(t, s, Config{WorkerID: "c"})
		require.Equal(t, []string{"a", "b", "c"}, workers())

		c.StopTaking()
		time.Sleep(time.Second)
		require.Equal(t, []string{"a", "b"}, workers(), "deleted at StopTaking")
		require.NoError(t, c.stop())

		cs.crashed.Store(true)
		require.NoError(t, rb.stop())
		time.Sleep(2*DefaultFailoverTime + 2*defaultTaker)
		require.Equal(t, []string{"a"}, workers(), "the dead worker's row deleted")
		require.NoError(t, a.stop())
		require.Empty(t, workers(), "deleted when Run returns")
	})
}

// malformedStore makes the lease shard-0 a row that cannot be read, once
// bad is set: scans list it as malformed, and Get fails.
type malformedStore struct {
	*hookStore
	bad atomic.Bool
}

func (s *malformedStore) ListAll(ctx context.Context) ([]Lease, []Worker, error) {
	ls, ws, err := s.hookStore.ListAll(ctx)
	for i := range ls {
		if ls[i].Key == "shard-0" && s.bad.Load() {
			ls[i] = Lease{Key: "shard-0", Malformed: fmt.Errorf("%w: attribute leaseCounter: missing", ErrMalformedLease)}
		}
	}
	return ls, ws, err
}

func (s *malformedStore) Get(ctx context.Context, key string) (Lease, error) {
	if key == "shard-0" && s.bad.Load() {
		_ = s.hook(ctx, "Get", Lease{Key: key})
		return Lease{}, fmt.Errorf("get lease %s: %w: attribute leaseCounter: missing", key, ErrMalformedLease)
	}
	return s.hookStore.Get(ctx, key)
}

// A worker waiting for a hand-off stops polling the lease once its row
// cannot be read: its scans skip the row until an operator repairs it, and
// they find the hand-off again then.
func TestHandOffWaitEndsOnMalformedRow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &malformedStore{hookStore: newHookStore()}
		require.NoError(t, s.Create(context.Background(), Lease{Key: "shard-0", Owner: "b", CheckpointOwner: "a", Checkpoint: checkpoint.TrimHorizon}))
		b := runManager(t, s, Config{WorkerID: "b"})
		time.Sleep(time.Second)
		require.Contains(t, s.callsFor("shard-0"), "Get", "b waits for a's release")

		s.bad.Store(true)
		before := len(s.callsFor("shard-0"))
		time.Sleep(time.Minute)
		require.LessOrEqual(t, len(s.callsFor("shard-0"))-before, 1, "polled once more, then stopped")

		s.bad.Store(false) // repaired; a released it meanwhile
		_, err := s.Release(context.Background(), stored(t, s, "shard-0"))
		require.NoError(t, err)
		time.Sleep(defaultTaker + time.Second)
		_, ok := b.Lease("shard-0")
		require.True(t, ok, "found at a scan, taken once released")
	})
}

// gatedStore holds the next Renew, and the next UpdateCheckpoint, at a gate
// once armed; the checkpoint, let through, first has the lease taken by
// worker x (a hand-off that timed out on x's side).
type gatedStore struct {
	*MemoryStore
	renewArmed, checkpointArmed atomic.Bool
	renewGate, checkpointGate   chan struct{}
	entered                     chan string
}

func (s *gatedStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	if s.renewArmed.CompareAndSwap(true, false) {
		s.entered <- "Renew"
		<-s.renewGate
	}
	return s.MemoryStore.Renew(ctx, l)
}

func (s *gatedStore) UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error) {
	if s.checkpointArmed.CompareAndSwap(true, false) {
		s.entered <- "UpdateCheckpoint"
		<-s.checkpointGate
		if _, err := s.MemoryStore.Take(ctx, mustGet(s.MemoryStore, l.Key), "x"); err != nil {
			return Lease{}, err
		}
	}
	return s.MemoryStore.UpdateCheckpoint(ctx, l)
}

func mustGet(s *MemoryStore, key string) Lease {
	l, err := s.Get(context.Background(), key)
	if err != nil {
		panic(err)
	}
	return l
}

// Without OnHandOff, a lease asked for is released and reported lost once:
// when a write of the lease that ran first is refused (the lease is then
// dropped, and OnLost called), the release that follows finds it gone and
// reports nothing more. A second OnLost would stop a shard worker the
// consumer may have started for the lease since.
func TestHandOffReleaseAfterALossReportsItOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &gatedStore{MemoryStore: NewMemoryStore(), renewGate: make(chan struct{}),
			checkpointGate: make(chan struct{}), entered: make(chan string, 2)}
		createLeases(t, s, 1, "")
		var ev events
		a := runManager(t, s, ev.config(Config{WorkerID: "a"})) // OnHandOff nil
		time.Sleep(time.Second)
		require.Len(t, a.Held(), 1)
		ctx := context.Background()

		s.renewArmed.Store(true)
		_, err := s.HandOff(ctx, stored(t, s, "shard-0"), "x")
		require.NoError(t, err)
		require.Equal(t, "Renew", <-s.entered) // a renewal holds the lease's lock
		s.checkpointArmed.Store(true)
		checkpointed := make(chan error, 1)
		go func() { checkpointed <- a.Checkpoint(ctx, "shard-0", checkpoint.At("100", 0)) }()
		synctest.Wait() // the checkpoint waits for the lock

		close(s.renewGate) // the renewal learns of the hand-off; the release is queued behind the checkpoint
		require.Equal(t, "UpdateCheckpoint", <-s.entered)
		synctest.Wait() // the release has read the lease and waits for the lock
		close(s.checkpointGate)
		require.ErrorIs(t, <-checkpointed, ErrLeaseLost)
		time.Sleep(time.Second)
		require.Empty(t, a.Held())
		require.Equal(t, []string{"+shard-0", "-shard-0"}, ev.get(), "lost once")
	})
}
