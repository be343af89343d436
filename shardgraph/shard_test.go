package shardgraph

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const maxKey = "340282366920938463463374607431768211455" // 2^128-1

// kshard returns a Kinesis shard as ListShards would.
func kshard(id, start, end, seqStart string, seqEnd *string, parents ...string) types.Shard {
	s := types.Shard{
		ShardId:             aws.String(id),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(start), EndingHashKey: aws.String(end)},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String(seqStart), EndingSequenceNumber: seqEnd},
	}
	if len(parents) > 0 {
		s.ParentShardId = aws.String(parents[0])
	}
	if len(parents) > 1 {
		s.AdjacentParentShardId = aws.String(parents[1])
	}
	return s
}

func TestFromKinesis(t *testing.T) {
	const half = "170141183460469231731687303715884105728" // 2^127
	got, err := FromKinesis([]types.Shard{
		kshard(id(0), "0", "170141183460469231731687303715884105727", "49500000000000000000000000000000000000000000000000000000", aws.String("49500000000000000000000000000000000000000000000000000099")),
		kshard(id(1), half, maxKey, "49500000000000000000000000000000000000000000000000000001", aws.String("49500000000000000000000000000000000000000000000000000098")),
		kshard(id(2), "0", maxKey, "49600000000000000000000000000000000000000000000000000000", nil, id(1), id(0)),
	})
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, "0", got[0].HashKeyStart.String())
	assert.Equal(t, half, got[1].HashKeyStart.String())
	assert.Equal(t, maxKey, got[2].HashKeyEnd.String())
	assert.Equal(t, []string{id(1), id(0)}, got[2].ParentIDs, "parent first, then adjacent parent")
	assert.Nil(t, got[0].ParentIDs)
	assert.Equal(t, "49500000000000000000000000000000000000000000000000000099", got[0].EndingSequence)
	assert.False(t, got[0].IsOpen())
	assert.True(t, got[2].IsOpen())
	assert.Equal(t, "49600000000000000000000000000000000000000000000000000000", got[2].StartingSequence)
	assert.NoError(t, New(got).Coverage())

	empty, err := FromKinesis(nil)
	require.NoError(t, err)
	assert.Empty(t, empty)

	noParent := kshard(id(3), "0", "0", "1", nil)
	noParent.ParentShardId, noParent.AdjacentParentShardId = aws.String(""), aws.String(id(2))
	got, err = FromKinesis([]types.Shard{noParent})
	require.NoError(t, err)
	assert.Equal(t, []string{id(2)}, got[0].ParentIDs, "an empty parent id is dropped")
}

func TestFromKinesisRejectsMalformedShards(t *testing.T) {
	good := func() types.Shard { return kshard(id(5), "10", "20", "1", nil) }
	for _, tc := range []struct {
		name   string
		mutate func(*types.Shard)
		msg    string // the end of the error message
	}{
		{"missing id", func(s *types.Shard) { s.ShardId = nil }, "shard without id at index 1: ShardId: missing"},
		{"empty id", func(s *types.Shard) { s.ShardId = aws.String("") }, "shard without id at index 1: ShardId: missing"},
		{"missing hash key range", func(s *types.Shard) { s.HashKeyRange = nil }, "HashKeyRange: missing"},
		{"missing start", func(s *types.Shard) { s.HashKeyRange.StartingHashKey = nil }, "HashKeyRange.StartingHashKey: missing"},
		{"empty start", func(s *types.Shard) { s.HashKeyRange.StartingHashKey = aws.String("") }, "HashKeyRange.StartingHashKey: empty"},
		{"missing end", func(s *types.Shard) { s.HashKeyRange.EndingHashKey = nil }, "HashKeyRange.EndingHashKey: missing"},
		{"letters", func(s *types.Shard) { s.HashKeyRange.StartingHashKey = aws.String("12a") }, `HashKeyRange.StartingHashKey: "12a" is not a decimal integer`},
		{"negative", func(s *types.Shard) { s.HashKeyRange.StartingHashKey = aws.String("-1") }, `"-1" is not a decimal integer`},
		{"plus sign", func(s *types.Shard) { s.HashKeyRange.EndingHashKey = aws.String("+20") }, `HashKeyRange.EndingHashKey: "+20" is not a decimal integer`},
		{"hex", func(s *types.Shard) { s.HashKeyRange.EndingHashKey = aws.String("0x20") }, `"0x20" is not a decimal integer`},
		{"space", func(s *types.Shard) { s.HashKeyRange.EndingHashKey = aws.String(" 20") }, `" 20" is not a decimal integer`},
		{"fraction", func(s *types.Shard) { s.HashKeyRange.EndingHashKey = aws.String("20.5") }, `"20.5" is not a decimal integer`},
		{"2^128", func(s *types.Shard) {
			s.HashKeyRange.EndingHashKey = aws.String("340282366920938463463374607431768211456")
		},
			"HashKeyRange.EndingHashKey: 340282366920938463463374607431768211456 is above 2^128-1"},
		{"start above end", func(s *types.Shard) { s.HashKeyRange.StartingHashKey = aws.String("21") },
			"HashKeyRange: starting hash key 21 is above ending hash key 20"},
		{"long garbage is cut", func(s *types.Shard) { s.HashKeyRange.StartingHashKey = aws.String(strings.Repeat("x", 100)) },
			`"` + strings.Repeat("x", 64) + `..." is not a decimal integer`},
		{"missing sequence range", func(s *types.Shard) { s.SequenceNumberRange = nil }, "SequenceNumberRange: missing"},
		{"missing starting sequence", func(s *types.Shard) { s.SequenceNumberRange.StartingSequenceNumber = nil },
			"SequenceNumberRange.StartingSequenceNumber: missing"},
		{"bad starting sequence", func(s *types.Shard) { s.SequenceNumberRange.StartingSequenceNumber = aws.String("abc") },
			`SequenceNumberRange.StartingSequenceNumber: "abc" is not a decimal integer`},
		{"empty ending sequence", func(s *types.Shard) { s.SequenceNumberRange.EndingSequenceNumber = aws.String("") },
			"SequenceNumberRange.EndingSequenceNumber: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good()
			tc.mutate(&bad)
			got, err := FromKinesis([]types.Shard{kshard(id(4), "0", "9", "1", nil), bad})
			assert.Nil(t, got)
			require.ErrorIs(t, err, ErrInvalidShard)
			var se *ShardError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, 1, se.Index)
			if bad.ShardId != nil && *bad.ShardId != "" {
				assert.Equal(t, id(5), se.ShardID)
				assert.Contains(t, err.Error(), `shard "shardId-000000000005" at index 1: `)
			}
			assert.True(t, strings.HasSuffix(err.Error(), tc.msg), "error %q should end with %q", err, tc.msg)
		})
	}
}
