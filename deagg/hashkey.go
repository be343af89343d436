package deagg

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// Key is a 128-bit Kinesis hash key, an unsigned integer in [0, 2^128-1] held
// in two words so that comparing keys allocates nothing: Hi is the high 64
// bits, Lo the low. A shard owns the keys from its starting to its ending hash
// key, both included; [Key.InRange] tests that. The zero Key is 0.
type Key struct{ Hi, Lo uint64 }

// MaxKey is the largest hash key, 2^128-1.
var MaxKey = Key{Hi: math.MaxUint64, Lo: math.MaxUint64}

// ParseKey parses a hash key written as Kinesis writes them: a decimal
// integer in [0, 2^128-1], digits only (leading zeros are accepted, signs are
// not). It allocates only on error, which wraps [ErrInvalidHashKey].
func ParseKey(s string) (Key, error) {
	if s == "" {
		return Key{}, fmt.Errorf("%w: empty", ErrInvalidHashKey)
	}
	// Up to 19 digits at a time fit in a uint64; then k = k*10^n + chunk.
	var k Key
	for at := 0; at < len(s); at += 19 {
		chunk, pow := uint64(0), uint64(1)
		for i := at; i < min(at+19, len(s)); i++ {
			d := uint64(s[i]) - '0'
			if d > 9 {
				return Key{}, fmt.Errorf("%w: %q: byte %d is not a decimal digit", ErrInvalidHashKey, clip(s), i)
			}
			chunk, pow = chunk*10+d, pow*10
		}
		var ok bool
		if k, ok = k.mulAdd(pow, chunk); !ok {
			return Key{}, fmt.Errorf("%w: %q exceeds 2^128-1", ErrInvalidHashKey, clip(s))
		}
	}
	return k, nil
}

// mulAdd returns k*m+a and whether it fits in 128 bits.
func (k Key) mulAdd(m, a uint64) (Key, bool) {
	hiCarry, hi := bits.Mul64(k.Hi, m)
	loCarry, lo := bits.Mul64(k.Lo, m)
	hi, c1 := bits.Add64(hi, loCarry, 0)
	lo, c2 := bits.Add64(lo, a, 0)
	hi, c3 := bits.Add64(hi, c2, 0)
	return Key{Hi: hi, Lo: lo}, hiCarry == 0 && c1 == 0 && c3 == 0
}

// clip shortens s for an error message: a malformed aggregate can hold a
// megabyte-long "key".
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// HashKey returns the hash key Kinesis routes a record by: explicitHashKey
// parsed as a decimal if it is not empty, else the MD5 digest of partitionKey
// read as a big-endian unsigned 128-bit integer. It does not allocate for
// partition keys of up to 1024 bytes (any valid one) and valid explicit hash
// keys. The error, for an invalid explicit hash key only, wraps
// [ErrInvalidHashKey].
func HashKey(partitionKey, explicitHashKey string) (Key, error) {
	if explicitHashKey != "" {
		return ParseKey(explicitHashKey)
	}
	return PartitionKeyHash(partitionKey), nil
}

// PartitionKeyHash returns the MD5 digest of partitionKey's UTF-8 bytes read
// as a big-endian unsigned 128-bit integer: the hash key of a record without
// an explicit hash key.
func PartitionKeyHash(partitionKey string) Key {
	// Copying into a stack buffer avoids the heap allocation that
	// []byte(partitionKey) makes for keys longer than 32 bytes.
	var buf [4 * MaxPartitionKeyLen]byte
	var sum [md5.Size]byte
	if len(partitionKey) <= len(buf) {
		sum = md5.Sum(buf[:copy(buf[:], partitionKey)])
	} else {
		sum = md5.Sum([]byte(partitionKey))
	}
	return Key{Hi: binary.BigEndian.Uint64(sum[:8]), Lo: binary.BigEndian.Uint64(sum[8:])}
}

// Compare returns -1, 0 or +1 as k is less than, equal to or greater than o.
func (k Key) Compare(o Key) int {
	if c := cmp.Compare(k.Hi, o.Hi); c != 0 {
		return c
	}
	return cmp.Compare(k.Lo, o.Lo)
}

// InRange reports whether start <= k <= end: whether a shard whose hash key
// range is [start, end] owns k.
func (k Key) InRange(start, end Key) bool {
	return k.Compare(start) >= 0 && k.Compare(end) <= 0
}

// String returns k in decimal, as Kinesis writes hash keys.
func (k Key) String() string {
	return string(k.AppendDecimal(nil))
}

// AppendDecimal appends k in decimal to b and returns the extended slice.
func (k Key) AppendDecimal(b []byte) []byte {
	const base = 1e19 // the largest power of ten below 2^64
	if k.Hi == 0 {
		return strconv.AppendUint(b, k.Lo, 10)
	}
	// 2^128 < 10^39, so k has at most three base-10^19 digits.
	var digits [3]uint64
	n := 0
	for k.Hi != 0 {
		var r uint64
		k.Hi, r = k.Hi/base, k.Hi%base
		k.Lo, digits[n] = bits.Div64(r, k.Lo, base)
		n++
	}
	b = strconv.AppendUint(b, k.Lo, 10)
	for n--; n >= 0; n-- {
		var pad [19]byte
		s := strconv.AppendUint(pad[:0], digits[n], 10)
		for range 19 - len(s) {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return b
}

// Big returns k as a new big.Int.
func (k Key) Big() *big.Int {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.Hi)
	binary.BigEndian.PutUint64(b[8:], k.Lo)
	return new(big.Int).SetBytes(b[:])
}
