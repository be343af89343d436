package lease

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// MemoryStore is a Store in memory, for tests and for single-process use
// where nothing needs to survive the process. The zero value is not usable;
// call NewMemoryStore.
type MemoryStore struct {
	mu      sync.Mutex
	leases  map[string]Lease
	workers map[string]int64 // worker rows: ID to counter
}

var (
	_ HandOffStore = (*MemoryStore)(nil)
	_ WorkerStore  = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{leases: make(map[string]Lease), workers: make(map[string]int64)}
}

// List implements Store.
func (s *MemoryStore) List(ctx context.Context) ([]Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, l.Clone())
	}
	slices.SortFunc(out, func(a, b Lease) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Create implements Store.
func (s *MemoryStore) Create(ctx context.Context, l Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.leases[l.Key]; ok {
		return fmt.Errorf("create lease %s: %w", l.Key, ErrLeaseExists)
	}
	s.leases[l.Key] = l.Clone()
	return nil
}

// update applies change to the stored lease if its owner and counter match
// l's, and returns the result; fail is the error for a mismatch.
func (s *MemoryStore) update(ctx context.Context, op string, l Lease, fail error, change func(*Lease)) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[l.Key]
	if !ok {
		return Lease{}, fmt.Errorf("%s lease %s: no such lease: %w", op, l.Key, fail)
	}
	if cur.Owner != l.Owner || cur.CheckpointOwner != l.CheckpointOwner || cur.Counter != l.Counter {
		found := cur.Clone()
		return Lease{}, &RefusedError{Found: &found, Err: fmt.Errorf("%s lease %s: expected %s, found %s: %w",
			op, l.Key, describeHolder(l), describeHolder(cur), fail)}
	}
	change(&cur)
	cur.Counter++
	s.leases[l.Key] = cur
	return cur.Clone(), nil
}

// Renew implements Store.
func (s *MemoryStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	return s.update(ctx, "renew", l, ErrLeaseLost, func(*Lease) {})
}

// Take implements Store.
func (s *MemoryStore) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	return s.update(ctx, "take", l, ErrConflict, func(cur *Lease) {
		if h := cur.Holder(); h != "" && h != owner {
			cur.OwnerSwitchesSinceCheckpoint++
		}
		cur.Owner, cur.CheckpointOwner = owner, ""
	})
}

// Release implements Store.
func (s *MemoryStore) Release(ctx context.Context, l Lease) (Lease, error) {
	return s.update(ctx, "release", l, ErrLeaseLost, func(cur *Lease) {
		if cur.CheckpointOwner != "" {
			// A hand-off: the new owner, already in Owner, now holds it.
			cur.CheckpointOwner = ""
			cur.OwnerSwitchesSinceCheckpoint++
			return
		}
		cur.Owner = ""
	})
}

// Get implements HandOffStore.
func (s *MemoryStore) Get(ctx context.Context, key string) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[key]
	if !ok {
		return Lease{}, fmt.Errorf("get lease %s: %w", key, ErrLeaseNotFound)
	}
	return l.Clone(), nil
}

// HandOff implements HandOffStore.
func (s *MemoryStore) HandOff(ctx context.Context, l Lease, to string) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[l.Key]
	if !ok {
		return Lease{}, fmt.Errorf("hand off lease %s: no such lease: %w", l.Key, ErrConflict)
	}
	if l.Owner == "" || to == "" || l.Owner == to || cur.Owner != l.Owner || cur.CheckpointOwner != "" || cur.Finished() {
		found := cur.Clone()
		return Lease{}, &RefusedError{Found: &found, Err: fmt.Errorf("hand off lease %s from %q to %q: found %s, checkpoint %s: %w",
			l.Key, l.Owner, to, describeHolder(cur), cur.Checkpoint, ErrConflict)}
	}
	cur.Owner, cur.CheckpointOwner = to, l.Owner
	s.leases[l.Key] = cur
	return cur.Clone(), nil
}

// UpdateCheckpoint implements Store.
func (s *MemoryStore) UpdateCheckpoint(ctx context.Context, l Lease) (Lease, error) {
	if err := l.Validate(); err != nil {
		return Lease{}, err
	}
	l = l.Clone()
	return s.update(ctx, "checkpoint", l, ErrLeaseLost, func(cur *Lease) {
		cur.Checkpoint = l.Checkpoint
		cur.PendingCheckpoint = l.PendingCheckpoint
		if l.PendingCheckpoint == nil {
			cur.PendingCheckpointState = nil
		}
		if len(l.ChildShardIDs) > 0 {
			cur.ChildShardIDs = l.ChildShardIDs
		}
		cur.OwnerSwitchesSinceCheckpoint = 0
	})
}

// ListAll implements WorkerStore.
func (s *MemoryStore) ListAll(ctx context.Context) ([]Lease, []Worker, error) {
	leases, err := s.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	workers := make([]Worker, 0, len(s.workers))
	for id, c := range s.workers {
		workers = append(workers, Worker{ID: id, Counter: c})
	}
	slices.SortFunc(workers, func(a, b Worker) int { return strings.Compare(a.ID, b.ID) })
	return leases, workers, nil
}

// Heartbeat implements WorkerStore.
func (s *MemoryStore) Heartbeat(ctx context.Context, id string) (Worker, error) {
	if err := ctx.Err(); err != nil {
		return Worker{}, err
	}
	if id == "" {
		return Worker{}, fmt.Errorf("heartbeat: %w: empty worker id", ErrInvalidLease)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.workers[id]++
	return Worker{ID: id, Counter: s.workers[id]}, nil
}

// DeleteWorker implements WorkerStore.
func (s *MemoryStore) DeleteWorker(ctx context.Context, w Worker) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.workers[w.ID]
	switch {
	case !ok:
		return nil
	case c != w.Counter:
		return fmt.Errorf("delete worker %s: expected counter %d, found %d: %w", w.ID, w.Counter, c, ErrConflict)
	}
	delete(s.workers, w.ID)
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.leases, key)
	return nil
}

// describeHolder says who holds l, for error messages: "owner "w1" counter
// 4", or "owner "w2" checkpoint owner "w1" counter 4" during a hand-off.
func describeHolder(l Lease) string {
	if l.CheckpointOwner != "" {
		return fmt.Sprintf("owner %q checkpoint owner %q counter %d", l.Owner, l.CheckpointOwner, l.Counter)
	}
	return fmt.Sprintf("owner %q counter %d", l.Owner, l.Counter)
}
