package consumer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSizerLimitAndReservation(t *testing.T) {
	const mib = 1 << 20
	big := sizer{maxRecords: 10000, budget: 256 * mib}
	limit, reserve := big.next()
	require.Equal(t, 10000, limit, "a new shard asks for MaxRecords")
	require.Equal(t, 10*mib+10000*recordSize, reserve, "10 MiB at most, and a Record each")

	big.observe(0, 0, 0, false) // idle
	limit, reserve = big.next()
	require.Equal(t, 1, limit)
	require.Equal(t, mib+recordSize, reserve, "an idle shard reserves one record's worth")

	big.observe(3, 3, 3000, false) // caught up, three small records
	limit, reserve = big.next()
	require.Equal(t, 6, limit)
	require.Equal(t, 6*mib+6*recordSize, reserve)

	big.observe(1000, 100000, 10*mib, true) // behind, aggregates of 100
	limit, reserve = big.next()
	require.Equal(t, 10000, limit)
	require.Equal(t, 10*mib+100000*recordSize, reserve, "the Records 10 MiB of such aggregates unpack to")

	small := sizer{maxRecords: 10000, budget: 8 * mib}
	limit, reserve = small.next()
	require.Equal(t, 1, limit, "a quarter of the budget holds less than two records of 1 MiB")
	require.Equal(t, mib+recordSize, reserve)

	tiny := sizer{maxRecords: 10000, budget: 2 * mib}
	tiny.observe(1, 20000, 140000, true) // one aggregate of tiny user records
	limit, reserve = tiny.next()
	require.Equal(t, 1, limit)
	require.Equal(t, int64(2*mib), reserve, "never more than the budget")
}
