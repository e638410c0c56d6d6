package token

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// TestEncodeBoundaries pins the encoding of every atom form at its limits and
// checks each decodes back to the same Value.
func TestEncodeBoundaries(t *testing.T) {
	tests := []struct {
		name string
		v    Value
		want string // hex; for long byte sequences only the header
		tail int    // number of data bytes after the header, if not in want
	}{
		{"uint 0", Uint(0), "00", 0},
		{"uint 1", Uint(1), "01", 0},
		{"uint 63", Uint(63), "3f", 0},
		{"uint 64", Uint(64), "8140", 0},
		{"uint 255", Uint(255), "81ff", 0},
		{"uint 256", Uint(256), "820100", 0},
		{"uint 2^16-1", Uint(1<<16 - 1), "82ffff", 0},
		{"uint 2^16", Uint(1 << 16), "83010000", 0},
		{"uint 2^24", Uint(1 << 24), "8401000000", 0},
		{"uint 2^32-1", Uint(1<<32 - 1), "84ffffffff", 0},
		{"uint 2^32", Uint(1 << 32), "850100000000", 0},
		{"uint 2 TiB in 512-byte blocks", Uint(1<<32 + 5), "850100000005", 0},
		{"uint 2^56", Uint(1 << 56), "880100000000000000", 0},
		{"uint 2^64-1", Uint(math.MaxUint64), "88ffffffffffffffff", 0},
		{"int 0", Int(0), "40", 0},
		{"int 31", Int(31), "5f", 0},
		{"int -1", Int(-1), "7f", 0},
		{"int -32", Int(-32), "60", 0},
		{"int 32", Int(32), "9120", 0},
		{"int -33", Int(-33), "91df", 0},
		{"int 127", Int(127), "917f", 0},
		{"int 128", Int(128), "920080", 0},
		{"int -128", Int(-128), "9180", 0},
		{"int -129", Int(-129), "92ff7f", 0},
		{"int 2^32", Int(1 << 32), "950100000000", 0},
		{"int -2^32", Int(-1 << 32), "95ff00000000", 0},
		{"int max", Int(math.MaxInt64), "987fffffffffffffff", 0},
		{"int min", Int(math.MinInt64), "988000000000000000", 0},
		{"bytes 0", Bytes(nil), "a0", 0},
		{"bytes 1", Bytes([]byte{0}), "a100", 0},
		{"bytes 15", Bytes(seq(15)), "af000102030405060708090a0b0c0d0e", 0},
		{"bytes 16", Bytes(seq(16)), "d010", 16},
		{"bytes 2047", Bytes(seq(2047)), "d7ff", 2047},
		{"bytes 2048", Bytes(seq(2048)), "e2000800", 2048},
		{"bytes max", Bytes(make([]byte, MaxAtomLen)), "e2ffffff", MaxAtomLen},
		{"text", Text("MaxComPacketSize"), "d0104d6178436f6d5061636b657453697a65", 0},
		{"bool true", Bool(true), "01", 0},
		{"bool false", Bool(false), "00", 0},
		{"empty list", List(), "f0f1", 0},
		{"named", Named(3, Uint(64)), "f2038140f3", 0},
		{"pair", Pair(Text("x"), List(Uint(1))), "f2a178f001f1f3", 0},
		{"call", Marker(KindCall), "f8", 0},
		{"eod", Marker(KindEndOfData), "f9", 0},
		{"eos", Marker(KindEndOfSession), "fa", 0},
		{"start transaction", Marker(KindStartTransaction), "fb", 0},
		{"end transaction", Marker(KindEndTransaction), "fc", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.v)
			if err != nil {
				t.Fatalf("Encode(%v) = %v", tt.v, err)
			}
			want := mustHex(t, tt.want)
			if tt.tail > 0 {
				b, _ := tt.v.AsBytes()
				want = append(want, b...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode(%.40v) = %.40x; want %.40x", tt.v, got, want)
			}
			back, err := Decode(got)
			if err != nil || len(back) != 1 || !back[0].Equal(tt.v) {
				t.Fatalf("Decode(%.40x) = %.40v, %v; want %.40v", got, back, err, tt.v)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	deep := Uint(1)
	for range DefaultMaxDepth + 1 {
		deep = List(deep)
	}
	tests := []struct {
		name string
		v    Value
		want error
	}{
		{"zero value", Value{}, nil},
		{"too long", Bytes(make([]byte, MaxAtomLen+1)), ErrAtomTooLong},
		{"too deep", deep, ErrTooDeep},
		{"marker in list", List(Marker(KindCall)), nil},
		{"invalid in list", List(Value{}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.v)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Encode(%.40v) = %x, %v; want error %v", tt.v, got, err, tt.want)
			}
		})
	}
	if Marker(KindUint).Kind() != KindInvalid {
		t.Errorf("Marker(KindUint) = %v; want the zero Value", Marker(KindUint))
	}
	dst := []byte{1, 2}
	if out, err := AppendValue(dst, Value{}); err == nil || !bytes.Equal(out, dst) {
		t.Errorf("AppendValue(%x, zero) = %x, %v; want %x and an error", dst, out, err, dst)
	}
}

// TestDecodeForms covers decode-only forms: non-minimal integers, medium and
// long integers, continued byte sequences, Empty atoms.
func TestDecodeForms(t *testing.T) {
	tests := []struct {
		in   string
		want []Value
	}{
		{"", nil},
		{"ff", nil},
		{"ff05ff", []Value{Uint(5)}},
		{"820005", []Value{Uint(5)}},
		{"8f000000000000000000000000000001", []Value{Uint(1)}},
		{"8900ffffffffffffffff", []Value{Uint(math.MaxUint64)}},
		{"c00105", []Value{Uint(5)}},
		{"c0080102030405060708", []Value{Uint(0x0102030405060708)}},
		{"c801ff", []Value{Int(-1)}},
		{"e000000201 00", []Value{Uint(256)}},
		{"e1000001ff", []Value{Int(-1)}},
		{"9100", []Value{Int(0)}},
		{"91ff", []Value{Int(-1)}},
		{"99ffffffffffffffffff", []Value{Int(-1)}},
		{"99ff8000000000000000", []Value{Int(math.MinInt64)}},
		{"99007fffffffffffffff", []Value{Int(math.MaxInt64)}},
		{"d000", []Value{Bytes(nil)}},
		{"d003616263", []Value{Text("abc")}},
		{"e2000000", []Value{Bytes(nil)}},
		{"e200000161", []Value{Text("a")}},
		{"b141a142", []Value{Text("AB")}},
		{"b141ffb0a142", []Value{Text("AB")}},
		{"d80141a0", []Value{Text("A")}},
		{"e300000141d00142", []Value{Text("AB")}},
		{"f0b141a142f1", []Value{List(Text("AB"))}},
		{"f2b16ea0a178f3", []Value{Pair(Text("n"), Text("x"))}},
		{"f2a16e05f3", []Value{Pair(Text("n"), Uint(5))}},
		{"f201f202f003f1f3f3", []Value{Named(1, Named(2, List(Uint(3))))}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			in := mustHex(t, tt.in)
			got, err := Decode(in)
			if err != nil || !equalValues(got, tt.want) {
				t.Fatalf("Decode(%x) = %v, %v; want %v", in, got, err, tt.want)
			}
		})
	}
}

func equalValues(a, b []Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("f0", DefaultMaxDepth+1) + strings.Repeat("f1", DefaultMaxDepth+1)
	tests := []struct {
		name    string
		in      string
		lim     Limits
		want    error
		wantOff int
	}{
		{"truncated short", "a5", Limits{}, ErrTruncated, 0},
		{"truncated short later", "05a501", Limits{}, ErrTruncated, 1},
		{"truncated medium header", "d0", Limits{}, ErrTruncated, 0},
		{"truncated medium", "d00501", Limits{}, ErrTruncated, 0},
		{"truncated long header", "e200", Limits{}, ErrTruncated, 0},
		{"truncated long", "e20000030100", Limits{}, ErrTruncated, 0},
		{"huge long", "e2ffffff", Limits{}, ErrTruncated, 0},
		{"truncated uint", "8401", Limits{}, ErrTruncated, 0},
		{"reserved atom e4", "e4", Limits{}, ErrReserved, 0},
		{"reserved atom ef", "01ef", Limits{}, ErrReserved, 1},
		{"reserved f4", "f4", Limits{}, ErrReserved, 0},
		{"reserved f7", "f7", Limits{}, ErrReserved, 0},
		{"reserved fd", "fd", Limits{}, ErrReserved, 0},
		{"reserved fe", "fe", Limits{}, ErrReserved, 0},
		{"stray end list", "f1", Limits{}, ErrUnbalanced, 0},
		{"stray end name", "00f3", Limits{}, ErrUnbalanced, 1},
		{"open list", "f0", Limits{}, ErrTruncated, 1},
		{"open list inner", "f0f001f1", Limits{}, ErrTruncated, 4},
		{"list closed by end name", "f0f3", Limits{}, ErrUnbalanced, 1},
		{"call in list", "f0f8f1", Limits{}, ErrSyntax, 1},
		{"eod in list", "f0f9f1", Limits{}, ErrSyntax, 1},
		{"name without name", "f2", Limits{}, ErrTruncated, 1},
		{"list as name", "f2f0f101f3", Limits{}, ErrSyntax, 1},
		{"name closed early", "f201f3", Limits{}, ErrSyntax, 2},
		{"name without value", "f201", Limits{}, ErrTruncated, 2},
		{"name without end", "f20102", Limits{}, ErrTruncated, 3},
		{"name with two values", "f2010203f3", Limits{}, ErrSyntax, 3},
		{"name value marker", "f201f9f3", Limits{}, ErrSyntax, 2},
		{"zero-length uint", "80", Limits{}, ErrSyntax, 0},
		{"zero-length int", "90", Limits{}, ErrSyntax, 0},
		{"zero-length medium uint", "c000", Limits{}, ErrSyntax, 0},
		{"uint overflow", "890100000000000000 00", Limits{}, ErrOverflow, 0},
		{"int overflow", "99008000000000000000", Limits{}, ErrOverflow, 0},
		{"int overflow negative", "99ff7fffffffffffffff", Limits{}, ErrOverflow, 0},
		{"continued unterminated", "b141", Limits{}, ErrTruncated, 2},
		{"continued by integer", "b14105", Limits{}, ErrSyntax, 2},
		{"continued by int atom", "b1418105", Limits{}, ErrSyntax, 2},
		{"continued by control", "b141f1", Limits{}, ErrSyntax, 2},
		{"continued truncated part", "b141a2", Limits{}, ErrTruncated, 2},
		{"too deep", deep, Limits{}, ErrTooDeep, DefaultMaxDepth},
		{"too deep names", "f201f202f203f3f3f3", Limits{MaxDepth: 2}, ErrTooDeep, 4},
		{"too many tokens", "01020304", Limits{MaxTokens: 3}, ErrTooManyTokens, 3},
		{"too many empties", "ffffff01", Limits{MaxTokens: 3}, ErrTooManyTokens, 3},
		{"too many continued", "b141b142a143", Limits{MaxTokens: 2}, ErrTooManyTokens, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustHex(t, tt.in)
			got, err := tt.lim.Decode(in)
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tt.want) || de.Offset != tt.wantOff {
				t.Fatalf("Decode(%x) = %v, %v; want %v at offset %d", in, got, err, tt.want, tt.wantOff)
			}
			if got != nil {
				t.Fatalf("Decode(%x) = %v with error; want nil", in, got)
			}
			if !strings.HasPrefix(err.Error(), "token: offset ") {
				t.Fatalf("Decode(%x) error %q; want a \"token: offset N\" message", in, err)
			}
		})
	}
}

// TestDecodeCopies checks decoded byte sequences don't alias the input.
func TestDecodeCopies(t *testing.T) {
	in := mustHex(t, "a3616263")
	vs, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	in[1] = 'X'
	if b, _ := vs[0].AsBytes(); string(b) != "abc" {
		t.Fatalf("Decode result changed with its input: %q", b)
	}
}

// goldenValues are the Values of the testdata/*.hex spec examples.
var goldenValues = map[string][]Value{
	"cellblock_columns_3_10.hex": {List(List(Named(3, Uint(3)), Named(4, Uint(10))))},
	"ace_user1.hex": {List(
		Pair(Bytes(mustHexV("00000c05")), Bytes(mustHexV("0000000900030001"))))},
	"ace_admin1_or_user1.hex": {List(
		Pair(Bytes(mustHexV("00000c05")), Bytes(mustHexV("0000000900010001"))),
		Pair(Bytes(mustHexV("00000c05")), Bytes(mustHexV("0000000900030001"))),
		Pair(Bytes(mustHexV("0000040e")), Uint(1)))},
	"status_list.hex":            {Marker(KindEndOfData), List(Uint(0), Uint(0), Uint(0))},
	"sedutil_empty_pin.hex":      {Bytes([]byte{0})},
	"lockonreset_powercycle.hex": {List(Uint(0))},
	"end_of_session.hex":         {Marker(KindEndOfSession)},
	"set_byte_table.hex":         {List(Named(0, Uint(1981)), Named(1, Bytes(mustHexV("deadbeef"))))},
	"startsession_admin1.hex": {
		Marker(KindCall), Bytes(mustHexV("00000000000000ff")), Bytes(mustHexV("000000000000ff02")),
		List(Uint(0x69), Bytes(mustHexV("0000020500000002")), Uint(1),
			Named(0, Bytes(mustHexV("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"))),
			Named(3, Bytes(mustHexV("0000000900010001")))),
		Marker(KindEndOfData), List(Uint(0), Uint(0), Uint(0)),
	},
}

func mustHexV(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// readGolden returns the bytes of a testdata/*.hex file: a first line "# where
// it comes from", then hex with any spacing.
func readGolden(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, rest, _ := strings.Cut(string(b), "\n")
	if !strings.HasPrefix(first, "# ") {
		t.Fatalf("%s: first line must be a # comment naming the source", path)
	}
	return mustHex(t, rest)
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.hex: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := goldenValues[name]
			if !ok {
				t.Fatalf("no goldenValues entry for %s", name)
			}
			in := readGolden(t, f)
			got, err := Decode(in)
			if err != nil || !equalValues(got, want) {
				t.Fatalf("Decode(%x) = %v, %v; want %v", in, got, err, want)
			}
			enc, err := Encode(want...)
			if err != nil || !bytes.Equal(enc, in) {
				t.Fatalf("Encode(%v) = %x, %v; want %x", want, enc, err, in)
			}
		})
	}
	if len(files) != len(goldenValues) {
		t.Errorf("%d testdata files, %d goldenValues entries", len(files), len(goldenValues))
	}
}

func TestAccessors(t *testing.T) {
	row := List(Named(3, Text("pin")), Named(5, Uint(5)), Uint(9), Pair(Text("Name"), Uint(7)), Pair(Int(-1), Uint(8)))
	if v, ok := row.Lookup(5); !ok || !v.Equal(Uint(5)) {
		t.Errorf("Lookup(5) = %v, %v; want 5, true", v, ok)
	}
	if v, ok := row.Lookup(4); ok {
		t.Errorf("Lookup(4) = %v, true; want not found", v)
	}
	if v, ok := row.Lookup(math.MaxUint64); ok {
		t.Errorf("Lookup(MaxUint64) = %v, true; want not found (the -1 name)", v)
	}
	if v, ok := row.LookupText("Name"); !ok || !v.Equal(Uint(7)) {
		t.Errorf("LookupText(Name) = %v, %v; want 7, true", v, ok)
	}
	if _, ok := Uint(1).Lookup(1); ok {
		t.Errorf("Uint(1).Lookup(1) found something")
	}
	if n, v, ok := Named(2, Uint(3)).NameValue(); !ok || !n.Equal(Uint(2)) || !v.Equal(Uint(3)) {
		t.Errorf("NameValue() = %v, %v, %v", n, v, ok)
	}
	if _, _, ok := Uint(1).NameValue(); ok {
		t.Errorf("Uint(1).NameValue() ok")
	}

	uintTests := []struct {
		v    Value
		want uint64
		ok   bool
	}{
		{Uint(7), 7, true},
		{Int(7), 7, true},
		{Int(-7), 0, false},
		{Bytes(mustHexV("0100000000")), 1 << 32, true},
		{Bytes(mustHexV("ffffffffffffffff")), math.MaxUint64, true},
		{Bytes(mustHexV("010000000000000000")), 0, false},
		{Bytes(nil), 0, false},
		{List(), 0, false},
	}
	for _, tt := range uintTests {
		got, err := tt.v.AsUint()
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("%v.AsUint() = %d, %v; want %d, ok=%v", tt.v, got, err, tt.want, tt.ok)
		}
	}
	if _, err := Uint(math.MaxUint64).AsInt(); err == nil {
		t.Errorf("Uint(max).AsInt() succeeded")
	}
	if got, err := Uint(5).AsInt(); got != 5 || err != nil {
		t.Errorf("Uint(5).AsInt() = %d, %v", got, err)
	}
	if got, err := Int(-5).AsInt(); got != -5 || err != nil {
		t.Errorf("Int(-5).AsInt() = %d, %v", got, err)
	}
	for _, tt := range []struct {
		v    Value
		want bool
		ok   bool
	}{{Uint(0), false, true}, {Uint(1), true, true}, {Uint(2), true, true}, {Int(0), false, true}, {Bytes([]byte{1}), false, false}} {
		got, err := tt.v.AsBool()
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("%v.AsBool() = %v, %v; want %v, ok=%v", tt.v, got, err, tt.want, tt.ok)
		}
	}
	_, err := Uint(1).AsBytes()
	var te *TypeError
	if !errors.As(err, &te) || err.Error() != "token: uint 1 is not a byte sequence" {
		t.Errorf("Uint(1).AsBytes() error = %v; want *TypeError \"token: uint 1 is not a byte sequence\"", err)
	}
	if _, err := Uint(1).AsList(); err == nil {
		t.Errorf("Uint(1).AsList() succeeded")
	}
	if items, err := List(Uint(1)).AsList(); err != nil || len(items) != 1 {
		t.Errorf("AsList() = %v, %v", items, err)
	}
	if Uint(1).Items() != nil {
		t.Errorf("Uint(1).Items() != nil")
	}
	if !(Value{}).IsZero() || Uint(0).IsZero() {
		t.Errorf("IsZero wrong")
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Uint(5), "5"},
		{Int(5), "+5"},
		{Int(-5), "-5"},
		{Text("MaxPackets"), `"MaxPackets"`},
		{Bytes(nil), `""`},
		{Bytes(mustHexV("0000020500000002")), "0x0000020500000002"},
		{List(Named(3, Uint(1)), Pair(Text("a"), List())), `[3=1 "a"=[]]`},
		{Marker(KindEndOfData), "EndOfData"},
		{Value{}, "invalid"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("String() = %s; want %s", got, tt.want)
		}
	}
	if got := Kind(99).String(); got != "Kind(99)" {
		t.Errorf("Kind(99).String() = %s", got)
	}
	_, err := Bytes(seq(40)).AsUint()
	if err == nil || len(err.Error()) > 100 {
		t.Errorf("long value error = %q; want a short message", err)
	}
}

func TestEqual(t *testing.T) {
	pairs := [][2]Value{
		{Uint(5), Int(5)},
		{Uint(5), Uint(6)},
		{Text("a"), Text("b")},
		{List(Uint(1)), List(Uint(1), Uint(2))},
		{List(Uint(1)), List(Uint(2))},
		{Named(1, Uint(1)), List(Uint(1), Uint(1))},
		{Bytes(nil), Uint(0)},
	}
	for _, p := range pairs {
		if p[0].Equal(p[1]) || p[1].Equal(p[0]) {
			t.Errorf("%v.Equal(%v) = true", p[0], p[1])
		}
	}
	if !List(Named(1, Text("x"))).Equal(List(Named(1, Text("x")))) {
		t.Errorf("equal lists differ")
	}
}
