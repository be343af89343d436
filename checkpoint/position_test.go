package checkpoint

import (
	"cmp"
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompareOrder(t *testing.T) {
	// Each position is strictly before the next.
	ordered := []Position{
		AtTimestamp,
		TrimHorizon,
		Latest,
		At("0", 0),
		At("1", 0),
		At("1", 1),
		At("1", 2),
		At("9", 0),
		At("10", 0),
		At("0000011", 0), // leading zeros do not change the value
		At("340282366920938463463374607431768211455", 0), // 2^128-1
		At("49590338271490256608559692538361571095921575989136588898", 0),
		At("49590338271490256608559692538361571095921575989136588898", 7),
		At("49590338271490256608559692540925702759324208523137515618", 0),
		At("9999999999999999999999999999999999999999999999999999999999999999", 0),
		ShardEnd,
	}
	for i := range ordered {
		for j := range ordered {
			want := cmp.Compare(i, j)
			require.Equal(t, want, ordered[i].Compare(ordered[j]), "%v vs %v", ordered[i], ordered[j])
		}
	}
}

func TestCompareEqualForms(t *testing.T) {
	require.Equal(t, 0, At("007", 3).Compare(At("7", 3)))
	require.Equal(t, 0, ShardEnd.Compare(ShardEnd))
}

func TestCompareMatchesBigInt(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	digits := func() string {
		n := 1 + r.IntN(60)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b)
	}
	for range 10000 {
		a, b := digits(), digits()
		ba, _ := new(big.Int).SetString(a, 10)
		bb, _ := new(big.Int).SetString(b, 10)
		require.Equal(t, ba.Cmp(bb), At(a, 0).Compare(At(b, 0)), "%s vs %s", a, b)
	}
}

func TestParseAndString(t *testing.T) {
	tests := []struct {
		in      string
		want    Position
		wantErr bool
	}{
		{in: "TRIM_HORIZON", want: TrimHorizon},
		{in: "LATEST", want: Latest},
		{in: "AT_TIMESTAMP", want: AtTimestamp},
		{in: "SHARD_END", want: ShardEnd},
		{in: "123", want: At("123", 0)},
		{in: "123/4", want: At("123", 4)},
		{in: "0", want: At("0", 0)},
		{in: "", wantErr: true},
		{in: "12a", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "1/x", wantErr: true},
		{in: "1/-1", wantErr: true},
		{in: "1/", wantErr: true},
		{in: "SHARD_END/1", wantErr: true},
		{in: "latest", wantErr: true},
		{in: string(make([]byte, 130)), wantErr: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr {
			require.Error(t, err, "Parse(%q)", tt.in)
			require.True(t, errors.Is(err, ErrInvalid), "Parse(%q) error %v", tt.in, err)
			continue
		}
		require.NoError(t, err, "Parse(%q)", tt.in)
		require.Equal(t, tt.want, got)
		require.Equal(t, tt.in, got.String())
	}
}

func TestValidate(t *testing.T) {
	require.NoError(t, At("12", 3).Validate())
	require.ErrorIs(t, Position{}.Validate(), ErrInvalid)
	require.ErrorIs(t, Position{SequenceNumber: SentinelLatest, SubSequenceNumber: 1}.Validate(), ErrInvalid)
	long := make([]byte, 129)
	for i := range long {
		long[i] = '9'
	}
	require.NoError(t, At(string(long), 0).Validate())
	require.ErrorIs(t, At(string(long)+"9", 0).Validate(), ErrInvalid)
}

func TestSentinels(t *testing.T) {
	for _, p := range []Position{AtTimestamp, TrimHorizon, Latest, ShardEnd} {
		require.True(t, p.IsSentinel(), p.String())
	}
	require.False(t, At("1", 0).IsSentinel())
	require.True(t, ShardEnd.IsShardEnd())
	require.False(t, Latest.IsShardEnd())
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"TRIM_HORIZON", "SHARD_END", "1", "123/4", "", "1/", "/", "00/00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		q, err := Parse(p.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, p.String(), err)
		}
		if p.Compare(q) != 0 {
			t.Fatalf("round trip of %q changed the position: %v vs %v", s, p, q)
		}
	})
}

func BenchmarkCompare(b *testing.B) {
	p := At("49590338271490256608559692538361571095921575989136588898", 3)
	q := At("49590338271490256608559692538361571095921575989136588898", 4)
	b.ReportAllocs()
	for b.Loop() {
		if p.Compare(q) != -1 {
			b.Fatal("wrong order")
		}
	}
}
