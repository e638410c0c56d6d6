package sedioctl

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/transport"
	"github.com/shiftlock/shiftlock/tcg/transport/internal/ioctl"
)

// call is one ioctl as the fake kernel saw it.
type call struct {
	req  uint32
	arg  unsafe.Pointer
	data []byte // the struct's bytes at the time of the call
}

// fakeKernel stands in for block/sed-opal.c.
type fakeKernel struct {
	t      *testing.T
	status StatusFlags
	errno  map[uint32]error // per request
	result int              // positive result for every request but the readers
	level0 []byte
	calls  []call
}

func sizeOf(req uint32) int { return int(req >> 16 & 0x3fff) }

func (f *fakeKernel) ioctl(fd uintptr, req uint32, arg unsafe.Pointer) (int, error) {
	if fd != 7 {
		f.t.Errorf("fd = %d; want 7", fd)
	}
	if _, ok := ioctlNames[req]; !ok {
		f.t.Errorf("unknown request 0x%08x", req)
		return 0, syscall.ENOTTY
	}
	c := call{req: req, arg: arg}
	if n := sizeOf(req); n > 0 {
		c.data = bytes.Clone(unsafe.Slice((*byte)(arg), n))
	} else if arg != nil {
		f.t.Errorf("%s with an argument", IoctlName(req))
	}
	f.calls = append(f.calls, c)
	if err := f.errno[req]; err != nil {
		return 0, err
	}
	switch req {
	case IoctlGetStatus:
		(*Status)(arg).Flags = f.status
		return 0, nil
	case IoctlGetGeometry:
		*(*Geometry)(arg) = Geometry{Align: 1, LogicalBlockSize: 4096, AlignmentGranularity: 8, LowestAlignedLBA: 0}
		return 0, nil
	case IoctlGetLRStatus:
		a := (*LRStatus)(arg)
		a.RangeStart, a.RangeLength, a.RLE, a.WLE, a.LState = 2048, 1<<20, 1, 1, Locked
		return f.result, nil
	case IoctlDiscovery:
		a := (*DiscoveryArg)(arg)
		n := copy(ioctl.Bytes(a.Data, int(a.Size)), f.level0)
		return n, nil
	}
	return f.result, nil
}

func (f *fakeKernel) last() call { return f.calls[len(f.calls)-1] }

func openFake(t *testing.T, f *fakeKernel) *Kernel {
	t.Helper()
	k, err := newKernel("/dev/nvme0n1", 7, nil, f.ioctl)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestOpenProbe(t *testing.T) {
	tests := []struct {
		name   string
		status StatusFlags
		errno  error
		is     []error
		text   string
	}{
		{"ok", FlSupported | FlLockingSupported, nil, nil, ""},
		{"no sed-opal", 0, syscall.ENOTTY, []error{ErrNoKernelSupport, syscall.ENOTTY}, "CONFIG_BLK_SED_OPAL"},
		{"driver without sed-opal (loop)", 0, syscall.EINVAL, []error{ErrNoKernelSupport, syscall.EINVAL}, "does not know"},
		{"not opal", 0, syscall.EOPNOTSUPP, []error{ErrNotOpal, syscall.EOPNOTSUPP}, "Pyrite"},
		{"not root", 0, syscall.EACCES, []error{ErrNeedsRoot, syscall.EACCES, os.ErrPermission}, "CAP_SYS_ADMIN"},
		{"eperm", 0, syscall.EPERM, []error{ErrNeedsRoot}, "root"},
		{"unsupported flag clear", FlLockingSupported, nil, []error{ErrNotOpal}, "no Opal support"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeKernel{t: t, status: tt.status, errno: map[uint32]error{IoctlGetStatus: tt.errno}}
			k, err := newKernel("/dev/sda", 7, nil, f.ioctl)
			if len(f.calls) != 1 || f.calls[0].req != IoctlGetStatus {
				t.Fatalf("probe issued %v; want one IOC_OPAL_GET_STATUS", f.calls)
			}
			if tt.is == nil {
				if err != nil || k.OpenStatus().Flags != tt.status {
					t.Errorf("newKernel = %v, status %+v", err, k.OpenStatus())
				}
				return
			}
			for _, want := range tt.is {
				if !errors.Is(err, want) {
					t.Errorf("newKernel = %v; want errors.Is %v", err, want)
				}
			}
			if err != nil && (!strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), "/dev/sda") || !strings.Contains(err.Error(), "IOC_OPAL_GET_STATUS")) {
				t.Errorf("newKernel = %q; want the device, the ioctl and %q", err, tt.text)
			}
		})
	}
}

func TestWriteIoctls(t *testing.T) {
	f := &fakeKernel{t: t, status: FlSupported}
	k := openFake(t, f)
	ctx := context.Background()
	key := testKey(1)
	lu := LockUnlock{Session: SessionInfo{Who: User1, Key: key}, LState: ReadWrite, Flags: SaveForLock}
	lrs := UserLRSetup{RangeStart: 2048, RangeLength: 4096, RLE: 1, WLE: 1, Session: session(Admin1, 1)}
	act := LRAct{Key: key, NumLRs: 1, LR: [MaxLRs]uint8{1}}
	pw := NewPW{Session: session(Admin1, 0), NewUserPW: session(User1, 0)}
	mbr := MBRData{Key: key, EnableDisable: MBRDisable}
	mbd := MBRDoneArg{Key: key, DoneFlag: MBRIsDone}
	rv := RevertLSP{Key: key, Options: Preserve}
	rea := LRReact{Key: key, NewAdminKey: testKey(2), NumLRs: 1}
	si := session(User1+1, 3)
	tests := []struct {
		name string
		run  func() error
		req  uint32
		want encodingMarshaler
	}{
		{"save", func() error { return k.Save(ctx, lu) }, IoctlSave, &lu},
		{"lock unlock", func() error { return k.LockUnlock(ctx, lu) }, IoctlLockUnlock, &lu},
		{"take ownership", func() error { return k.TakeOwnership(ctx, key) }, IoctlTakeOwnership, &key},
		{"activate lsp", func() error { return k.ActivateLSP(ctx, act) }, IoctlActivateLSP, &act},
		{"set pw", func() error { return k.SetPassword(ctx, pw) }, IoctlSetPW, &pw},
		{"activate user", func() error { return k.ActivateUser(ctx, si) }, IoctlActivateUsr, &si},
		{"revert tper", func() error { return k.RevertTPer(ctx, key) }, IoctlRevertTPR, &key},
		{"lr setup", func() error { return k.SetupRange(ctx, lrs) }, IoctlLRSetup, &lrs},
		{"add user", func() error { return k.AddUserToRange(ctx, lu) }, IoctlAddUsrToLR, &lu},
		{"mbr", func() error { return k.EnableDisableMBR(ctx, mbr) }, IoctlEnableDisableMBR, &mbr},
		{"erase", func() error { return k.EraseRange(ctx, si) }, IoctlEraseLR, &si},
		{"secure erase", func() error { return k.SecureEraseRange(ctx, si) }, IoctlSecureEraseLR, &si},
		{"psid revert", func() error { return k.PSIDRevert(ctx, key) }, IoctlPSIDRevertTPR, &key},
		{"mbr done", func() error { return k.MBRDone(ctx, mbd) }, IoctlMBRDone, &mbd},
		{"revert lsp", func() error { return k.RevertLSP(ctx, rv) }, IoctlRevertLSP, &rv},
		{"set sid pw", func() error { return k.SetSIDPassword(ctx, pw) }, IoctlSetSIDPW, &pw},
		{"reactivate", func() error { return k.ReactivateLSP(ctx, rea) }, IoctlReactivateLSP, &rea},
		{"set start len", func() error { return k.SetRangeStartLength(ctx, lrs) }, IoctlLRSetStartLen, &lrs},
		{"enable disable lr", func() error { return k.EnableDisableRange(ctx, lrs) }, IoctlEnableDisableLR, &lrs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.result = 0
			if err := tt.run(); err != nil {
				t.Fatalf("%s: %v", IoctlName(tt.req), err)
			}
			c := f.last()
			want, _ := tt.want.MarshalBinary()
			if c.req != tt.req || !bytes.Equal(c.data, want) {
				t.Errorf("kernel got %s with % x\nwant %s with % x", IoctlName(c.req), c.data, IoctlName(tt.req), want)
			}
			// The argument the kernel read is wiped after the call.
			if after := unsafe.Slice((*byte)(c.arg), len(c.data)); !bytes.Equal(after, make([]byte, len(after))) {
				t.Errorf("argument not wiped after the call: % x", after[:16])
			}
			// A positive result is a TCG method status.
			f.result = int(method.StatusNotAuthorized)
			err := tt.run()
			if !errors.Is(err, method.StatusNotAuthorized) || !strings.Contains(err.Error(), IoctlName(tt.req)) {
				t.Errorf("with result 1: %v; want NOT_AUTHORIZED naming %s", err, IoctlName(tt.req))
			}
			if errors.Is(err, syscall.EPERM) {
				t.Errorf("status 1 taken for EPERM: %v", err)
			}
		})
	}
	f.result = 0x12
	if err := k.LockUnlock(ctx, lu); !errors.Is(err, method.StatusAuthorityLockedOut) {
		t.Errorf("result 0x12 = %v; want AUTHORITY_LOCKED_OUT", err)
	}
	f.result = 300
	if err := k.LockUnlock(ctx, lu); err == nil || !strings.Contains(err.Error(), "unexpected result 300") {
		t.Errorf("result 300 = %v; want an unexpected-result error", err)
	}
	f.result = 0
	f.errno = map[uint32]error{IoctlLockUnlock: syscall.EINVAL}
	if err := k.LockUnlock(ctx, lu); !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "rejected the arguments") {
		t.Errorf("EINVAL = %v", err)
	}
	f.errno = map[uint32]error{IoctlReactivateLSP: syscall.ENOTTY}
	if err := k.ReactivateLSP(ctx, rea); !errors.Is(err, ErrNoKernelSupport) {
		t.Errorf("ENOTTY on a new ioctl = %v; want ErrNoKernelSupport", err)
	}
	f.errno = nil
	if err := k.StackReset(ctx); err != nil || f.last().req != IoctlStackReset || f.last().arg != nil {
		t.Errorf("StackReset = %v, %+v", err, f.last())
	}
}

type encodingMarshaler interface{ MarshalBinary() ([]byte, error) }

func TestBufferIoctls(t *testing.T) {
	f := &fakeKernel{t: t, status: FlSupported, level0: bytes.Repeat([]byte{0x42}, 100)}
	k := openFake(t, f)
	ctx := context.Background()

	buf := make([]byte, 2048)
	n, err := k.Discovery(ctx, buf)
	if err != nil || n != 100 || !bytes.Equal(buf[:100], f.level0) {
		t.Fatalf("Discovery = %d, %v; want 100 bytes of level 0", n, err)
	}
	c := f.last()
	if ne.Uint64(c.data[8:]) != 2048 || ne.Uint64(c.data) == 0 {
		t.Errorf("opal_discovery = % x; want data pointer and size 2048", c.data)
	}
	small := make([]byte, 10)
	f.level0 = bytes.Repeat([]byte{1}, 10)
	if n, err := k.Discovery(ctx, small); err != nil || n != 10 {
		t.Errorf("Discovery(10 bytes) = %d, %v", n, err)
	}

	data := []byte("MBR shadow image bytes")
	if err := k.WriteShadowMBR(ctx, testKey(0), 4096, data); err != nil {
		t.Fatal(err)
	}
	c = f.last()
	if c.req != IoctlWriteShadowMBR || ne.Uint64(c.data[272:]) != 4096 || ne.Uint64(c.data[280:]) != uint64(len(data)) ||
		!bytes.Equal(ioctl.Bytes(ne.Uint64(c.data[264:]), len(data)), data) {
		t.Errorf("opal_shadow_mbr = % x", c.data[264:])
	}

	uid := [UIDLength]byte{0x00, 0x00, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00}
	if err := k.WriteTable(ctx, testKey(0), uid, 10, data); err != nil {
		t.Fatal(err)
	}
	c = f.last()
	if c.req != IoctlGenericTableRW || !bytes.Equal(c.data[272:280], uid[:]) || ne.Uint64(c.data[280:]) != 10 ||
		ne.Uint64(c.data[288:]) != uint64(len(data)) || ne.Uint64(c.data[296:]) != TableWrite {
		t.Errorf("opal_read_write_table write = % x", c.data[264:])
	}
	rb := make([]byte, 64)
	if err := k.ReadTable(ctx, testKey(0), uid, 0, rb); err != nil || ne.Uint64(f.last().data[296:]) != TableRead || ne.Uint64(f.last().data[288:]) != 64 {
		t.Errorf("ReadTable = %v, flags %d", err, ne.Uint64(f.last().data[296:]))
	}

	g, err := k.Geometry(ctx)
	if err != nil || g.LogicalBlockSize != 4096 || g.AlignmentGranularity != 8 || g.Align != 1 {
		t.Errorf("Geometry = %+v, %v", g, err)
	}
	st, err := k.Status(ctx)
	if err != nil || st.Flags != FlSupported {
		t.Errorf("Status = %+v, %v", st, err)
	}
	ls, err := k.RangeStatus(ctx, session(Admin1, 1))
	if err != nil || ls.RangeStart != 2048 || ls.RangeLength != 1<<20 || ls.LState != Locked || ls.Session.Key.KeyLen != 0 {
		t.Errorf("RangeStatus = %+v, %v; want the kernel's answer without the key", ls, err)
	}
	if want, _ := (&LRStatus{Session: session(Admin1, 1)}).MarshalBinary(); !bytes.Equal(f.last().data, want) {
		t.Errorf("opal_lr_status sent % x; want % x", f.last().data, want)
	}
	sum, err := k.SUMStatus(ctx, SUMRanges{Key: testKey(0)})
	if err != nil || sum.Key.KeyLen != 0 {
		t.Errorf("SUMStatus = %+v, %v", sum, err)
	}
	f.result = 1
	if _, err := k.RangeStatus(ctx, session(User1, 1)); !errors.Is(err, method.StatusNotAuthorized) {
		t.Errorf("RangeStatus with status 1 = %v", err)
	}
	f.result = 0

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	before := len(f.calls)
	if _, err := k.Status(cctx); !errors.Is(err, context.Canceled) || len(f.calls) != before {
		t.Errorf("Status with a cancelled context = %v", err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := k.Status(ctx); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Status after Close = %v; want ErrClosed", err)
	}
}

func TestResolveBlock(t *testing.T) {
	dir := t.TempDir()
	old := devDir
	devDir = dir
	t.Cleanup(func() { devDir = old })
	for _, n := range []string{"nvme0", "nvme0n1", "nvme0n1p1", "nvme0n1p2", "nvme1", "nvme1n1", "nvme1n2", "nvme2"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		in, want string
		bad      string
	}{
		{filepath.Join(dir, "nvme0"), filepath.Join(dir, "nvme0n1"), ""},
		{filepath.Join(dir, "nvme0n1"), filepath.Join(dir, "nvme0n1"), ""},
		{filepath.Join(dir, "nvme1"), "", "2 namespaces"},
		{filepath.Join(dir, "nvme2"), "", "no namespace"},
		{"/dev/sda", "/dev/sda", ""},
	}
	for _, tt := range tests {
		got, err := resolveBlock(tt.in)
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("resolveBlock(%s) = %q, %v; want error %q", tt.in, got, err, tt.bad)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("resolveBlock(%s) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestOpenNonDevice runs the real Open on paths that are not block devices.
func TestOpenNonDevice(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(reg, make([]byte, 512), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(reg); err == nil || !strings.Contains(err.Error(), "is a regular file") || !strings.Contains(err.Error(), "block device") {
		t.Errorf("Open(regular file) = %v; want a not-a-block-device error", err)
	}
	if _, err := os.Stat("/dev/null"); err != nil {
		t.Skip("no /dev/null")
	}
	if _, err := Open("/dev/null"); err == nil || !strings.Contains(err.Error(), "is a character device") {
		t.Errorf("Open(/dev/null) = %v; want a character-device error", err)
	}
}

// TestNewWithIoctl: the constructor for other packages' fakes probes as
// Open does and sends every ioctl to the function given.
func TestNewWithIoctl(t *testing.T) {
	f := &fakeKernel{t: t, status: FlSupported}
	var fds []uintptr
	fn := func(fd uintptr, req uint32, arg unsafe.Pointer) (int, error) {
		fds = append(fds, fd)
		return f.ioctl(7, req, arg)
	}
	k, err := NewWithIoctl("/dev/fake0n1", fn)
	if err != nil {
		t.Fatalf("NewWithIoctl: %v", err)
	}
	if k.Path() != "/dev/fake0n1" || !k.OpenStatus().Has(FlSupported) {
		t.Errorf("Path %q, status %+v", k.Path(), k.OpenStatus())
	}
	if err := k.MBRDone(context.Background(), MBRDoneArg{DoneFlag: MBRIsDone}); err != nil {
		t.Fatalf("MBRDone: %v", err)
	}
	if len(f.calls) != 2 || f.calls[0].req != IoctlGetStatus || f.calls[1].req != IoctlMBRDone {
		t.Errorf("calls %v; want GET_STATUS, MBR_DONE", f.calls)
	}
	for _, fd := range fds {
		if fd != ^uintptr(0) {
			t.Errorf("fd %d; want ^uintptr(0)", fd)
		}
	}
	if err := k.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	f2 := &fakeKernel{t: t, errno: map[uint32]error{IoctlGetStatus: syscall.ENOTTY}}
	if _, err := NewWithIoctl("/dev/fake0n1", func(_ uintptr, req uint32, arg unsafe.Pointer) (int, error) { return f2.ioctl(7, req, arg) }); !errors.Is(err, ErrNoKernelSupport) {
		t.Errorf("NewWithIoctl with ENOTTY = %v; want ErrNoKernelSupport", err)
	}
	if _, err := NewWithIoctl("/dev/fake0n1", nil); err == nil {
		t.Error("NewWithIoctl(nil) accepted")
	}
}
