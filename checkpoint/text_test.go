package checkpoint

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPositionJSONIsOneString(t *testing.T) {
	for _, p := range []Position{TrimHorizon, ShardEnd, At("4959", 0), At("4959", 7), {}} {
		b, err := json.Marshal(p)
		require.NoError(t, err)
		require.Equal(t, `"`+p.String()+`"`, string(b))
		var q Position
		require.NoError(t, json.Unmarshal(b, &q))
		require.Equal(t, p, q)
	}
	var q Position
	require.ErrorIs(t, json.Unmarshal([]byte(`"12/x"`), &q), ErrInvalid)
}
