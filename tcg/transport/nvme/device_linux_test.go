package nvme

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shiftlock/shiftlock/tcg/transport"
	"github.com/shiftlock/shiftlock/tcg/transport/internal/ioctl"
)

// fakeCtrl stands in for the kernel's NVMe driver and a controller. It
// records every admin command and the bytes of every Security Send.
type fakeCtrl struct {
	t        *testing.T
	identify []byte
	ns       []byte
	nsid     int   // NVME_IOCTL_ID answer; 0 means ENOTTY (controller node)
	adminErr error // errno for every admin command
	status   int   // positive status for security commands
	answer   []byte

	mu   sync.Mutex
	cmds []PassthruCmd
	sent [][]byte
}

func (f *fakeCtrl) ioctl(fd uintptr, req uint32, arg unsafe.Pointer) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd != 42 {
		f.t.Errorf("ioctl fd = %d; want 42", fd)
	}
	switch req {
	case IoctlID:
		if arg != nil {
			f.t.Errorf("NVME_IOCTL_ID with an argument")
		}
		if f.nsid == 0 {
			return 0, syscall.ENOTTY
		}
		return f.nsid, nil
	case IoctlAdminCmd:
	default:
		f.t.Errorf("ioctl request 0x%08x; want NVME_IOCTL_ADMIN_CMD", req)
		return 0, syscall.ENOTTY
	}
	c := (*PassthruCmd)(arg)
	f.cmds = append(f.cmds, *c)
	if f.adminErr != nil {
		return 0, f.adminErr
	}
	if c.Flags != 0 || c.MetadataLen != 0 || c.Metadata != 0 {
		f.t.Errorf("cmd %+v: flags and metadata must be 0", *c)
	}
	data := ioctl.Bytes(c.Addr, int(c.DataLen))
	if c.DataLen != 0 && c.Addr == 0 {
		f.t.Errorf("cmd %+v: data_len without addr", *c)
	}
	switch c.Opcode {
	case OpIdentify:
		src := f.identify
		if c.CDW10 == CNSNamespace {
			src = f.ns
			if c.NSID != uint32(f.nsid) {
				f.t.Errorf("identify namespace nsid = %d; want %d", c.NSID, f.nsid)
			}
		} else if c.NSID != 0 {
			f.t.Errorf("identify controller nsid = %d; want 0", c.NSID)
		}
		copy(data, src)
		return 0, nil
	case OpSecuritySend:
		f.sent = append(f.sent, bytes.Clone(data))
		return f.status, nil
	case OpSecurityReceive:
		copy(data, f.answer)
		return f.status, nil
	}
	f.t.Errorf("unexpected opcode 0x%02x", c.Opcode)
	return 0x0001, nil
}

type closeCount int

func (c *closeCount) Close() error { *c++; return nil }

func newFake(t *testing.T) *fakeCtrl {
	return &fakeCtrl{t: t, identify: identifyData("S4EWNX0R123456", "Samsung SSD 970 EVO Plus 1TB", "2B2QEXM7", 0x144d, 0x17)}
}

func TestDeviceSecurityCommands(t *testing.T) {
	f := newFake(t)
	var cc closeCount
	d, err := newDevice("/dev/nvme0", 42, &cc, f.ioctl)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	payload := bytes.Repeat([]byte{0xAB}, 512)
	if err := d.IFSend(ctx, 0x01, 0x1004, payload); err != nil {
		t.Fatalf("IFSend: %v", err)
	}
	c := f.cmds[len(f.cmds)-1]
	if c.Opcode != 0x81 || c.CDW10 != 0x01100400 || c.CDW11 != 512 || c.DataLen != 512 || c.NSID != 0 || c.TimeoutMS != 0 {
		t.Errorf("security send cmd = %+v; want opcode 0x81 cdw10 0x01100400 cdw11 512 data_len 512 nsid 0 timeout 0", c)
	}
	if !bytes.Equal(f.sent[0], payload) {
		t.Errorf("device received %x; want %x", f.sent[0], payload)
	}

	f.answer = []byte{0, 0, 0, 0x30, 0, 0, 0, 1}
	buf := bytes.Repeat([]byte{0xFF}, 2048)
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := d.IFRecv(dctx, 0x01, 0x0001, buf)
	if err != nil || n != 2048 {
		t.Fatalf("IFRecv = %d, %v; want 2048, nil", n, err)
	}
	c = f.cmds[len(f.cmds)-1]
	if c.Opcode != 0x82 || c.CDW10 != 0x01000100 || c.CDW11 != 2048 || c.DataLen != 2048 {
		t.Errorf("security receive cmd = %+v; want opcode 0x82 cdw10 0x01000100 cdw11 2048", c)
	}
	if c.TimeoutMS == 0 || c.TimeoutMS > 5000 {
		t.Errorf("timeout_ms = %d; want the context's 5 s deadline", c.TimeoutMS)
	}
	if !bytes.Equal(buf[:8], f.answer) || buf[8] != 0 || buf[2047] != 0 {
		t.Errorf("IFRecv buffer = %x...; want the answer, then zeros", buf[:16])
	}

	// Allocation lengths over MaxTransfer are lowered; sends refused.
	big := make([]byte, MaxTransfer+512)
	if n, err := d.IFRecv(ctx, 1, 1, big); err != nil || n != MaxTransfer || f.cmds[len(f.cmds)-1].CDW11 != MaxTransfer {
		t.Errorf("IFRecv(%d bytes) = %d, %v, cdw11 %d; want %d", len(big), n, err, f.cmds[len(f.cmds)-1].CDW11, MaxTransfer)
	}
	before := len(f.cmds)
	if err := d.IFSend(ctx, 1, 1, big); err == nil || len(f.cmds) != before {
		t.Errorf("IFSend(%d bytes) = %v after %d commands; want an error and no command", len(big), err, len(f.cmds)-before)
	}

	id, err := d.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(id.Serial[:]) != "S4EWNX0R123456      " || id.Model != "Samsung SSD 970 EVO Plus 1TB" || id.Firmware != "2B2QEXM7" || id.Kind != transport.KindNVMe || id.Blocks != 0 {
		t.Errorf("Identify = %+v", id)
	}

	// A cancelled context issues nothing.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	before = len(f.cmds)
	if err := d.IFSend(cctx, 1, 1, payload); !errors.Is(err, context.Canceled) || len(f.cmds) != before {
		t.Errorf("IFSend with a cancelled context = %v; want context.Canceled and no command", err)
	}

	if err := d.Close(); err != nil || cc != 1 {
		t.Fatalf("Close = %v, closes %d", err, cc)
	}
	if err := d.Close(); err != nil || cc != 1 {
		t.Errorf("second Close = %v, closes %d; want nil, 1", err, cc)
	}
	if _, err := d.IFRecv(ctx, 1, 1, buf); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("IFRecv after Close = %v; want ErrClosed", err)
	}
}

func TestDeviceNamespace(t *testing.T) {
	f := newFake(t)
	f.nsid = 1
	f.ns = make([]byte, IdentifyLen)
	f.ns[0] = 0x10 // 16 blocks... plus:
	f.ns[3] = 0x01 // 0x01000010
	f.ns[25], f.ns[26] = 1, 1
	f.ns[128+4+2] = 12
	d, err := newDevice("/dev/nvme0n1", 42, nil, f.ioctl)
	if err != nil {
		t.Fatal(err)
	}
	if d.NamespaceID() != 1 {
		t.Errorf("NamespaceID = %d; want 1", d.NamespaceID())
	}
	id, err := d.Identify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if id.BlockSize != 4096 || id.Blocks != 0x01000010 {
		t.Errorf("Identify capacity = %d blocks of %d; want 0x01000010 of 4096", id.Blocks, id.BlockSize)
	}
}

func TestDeviceStatusIsError(t *testing.T) {
	f := newFake(t)
	d, err := newDevice("/dev/nvme0", 42, nil, f.ioctl)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f.status = 0x4002 // DNR | Invalid Field in Command
	buf := make([]byte, 512)
	_, err = d.IFRecv(ctx, 0x01, 0x0FFF, buf)
	var st Status
	if !errors.Is(err, transport.ErrInvalidField) || !errors.As(err, &st) || st != 0x4002 {
		t.Fatalf("IFRecv with status 0x4002 = %v; want a Status error matching ErrInvalidField", err)
	}
	for _, w := range []string{"security receive", "0x0fff", "/dev/nvme0", "Invalid Field in Command"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	f.status = 0x0001
	if err := d.IFSend(ctx, 1, 1, buf); !errors.Is(err, transport.ErrNotSupported) {
		t.Errorf("IFSend with Invalid Opcode = %v; want ErrNotSupported", err)
	}
	f.status = 0x10000
	if err := d.IFSend(ctx, 1, 1, buf); err == nil {
		t.Errorf("IFSend with result 0x10000 = nil; want an error")
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		f    func(*fakeCtrl)
		is   error
		text string
	}{
		{"not nvme", func(f *fakeCtrl) { f.adminErr = syscall.ENOTTY }, syscall.ENOTTY, "not an NVMe device"},
		{"not root", func(f *fakeCtrl) { f.adminErr = syscall.EACCES }, syscall.EACCES, "CAP_SYS_ADMIN"},
		{"eperm", func(f *fakeCtrl) { f.adminErr = syscall.EPERM }, syscall.EPERM, "needs root"},
		{"no security", func(f *fakeCtrl) {
			f.identify = identifyData("SN1", "Plain NVMe", "1.0", 0x1234, 0x0016)
		}, transport.ErrNotSupported, "OACS bit 0"},
		{"empty identify", func(f *fakeCtrl) { f.identify = nil }, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			tt.f(f)
			_, err := newDevice("/dev/nvme9", 42, nil, f.ioctl)
			if tt.is == nil {
				// identify returns all zeros: OACS clear.
				if !errors.Is(err, transport.ErrNotSupported) {
					t.Errorf("newDevice with empty identify = %v; want ErrNotSupported", err)
				}
				return
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), "/dev/nvme9") {
				t.Errorf("newDevice = %v; want %v and text %q", err, tt.is, tt.text)
			}
		})
	}
}

// TestOpenNonDevice runs the real Open on paths that are not NVMe devices.
func TestOpenNonDevice(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(reg, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(reg)
	if err == nil || !strings.Contains(err.Error(), "not a device node (a regular file)") {
		t.Errorf("Open(regular file) = %v; want a not-a-device error", err)
	}
	_, err = Open(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v; want ErrNotExist", err)
	}
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	_, err = Open("/dev/null")
	if !errors.Is(err, syscall.ENOTTY) || !strings.Contains(err.Error(), "not an NVMe device") {
		t.Errorf("Open(/dev/null) = %v; want ENOTTY, not an NVMe device", err)
	}
}
