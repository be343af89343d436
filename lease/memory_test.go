package lease_test

import (
	"testing"

	"github.com/gokcl/kcl/lease"
	"github.com/gokcl/kcl/lease/leasetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	leasetest.RunStoreSuite(t, func(*testing.T) lease.Store { return lease.NewMemoryStore() })
}
