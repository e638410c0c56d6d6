package scsi

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// sent is one command as the fake received it.
type sent struct {
	cdb     []byte
	dir     int32
	len     uint32
	data    []byte // for DxferToDev
	timeout uint32
}

// fakeTarget stands in for the sg driver and a drive behind it.
type fakeTarget struct {
	t        *testing.T
	vendor   string
	identify []byte // IDENTIFY DEVICE data; nil: pass-through unknown
	pt12Only bool   // a bridge that knows ATA PASS-THROUGH(12) only
	vpd      []byte // unit serial page
	secProto bool   // SECURITY PROTOCOL IN/OUT supported
	trusted  string // "ok", "blocked" (libata without allow_tpm), "abort" (drive aborts)
	answer   []byte // IF-RECV data
	resid    int32
	unitAtt  int // UNIT ATTENTION answers before anything else
	errno    error
	sense    []byte // forced sense for every command after open
	host     uint16

	cmds []sent
}

var (
	senseInvalidOpcode = []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0x00, 0, 0, 0, 0}
	senseInvalidField  = []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0x00, 0, 0xC0, 0x00, 0x0E}
	senseUnitAttention = []byte{0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0}
	senseATAAbort      = []byte{0x72, 0x0B, 0x00, 0x00, 0, 0, 0, 14, 0x09, 0x0C, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x51}
)

func (f *fakeTarget) ioctl(fd uintptr, req uint32, arg unsafe.Pointer) (int, error) {
	if req != IoctlSGIO {
		f.t.Errorf("ioctl request 0x%x; want SG_IO", req)
		return 0, syscall.ENOTTY
	}
	if f.errno != nil {
		return 0, f.errno
	}
	h := (*SgIOHdr)(arg)
	if h.InterfaceID != 'S' || h.MxSbLen == 0 || h.Sbp == nil || h.Cmdp == nil || h.IovecCount != 0 || h.Flags != 0 {
		f.t.Errorf("bad sg_io_hdr %+v", *h)
	}
	if (h.DxferLen == 0) != (h.Dxferp == nil) || (h.DxferLen == 0) != (h.DxferDirection == DxferNone) {
		f.t.Errorf("sg_io_hdr data fields disagree: len %d ptr %v dir %d", h.DxferLen, h.Dxferp, h.DxferDirection)
	}
	cdb := bytes.Clone(unsafe.Slice((*byte)(h.Cmdp), h.CmdLen))
	if want := map[byte]int{OpInquiry: 6, OpSecurityProtocolIn: 12, OpSecurityProtocolOut: 12, OpATAPassThrough12: 12, OpATAPassThrough16: 16}[cdb[0]]; len(cdb) != want {
		f.t.Errorf("CDB % X has cmd_len %d; want %d", cdb, len(cdb), want)
	}
	var data []byte
	if h.Dxferp != nil {
		data = unsafe.Slice((*byte)(h.Dxferp), h.DxferLen)
	}
	s := sent{cdb: cdb, dir: h.DxferDirection, len: h.DxferLen, timeout: h.Timeout}
	if h.DxferDirection == DxferToDev {
		s.data = bytes.Clone(data)
	}
	f.cmds = append(f.cmds, s)

	fail := func(sense []byte) (int, error) {
		n := copy(unsafe.Slice((*byte)(h.Sbp), h.MxSbLen), sense)
		h.SbLenWr = uint8(n)
		h.Status, h.MaskedStatus, h.DriverStatus = StatusCheckCondition, StatusCheckCondition>>1, driverSense
		h.Resid = int32(h.DxferLen)
		return 0, nil
	}
	if f.unitAtt > 0 {
		f.unitAtt--
		return fail(senseUnitAttention)
	}
	if f.host != 0 {
		h.HostStatus = f.host
		return 0, nil
	}
	if f.sense != nil {
		return fail(f.sense)
	}
	switch cdb[0] {
	case OpInquiry:
		if cdb[1]&1 != 0 {
			if cdb[2] != 0x80 || f.vpd == nil {
				return fail(senseInvalidField)
			}
			n := copy(data, f.vpd)
			h.Resid = int32(len(data) - n)
			return 0, nil
		}
		std := make([]byte, 36)
		copy(std[8:], (f.vendor + "        ")[:8])
		copy(std[16:], "Test Disk       1.00")
		n := copy(data, std)
		h.Resid = int32(len(data) - n)
		return 0, nil
	case OpSecurityProtocolIn, OpSecurityProtocolOut:
		if !f.secProto {
			return fail(senseInvalidOpcode)
		}
		if cdb[0] == OpSecurityProtocolIn {
			copy(data, f.answer)
			h.Resid = f.resid
		}
		return 0, nil
	case OpATAPassThrough16, OpATAPassThrough12:
		if f.identify == nil || (f.pt12Only && cdb[0] == OpATAPassThrough16) {
			return fail(senseInvalidOpcode)
		}
		var command byte
		if cdb[0] == OpATAPassThrough12 {
			command = cdb[9]
		} else {
			command = cdb[14]
		}
		switch command {
		case ATAIdentifyDevice:
			copy(data, f.identify)
			return 0, nil
		case ATATrustedReceive, ATATrustedSend:
			switch f.trusted {
			case "blocked":
				return fail(senseInvalidField)
			case "abort":
				return fail(senseATAAbort)
			}
			if command == ATATrustedReceive {
				copy(data, f.answer)
			}
			return 0, nil
		}
	}
	return fail(senseInvalidOpcode)
}

func (f *fakeTarget) last() sent { return f.cmds[len(f.cmds)-1] }

func sasDrive(t *testing.T) *fakeTarget {
	return &fakeTarget{t: t, vendor: "SEAGATE", secProto: true,
		vpd: []byte{0x00, 0x80, 0x00, 0x08, 'Z', 'C', '1', '0', 'A', 'B', 'C', 'D', 'x', 'x'}}
}

func sataDrive(t *testing.T) *fakeTarget {
	return &fakeTarget{t: t, vendor: "ATA", secProto: true, trusted: "ok",
		identify: identifyDevice("     S3Z9NB0K123456X", "RVT04B6Q", "Samsung SSD 860 EVO 500GB", 0x4001),
		vpd:      append([]byte{0, 0x80, 0, 20}, "     S3Z9NB0K123456X"...)}
}

func TestSecurityProtocolMode(t *testing.T) {
	f := sasDrive(t)
	d, err := newDevice("/dev/sdb", 3, nil, f.ioctl)
	if err != nil {
		t.Fatal(err)
	}
	if d.Mode() != ModeSecurityProtocol {
		t.Fatalf("Mode = %v; want SECURITY PROTOCOL", d.Mode())
	}
	probe := f.last()
	if !bytes.Equal(probe.cdb, unhex(t, "A2 00 0000 00 00 00000200 00 00")) || probe.dir != DxferFromDev || probe.len != 512 {
		t.Errorf("probe = %+v; want SECURITY PROTOCOL IN protocol 0, 512 bytes", probe)
	}
	ctx := context.Background()

	payload := bytes.Repeat([]byte{0x5A}, 1000)
	if err := d.IFSend(ctx, 0x01, 0x1004, payload); err != nil {
		t.Fatal(err)
	}
	c := f.last()
	if !bytes.Equal(c.cdb, unhex(t, "B5 01 1004 00 00 000003E8 00 00")) || c.dir != DxferToDev || c.len != 1000 || !bytes.Equal(c.data, payload) {
		t.Errorf("IFSend sent %+v; want B5 01 1004 with 1000 bytes to the device", c)
	}
	if c.timeout != 60000 {
		t.Errorf("timeout = %d; want 60000 without a deadline", c.timeout)
	}

	f.answer = []byte{1, 2, 3, 4}
	f.resid = 2048 - 100
	buf := bytes.Repeat([]byte{0xEE}, 2048)
	tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	n, err := d.IFRecv(tctx, 0x01, 0x0001, buf)
	if err != nil || n != 100 {
		t.Fatalf("IFRecv = %d, %v; want 100 (allocation minus resid)", n, err)
	}
	c = f.last()
	if !bytes.Equal(c.cdb, unhex(t, "A2 01 0001 00 00 00000800 00 00")) || c.dir != DxferFromDev || c.len != 2048 || c.timeout > 3000 || c.timeout == 0 {
		t.Errorf("IFRecv sent %+v; want A2 01 0001 alloc 2048, timeout from the deadline", c)
	}
	if !bytes.Equal(buf[:4], f.answer) || buf[4] != 0 {
		t.Errorf("IFRecv buffer % x; want the answer then zeros", buf[:8])
	}
	f.resid = -5 // a broken driver: clamp
	if n, _ := d.IFRecv(ctx, 1, 1, buf[:64]); n != 64 {
		t.Errorf("IFRecv with resid -5 = %d; want 64", n)
	}
	f.resid = 0

	// Empty transfers carry no data direction.
	if err := d.IFSend(ctx, 0x02, 0x07FE, nil); err != nil || f.last().dir != DxferNone {
		t.Errorf("IFSend(nil) = %v, dir %d; want DxferNone", err, f.last().dir)
	}

	id, err := d.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(id.Serial[:]) != "ZC10ABCD            " || id.Model != "SEAGATE Test Disk" || id.Firmware != "1.00" || id.Kind != transport.KindSCSI {
		t.Errorf("Identify = %+v (serial %q)", id, id.Serial)
	}

	// A rejected field is an error with the sense data.
	f.sense = senseInvalidField
	_, err = d.IFRecv(ctx, 0x01, 0x0FFF, buf)
	var s Sense
	if !errors.Is(err, transport.ErrInvalidField) || !errors.As(err, &s) || s.FieldPointer != 14 {
		t.Errorf("IFRecv with ILLEGAL REQUEST = %v; want a Sense matching ErrInvalidField", err)
	}
	if err != nil && !strings.Contains(err.Error(), "/dev/sdb") {
		t.Errorf("error %q does not name the device", err)
	}
	f.sense = nil
	f.host = 0x03
	var ce *CommandError
	if err := d.IFSend(ctx, 1, 1, payload); !errors.As(err, &ce) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("IFSend with DID_TIME_OUT = %v; want a CommandError saying it timed out", err)
	}
	f.host = 0

	big := make([]byte, MaxTransfer+1)
	if err := d.IFSend(ctx, 1, 1, big); err == nil {
		t.Errorf("IFSend(%d bytes) = nil; want an error", len(big))
	}
	if n, err := d.IFRecv(ctx, 1, 1, big); err != nil || f.last().len != MaxTransfer || n != MaxTransfer {
		t.Errorf("IFRecv(%d bytes) = %d, %v, alloc %d; want MaxTransfer", len(big), n, err, f.last().len)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.IFSend(ctx, 1, 1, payload); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("IFSend after Close = %v; want ErrClosed", err)
	}
	if _, err := d.Identify(ctx); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Identify after Close = %v; want ErrClosed", err)
	}
}

func TestSATASecurityProtocol(t *testing.T) {
	f := sataDrive(t)
	d, err := newDevice("/dev/sda", 3, nil, f.ioctl)
	if err != nil {
		t.Fatal(err)
	}
	if d.Mode() != ModeSecurityProtocol || d.pt != ModeATA16 {
		t.Errorf("Mode = %v, pass-through %v; want SECURITY PROTOCOL, PT16 for IDENTIFY", d.Mode(), d.pt)
	}
	ctx := context.Background()
	payload := bytes.Repeat([]byte{0x33}, 100)
	if err := d.IFSend(ctx, 0x01, 0x1004, payload); err != nil {
		t.Fatal(err)
	}
	c := f.last()
	if !bytes.Equal(c.cdb, unhex(t, "B5 01 1004 00 00 00000200 00 00")) || c.len != 512 || !bytes.Equal(c.data[:100], payload) || !bytes.Equal(c.data[100:], make([]byte, 412)) {
		t.Errorf("IFSend(100 bytes) to an ATA drive sent cdb % X len %d; want 512 bytes, zero padded", c.cdb, c.len)
	}
	f.answer = bytes.Repeat([]byte{0x44}, 1024)
	buf := make([]byte, 600)
	if n, err := d.IFRecv(ctx, 0x01, 0x0001, buf); err != nil || n != 600 || f.last().len != 1024 || !bytes.Equal(buf, f.answer[:600]) {
		t.Errorf("IFRecv(600) = %d, %v with allocation %d; want 600 from 1024", n, err, f.last().len)
	}
	f.resid = 1024 - 50
	if n, err := d.IFRecv(ctx, 0x01, 0x0001, buf); err != nil || n != 50 {
		t.Errorf("IFRecv(600) with 50 bytes transferred = %d, %v; want 50", n, err)
	}
	f.resid = 0
	id, err := d.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(id.Serial[:]) != "     S3Z9NB0K123456X" || id.Model != "Samsung SSD 860 EVO 500GB" || id.Firmware != "RVT04B6Q" || id.Kind != transport.KindSCSI {
		t.Errorf("Identify = %+v (serial %q); want the raw ATA serial", id, id.Serial)
	}
}

func TestATAFallback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pt12Only bool
		mode     Mode
	}{{"pt16", false, ModeATA16}, {"pt12", true, ModeATA12}} {
		t.Run(tc.name, func(t *testing.T) {
			f := sataDrive(t)
			f.secProto = false
			f.pt12Only = tc.pt12Only
			d, err := newDevice("/dev/sdc", 3, nil, f.ioctl)
			if err != nil {
				t.Fatal(err)
			}
			if d.Mode() != tc.mode {
				t.Fatalf("Mode = %v; want %v", d.Mode(), tc.mode)
			}
			ctx := context.Background()
			payload := bytes.Repeat([]byte{0x11}, 100)
			if err := d.IFSend(ctx, 0x01, 0x1004, payload); err != nil {
				t.Fatal(err)
			}
			c := f.last()
			want16 := "85 0A 06 00 01 00 01 00 00 00 04 00 10 00 5E 00"
			want12 := "A1 0A 06 01 01 00 04 10 00 5E 00 00"
			want := want16
			if tc.mode == ModeATA12 {
				want = want12
			}
			if !bytes.Equal(c.cdb, unhex(t, want)) || c.dir != DxferToDev || c.len != 512 ||
				!bytes.Equal(c.data[:100], payload) || !bytes.Equal(c.data[100:], make([]byte, 412)) {
				t.Errorf("IFSend sent cdb % X len %d; want % s, 100 bytes padded to 512 with zeros", c.cdb, c.len, want)
			}

			f.answer = bytes.Repeat([]byte{0x22}, 1024)
			buf := make([]byte, 600)
			n, err := d.IFRecv(ctx, 0x01, 0x0001, buf)
			if err != nil || n != 600 || f.last().len != 1024 || !bytes.Equal(buf, f.answer[:600]) {
				t.Errorf("IFRecv(600) = %d, %v with transfer %d; want 600 from two blocks", n, err, f.last().len)
			}
			id, err := d.Identify(ctx)
			if err != nil || id.Kind != transport.KindATA || id.SerialString() != "S3Z9NB0K123456X" {
				t.Errorf("Identify = %+v, %v; want kind ata", id, err)
			}
		})
	}
}

func TestOpenRefusals(t *testing.T) {
	tests := []struct {
		name string
		f    func(*testing.T) *fakeTarget
		is   error
		text string
	}{
		{"allow_tpm", func(t *testing.T) *fakeTarget {
			f := sataDrive(t)
			f.secProto, f.trusted = false, "blocked"
			return f
		}, ErrTrustedBlocked, "libata.allow_tpm=1"},
		{"drive aborts trusted", func(t *testing.T) *fakeTarget {
			f := sataDrive(t)
			f.secProto, f.trusted = false, "abort"
			return f
		}, transport.ErrNotSupported, "ABRT"},
		{"word 48", func(t *testing.T) *fakeTarget {
			f := sataDrive(t)
			f.identify = identifyDevice("SN", "FW", "Plain SATA", 0x4000)
			return f
		}, transport.ErrNotSupported, "word 48"},
		{"sas without security protocol", func(t *testing.T) *fakeTarget {
			f := sasDrive(t)
			f.secProto = false
			return f
		}, transport.ErrNotSupported, "INVALID COMMAND OPERATION CODE"},
		{"bridge without pass-through", func(t *testing.T) *fakeTarget {
			f := sataDrive(t)
			f.secProto, f.identify = false, nil
			return f
		}, transport.ErrNotSupported, "pass-through"},
		{"not scsi", func(t *testing.T) *fakeTarget {
			f := sasDrive(t)
			f.errno = syscall.ENOTTY
			return f
		}, syscall.ENOTTY, "not a SCSI device"},
		{"not root", func(t *testing.T) *fakeTarget {
			f := sasDrive(t)
			f.errno = syscall.EPERM
			return f
		}, syscall.EPERM, "CAP_SYS_RAWIO"},
		{"host error", func(t *testing.T) *fakeTarget {
			f := sasDrive(t)
			f.host = 1
			return f
		}, nil, "DID_NO_CONNECT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newDevice("/dev/sdz", 3, nil, tt.f(t).ioctl)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), "/dev/sdz") {
				t.Errorf("newDevice = %v; want %v with %q", err, tt.is, tt.text)
			}
		})
	}
}

func TestUnitAttentionRetry(t *testing.T) {
	f := sasDrive(t)
	f.unitAtt = 2
	d, err := newDevice("/dev/sdb", 3, nil, f.ioctl)
	if err != nil {
		t.Fatalf("newDevice after two UNIT ATTENTIONs: %v", err)
	}
	if got := f.cmds[0].cdb[0]; got != OpInquiry || len(f.cmds) < 3 || f.cmds[2].cdb[0] != OpInquiry {
		t.Errorf("INQUIRY was not reissued: %v", f.cmds)
	}
	f.unitAtt = 3
	err = d.IFSend(context.Background(), 1, 1, []byte{1})
	var s Sense
	if !errors.As(err, &s) || s.Key != UnitAttention {
		t.Errorf("IFSend after three UNIT ATTENTIONs = %v; want the UNIT ATTENTION", err)
	}
}

func TestContextCancelled(t *testing.T) {
	f := sasDrive(t)
	d, err := newDevice("/dev/sdb", 3, nil, f.ioctl)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := len(f.cmds)
	if err := d.IFSend(ctx, 1, 1, []byte{1}); !errors.Is(err, context.Canceled) || len(f.cmds) != n {
		t.Errorf("IFSend with a cancelled context = %v after %d commands; want context.Canceled and none", err, len(f.cmds)-n)
	}
}

// TestOpenNonDevice runs the real Open on paths that are not SCSI devices.
func TestOpenNonDevice(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(reg, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(reg); err == nil || !strings.Contains(err.Error(), "not a device node (a regular file)") {
		t.Errorf("Open(regular file) = %v; want a not-a-device error", err)
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Errorf("Open(directory) = nil error")
	}
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	_, err := Open("/dev/null")
	if !errors.Is(err, syscall.ENOTTY) || !strings.Contains(err.Error(), "not a SCSI device") {
		t.Errorf("Open(/dev/null) = %v; want ENOTTY, not a SCSI device", err)
	}
}
