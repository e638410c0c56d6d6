package packet

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readGolden returns the bytes of a testdata/*.hex file: a first line "# where
// it comes from", then hex with any spacing; "#" starts a comment anywhere.
func readGolden(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("# ")) {
		t.Fatalf("%s: first line must be a # comment naming the source", path)
	}
	var sb strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

var goldenPackets = map[string]ComPacket{
	"properties_call.hex": {ComID: 0x07FE, Packets: []Packet{{SubPackets: []SubPacket{{
		Kind: KindData, Data: mustHex("F8 A8 00000000000000FF A8 000000000000FF01 F0 F1 F9 F0 00 00 00 F1"),
	}}}}},
	"end_session.hex": {ComID: 0x1004, Packets: []Packet{{TSN: 0x1001, HSN: 0x69, SubPackets: []SubPacket{{
		Kind: KindData, Data: []byte{0xFA},
	}}}}},
	"not_ready.hex":          {ComID: 0x1004, OutstandingData: 1},
	"needs_min_transfer.hex": {ComID: 0x1004, OutstandingData: 1, MinTransfer: 0x1000},
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.hex: %v", err)
	}
	if len(files) != len(goldenPackets) {
		t.Errorf("%d testdata files, %d goldenPackets entries", len(files), len(goldenPackets))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := goldenPackets[name]
			if !ok {
				t.Fatalf("no goldenPackets entry for %s", name)
			}
			in := readGolden(t, f)
			got, err := Parse(in)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse(%x) = %+v, %v; want %+v", in, got, err, want)
			}
			enc, err := want.MarshalBinary()
			if err != nil || !bytes.Equal(enc, in) {
				t.Fatalf("MarshalBinary(%+v) = %x, %v; want %x", want, enc, err, in)
			}
			if want.Size() != len(in) {
				t.Fatalf("Size() = %d; want %d", want.Size(), len(in))
			}
			// Hosts pad the transfer: sedutil to 512 bytes, the kernel to 2048.
			padded := append(bytes.Clone(in), make([]byte, 2048-len(in))...)
			if got, err := Parse(padded); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse(padded to 2048) = %+v, %v; want %+v", got, err, want)
			}
			// Single-packet goldens are what Build writes.
			if len(want.Packets) == 1 {
				p, data, err := want.Payload()
				if err != nil {
					t.Fatal(err)
				}
				b, err := Build(want.ComID, p.TSN, p.HSN, data)
				if err != nil || !bytes.Equal(b, in) {
					t.Fatalf("Build(%#x, %d, %d, %x) = %x, %v; want %x", want.ComID, p.TSN, p.HSN, data, b, err, in)
				}
			}
		})
	}
}

func TestParseTolerance(t *testing.T) {
	end := readGolden(t, filepath.Join("testdata", "end_session.hex"))
	want := goldenPackets["end_session.hex"]
	be := binary.BigEndian

	// Zero bytes too few for a header at the end of the ComPacket.
	b := append(bytes.Clone(end[:60]), make([]byte, 8)...)
	be.PutUint32(b[16:], 40+8)
	if got, err := Parse(b); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ComPacket with 8 trailing zero bytes: Parse = %+v, %v; want %+v", got, err, want)
	}
	// The last SubPacket's padding cut short by its Packet's end.
	b = bytes.Clone(end[:57])
	be.PutUint32(b[16:], 24+13)
	be.PutUint32(b[40:], 13)
	if got, err := Parse(b); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("SubPacket without padding: Parse = %+v, %v; want %+v", got, err, want)
	}
	// Zero bytes too few for a SubPacket header at the end of a Packet.
	b = append(bytes.Clone(end[:60]), make([]byte, 4)...)
	be.PutUint32(b[16:], 40+4)
	be.PutUint32(b[40:], 16+4)
	if got, err := Parse(b); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Packet with 4 trailing zero bytes: Parse = %+v, %v; want %+v", got, err, want)
	}
	// Reserved fields are not checked.
	b = bytes.Clone(end)
	b[0], b[32], b[44] = 1, 1, 1
	if got, err := Parse(b); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("reserved fields set: Parse = %+v, %v; want %+v", got, err, want)
	}
}

func TestParseErrors(t *testing.T) {
	end := readGolden(t, filepath.Join("testdata", "end_session.hex"))
	be := binary.BigEndian
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(end)) }
	tests := []struct {
		name    string
		in      []byte
		want    error
		wantOff int
	}{
		{"empty", nil, ErrTruncated, 0},
		{"short header", make([]byte, 19), ErrTruncated, 0},
		{"compacket length past buffer", end[:59], ErrLength, 16},
		{"compacket length huge", mod(func(b []byte) []byte { be.PutUint32(b[16:], 0xFFFFFFFF); return b }), ErrLength, 16},
		{"packet header cut", mod(func(b []byte) []byte { be.PutUint32(b[16:], 23); return b }), ErrTruncated, 20},
		{"packet length past compacket", mod(func(b []byte) []byte { be.PutUint32(b[40:], 17); return b }), ErrLength, 40},
		{"packet length huge", mod(func(b []byte) []byte { be.PutUint32(b[40:], 0xFFFFFFF0); return b }), ErrLength, 40},
		{"subpacket header cut", mod(func(b []byte) []byte {
			be.PutUint32(b[16:], 24+11)
			be.PutUint32(b[40:], 11)
			b[50] = 0x80 // kind 0x8000: not padding
			return b
		}), ErrTruncated, 44},
		{"subpacket length past packet", mod(func(b []byte) []byte { be.PutUint32(b[52:], 5); return b }), ErrLength, 52},
		{"subpacket length huge", mod(func(b []byte) []byte { be.PutUint32(b[52:], 0xFFFFFFFF); return b }), ErrLength, 52},
		{"garbage after packet", mod(func(b []byte) []byte {
			b = append(b, 0, 0, 0, 1)
			be.PutUint32(b[16:], 44)
			return b
		}), ErrTruncated, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, tt.want) || pe.Offset != tt.wantOff {
				t.Fatalf("Parse(%x) = %+v, %v; want %v at offset %d", tt.in, got, err, tt.want, tt.wantOff)
			}
			if !strings.HasPrefix(err.Error(), "packet: offset ") {
				t.Fatalf("error %q; want a \"packet: offset N\" message", err)
			}
		})
	}
}

func TestMultiple(t *testing.T) {
	c := ComPacket{
		ComID: 0x0800, ComIDExtension: 7, OutstandingData: 3, MinTransfer: 4,
		Packets: []Packet{
			{TSN: 1, HSN: 2, SeqNumber: 3, AckType: 4, Acknowledgement: 5, SubPackets: []SubPacket{
				{Kind: KindData, Data: []byte{1, 2, 3, 4, 5}},
				{Kind: KindCreditControl, Data: []byte{0, 0, 1, 0}},
				{Kind: KindData, Data: []byte{}},
			}},
			{TSN: 6, HSN: 7},
		},
	}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != c.Size() || len(b) != 20+24+12+8+12+4+12+24 {
		t.Fatalf("MarshalBinary wrote %d bytes, Size() = %d", len(b), c.Size())
	}
	got, err := Parse(b)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("Parse(%x) = %+v, %v; want %+v", b, got, err, c)
	}
	if _, _, err := got.Payload(); err == nil {
		t.Errorf("Payload() of 2 Packets succeeded")
	}
	got.Packets = got.Packets[:1]
	if _, _, err := got.Payload(); err == nil {
		t.Errorf("Payload() of 2 data SubPackets succeeded")
	}
	got.Packets[0].SubPackets = got.Packets[0].SubPackets[:2]
	if p, data, err := got.Payload(); err != nil || p.TSN != 1 || !bytes.Equal(data, []byte{1, 2, 3, 4, 5}) {
		t.Errorf("Payload() = %+v, %x, %v", p, data, err)
	}
	if _, _, err := (ComPacket{}).Payload(); !errors.Is(err, ErrEmpty) {
		t.Errorf("Payload() of an empty ComPacket = %v; want ErrEmpty", err)
	}
	if _, _, err := (ComPacket{Packets: []Packet{{}}}).Payload(); err == nil {
		t.Errorf("Payload() of a Packet without SubPackets succeeded")
	}
	if s := KindData.String() + " " + KindCreditControl.String() + " " + Kind(0x1234).String(); s != "data credit control 0x1234" {
		t.Errorf("Kind strings: %s", s)
	}
	// AppendBinary appends.
	out, err := c.AppendBinary([]byte{9})
	if err != nil || out[0] != 9 || !bytes.Equal(out[1:], b) {
		t.Errorf("AppendBinary did not append")
	}
}
