package scsi

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCDBs pins every CDB this package sends to PROTOCOL.md 4.2 and 4.3.
func TestCDBs(t *testing.T) {
	sp := func(op, proto uint8, spsp uint16, n uint32) []byte {
		c := SecurityProtocolCDB(op, proto, spsp, n)
		return c[:]
	}
	c16 := func(a ATACmd) []byte { c := a.CDB16(); return c[:] }
	c12 := func(a ATACmd) []byte { c := a.CDB12(); return c[:] }
	inq := func(evpd bool, page uint8, n uint16) []byte { c := InquiryCDB(evpd, page, n); return c[:] }
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"security protocol in level 0", sp(0xA2, 0x01, 0x0001, 2048), "A2 01 0001 00 00 00000800 00 00"},
		{"security protocol out comid", sp(0xB5, 0x01, 0x1004, 512), "B5 01 1004 00 00 00000200 00 00"},
		{"security protocol in list", sp(0xA2, 0x00, 0x0000, 0x01020304), "A2 00 0000 00 00 01020304 00 00"},
		// TRUSTED RECEIVE proto 1 ComID 0x0001, 4 blocks.
		{"pt16 trusted receive", c16(TrustedCmd(false, 0x01, 0x0001, 4)), "85 08 0E 00 01 00 04 00 00 00 01 00 00 00 5C 00"},
		// TRUSTED SEND proto 1 ComID 0x1004, 0x0102 blocks: count low, LBA low = high byte.
		{"pt16 trusted send", c16(TrustedCmd(true, 0x01, 0x1004, 0x0102)), "85 0A 06 00 01 00 02 00 01 00 04 00 10 00 5E 00"},
		{"pt12 trusted receive", c12(TrustedCmd(false, 0x02, 0x07FE, 1)), "A1 08 0E 02 01 00 FE 07 00 5C 00 00"},
		{"pt12 trusted send", c12(TrustedCmd(true, 0x01, 0x1004, 0x0203)), "A1 0A 06 01 03 02 04 10 00 5E 00 00"},
		{"pt16 identify", c16(IdentifyCmd()), "85 08 0E 00 00 00 01 00 00 00 00 00 00 00 EC 00"},
		{"pt12 identify", c12(IdentifyCmd()), "A1 08 0E 00 01 00 00 00 00 EC 00 00"},
		{"inquiry", inq(false, 0, 96), "12 00 00 00 60 00"},
		{"inquiry vpd 80", inq(true, 0x80, 255), "12 01 80 00 FF 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := unhex(t, tt.want); !bytes.Equal(tt.got, want) {
				t.Errorf("CDB = % X; want % X", tt.got, want)
			}
		})
	}
}

// identifyDevice builds IDENTIFY DEVICE data with word-swapped strings.
func identifyDevice(serial, fw, model string, w48 uint16) []byte {
	b := make([]byte, ATABlock)
	put := func(word, n int, s string) {
		s = (s + strings.Repeat(" ", 2*n))[:2*n]
		for i := 0; i < n; i++ {
			b[2*(word+i)] = s[2*i+1]
			b[2*(word+i)+1] = s[2*i]
		}
	}
	put(10, 10, serial)
	put(23, 4, fw)
	put(27, 20, model)
	b[96], b[97] = byte(w48), byte(w48>>8)
	return b
}

func TestParseIdentifyDevice(t *testing.T) {
	b := identifyDevice("     S3Z9NB0K123456X", "RVT04B6Q", "Samsung SSD 860 EVO 500GB", 0x4001)
	// Word 10 holds " " and " ": spot-check the swap on the model.
	if b[54] != 'a' || b[55] != 'S' {
		t.Fatalf("test data not word-swapped: % x", b[54:56])
	}
	id, err := ParseIdentifyDevice(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(id.Serial[:]); got != "     S3Z9NB0K123456X" {
		t.Errorf("Serial = %q; want raw %q", got, "     S3Z9NB0K123456X")
	}
	if id.Firmware != "RVT04B6Q" || id.Model != "Samsung SSD 860 EVO 500GB" || !id.Trusted {
		t.Errorf("ParseIdentifyDevice = %+v", id)
	}
	for _, tc := range []struct {
		w48  uint16
		want bool
	}{{0x4001, true}, {0x4000, false}, {0x0001, false}, {0xC001, false}, {0xFFFF, false}} {
		id, _ := ParseIdentifyDevice(identifyDevice("s", "f", "m", tc.w48))
		if id.Trusted != tc.want {
			t.Errorf("word 48 = 0x%04x: Trusted = %v; want %v", tc.w48, id.Trusted, tc.want)
		}
	}
	if _, err := ParseIdentifyDevice(b[:511]); err == nil {
		t.Errorf("ParseIdentifyDevice(511 bytes) = nil error")
	}
}

func TestParseInquiry(t *testing.T) {
	b := make([]byte, 36)
	b[0] = 0x00
	copy(b[8:], "ATA     Samsung SSD 860 1B6Q")
	q, err := ParseInquiry(b)
	if err != nil {
		t.Fatal(err)
	}
	if q.Vendor != "ATA" || q.Product != "Samsung SSD 860" || q.Revision != "1B6Q" || !q.IsATA() || q.DeviceType != 0 {
		t.Errorf("ParseInquiry = %+v", q)
	}
	if _, err := ParseInquiry(b[:35]); err == nil {
		t.Errorf("ParseInquiry(35 bytes) = nil error")
	}
}

func TestParseUnitSerial(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want string
		bad  bool
	}{
		{"exact length", []byte{0, 0x80, 0, 8, 'Z', 'C', '1', '2', '3', '4', '5', '6', 'J', 'U', 'N', 'K'}, "ZC123456", false},
		{"ata padded", append([]byte{0, 0x80, 0, 20}, "     S3Z9NB0K123456X"...), "     S3Z9NB0K123456X", false},
		{"empty serial", []byte{0, 0x80, 0, 0}, "", false},
		{"truncated", []byte{0, 0x80, 0, 8, 'Z'}, "", true},
		{"wrong page", []byte{0, 0x83, 0, 0}, "", true},
		{"short", []byte{0, 0x80, 0}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUnitSerial(tt.b)
			if (err != nil) != tt.bad || string(got) != tt.want {
				t.Errorf("ParseUnitSerial(% x) = %q, %v; want %q, error %v", tt.b, got, err, tt.want, tt.bad)
			}
		})
	}
}
