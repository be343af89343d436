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
	mu     sync.Mutex
	leases map[string]Lease
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{leases: make(map[string]Lease)}
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
	if cur.Owner != l.Owner || cur.Counter != l.Counter {
		found := cur.Clone()
		return Lease{}, &RefusedError{Found: &found, Err: fmt.Errorf("%s lease %s: expected owner %q counter %d, found owner %q counter %d: %w",
			op, l.Key, l.Owner, l.Counter, cur.Owner, cur.Counter, fail)}
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
		if cur.Owner != "" && cur.Owner != owner {
			cur.OwnerSwitchesSinceCheckpoint++
		}
		cur.Owner = owner
	})
}

// Release implements Store.
func (s *MemoryStore) Release(ctx context.Context, l Lease) (Lease, error) {
	return s.update(ctx, "release", l, ErrLeaseLost, func(cur *Lease) { cur.Owner = "" })
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
