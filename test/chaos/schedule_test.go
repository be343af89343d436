package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScheduleIsReproducibleFromItsSeed(t *testing.T) {
	for name, p := range Profiles {
		t.Run(name, func(t *testing.T) {
			s := NewSchedule(42, p)
			require.Equal(t, s, NewSchedule(42, p))
			require.NotEqual(t, s, NewSchedule(43, p))

			counts := map[Action]int{}
			for i, e := range s {
				counts[e.Action]++
				if i > 0 {
					require.GreaterOrEqual(t, e.At, s[i-1].At, "sorted")
				}
				lo, hi := e.Action.window()
				require.GreaterOrEqual(t, e.At, time.Duration(lo*float64(p.Chaos))-time.Millisecond, e.String())
				require.LessOrEqual(t, e.At, time.Duration(hi*float64(p.Chaos))+time.Millisecond, e.String())
				require.True(t, e.Pick >= 0 && e.Pick < 1)
				switch e.Action {
				case Pause, Lineage:
					require.Greater(t, e.For, p.FailoverTime, "a paused worker outlives its leases: %s", e)
				case Partition:
					require.GreaterOrEqual(t, e.For, p.FailoverTime, e.String())
				}
			}
			for a, n := range p.Events {
				require.Equal(t, n, counts[a], a.String())
			}
		})
	}
}

func TestProfilesAreValid(t *testing.T) {
	for name, p := range Profiles {
		require.Equal(t, name, p.Name)
		for op, m := range faultPlan(p.Faults.Scale(p.StormFactor)) {
			require.NoError(t, m.Validate(), "%s: %s in a storm", name, op)
		}
		require.Positive(t, p.Workers)
		require.Less(t, p.MaxLatency, p.FailoverTime, "a delayed renewal must not by itself outlive a lease")
	}
}
