package lease

import (
	"slices"
	"strings"
	"time"
)

// HeldLease is a lease this worker holds, with when it was last renewed,
// for status views and health checks.
type HeldLease struct {
	Lease Lease
	// LastRenewed is when the last successful write of the lease (take,
	// renewal or checkpoint) started. The lease is dropped if it is not
	// renewed within 90% of FailoverTime after it.
	LastRenewed time.Time
}

// HeldLeases returns copies of the leases this worker holds now, with their
// last renewal, sorted by key. It does no I/O.
func (m *Manager) HeldLeases() []HeldLease {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]HeldLease, 0, len(m.held))
	for _, h := range m.held {
		if !h.gone {
			out = append(out, HeldLease{Lease: h.lease.Clone(), LastRenewed: h.lastRenewed})
		}
	}
	sortHeld(out)
	return out
}

// LastScan returns when the lease table was last read (by the taker or
// Refresh), the zero time before the first scan. It does no I/O.
func (m *Manager) LastScan() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.scannedAt
}

func sortHeld(hs []HeldLease) {
	slices.SortFunc(hs, func(a, b HeldLease) int { return strings.Compare(a.Lease.Key, b.Lease.Key) })
}
