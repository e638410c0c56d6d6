package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/transport"
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

var sedsimIdentity = transport.Identity{
	Serial:    [20]byte([]byte("SEDSIM0001          ")),
	Model:     "shiftlock sedsim",
	Firmware:  "1.0",
	Kind:      transport.KindSim,
	BlockSize: 4096,
	Blocks:    0x40000,
	PCIVendor: 0x1B36,
}

func TestInfoGolden(t *testing.T) {
	golden := readGolden(t, "testdata/info_sedsim.hex")
	got, err := ParseInfo(golden)
	if err != nil {
		t.Fatalf("ParseInfo(golden) = %v", err)
	}
	if got != sedsimIdentity {
		t.Errorf("ParseInfo(golden) = %+v; want %+v", got, sedsimIdentity)
	}
	enc, err := AppendInfo(nil, sedsimIdentity)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, golden) {
		t.Errorf("AppendInfo = %x; want %x", enc, golden)
	}
}

func TestInfoKeepsRawSerial(t *testing.T) {
	id := sedsimIdentity
	id.Serial = [20]byte([]byte("  S3Z9NB0K123456A   "))
	enc, err := AppendInfo(nil, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseInfo(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != id.Serial {
		t.Errorf("serial = %q; want %q untrimmed", got.Serial, id.Serial)
	}
	if got.SerialString() != "S3Z9NB0K123456A" {
		t.Errorf("SerialString() = %q; want %q", got.SerialString(), "S3Z9NB0K123456A")
	}
}

func TestInfoErrors(t *testing.T) {
	for _, n := range []int{0, 127, 129} {
		if _, err := ParseInfo(make([]byte, n)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseInfo(%d bytes) = %v; want ErrProtocol", n, err)
		}
	}
	long := sedsimIdentity
	long.Model = strings.Repeat("m", ModelLen+1)
	if _, err := AppendInfo(nil, long); err == nil {
		t.Error("AppendInfo with a 41-byte model succeeded")
	}
	long = sedsimIdentity
	long.Firmware = "123456789"
	if _, err := AppendInfo(nil, long); err == nil {
		t.Error("AppendInfo with a 9-byte firmware succeeded")
	}
}

func TestHeaders(t *testing.T) {
	reqs := []struct {
		h       RequestHeader
		enc     string
		payload uint32
	}{
		{RequestHeader{Op: OpIFSend, Proto: 1, SPSP: 0x07FE, Len: 2048}, "01 01 07FE 00000800", 2048},
		{RequestHeader{Op: OpIFRecv, Proto: 1, SPSP: 0x0001, Len: 2048}, "02 01 0001 00000800", 0},
		{RequestHeader{Op: OpInfo}, "03 00 0000 00000000", 0},
		{RequestHeader{Op: OpRead, Len: 12}, "05 00 0000 0000000C", 12},
		{RequestHeader{Op: 0x7F, Proto: 9, SPSP: 0xFFFF, Len: 5}, "7F 09 FFFF 00000005", 5},
	}
	for _, tc := range reqs {
		enc := tc.h.Append(nil)
		if want := mustHex(tc.enc); !bytes.Equal(enc, want) {
			t.Errorf("%+v.Append = %x; want %x", tc.h, enc, want)
		}
		got, err := ParseRequestHeader(enc)
		if err != nil || got != tc.h {
			t.Errorf("ParseRequestHeader(%x) = %+v, %v; want %+v", enc, got, err, tc.h)
		}
		if got.PayloadLen() != tc.payload {
			t.Errorf("%v.PayloadLen() = %d; want %d", tc.h.Op, got.PayloadLen(), tc.payload)
		}
	}
	resp := ResponseHeader{Status: StatusAccessDenied, Len: 0x10000}
	if enc, want := resp.Append(nil), mustHex("04 000000 00010000"); !bytes.Equal(enc, want) {
		t.Errorf("%+v.Append = %x; want %x", resp, enc, want)
	}
	if got, err := ParseResponseHeader(mustHex("01 FFFFFF 00000000")); err != nil || got != (ResponseHeader{Status: StatusInvalidField}) {
		t.Errorf("ParseResponseHeader(reserved bits set) = %+v, %v; want INVALID_FIELD, len 0", got, err)
	}
	r := BlockRange{LBA: 0x0102030405060708, Count: 0x0A0B0C0D}
	if enc, want := r.Append(nil), mustHex("0102030405060708 0A0B0C0D"); !bytes.Equal(enc, want) {
		t.Errorf("%+v.Append = %x; want %x", r, enc, want)
	}
	for _, n := range []int{0, 7} {
		if _, err := ParseRequestHeader(make([]byte, n)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseRequestHeader(%d bytes) = %v; want ErrProtocol", n, err)
		}
		if _, err := ParseResponseHeader(make([]byte, n)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseResponseHeader(%d bytes) = %v; want ErrProtocol", n, err)
		}
	}
	if _, err := ParseBlockRange(make([]byte, 11)); !errors.Is(err, ErrProtocol) {
		t.Errorf("ParseBlockRange(11 bytes) = %v; want ErrProtocol", err)
	}
}

func TestStatusErrors(t *testing.T) {
	wrapped := fmt.Errorf("read lba 5: %w", StatusAccessDenied)
	if !errors.Is(wrapped, ErrAccessDenied) || errors.Is(wrapped, ErrDeviceError) {
		t.Errorf("errors.Is on %v is wrong", wrapped)
	}
	var st Status
	if !errors.As(wrapped, &st) || st != StatusAccessDenied {
		t.Errorf("errors.As(%v) = %v", wrapped, st)
	}
	if !errors.Is(fmt.Errorf("x: %w", ErrInvalidField), transport.ErrInvalidField) {
		t.Error("INVALID_FIELD does not match transport.ErrInvalidField")
	}
	if errors.Is(ErrInvalidOp, transport.ErrInvalidField) {
		t.Error("INVALID_OP matches transport.ErrInvalidField")
	}
	for st, want := range map[Status]string{
		StatusOK: "OK (0x00)", StatusAccessDenied: "ACCESS_DENIED (0x04)", 0xEE: "UNKNOWN (0xEE)",
	} {
		if st.Error() != want {
			t.Errorf("Status(%d).Error() = %q; want %q", uint8(st), st.Error(), want)
		}
	}
	for op, want := range map[Op]string{OpIFSend: "IF_SEND", OpWrite: "WRITE", 0: "OP_0x00", 0xAB: "OP_0xAB"} {
		if op.String() != want {
			t.Errorf("Op(%d).String() = %q; want %q", uint8(op), op.String(), want)
		}
	}
}
