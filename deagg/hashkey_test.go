package deagg

import (
	"crypto/md5"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	max := "340282366920938463463374607431768211455" // 2^128-1
	tests := []struct {
		in   string
		want Key
		ok   bool
	}{
		{"0", Key{}, true},
		{"1", Key{Lo: 1}, true},
		{"18446744073709551615", Key{Lo: 1<<64 - 1}, true},
		{"18446744073709551616", Key{Hi: 1}, true},
		{"170141183460469231731687303715884105728", Key{Hi: 1 << 63}, true},
		{max, MaxKey, true},
		{"000000000000000000000000000000000000000000042", Key{Lo: 42}, true},
		{"340282366920938463463374607431768211456", Key{}, false}, // 2^128
		{"999999999999999999999999999999999999999", Key{}, false},
		{max + "0", Key{}, false},
		{"", Key{}, false},
		{"-1", Key{}, false},
		{"+1", Key{}, false},
		{" 1", Key{}, false},
		{"1 ", Key{}, false},
		{"12a", Key{}, false},
		{"0x10", Key{}, false},
		{"１", Key{}, false}, // a full-width digit
	}
	for _, tt := range tests {
		got, err := ParseKey(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseKey(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidHashKey) {
			t.Errorf("ParseKey(%q) = %v, %v; want ErrInvalidHashKey", tt.in, got, err)
		}
	}
}

func TestParseKeyErrorNamesTheByte(t *testing.T) {
	_, err := ParseKey("12345678901234567890123x5")
	if err == nil || !strings.Contains(err.Error(), "byte 23 ") {
		t.Fatalf("err = %v, want it to name byte 23", err)
	}
}

func TestParseKeyErrorClipsLongInput(t *testing.T) {
	_, err := ParseKey(strings.Repeat("9", 100000))
	if !errors.Is(err, ErrInvalidHashKey) || len(err.Error()) > 200 {
		t.Fatalf("err = %.300v", err)
	}
}

// TestKeyAgainstBig checks String, Big, ParseKey and Compare against
// math/big on random keys of every magnitude.
func TestKeyAgainstBig(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := []Key{{}, MaxKey, {Lo: 1e19}, {Lo: 1e19 - 1}, {Hi: 1}, {Hi: 0x8ac7230489e80000}}
	for range 2000 {
		k := Key{Hi: r.Uint64(), Lo: r.Uint64()}
		k.Hi >>= r.UintN(65) // vary the magnitude
		keys = append(keys, k)
	}
	for i, k := range keys {
		b := new(big.Int).Lsh(new(big.Int).SetUint64(k.Hi), 64)
		b.Or(b, new(big.Int).SetUint64(k.Lo))
		if k.Big().Cmp(b) != 0 {
			t.Fatalf("%#v.Big() = %v, want %v", k, k.Big(), b)
		}
		if k.String() != b.String() {
			t.Fatalf("%#v.String() = %s, want %s", k, k, b)
		}
		if p, err := ParseKey(b.String()); err != nil || p != k {
			t.Fatalf("ParseKey(%s) = %#v, %v; want %#v", b, p, err, k)
		}
		o := keys[(i+1)%len(keys)]
		if got, want := k.Compare(o), b.Cmp(o.Big()); got != want {
			t.Fatalf("%v.Compare(%v) = %d, want %d", k, o, got, want)
		}
	}
}

func TestHashKey(t *testing.T) {
	for _, pk := range []string{"a", "", "partition-key-1", strings.Repeat("é", MaxPartitionKeyLen), strings.Repeat("x", 5000)} {
		sum := md5.Sum([]byte(pk))
		want := new(big.Int).SetBytes(sum[:])
		got, err := HashKey(pk, "")
		if err != nil || got.Big().Cmp(want) != 0 {
			t.Errorf("HashKey(%.20q, \"\") = %v, %v; want %v", pk, got, err, want)
		}
	}
	// A known value: MD5("a") = 0cc175b9c0f1b6a831c399e269772661.
	if got, _ := HashKey("a", ""); got != (Key{Hi: 0x0cc175b9c0f1b6a8, Lo: 0x31c399e269772661}) {
		t.Errorf("HashKey(a) = %#v", got)
	}
	if got, err := HashKey("ignored", "12345"); err != nil || got != (Key{Lo: 12345}) {
		t.Errorf("explicit hash key: %v, %v", got, err)
	}
	if _, err := HashKey("k", "1.5"); !errors.Is(err, ErrInvalidHashKey) {
		t.Errorf("bad explicit hash key: err = %v", err)
	}
	u := UserRecord{PartitionKey: "a", ExplicitHashKey: "7"}
	if got, err := u.HashKey(); err != nil || got != (Key{Lo: 7}) {
		t.Errorf("UserRecord.HashKey = %v, %v", got, err)
	}
}

func TestKeyInRange(t *testing.T) {
	lo, hi := Key{Lo: 10}, Key{Hi: 1}
	tests := []struct {
		k    Key
		want bool
	}{
		{Key{Lo: 9}, false}, {lo, true}, {Key{Lo: 1<<64 - 1}, true}, {hi, true}, {Key{Hi: 1, Lo: 1}, false},
	}
	for _, tt := range tests {
		if got := tt.k.InRange(lo, hi); got != tt.want {
			t.Errorf("%v.InRange(%v, %v) = %v", tt.k, lo, hi, got)
		}
	}
}

func TestHashKeyAllocations(t *testing.T) {
	pk := strings.Repeat("é", MaxPartitionKeyLen) // 512 bytes
	ehk := MaxKey.String()
	var k Key
	if n := testing.AllocsPerRun(100, func() { k, _ = HashKey(pk, "") }); n != 0 {
		t.Errorf("HashKey(partition key) allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { k, _ = HashKey(pk, ehk) }); n != 0 {
		t.Errorf("HashKey(explicit hash key) allocates %v times", n)
	}
	_ = k
}

// FuzzParseKey checks ParseKey against math/big on any string.
func FuzzParseKey(f *testing.F) {
	for _, s := range parseKeySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		n, ok := new(big.Int).SetString(s, 10)
		valid := ok && s != "" && strings.Trim(s, "0123456789") == "" && n.Cmp(MaxKey.Big()) <= 0
		if valid != (err == nil) {
			t.Fatalf("ParseKey(%q) = %v, %v; valid = %v", s, k, err, valid)
		}
		if valid && k.Big().Cmp(n) != 0 {
			t.Fatalf("ParseKey(%q) = %v, want %v", s, k, n)
		}
		if err != nil && !errors.Is(err, ErrInvalidHashKey) {
			t.Fatalf("err = %v, want ErrInvalidHashKey", err)
		}
	})
}

var parseKeySeeds = []string{"0", "42", "340282366920938463463374607431768211455", "340282366920938463463374607431768211456", "-1", "1_000", "0x1f"}
