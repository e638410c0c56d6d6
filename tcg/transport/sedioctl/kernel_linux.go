package sedioctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/transport"
	"github.com/shiftlock/shiftlock/tcg/transport/internal/ioctl"
)

// Errors explaining the errnos of the sed-opal ioctls. Each is wrapped
// together with the errno itself, so errors.Is(err, unix.ENOTTY) holds too.
var (
	// ErrNoKernelSupport (ENOTTY): the kernel does not know the ioctl for
	// this device.
	ErrNoKernelSupport = errors.New("kernel has no sed-opal support for this device " +
		"(CONFIG_BLK_SED_OPAL is off, the device is not an NVMe namespace or SCSI/SATA disk, or the kernel predates this ioctl)")

	// ErrNotOpal (EOPNOTSUPP): the kernel registered no Opal 1/2 drive
	// behind the device.
	ErrNotOpal = errors.New("the kernel does not drive this device with Opal " +
		"(it supports Opal 1 and 2 only, not Pyrite, Opalite, Ruby or Enterprise, and found none at boot); use the direct NVMe/SCSI transport instead")

	// ErrNeedsRoot (EACCES, EPERM): the caller lacks CAP_SYS_ADMIN.
	ErrNeedsRoot = errors.New("the sed-opal ioctls need root (CAP_SYS_ADMIN)")
)

// Kernel is an open block device driven through the kernel's sed-opal
// ioctls. Its methods are safe for concurrent use; the kernel serialises
// them per device anyway.
type Kernel struct {
	path   string
	fd     uintptr
	closer io.Closer
	ioctl  ioctl.Func
	status Status // from the probe at Open

	mu     sync.Mutex
	closed bool
}

// devDir is where Open looks for the namespaces of an NVMe controller
// node; tests change it.
var devDir = "/dev"

var nvmeCtrlName = regexp.MustCompile(`^nvme[0-9]+$`)
var nvmeNSName = regexp.MustCompile(`^nvme[0-9]+n[0-9]+$`)

// Open opens the block device at path and probes it with
// IOC_OPAL_GET_STATUS (kernel 6.0 and later). An NVMe controller node
// (/dev/nvme0) is replaced by its namespace block device when it has
// exactly one. The probe's errno is explained: ErrNoKernelSupport,
// ErrNotOpal, ErrNeedsRoot.
func Open(path string) (*Kernel, error) {
	path, err := resolveBlock(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("sed-opal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sed-opal: %w", err)
	}
	if fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		f.Close()
		return nil, fmt.Errorf("sed-opal: %s is %s; the kernel's sed-opal ioctls work on a block device such as /dev/nvme0n1 or /dev/sda",
			path, ioctl.DescribeMode(fi.Mode()))
	}
	k, err := newKernel(path, f.Fd(), f, ioctl.Syscall)
	if err != nil {
		f.Close()
		return nil, err
	}
	return k, nil
}

// resolveBlock maps an NVMe controller node /dev/nvmeN to its only
// namespace /dev/nvmeNn1 (the ioctls fail with ENOTTY on the controller).
func resolveBlock(path string) (string, error) {
	base := filepath.Base(path)
	if filepath.Dir(path) != devDir || !nvmeCtrlName.MatchString(base) {
		return path, nil
	}
	matches, _ := filepath.Glob(filepath.Join(devDir, base+"n*"))
	var ns []string
	for _, m := range matches {
		if nvmeNSName.MatchString(filepath.Base(m)) {
			ns = append(ns, m)
		}
	}
	switch len(ns) {
	case 1:
		return ns[0], nil
	case 0:
		return "", fmt.Errorf("sed-opal: %s is an NVMe controller with no namespace block device; the kernel's sed-opal ioctls need one such as %sn1", path, path)
	}
	return "", fmt.Errorf("sed-opal: %s has %d namespaces (%v); name the block device to use", path, len(ns), ns)
}

// NewWithIoctl returns a Kernel for path whose ioctls go to fn instead of
// the ioctl(2) system call, probed with IOC_OPAL_GET_STATUS as Open probes.
// It is for tests of other packages: fn stands in for block/sed-opal.c,
// reading and writing the struct at arg as the kernel would (errnos as
// syscall.Errno, TCG method statuses as a positive result). No file
// descriptor is involved: fn sees ^uintptr(0), and Close closes nothing.
func NewWithIoctl(path string, fn func(fd uintptr, req uint32, arg unsafe.Pointer) (int, error)) (*Kernel, error) {
	if fn == nil {
		return nil, errors.New("sed-opal: NewWithIoctl without an ioctl function")
	}
	return newKernel(path, ^uintptr(0), nil, fn)
}

// newKernel probes an open block device with IOC_OPAL_GET_STATUS.
func newKernel(path string, fd uintptr, closer io.Closer, fn ioctl.Func) (*Kernel, error) {
	k := &Kernel{path: path, fd: fd, closer: closer, ioctl: fn}
	st, err := k.Status(context.Background())
	if errors.Is(err, unix.EINVAL) {
		// IOC_OPAL_GET_STATUS takes no input, so sed-opal itself never
		// finds it invalid: EINVAL is a driver that does not know the
		// ioctl at all (the loop driver answers so; others ENOTTY).
		return nil, fmt.Errorf("sed-opal %s: IOC_OPAL_GET_STATUS: its driver does not know the sed-opal ioctls: %w: %w", path, ErrNoKernelSupport, unix.EINVAL)
	}
	if err != nil {
		return nil, err
	}
	if !st.Has(FlSupported) {
		return nil, fmt.Errorf("sed-opal %s: IOC_OPAL_GET_STATUS reports no Opal support: %w", path, ErrNotOpal)
	}
	k.status = st
	return k, nil
}

// Path returns the block device path in use.
func (k *Kernel) Path() string { return k.path }

// OpenStatus returns the status read when the device was opened.
func (k *Kernel) OpenStatus() Status { return k.status }

// Close closes the block device.
func (k *Kernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	if k.closer != nil {
		return k.closer.Close()
	}
	return nil
}

// do issues one ioctl and returns its non-negative result.
func (k *Kernel) do(ctx context.Context, req uint32, arg unsafe.Pointer) (int, error) {
	name := IoctlName(req)
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s on %s: %w", name, k.path, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return 0, fmt.Errorf("%s on %s: %w", name, k.path, transport.ErrClosed)
	}
	r, err := k.ioctl(k.fd, req, arg)
	if err != nil {
		return 0, fmt.Errorf("%s on %s: %w", name, k.path, explain(err))
	}
	return r, nil
}

// call issues an ioctl whose positive result is a TCG method status.
func (k *Kernel) call(ctx context.Context, req uint32, arg unsafe.Pointer) error {
	r, err := k.do(ctx, req, arg)
	if err != nil {
		return err
	}
	switch {
	case r == 0:
		return nil
	case r <= math.MaxUint8:
		return fmt.Errorf("%s on %s: %w", IoctlName(req), k.path, method.MethodStatus(r))
	}
	return fmt.Errorf("%s on %s: unexpected result %d", IoctlName(req), k.path, r)
}

// explain wraps an errno with the sentinel that says what it means here.
func explain(err error) error {
	switch {
	case errors.Is(err, unix.ENOTTY):
		return fmt.Errorf("%w: %w", ErrNoKernelSupport, err)
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%w: %w", ErrNotOpal, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: %w", ErrNeedsRoot, err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("the kernel rejected the arguments (a range beyond 8, a key over 256 bytes, an unknown flag, or an out-of-bounds table offset): %w", err)
	}
	return err
}

// wipe zeroes a struct that held keys.
func wipe[T any](p *T) { *p = *new(T) }

// Save stores l in the kernel's per-device list of unlocks to replay on
// resume from suspend (IOC_OPAL_SAVE, PROTOCOL.md 3.5). Nothing is sent to
// the drive and nothing is verified: unlock with the same l first.
func (k *Kernel) Save(ctx context.Context, l LockUnlock) error {
	defer wipe(&l)
	return k.call(ctx, IoctlSave, unsafe.Pointer(&l))
}

// LockUnlock sets range l.Session.Key.LR to l.LState (IOC_OPAL_LOCK_UNLOCK).
func (k *Kernel) LockUnlock(ctx context.Context, l LockUnlock) error {
	defer wipe(&l)
	return k.call(ctx, IoctlLockUnlock, unsafe.Pointer(&l))
}

// TakeOwnership sets the SID PIN to key, authenticating with the MSID
// (IOC_OPAL_TAKE_OWNERSHIP).
func (k *Kernel) TakeOwnership(ctx context.Context, key Key) error {
	defer wipe(&key)
	return k.call(ctx, IoctlTakeOwnership, unsafe.Pointer(&key))
}

// ActivateLSP activates the Locking SP as SID (IOC_OPAL_ACTIVATE_LSP).
func (k *Kernel) ActivateLSP(ctx context.Context, a LRAct) error {
	defer wipe(&a)
	return k.call(ctx, IoctlActivateLSP, unsafe.Pointer(&a))
}

// SetPassword changes the PIN of p.NewUserPW.Who (IOC_OPAL_SET_PW).
func (k *Kernel) SetPassword(ctx context.Context, p NewPW) error {
	defer wipe(&p)
	return k.call(ctx, IoctlSetPW, unsafe.Pointer(&p))
}

// ActivateUser enables s.Who, a UserN authority (IOC_OPAL_ACTIVATE_USR).
func (k *Kernel) ActivateUser(ctx context.Context, s SessionInfo) error {
	defer wipe(&s)
	return k.call(ctx, IoctlActivateUsr, unsafe.Pointer(&s))
}

// RevertTPer reverts the drive to factory state as SID
// (IOC_OPAL_REVERT_TPR). Data is lost.
func (k *Kernel) RevertTPer(ctx context.Context, key Key) error {
	defer wipe(&key)
	return k.call(ctx, IoctlRevertTPR, unsafe.Pointer(&key))
}

// SetupRange sets a range's start, length and lock enables
// (IOC_OPAL_LR_SETUP).
func (k *Kernel) SetupRange(ctx context.Context, u UserLRSetup) error {
	defer wipe(&u)
	return k.call(ctx, IoctlLRSetup, unsafe.Pointer(&u))
}

// AddUserToRange lets l.Session.Who set the range's read lock (LState
// ReadOnly) or write lock (ReadWrite) (IOC_OPAL_ADD_USR_TO_LR).
func (k *Kernel) AddUserToRange(ctx context.Context, l LockUnlock) error {
	defer wipe(&l)
	return k.call(ctx, IoctlAddUsrToLR, unsafe.Pointer(&l))
}

// EnableDisableMBR enables or disables the MBR shadow
// (IOC_OPAL_ENABLE_DISABLE_MBR).
func (k *Kernel) EnableDisableMBR(ctx context.Context, m MBRData) error {
	defer wipe(&m)
	return k.call(ctx, IoctlEnableDisableMBR, unsafe.Pointer(&m))
}

// EraseRange erases a range with the Erase method (IOC_OPAL_ERASE_LR,
// Single User Mode ranges).
func (k *Kernel) EraseRange(ctx context.Context, s SessionInfo) error {
	defer wipe(&s)
	return k.call(ctx, IoctlEraseLR, unsafe.Pointer(&s))
}

// SecureEraseRange regenerates a range's key with GenKey
// (IOC_OPAL_SECURE_ERASE_LR). The range's data is lost.
func (k *Kernel) SecureEraseRange(ctx context.Context, s SessionInfo) error {
	defer wipe(&s)
	return k.call(ctx, IoctlSecureEraseLR, unsafe.Pointer(&s))
}

// PSIDRevert reverts the drive with the PSID printed on its label
// (IOC_OPAL_PSID_REVERT_TPR). Data is lost.
func (k *Kernel) PSIDRevert(ctx context.Context, key Key) error {
	defer wipe(&key)
	return k.call(ctx, IoctlPSIDRevertTPR, unsafe.Pointer(&key))
}

// MBRDone sets MBRControl Done (IOC_OPAL_MBR_DONE).
func (k *Kernel) MBRDone(ctx context.Context, m MBRDoneArg) error {
	defer wipe(&m)
	return k.call(ctx, IoctlMBRDone, unsafe.Pointer(&m))
}

// WriteShadowMBR writes data into the MBR shadow table at offset
// (IOC_OPAL_WRITE_SHADOW_MBR).
func (k *Kernel) WriteShadowMBR(ctx context.Context, key Key, offset uint64, data []byte) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	a := ShadowMBR{Key: key, Data: ioctl.Addr(&pin, data), Offset: offset, Size: uint64(len(data))}
	defer wipe(&a)
	return k.call(ctx, IoctlWriteShadowMBR, unsafe.Pointer(&a))
}

// ReadTable reads len(buf) bytes at offset of the byte table whose UID is
// table (a DataStore, the MBR) into buf (IOC_OPAL_GENERIC_TABLE_RW).
func (k *Kernel) ReadTable(ctx context.Context, key Key, table [UIDLength]byte, offset uint64, buf []byte) error {
	return k.tableRW(ctx, key, table, offset, buf, TableRead)
}

// WriteTable writes data at offset of the byte table whose UID is table
// (IOC_OPAL_GENERIC_TABLE_RW).
func (k *Kernel) WriteTable(ctx context.Context, key Key, table [UIDLength]byte, offset uint64, data []byte) error {
	return k.tableRW(ctx, key, table, offset, data, TableWrite)
}

func (k *Kernel) tableRW(ctx context.Context, key Key, table [UIDLength]byte, offset uint64, data []byte, flags uint64) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	a := ReadWriteTable{Key: key, Data: ioctl.Addr(&pin, data), TableUID: table, Offset: offset, Size: uint64(len(data)), Flags: flags}
	defer wipe(&a)
	return k.call(ctx, IoctlGenericTableRW, unsafe.Pointer(&a))
}

// Status returns the flags of the kernel's last Level 0 discovery
// (IOC_OPAL_GET_STATUS, 6.0).
func (k *Kernel) Status(ctx context.Context) (Status, error) {
	var s Status
	if err := k.call(ctx, IoctlGetStatus, unsafe.Pointer(&s)); err != nil {
		return Status{}, err
	}
	return s, nil
}

// RangeStatus reads range s.Key.LR's start, length, lock enables and state,
// authenticating as s (IOC_OPAL_GET_LR_STATUS, 6.4).
func (k *Kernel) RangeStatus(ctx context.Context, s SessionInfo) (LRStatus, error) {
	a := LRStatus{Session: s}
	wipe(&s)
	if err := k.call(ctx, IoctlGetLRStatus, unsafe.Pointer(&a)); err != nil {
		wipe(&a)
		return LRStatus{}, err
	}
	out := a
	out.Session = SessionInfo{}
	wipe(&a)
	return out, nil
}

// Geometry returns the Level 0 Geometry feature as the kernel cached it
// (IOC_OPAL_GET_GEOMETRY, 6.4).
func (k *Kernel) Geometry(ctx context.Context) (Geometry, error) {
	var g Geometry
	if err := k.call(ctx, IoctlGetGeometry, unsafe.Pointer(&g)); err != nil {
		return Geometry{}, err
	}
	return g, nil
}

// Discovery runs a fresh Level 0 discovery and copies the raw response
// into buf, returning its length, at most len(buf) (IOC_OPAL_DISCOVERY,
// 6.6). Parse it with tcg/discovery.
func (k *Kernel) Discovery(ctx context.Context, buf []byte) (int, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	a := DiscoveryArg{Data: ioctl.Addr(&pin, buf), Size: uint64(len(buf))}
	r, err := k.do(ctx, IoctlDiscovery, unsafe.Pointer(&a))
	runtime.KeepAlive(buf)
	if err != nil {
		return 0, err
	}
	return min(r, len(buf)), nil
}

// RevertLSP reverts the Locking SP as Admin1 (IOC_OPAL_REVERT_LSP, 6.6);
// with Preserve the global range keeps its key and data.
func (k *Kernel) RevertLSP(ctx context.Context, r RevertLSP) error {
	defer wipe(&r)
	return k.call(ctx, IoctlRevertLSP, unsafe.Pointer(&r))
}

// SetSIDPassword changes the SID PIN, authenticating with p.Session's key
// (IOC_OPAL_SET_SID_PW, 6.13).
func (k *Kernel) SetSIDPassword(ctx context.Context, p NewPW) error {
	defer wipe(&p)
	return k.call(ctx, IoctlSetSIDPW, unsafe.Pointer(&p))
}

// ReactivateLSP re-activates the Locking SP with a new Admin1 key and SUM
// ranges (IOC_OPAL_REACTIVATE_LSP, 2026 series: probe, ENOTTY before).
func (k *Kernel) ReactivateLSP(ctx context.Context, r LRReact) error {
	defer wipe(&r)
	return k.call(ctx, IoctlReactivateLSP, unsafe.Pointer(&r))
}

// SetRangeStartLength sets a range's start and length only
// (IOC_OPAL_LR_SET_START_LEN, 2026 series).
func (k *Kernel) SetRangeStartLength(ctx context.Context, u UserLRSetup) error {
	defer wipe(&u)
	return k.call(ctx, IoctlLRSetStartLen, unsafe.Pointer(&u))
}

// EnableDisableRange sets a range's RLE and WLE only
// (IOC_OPAL_ENABLE_DISABLE_LR, 2026 series).
func (k *Kernel) EnableDisableRange(ctx context.Context, u UserLRSetup) error {
	defer wipe(&u)
	return k.call(ctx, IoctlEnableDisableLR, unsafe.Pointer(&u))
}

// SUMStatus reads the Single User Mode ranges and policy
// (IOC_OPAL_GET_SUM_STATUS, 2026 series); s carries the key.
func (k *Kernel) SUMStatus(ctx context.Context, s SUMRanges) (SUMRanges, error) {
	defer wipe(&s)
	if err := k.call(ctx, IoctlGetSUMStatus, unsafe.Pointer(&s)); err != nil {
		return SUMRanges{}, err
	}
	out := s
	out.Key = Key{}
	return out, nil
}

// StackReset resets the drive's ComID stack (IOC_OPAL_STACK_RESET, 2026
// series).
func (k *Kernel) StackReset(ctx context.Context) error {
	return k.call(ctx, IoctlStackReset, nil)
}
