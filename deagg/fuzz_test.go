package deagg

import (
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the checked-in fuzz seed corpora")

// FuzzUnpack checks that Unpack never panics or reads out of bounds, keeps
// dst on error, and decodes exactly as the reference decoder whenever it
// accepts. Each input is tried as is and framed with magic bytes and a valid
// MD5, so that mutations reach the message decoder instead of stopping at
// the checksum.
func FuzzUnpack(f *testing.F) {
	for _, s := range unpackSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkUnpack(t, data)
		checkUnpack(t, wrap(data))
	})
}

func checkUnpack(t *testing.T, data []byte) {
	data = data[:len(data):len(data)]
	dst := make([]UserRecord, 1, 4)
	dst[0].PartitionKey = "sentinel"
	got, err := AppendUnpacked(dst, data)
	ref, refErr := referenceUnpack(data)
	if err != nil {
		checkUnpackError(t, got, err, refErr)
		return
	}
	if refErr != nil {
		t.Fatalf("Unpack accepted what the reference decoder rejects (%v): %+v", refErr, got)
	}
	if got[0].PartitionKey != "sentinel" {
		t.Fatal("dst[0] overwritten")
	}
	if d := sameRecords(got[1:], ref); d != "" {
		t.Fatalf("differs from the reference decoder: %s", d)
	}
	for _, u := range got[1:] {
		if cap(u.Data) != len(u.Data) {
			t.Fatalf("cap(Data) = %d > len %d", cap(u.Data), len(u.Data))
		}
	}
}

func checkUnpackError(t *testing.T, got []UserRecord, err, refErr error) {
	if len(got) != 1 || got[0].PartitionKey != "sentinel" {
		t.Fatalf("dst changed on error %v: %+v", err, got)
	}
	for _, u := range got[1:cap(got)] {
		if u.PartitionKey != "" || u.ExplicitHashKey != "" || u.Data != nil {
			t.Fatalf("dst's spare capacity not cleared on error: %+v", u)
		}
	}
	switch {
	// Framing is simple enough that both decoders must agree exactly.
	case err == ErrNotAggregated:
		if refErr != ErrNotAggregated {
			t.Fatalf("err = %v, reference %v", err, refErr)
		}
	case errors.Is(err, ErrChecksum):
		if !errors.Is(refErr, ErrChecksum) {
			t.Fatalf("err = %v, reference %v", err, refErr)
		}
	case errors.Is(err, ErrMalformed):
		var me *MalformedError
		if !errors.As(err, &me) || me.Field == "" || me.Offset < len(Magic) {
			t.Fatalf("ErrMalformed without detail: %#v", err)
		}
	default:
		t.Fatalf("unexpected error %v", err)
	}
}

// FuzzRoundTrip checks Unpack(Aggregate(x)) == x for any records x and limit:
// seed is cut into records (see recordsFromSeed), including invalid ones,
// which Add must reject for the right reason.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range roundTripSeeds() {
		f.Add(s.data, s.maxBytes)
	}
	f.Fuzz(func(t *testing.T, seed []byte, maxBytes uint32) {
		limit := 64 + int(maxBytes%(MaxRecordBytes-63))
		var valid []UserRecord
		probe := Aggregator{MaxBytes: limit}
		for _, u := range recordsFromSeed(seed) {
			_, err := probe.Add(u.PartitionKey, u.ExplicitHashKey, u.Data)
			if want := expectedAddError(u, limit); !errors.Is(err, want) || (err == nil) != (want == nil) {
				t.Fatalf("Add(%q, %q, %d bytes) with limit %d: err = %v, want %v",
					u.PartitionKey, u.ExplicitHashKey, len(u.Data), limit, err, want)
			}
			if err == nil {
				valid = append(valid, u)
			}
		}
		checkRoundTrip(t, limit, valid, "fuzz")
	})
}

// expectedAddError says, independently of Add, how Add must fail, or nil.
func expectedAddError(u UserRecord, limit int) error {
	if u.PartitionKey == "" || !utf8.ValidString(u.PartitionKey) || utf8.RuneCountInString(u.PartitionKey) > MaxPartitionKeyLen {
		return ErrInvalidPartitionKey
	}
	if u.ExplicitHashKey != "" {
		n, ok := new(big.Int).SetString(u.ExplicitHashKey, 10)
		if !ok || strings.ContainsAny(u.ExplicitHashKey, "+-_") || n.Sign() < 0 || n.Cmp(MaxKey.Big()) > 0 {
			return ErrInvalidHashKey
		}
	}
	// Alone, a record takes the frame, its key table entries, the record
	// field and the outer partition key.
	inner := 2 + protowire.SizeTag(3) + protowire.SizeBytes(len(u.Data))
	size := overhead + 1 + protowire.SizeBytes(len(u.PartitionKey)) + len(u.PartitionKey)
	if u.ExplicitHashKey != "" {
		inner += 2
		size += 1 + protowire.SizeBytes(len(u.ExplicitHashKey))
	}
	if size+1+protowire.SizeBytes(inner) > limit {
		return ErrRecordTooLarge
	}
	return nil
}

// recordsFromSeed cuts b into user records: a header byte for each key and
// the data length, then the bytes. Keys come from small pools or from the
// bytes themselves, so both repeated and invalid keys occur.
func recordsFromSeed(b []byte) []UserRecord {
	take := func(n int) []byte {
		n = min(n, len(b))
		out := b[:n]
		b = b[n:]
		return out
	}
	var recs []UserRecord
	for len(b) > 0 && len(recs) < 500 {
		var h [3]byte
		copy(h[:], take(3))
		u := UserRecord{PartitionKey: seedPartitionKey(h[0], take)}
		u.ExplicitHashKey = seedHashKey(h[1], take)
		u.Data = take(int(h[2]) * 13)
		recs = append(recs, u)
	}
	return recs
}

func seedPartitionKey(h byte, take func(int) []byte) string {
	switch h % 4 {
	case 0:
		return []string{"a", "b", "κλειδί", strings.Repeat("x", 256)}[h>>2%4]
	case 1:
		return strings.Repeat("é", 250+int(h>>2%10)) // around the 256 character limit
	default:
		return string(take(int(h >> 2))) // may be empty or invalid UTF-8
	}
}

func seedHashKey(h byte, take func(int) []byte) string {
	switch h % 4 {
	case 0:
		return ""
	case 1:
		return []string{"0", "1", MaxKey.String(), "340282366920938463463374607431768211456"}[h>>2%4]
	case 2:
		k := append(take(16), make([]byte, 16)...)
		return new(big.Int).SetBytes(k[:16]).String()
	default:
		return string(take(int(h>>2) % 45)) // usually not a decimal
	}
}

type seed struct {
	name     string
	data     []byte
	maxBytes uint32
}

// unpackSeeds are FuzzUnpack's seeds: whole aggregated records (which the
// fuzzer also sees framed again, as a message) and bare messages.
func unpackSeeds() []seed {
	var a Aggregator
	for i := range 5 {
		_, _ = a.Add(fmt.Sprintf("key-%d", i%3), []string{"", "12345"}[i%2], []byte(fmt.Sprintf("data %d", i)))
	}
	agg := a.Flush().Data
	msg := pb(nil).str(1, "a").str(1, "b").str(2, "99").msg(3, rec(0, "x")).msg(3, recEHK(1, 0, "yy"))
	return []seed{
		{name: "aggregate", data: agg},
		{name: "message", data: msg},
		{name: "message-unknown-fields", data: pb(nil).varint(9, 1).str(1, "k").msg(3, rec(0, "d").str(8, "u")).
			tag(10, protowire.StartGroupType).tag(10, protowire.EndGroupType)},
		{name: "message-tables-last", data: pb(nil).msg(3, recEHK(0, 0, "d")).str(2, "1").str(1, "k")},
		{name: "message-index-past-table", data: pb(nil).str(1, "k").msg(3, rec(3, "d"))},
		{name: "message-truncated", data: msg[:len(msg)-3]},
		{name: "message-huge-length", data: pb(nil).tag(3, protowire.BytesType).raw(0xff, 0xff, 0xff, 0xff, 0x0f)},
		{name: "message-wrong-wire-type", data: pb(nil).str(1, "k").msg(3, pb(nil).str(1, "0").str(3, "d"))},
		{name: "message-keys-between-records", data: pb(nil).str(1, "a").msg(3, rec(0, strings.Repeat("d", 300))).
			str(2, "7").msg(3, recEHK(1, 0, "x")).str(1, "b")},
		{name: "plain", data: []byte("plain record")},
	}
}

func roundTripSeeds() []seed {
	return []seed{
		{name: "small", data: []byte("\x00\x00\x02\x04\x01\x05\x08\x02\x01abcdefgh"), maxBytes: 200},
		{name: "mixed", data: []byte("\x02\x02\x10key\x00\x00\x00\x06\x01\x20\x01\x02\x03\x03\x07hello world\x01\x00\x01"), maxBytes: 1 << 20},
		{name: "invalid-keys", data: []byte("\x02\x03\x01\x03\xff\x00\x02\x01\x01\x08\xfe"), maxBytes: 100},
	}
}

// TestSeedCorpusUpToDate checks that the checked-in corpora under
// testdata/fuzz hold the seeds above; go test -run SeedCorpus -update-corpus
// rewrites them.
func TestSeedCorpusUpToDate(t *testing.T) {
	files := map[string]string{}
	for _, s := range unpackSeeds() {
		files[filepath.Join("FuzzUnpack", s.name)] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data)
	}
	for _, s := range roundTripSeeds() {
		files[filepath.Join("FuzzRoundTrip", s.name)] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint32(%d)\n", s.data, s.maxBytes)
	}
	for i, s := range parseKeySeeds {
		files[filepath.Join("FuzzParseKey", fmt.Sprintf("seed-%d", i))] = fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s)
	}
	for name, want := range files {
		path := filepath.Join("testdata", "fuzz", name)
		if *updateCorpus {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale (%v); run go test -run SeedCorpus -update-corpus", path, err)
		}
	}
}
