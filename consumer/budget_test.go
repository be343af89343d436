package consumer

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBudgetBlocksWhenFull(t *testing.T) {
	b := newBudget(100)
	ctx := context.Background()
	held, err := b.acquire(ctx, 60)
	require.NoError(t, err)
	require.EqualValues(t, 60, held)
	// Settling to a larger actual size takes the shortfall only if free.
	held = b.settle(held, 90)
	require.EqualValues(t, 90, held)
	held2 := b.settle(0, 50) // only 10 free: keeps what it had
	require.EqualValues(t, 0, held2)

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = b.acquire(short, 20)
	require.Error(t, err, "20 bytes do not fit while 90 are held")

	b.release(held)
	got, err := b.acquire(ctx, 1000) // capped at the whole budget
	require.NoError(t, err)
	require.EqualValues(t, 100, got)
	b.release(got)
}
