package discovery

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// unhexDump decodes a hex dump: '#' starts a comment that runs to the end
// of the line; whitespace is ignored.
func unhexDump(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for line := range strings.Lines(s) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("bad hex dump: %v", err)
	}
	return b
}

func readDump(t testing.TB, name string) []byte {
	t.Helper()
	s, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return unhexDump(t, string(s))
}

// opal2Drive is an Opal 2 drive laid out byte by byte from PROTOCOL.md 1.2:
// the Samsung-like core plus SUM, Block SID, CNL, Data Removal and a vendor
// descriptor. Field values are distinct where the layout allows so that a
// wrong offset shows.
const opal2Drive = `
00 00 00 f0   # parameter data length 240 (total 244)
00 00 00 01   # data structure version 0.1
00 00 00 00 00 00 00 00                          # reserved
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  # vendor specific
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00

00 01 10 0c   # TPer v1, 12 bytes
51            # Sync, Streaming, ComID Mgmt
00 00 00 00 00 00 00 00 00 00 00

00 02 10 0c   # Locking v1
3b            # Supported, Enabled, MediaEncryption, MBREnabled, MBRDone
00 00 00 00 00 00 00 00 00 00 00

00 03 10 1c   # Geometry v1, 28 bytes
01                      # ALIGN
00 00 00 00 00 00 00    # reserved
00 00 10 00             # LogicalBlockSize 4096
00 00 00 00 00 00 00 08 # AlignmentGranularity 8
00 00 00 00 00 00 00 03 # LowestAlignedLBA 3

02 01 10 0c   # Single User Mode v1
00 00 00 09   # 9 locking objects
05            # Any, Policy
00 00 00 00 00 00 00

02 02 10 0c   # Additional DataStore Tables v1
00 00         # reserved
00 09         # 9 tables
00 a0 00 00   # 10 MiB in total
00 00 00 01   # alignment 1

02 03 10 10   # Opal SSC v2, 16 bytes
10 04         # base ComID 0x1004
00 01         # 1 ComID
01            # Range Crossing Behavior bit set
00 04         # 4 admins
00 09         # 9 users
00            # initial SID PIN = MSID
ff            # SID PIN after revert: vendor defined
00 00 00 00 00

04 02 10 0c   # Block SID v1
01            # SID Value State
01            # Hardware Reset
00 00 00 00 00 00 00 00 00 00

04 03 10 10   # Configurable Namespace Locking v1, 16 bytes
80 00 00 00   # Range_C
00 00 00 09   # max key count 9
00 00 00 07   # unused key count 7
00 00 00 08   # max ranges per namespace 8

04 04 10 20   # Data Removal Mechanism v1, 32 bytes
00 00         # reserved, not processing
04            # crypto erase
02            # time format bit 1
00 00 00 00 00 01 00 00 00 00 00 00  # times: crypto erase 1
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00

c0 01 10 04   # vendor unique 0xC001 v1
de ad be ef
`

var opal2DriveWant = &Discovery{
	MajorVersion: 0, MinorVersion: 1,
	TPer:    &TPer{Descriptor: Descriptor{Version: 1}, Sync: true, Streaming: true, ComIDMgmt: true},
	Locking: &Locking{Descriptor: Descriptor{Version: 1}, LockingSupported: true, LockingEnabled: true, MediaEncryption: true, MBREnabled: true, MBRDone: true},
	Geometry: &Geometry{Descriptor: Descriptor{Version: 1}, Align: true, LogicalBlockSize: 4096,
		AlignmentGranularity: 8, LowestAlignedLBA: 3},
	SingleUserMode: &SingleUserMode{Descriptor: Descriptor{Version: 1}, NumLockingObjects: 9, Any: true, Policy: true},
	DataStore:      &DataStore{Descriptor: Descriptor{Version: 1}, MaxTables: 9, MaxTotalSize: 10 << 20, Alignment: 1},
	OpalV2: &OpalV2{Descriptor: Descriptor{Version: 1}, BaseComID: 0x1004, NumComIDs: 1, RangeCrossing: true,
		NumAdmins: 4, NumUsers: 9, InitialSIDPIN: PINIsMSID, RevertSIDPIN: PINVendorDefined},
	BlockSID: &BlockSID{Descriptor: Descriptor{Version: 1}, SIDValueState: true, HardwareReset: true},
	NamespaceLock: &NamespaceLocking{Descriptor: Descriptor{Version: 1}, RangeC: true, MaxKeyCount: 9,
		UnusedKeyCount: 7, MaxRangesPerNamespace: 8},
	DataRemoval: &DataRemoval{Descriptor: Descriptor{Version: 1}, Mechanisms: RemovalCryptoErase,
		TimeFormats: 2, Times: [6]uint16{2: 1}},
	Other: []RawFeature{{Code: 0xC001, Version: 1, Data: HexBytes{0xde, 0xad, 0xbe, 0xef}}},
}

// otherSSCs announces every SSC but Opal 2, with distinct ComIDs.
const otherSSCs = `
00 00 00 a0   # parameter data length 160
00 00 00 01
00 00 00 00 00 00 00 00
53 48 49 46 54 4c 4f 43 4b 00 00 00 00 00 00 00  # vendor specific "SHIFTLOCK"
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01

01 00 10 10   # Enterprise v1, 16 bytes
07 fe 00 02   # ComID 0x07FE, 2 ComIDs
01            # Range Crossing
00 00 00 00 00 00 00 00 00 00 00

02 00 10 0c   # Opal SSC v1, 12 bytes
08 00 00 01   # ComID 0x0800, 1 ComID
00 00 00 00 00 00 00 00

03 01 10 10   # Opalite v1, 16 bytes
0a 00 00 03   # ComID 0x0A00, 3 ComIDs
00 00 00 00 00
ff 00         # initial SID PIN vendor defined, revert to MSID
00 00 00 00 00

03 02 10 10   # Pyrite v1
0b 00 00 01
00 00 00 00 00
00 ff
00 00 00 00 00

03 03 20 10   # Pyrite v2, descriptor version 2
0c 00 00 02
00 00 00 00 00
ff ff
00 00 00 00 00

03 04 10 10   # Ruby v1, laid out like Opal 2
0d 00 00 01
01            # Range Crossing
00 02 00 05   # 2 admins, 5 users
00 ff
00 00 00 00 00
`

var otherSSCsWant = &Discovery{
	MajorVersion: 0, MinorVersion: 1,
	VendorSpecific: append(append([]byte("SHIFTLOCK"), make([]byte, 22)...), 1),
	Enterprise:     &Enterprise{Descriptor: Descriptor{Version: 1}, BaseComID: 0x07FE, NumComIDs: 2, RangeCrossing: true},
	OpalV1:         &OpalV1{Descriptor: Descriptor{Version: 1}, BaseComID: 0x0800, NumComIDs: 1},
	Opalite:        &Opalite{Descriptor: Descriptor{Version: 1}, BaseComID: 0x0A00, NumComIDs: 3, InitialSIDPIN: PINVendorDefined, RevertSIDPIN: PINIsMSID},
	PyriteV1:       &PyriteV1{Descriptor: Descriptor{Version: 1}, BaseComID: 0x0B00, NumComIDs: 1, InitialSIDPIN: PINIsMSID, RevertSIDPIN: PINVendorDefined},
	PyriteV2:       &PyriteV2{Descriptor: Descriptor{Version: 2}, BaseComID: 0x0C00, NumComIDs: 2, InitialSIDPIN: PINVendorDefined, RevertSIDPIN: PINVendorDefined},
	Ruby: &Ruby{Descriptor: Descriptor{Version: 1}, BaseComID: 0x0D00, NumComIDs: 1, RangeCrossing: true,
		NumAdmins: 2, NumUsers: 5, InitialSIDPIN: PINIsMSID, RevertSIDPIN: PINVendorDefined},
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		dump string
		want *Discovery
	}{
		{"opal2", opal2Drive, opal2DriveWant},
		{"other SSCs", otherSSCs, otherSSCsWant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := unhexDump(t, tc.dump)
			if got := int(binary.BigEndian.Uint32(b)) + 4; got != len(b) {
				t.Fatalf("test dump is %d bytes, its header says %d", len(b), got)
			}
			d, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			checkDiscovery(t, d, tc.want)
			out, err := Build(tc.want)
			if err != nil {
				t.Fatalf("Build = %v", err)
			}
			if !bytes.Equal(out, b) {
				t.Errorf("Build =\n%x\nwant\n%x", out, b)
			}
		})
	}
}

// checkDiscovery compares feature by feature, so that a failure names the
// feature.
func checkDiscovery(t *testing.T, got, want *Discovery) {
	t.Helper()
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range gv.NumField() {
		g, w := gv.Field(i), wv.Field(i)
		if !reflect.DeepEqual(g.Interface(), w.Interface()) {
			t.Errorf("%s = %s; want %s", gv.Type().Field(i).Name, mustJSON(t, g.Interface()), mustJSON(t, w.Interface()))
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDriveDumps(t *testing.T) {
	samsungCore := func() *Discovery {
		return &Discovery{
			MajorVersion: 0, MinorVersion: 1,
			TPer:     &TPer{Descriptor: Descriptor{Version: 1}, Sync: true, Streaming: true},
			Locking:  &Locking{Descriptor: Descriptor{Version: 1}, LockingSupported: true, MediaEncryption: true},
			Geometry: &Geometry{Descriptor: Descriptor{Version: 1}, Align: true, LogicalBlockSize: 512, AlignmentGranularity: 8},
			DataStore: &DataStore{Descriptor: Descriptor{Version: 1}, MaxTables: 9, MaxTotalSize: 10 << 20,
				Alignment: 1},
			OpalV2: &OpalV2{Descriptor: Descriptor{Version: 1}, BaseComID: 0x1004, NumComIDs: 1, NumAdmins: 4,
				NumUsers: 9},
		}
	}
	evo860 := samsungCore()
	// PROTOCOL.md 1.2: "Locking flags 0x1F (locked, MBR enabled)".
	*evo860.Locking = Locking{Descriptor: Descriptor{Version: 1}, LockingSupported: true, LockingEnabled: true,
		Locked: true, MediaEncryption: true, MBREnabled: true}
	evo970 := samsungCore()
	evo970.BlockSID = &BlockSID{Descriptor: Descriptor{Version: 1}}
	evo970.NamespaceLock = &NamespaceLocking{Descriptor: Descriptor{Version: 1}, RangeC: true, MaxKeyCount: 9,
		UnusedKeyCount: 8, MaxRangesPerNamespace: 8}
	mz1lb := samsungCore()
	mz1lb.BlockSID = &BlockSID{Descriptor: Descriptor{Version: 1}, SIDBlocked: true, HardwareReset: true}
	sabrent := &Discovery{
		MajorVersion: 0, MinorVersion: 1,
		TPer:     &TPer{Descriptor: Descriptor{Version: 1}, Sync: true, Streaming: true},
		Locking:  &Locking{Descriptor: Descriptor{Version: 2}, LockingSupported: true, MBRShadowingNotSupported: true},
		PyriteV1: &PyriteV1{Descriptor: Descriptor{Version: 1}, BaseComID: 0x07FE, NumComIDs: 1},
	}

	for _, tc := range []struct {
		file      string
		want      *Discovery
		truncated int // offset of the ErrTruncated error, 0 if none
		ssc       SSC
	}{
		{"samsung-860-evo.hex", evo860, 0, SSCOpalV2},
		{"samsung-970-evo-plus.hex", evo970, 0, SSCOpalV2},
		{"samsung-mz1lb1t9-truncated.hex", mz1lb, 164, SSCOpalV2},
		{"sabrent-rocket-4-truncated.hex", sabrent, 100, SSCPyriteV1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := readDump(t, tc.file)
			d, err := Parse(b)
			if tc.truncated != 0 {
				var pe *ParseError
				if !errors.Is(err, ErrTruncated) || !errors.As(err, &pe) || pe.Offset != tc.truncated {
					t.Fatalf("Parse = %v; want ErrTruncated at offset %d", err, tc.truncated)
				}
				if d == nil {
					t.Fatalf("Parse returned no descriptors with ErrTruncated")
				}
			} else if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			checkDiscovery(t, d, tc.want)
			if got := d.SSC(); got != tc.ssc {
				t.Errorf("SSC() = %v; want %v", got, tc.ssc)
			}
			if tc.truncated != 0 {
				return
			}
			// Every reserved byte in these dumps is zero, so Build
			// reproduces them exactly.
			out, err := Build(d)
			if err != nil {
				t.Fatalf("Build = %v", err)
			}
			if !bytes.Equal(out, b) {
				t.Errorf("Build =\n%x\nwant\n%x", out, b)
			}
		})
	}
}

func TestZeroPaddedBuffer(t *testing.T) {
	b := unhexDump(t, opal2Drive)
	buf := make([]byte, 2048)
	copy(buf, b)
	d, err := Parse(buf)
	if err != nil {
		t.Fatalf("Parse(2048-byte buffer) = %v", err)
	}
	checkDiscovery(t, d, opal2DriveWant)
}

// TestBits sets one bit at a time and checks that exactly the named flag
// comes out: it pins every flag's byte and bit position.
func TestBits(t *testing.T) {
	for _, tc := range []struct {
		code       FeatureCode
		field      string // Discovery field
		byteOffset int    // from the descriptor's start, as PROTOCOL.md counts
		bit        uint
		flag       string
	}{
		{CodeTPer, "TPer", 4, 0, "Sync"},
		{CodeTPer, "TPer", 4, 1, "Async"},
		{CodeTPer, "TPer", 4, 2, "AckNak"},
		{CodeTPer, "TPer", 4, 3, "BufferMgmt"},
		{CodeTPer, "TPer", 4, 4, "Streaming"},
		{CodeTPer, "TPer", 4, 5, ""},
		{CodeTPer, "TPer", 4, 6, "ComIDMgmt"},
		{CodeLocking, "Locking", 4, 0, "LockingSupported"},
		{CodeLocking, "Locking", 4, 1, "LockingEnabled"},
		{CodeLocking, "Locking", 4, 2, "Locked"},
		{CodeLocking, "Locking", 4, 3, "MediaEncryption"},
		{CodeLocking, "Locking", 4, 4, "MBREnabled"},
		{CodeLocking, "Locking", 4, 5, "MBRDone"},
		{CodeLocking, "Locking", 4, 6, "MBRShadowingNotSupported"},
		{CodeLocking, "Locking", 4, 7, "HWResetSupported"},
		{CodeGeometry, "Geometry", 4, 0, "Align"},
		{CodeGeometry, "Geometry", 4, 1, ""},
		{CodeEnterprise, "Enterprise", 8, 0, "RangeCrossing"},
		{CodeSingleUserMode, "SingleUserMode", 8, 0, "Any"},
		{CodeSingleUserMode, "SingleUserMode", 8, 1, "All"},
		{CodeSingleUserMode, "SingleUserMode", 8, 2, "Policy"},
		{CodeOpalV2, "OpalV2", 8, 0, "RangeCrossing"},
		{CodeRuby, "Ruby", 8, 0, "RangeCrossing"},
		{CodeOpalite, "Opalite", 8, 0, ""},
		{CodeBlockSID, "BlockSID", 4, 0, "SIDValueState"},
		{CodeBlockSID, "BlockSID", 4, 1, "SIDBlocked"},
		{CodeBlockSID, "BlockSID", 4, 2, "FreezeLockSupported"},
		{CodeBlockSID, "BlockSID", 4, 3, "FreezeLockState"},
		{CodeBlockSID, "BlockSID", 5, 0, "HardwareReset"},
		{CodeNamespaceLocking, "NamespaceLock", 4, 7, "RangeC"},
		{CodeNamespaceLocking, "NamespaceLock", 4, 6, "RangeP"},
		{CodeNamespaceLocking, "NamespaceLock", 4, 5, "SUMC"},
		{CodeDataRemoval, "DataRemoval", 5, 0, "OperationProcessing"},
		{CodeDataRemoval, "DataRemoval", 5, 1, "OperationInterrupted"},
	} {
		desc := make([]byte, 4+32)
		binary.BigEndian.PutUint16(desc, uint16(tc.code))
		desc[2] = 0x10
		desc[3] = 32
		desc[tc.byteOffset] = 1 << tc.bit
		d, err := Parse(response(desc))
		if err != nil {
			t.Fatalf("%v byte %d bit %d: Parse = %v", tc.code, tc.byteOffset, tc.bit, err)
		}
		f := reflect.ValueOf(d).Elem().FieldByName(tc.field)
		if f.IsNil() {
			t.Fatalf("%v byte %d bit %d: Discovery.%s is nil", tc.code, tc.byteOffset, tc.bit, tc.field)
		}
		s := f.Elem()
		for i := range s.NumField() {
			name := s.Type().Field(i).Name
			if s.Field(i).Kind() != reflect.Bool {
				continue
			}
			if got, want := s.Field(i).Bool(), name == tc.flag; got != want {
				t.Errorf("%v byte %d bit %d: %s.%s = %v; want %v", tc.code, tc.byteOffset, tc.bit, tc.field, name, got, want)
			}
		}
	}
}

// response wraps descriptors in a header with the right length.
func response(descriptors ...[]byte) []byte {
	b := make([]byte, HeaderLen)
	for _, d := range descriptors {
		b = append(b, d...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	binary.BigEndian.PutUint16(b[6:], 1)
	return b
}

// desc builds a descriptor with n zero data bytes.
func desc(code FeatureCode, version uint8, n int) []byte {
	b := make([]byte, 4+n)
	binary.BigEndian.PutUint16(b, uint16(code))
	b[2] = version << 4
	b[3] = byte(n)
	return b
}

func TestMinimumLengths(t *testing.T) {
	for _, tc := range []struct {
		code FeatureCode
		min  int
	}{
		{CodeTPer, 1}, {CodeLocking, 1}, {CodeGeometry, 28}, {CodeEnterprise, 5}, {CodeOpalV1, 4},
		{CodeSingleUserMode, 5}, {CodeDataStore, 12}, {CodeOpalV2, 11}, {CodeOpalite, 11},
		{CodePyriteV1, 11}, {CodePyriteV2, 11}, {CodeRuby, 11}, {CodeBlockSID, 2},
		{CodeNamespaceLocking, 16}, {CodeDataRemoval, 16},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			if _, err := Parse(response(desc(CodeVendorMin, 1, 12), desc(tc.code, 1, tc.min))); err != nil {
				t.Errorf("Parse(%d data bytes) = %v; want success", tc.min, err)
			}
			_, err := Parse(response(desc(CodeVendorMin, 1, 12), desc(tc.code, 1, tc.min-1)))
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset != HeaderLen+16 || errors.Is(err, ErrTruncated) {
				t.Errorf("Parse(%d data bytes) = %v; want a ParseError at offset %d", tc.min-1, err, HeaderLen+16)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	good := unhexDump(t, opal2Drive)
	withLength := func(b []byte, n uint32) []byte {
		b = bytes.Clone(b)
		binary.BigEndian.PutUint32(b, n)
		return b
	}
	for _, tc := range []struct {
		name      string
		in        []byte
		offset    int
		truncated bool
		partial   bool // a Discovery comes back with the error
	}{
		{"empty", nil, 0, true, false},
		{"47 bytes", good[:47], 47, true, false},
		{"length below header", withLength(good[:48], 43), 0, false, false},
		{"all zero", make([]byte, 512), 0, false, false},
		// The declared length ends 2 bytes into the Locking descriptor.
		{"length ends in descriptor header", withLength(good, 48+16+2-4), 64, false, false},
		{"length ends in descriptor data", withLength(good, 48+16+8-4), 64, false, false},
		// The buffer, not the declared length, ends early.
		{"buffer ends in descriptor header", good[:66], 64, true, true},
		{"buffer ends in descriptor data", good[:72], 64, true, true},
		{"buffer ends between descriptors", good[:80], 80, true, true},
		{"length beyond 4 GiB", withLength(good, 0xFFFFFFFF), len(good), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(tc.in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, %v; want a ParseError", d, err)
			}
			if pe.Offset != tc.offset {
				t.Errorf("Parse error offset = %d; want %d (%v)", pe.Offset, tc.offset, err)
			}
			if got := errors.Is(err, ErrTruncated); got != tc.truncated {
				t.Errorf("errors.Is(%v, ErrTruncated) = %v; want %v", err, got, tc.truncated)
			}
			if got := d != nil; got != tc.partial {
				t.Errorf("Parse returned a Discovery: %v; want %v", got, tc.partial)
			}
			if tc.partial && d.TPer == nil {
				t.Errorf("partial result lacks the TPer descriptor")
			}
		})
	}
}

func TestExtraAndDuplicates(t *testing.T) {
	lockingV3 := desc(CodeLocking, 3, 14)
	lockingV3[4] = 0x07
	lockingV3[16], lockingV3[17] = 0xAA, 0xBB // beyond the 12 bytes known
	dup := desc(CodeLocking, 1, 12)
	dup[4] = 0x01
	unknown := desc(0x0405, 1, 0)
	in := response(desc(CodeTPer, 1, 12), lockingV3, dup, unknown)
	d, err := Parse(in)
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	want := &Locking{Descriptor: Descriptor{Version: 3, Extra: HexBytes{0xAA, 0xBB}},
		LockingSupported: true, LockingEnabled: true, Locked: true}
	if !reflect.DeepEqual(d.Locking, want) {
		t.Errorf("Locking = %+v; want %+v", d.Locking, want)
	}
	wantOther := []RawFeature{
		{Code: CodeLocking, Version: 1, Data: dup[4:]},
		{Code: CodeNamespaceGeometry, Version: 1},
	}
	if !reflect.DeepEqual(d.Other, wantOther) {
		t.Errorf("Other = %+v; want %+v", d.Other, wantOther)
	}
	out, err := Build(d)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	// Reserved bytes are zero in the input, so the bytes come back
	// exactly, the extra ones included.
	if !bytes.Equal(out, in) {
		t.Errorf("Build =\n%x\nwant\n%x", out, in)
	}
	// The result must not alias the input.
	clear(in)
	if d.Locking.Extra[0] != 0xAA || d.Other[0].Data[0] != 0x01 {
		t.Errorf("Parse result aliases its input")
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    *Discovery
	}{
		{"version", &Discovery{TPer: &TPer{Descriptor: Descriptor{Version: 16}}}},
		{"extra", &Discovery{TPer: &TPer{Descriptor: Descriptor{Version: 1, Extra: make(HexBytes, 244)}}}},
		{"raw data", &Discovery{Other: []RawFeature{{Code: 0xC000, Data: make(HexBytes, 256)}}}},
		{"raw version", &Discovery{Other: []RawFeature{{Code: 0xC000, Version: 0x10}}}},
		{"vendor area", &Discovery{VendorSpecific: make(HexBytes, 33)}},
	} {
		if b, err := Build(tc.d); err == nil {
			t.Errorf("%s: Build = %x; want an error", tc.name, b)
		}
	}
	// The largest descriptor that fits.
	if _, err := Build(&Discovery{TPer: &TPer{Descriptor: Descriptor{Version: 15, Extra: make(HexBytes, 243)}}}); err != nil {
		t.Errorf("Build(255 data bytes) = %v", err)
	}
}

func TestSSC(t *testing.T) {
	all := &Discovery{
		Enterprise: &Enterprise{BaseComID: 1}, Opalite: &Opalite{BaseComID: 2}, PyriteV1: &PyriteV1{BaseComID: 3},
		PyriteV2: &PyriteV2{BaseComID: 4}, Ruby: &Ruby{BaseComID: 5}, OpalV1: &OpalV1{BaseComID: 6},
		OpalV2: &OpalV2{BaseComID: 7, NumComIDs: 2},
	}
	want := []SSC{SSCOpalV2, SSCOpalV1, SSCRuby, SSCPyriteV2, SSCPyriteV1, SSCOpalite, SSCEnterprise}
	if got := all.SSCs(); !reflect.DeepEqual(got, want) {
		t.Errorf("SSCs() = %v; want %v", got, want)
	}
	if base, n, ok := all.ComIDs(SSCOpalV2); base != 7 || n != 2 || !ok {
		t.Errorf("ComIDs(Opal 2) = %d, %d, %v; want 7, 2, true", base, n, ok)
	}
	// Remove the preferred class one at a time.
	d := *all
	removals := []func(){
		func() { d.OpalV2 = nil }, func() { d.OpalV1 = nil }, func() { d.Ruby = nil },
		func() { d.PyriteV2 = nil }, func() { d.PyriteV1 = nil }, func() { d.Opalite = nil },
		func() { d.Enterprise = nil },
	}
	for i, s := range want {
		if got := d.SSC(); got != s {
			t.Errorf("SSC() = %v; want %v", got, s)
		}
		if base, ok := d.BaseComID(); base != uint16(7-i) || !ok {
			t.Errorf("%v: BaseComID() = %d, %v; want %d, true", s, base, ok, 7-i)
		}
		removals[i]()
	}
	if got := d.SSC(); got != SSCNone {
		t.Errorf("SSC() with no SSC = %v; want none", got)
	}
	if base, ok := d.BaseComID(); ok {
		t.Errorf("BaseComID() with no SSC = %d, true; want false", base)
	}
	if _, _, ok := d.ComIDs(SSCOpalV2); ok {
		t.Errorf("ComIDs(Opal 2) with no SSC: ok")
	}
	var nilD *Discovery
	if nilD.SSC() != SSCNone || nilD.Locked() || nilD.MBRShadowActive() {
		t.Errorf("a nil Discovery reports something")
	}
}

func TestLockingState(t *testing.T) {
	for _, tc := range []struct {
		flags                                           byte
		supported, enabled, locked, mbrOn, mbrDone, shd bool
	}{
		{0x00, false, false, false, false, false, false},
		{0x01, true, false, false, false, false, false},
		{0x1F, true, true, true, true, false, true},
		{0x3B, true, true, false, true, true, false},
	} {
		l := desc(CodeLocking, 1, 12)
		l[4] = tc.flags
		d, err := Parse(response(l))
		if err != nil {
			t.Fatal(err)
		}
		got := []bool{d.LockingSupported(), d.LockingEnabled(), d.Locked(), d.MBREnabled(), d.MBRDone(), d.MBRShadowActive()}
		want := []bool{tc.supported, tc.enabled, tc.locked, tc.mbrOn, tc.mbrDone, tc.shd}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("flags %#02x: supported, enabled, locked, mbr enabled, done, shadow active = %v; want %v",
				tc.flags, got, want)
		}
	}
	if d := (&Discovery{}); d.LockingSupported() || d.MBREnabled() {
		t.Errorf("no Locking descriptor, yet locking reported")
	}
}

// TestJSON pins the JSON names sedctl query --json shows.
func TestJSON(t *testing.T) {
	d, err := Parse(readDump(t, "samsung-970-evo-plus.hex"))
	if err != nil {
		t.Fatal(err)
	}
	got := mustJSON(t, d)
	want := `{"major_version":0,"minor_version":1,` +
		`"tper":{"version":1,"sync":true,"async":false,"ack_nak":false,"buffer_mgmt":false,"streaming":true,"comid_mgmt":false},` +
		`"locking":{"version":1,"locking_supported":true,"locking_enabled":false,"locked":false,"media_encryption":true,"mbr_enabled":false,"mbr_done":false,"mbr_shadowing_not_supported":false,"hw_reset_supported":false},` +
		`"geometry":{"version":1,"align":true,"logical_block_size":512,"alignment_granularity":8,"lowest_aligned_lba":0},` +
		`"datastore":{"version":1,"max_tables":9,"max_total_size":10485760,"alignment":1},` +
		`"opal_v2":{"version":1,"base_comid":4100,"num_comids":1,"range_crossing":false,"num_admins":4,"num_users":9,"initial_sid_pin":0,"revert_sid_pin":0},` +
		`"block_sid":{"version":1,"sid_value_state":false,"sid_blocked":false,"freeze_lock_supported":false,"freeze_lock_state":false,"hardware_reset":false},` +
		`"namespace_locking":{"version":1,"range_c":true,"range_p":false,"sum_c":false,"max_key_count":9,"unused_key_count":8,"max_ranges_per_namespace":8}}`
	if got != want {
		t.Errorf("json.Marshal =\n%s\nwant\n%s", got, want)
	}
	var back Discovery
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	checkDiscovery(t, &back, d)

	// Extra, vendor and raw bytes are hex.
	d = &Discovery{VendorSpecific: HexBytes{1, 2}, TPer: &TPer{Descriptor: Descriptor{Version: 1, Extra: HexBytes{0xAB}}},
		Other: []RawFeature{{Code: 0xC001, Version: 1, Data: HexBytes{0xCD}}}}
	got = mustJSON(t, d)
	for _, s := range []string{`"vendor_specific":"0102"`, `"extra":"ab"`, `"other":[{"code":49153,"version":1,"data":"cd"}]`} {
		if !strings.Contains(got, s) {
			t.Errorf("json.Marshal = %s; want it to contain %s", got, s)
		}
	}
	back = Discovery{}
	if err := json.Unmarshal([]byte(got), &back); err != nil || !reflect.DeepEqual(&back, d) {
		t.Errorf("json.Unmarshal(%s) = %+v, %v; want %+v", got, back, err, d)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{CodeOpalV2.String(), "Opal SSC v2 (0x0203)"},
		{FeatureCode(0xC123).String(), "vendor unique (0xC123)"},
		{FeatureCode(0x0999).String(), "unknown (0x0999)"},
		{SSCOpalV2.String(), "Opal 2"},
		{SSCPyriteV1.String(), "Pyrite 1"},
		{SSC(200).String(), "SSC(200)"},
		{PINVendorDefined.String(), "vendor defined"},
		{PINIsMSID.String(), "MSID"},
		{PINIndicator(1).String(), "reserved (0x01)"},
		{HexBytes{0xAB, 0x01}.String(), "ab01"},
	} {
		if tc.got != tc.want {
			t.Errorf("String() = %q; want %q", tc.got, tc.want)
		}
	}
	for s := SSCNone; s <= SSCOpalV2; s++ {
		text, err := s.MarshalText()
		if err != nil {
			t.Fatalf("%v.MarshalText() = %v", s, err)
		}
		var back SSC
		if err := back.UnmarshalText(text); err != nil || back != s {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", text, back, err, s)
		}
	}
	if _, err := SSC(99).MarshalText(); err == nil {
		t.Errorf("SSC(99).MarshalText() succeeded")
	}
	var s SSC
	if err := s.UnmarshalText([]byte("opal3")); err == nil {
		t.Errorf("UnmarshalText(opal3) succeeded")
	}
	var h HexBytes
	if err := h.UnmarshalText([]byte("zz")); err == nil {
		t.Errorf("HexBytes.UnmarshalText(zz) succeeded")
	}
	h = HexBytes{1}
	if err := h.UnmarshalText(nil); err != nil || h != nil {
		t.Errorf("HexBytes.UnmarshalText(\"\") = %v, %v; want nil, nil", h, err)
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Parse(response(desc(CodeOpalV2, 1, 3)))
	want := "level 0 discovery: offset 48: feature Opal SSC v2 (0x0203) has 3 data bytes, needs at least 11"
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v; want %s", err, want)
	}
	_, err = Parse(make([]byte, 10))
	want = "level 0 discovery: offset 10: 10 bytes, shorter than the 48-byte header"
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v; want %s", err, want)
	}
}
