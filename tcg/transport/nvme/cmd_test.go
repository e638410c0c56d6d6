package nvme

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// TestPassthruCmdABI pins struct nvme_passthru_cmd to PROTOCOL.md 4.1 and
// include/uapi/linux/nvme_ioctl.h.
func TestPassthruCmdABI(t *testing.T) {
	var c PassthruCmd
	if got := unsafe.Sizeof(c); got != PassthruCmdSize || PassthruCmdSize != 72 {
		t.Fatalf("sizeof(nvme_passthru_cmd) = %d (const %d); want 72", got, PassthruCmdSize)
	}
	offsets := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"opcode", unsafe.Offsetof(c.Opcode), 0},
		{"flags", unsafe.Offsetof(c.Flags), 1},
		{"nsid", unsafe.Offsetof(c.NSID), 4},
		{"cdw2", unsafe.Offsetof(c.CDW2), 8},
		{"cdw3", unsafe.Offsetof(c.CDW3), 12},
		{"metadata", unsafe.Offsetof(c.Metadata), 16},
		{"addr", unsafe.Offsetof(c.Addr), 24},
		{"metadata_len", unsafe.Offsetof(c.MetadataLen), 32},
		{"data_len", unsafe.Offsetof(c.DataLen), 36},
		{"cdw10", unsafe.Offsetof(c.CDW10), 40},
		{"cdw11", unsafe.Offsetof(c.CDW11), 44},
		{"cdw12", unsafe.Offsetof(c.CDW12), 48},
		{"cdw13", unsafe.Offsetof(c.CDW13), 52},
		{"cdw14", unsafe.Offsetof(c.CDW14), 56},
		{"cdw15", unsafe.Offsetof(c.CDW15), 60},
		{"timeout_ms", unsafe.Offsetof(c.TimeoutMS), 64},
		{"result", unsafe.Offsetof(c.Result), 68},
	}
	for _, o := range offsets {
		if o.got != o.want {
			t.Errorf("offsetof(%s) = %d; want %d", o.name, o.got, o.want)
		}
	}
}

// TestPassthruCmdMarshal checks that MarshalBinary writes every field at
// its C offset, and that the bytes equal the struct's memory (what the
// ioctl passes).
func TestPassthruCmdMarshal(t *testing.T) {
	c := PassthruCmd{Opcode: 0x82, Flags: 0x01, NSID: 0x02030405, CDW2: 0x06, CDW3: 0x07, Metadata: 0x08090a0b0c0d0e0f,
		Addr: 0x1112131415161718, MetadataLen: 0x19, DataLen: 0x1a, CDW10: 0x01000100, CDW11: 0x200,
		CDW12: 0x1c, CDW13: 0x1d, CDW14: 0x1e, CDW15: 0x1f, TimeoutMS: 0x2021, Result: 0x2223}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&c)), unsafe.Sizeof(c))
	if !bytes.Equal(b, mem) {
		t.Fatalf("MarshalBinary = %x\nstruct memory  = %x", b, mem)
	}
	ne := binary.NativeEndian
	checks := []struct {
		off  int
		got  uint64
		want uint64
	}{
		{0, uint64(b[0]), 0x82},
		{4, uint64(ne.Uint32(b[4:])), 0x02030405},
		{24, ne.Uint64(b[24:]), 0x1112131415161718},
		{36, uint64(ne.Uint32(b[36:])), 0x1a},
		{40, uint64(ne.Uint32(b[40:])), 0x01000100},
		{44, uint64(ne.Uint32(b[44:])), 0x200},
		{64, uint64(ne.Uint32(b[64:])), 0x2021},
		{68, uint64(ne.Uint32(b[68:])), 0x2223},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("byte %d: got 0x%x; want 0x%x", c.off, c.got, c.want)
		}
	}
}

func TestSecurityCmds(t *testing.T) {
	tests := []struct {
		name  string
		cmd   PassthruCmd
		op    uint8
		cdw10 uint32
		cdw11 uint32
	}{
		{"level0", SecurityReceiveCmd(0x01, 0x0001, 2048), OpSecurityReceive, 0x01000100, 2048},
		{"protocol list", SecurityReceiveCmd(0x00, 0x0000, 512), OpSecurityReceive, 0x00000000, 512},
		{"comid mgmt", SecuritySendCmd(0x02, 0x07FE, 512), OpSecuritySend, 0x0207FE00, 512},
		{"send", SecuritySendCmd(0x01, 0x1004, 4096), OpSecuritySend, 0x01100400, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cmd
			if c.Opcode != tt.op || c.CDW10 != tt.cdw10 || c.CDW11 != tt.cdw11 || c.DataLen != tt.cdw11 || c.NSID != 0 || c.Flags != 0 {
				t.Errorf("cmd = %+v; want opcode 0x%02x cdw10 0x%08x cdw11 = data_len = %d, nsid 0, flags 0", c, tt.op, tt.cdw10, tt.cdw11)
			}
		})
	}
	id := IdentifyCmd(CNSController, 0)
	if id.Opcode != 0x06 || id.CDW10 != 1 || id.DataLen != 4096 {
		t.Errorf("IdentifyCmd = %+v; want opcode 6 cdw10 1 data_len 4096", id)
	}
}

// identifyData builds an Identify Controller structure.
func identifyData(serial, model, fw string, vid, oacs uint16) []byte {
	b := make([]byte, IdentifyLen)
	binary.LittleEndian.PutUint16(b[0:], vid)
	binary.LittleEndian.PutUint16(b[2:], vid)
	copy(b[4:24], []byte(serial + strings.Repeat(" ", 20))[:20])
	copy(b[24:64], []byte(model + strings.Repeat(" ", 40))[:40])
	copy(b[64:72], []byte(fw + strings.Repeat(" ", 8))[:8])
	binary.LittleEndian.PutUint16(b[256:], oacs)
	return b
}

func TestParseIdentifyController(t *testing.T) {
	b := identifyData("  S4EWNX0R123456", "Samsung SSD 970 EVO Plus 1TB", "2B2QEXM7", 0x144d, 0x0017)
	c, err := ParseIdentifyController(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(c.Serial[:]), "  S4EWNX0R123456    "; got != want {
		t.Errorf("Serial = %q; want %q (raw, untrimmed)", got, want)
	}
	if c.Model != "Samsung SSD 970 EVO Plus 1TB" || c.Firmware != "2B2QEXM7" || c.VID != 0x144d || c.OACS != 0x17 || !c.SecuritySupported() {
		t.Errorf("ParseIdentifyController = %+v", c)
	}
	id := c.Identity()
	if id.Kind != transport.KindNVMe || id.PCIVendor != 0x144d || id.SerialString() != "S4EWNX0R123456" {
		t.Errorf("Identity = %+v", id)
	}
	c2, _ := ParseIdentifyController(identifyData("x", "m", "f", 1, 0x0016))
	if c2.SecuritySupported() {
		t.Errorf("OACS 0x16: SecuritySupported = true; want false")
	}
	for _, n := range []int{0, 72, 257} {
		if _, err := ParseIdentifyController(b[:n]); err == nil {
			t.Errorf("ParseIdentifyController(%d bytes) = nil error; want error", n)
		}
	}
}

func TestParseIdentifyNamespace(t *testing.T) {
	ns := func(nsze uint64, nlbaf, flbas uint8, lbads ...uint8) []byte {
		b := make([]byte, IdentifyLen)
		binary.LittleEndian.PutUint64(b, nsze)
		b[25], b[26] = nlbaf, flbas
		for i, l := range lbads {
			b[128+4*i+2] = l
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want Namespace
		bad  bool
	}{
		{"512", ns(1953525168, 0, 0, 9), Namespace{1953525168, 512}, false},
		{"4k second", ns(244190646, 1, 1, 9, 12), Namespace{244190646, 4096}, false},
		{"index beyond nlbaf", ns(1, 0, 1, 9, 12), Namespace{}, true},
		{"upper flbas bits", ns(1, 20, 0x20|0x01, 9), Namespace{}, true}, // idx 17, lbads 0
		{"lbads zero", ns(1, 0, 0, 0), Namespace{}, true},
		{"short", make([]byte, 100), Namespace{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIdentifyNamespace(tt.b)
			if (err != nil) != tt.bad || got != tt.want {
				t.Errorf("ParseIdentifyNamespace = %+v, %v; want %+v, error %v", got, err, tt.want, tt.bad)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		s        Status
		text     []string
		notSupp  bool
		invField bool
	}{
		{0x0001, []string{"0x0001", "Invalid Command Opcode", "SCT 0 SC 0x01"}, true, false},
		{0x4002, []string{"0x4002", "Invalid Field in Command", "do not retry"}, false, true},
		{0x2002, []string{"more in the error log"}, false, true},
		{0x0286, []string{"Access Denied", "SCT 2 SC 0x86"}, false, false},
		{0x0370, []string{"Host Pathing Error"}, false, false},
		{0x010a, []string{"command specific status", "SCT 1"}, false, false},
		{0x0799, []string{"vendor specific"}, false, false},
		{0x00ee, []string{"generic command status", "SC 0xee"}, false, false},
	}
	for _, tt := range tests {
		msg := tt.s.Error()
		for _, w := range tt.text {
			if !strings.Contains(msg, w) {
				t.Errorf("Status(0x%04x).Error() = %q; want it to contain %q", uint16(tt.s), msg, w)
			}
		}
		if got := errors.Is(tt.s, transport.ErrNotSupported); got != tt.notSupp {
			t.Errorf("errors.Is(Status(0x%04x), ErrNotSupported) = %v; want %v", uint16(tt.s), got, tt.notSupp)
		}
		if got := errors.Is(tt.s, transport.ErrInvalidField); got != tt.invField {
			t.Errorf("errors.Is(Status(0x%04x), ErrInvalidField) = %v; want %v", uint16(tt.s), got, tt.invField)
		}
	}
	if !errors.Is(Status(0x4286), StatusAccessDenied) || errors.Is(Status(0x0285), StatusAccessDenied) {
		t.Errorf("Status.Is ignores flag bits only")
	}
	if s := Status(0x4102); s.SCT() != 1 || s.SC() != 2 || !s.DNR() || s.More() {
		t.Errorf("Status(0x4102) fields: SCT %d SC %d DNR %v More %v", s.SCT(), s.SC(), s.DNR(), s.More())
	}
}
