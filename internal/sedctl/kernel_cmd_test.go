package sedctl_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shiftlock/shiftlock/internal/sedctl"
	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/transport"
	"github.com/shiftlock/shiftlock/tcg/transport/sedioctl"
)

// kdev is the block device the fake kernel answers for.
const kdev = "/dev/sedctl-fake-nvme0n1"

// fakeSedOpal stands in for block/sed-opal.c in front of a sedsim drive:
// each ioctl's struct is read from its argument as the kernel reads it
// (the sedioctl ABI types) and the operation is carried out on the drive
// in process through tcg/opal, session by session as PROTOCOL.md 3.4
// describes the kernel doing it. Positive results are TCG method statuses.
type fakeSedOpal struct {
	t     *testing.T
	tr    transport.Transport
	c     *session.Client
	errno map[uint32]error // fail this request with this errno
	calls []string
}

// kernelOn puts a fake kernel in front of s at kdev; the serial for the
// password hashes comes from the drive's identify, as it would from the
// NVMe Identify of a real device.
func kernelOn(t *testing.T, s *testSim) *fakeSedOpal {
	t.Helper()
	f := &fakeSedOpal{t: t, tr: s.d.Transport(), errno: map[uint32]error{}}
	f.c = session.NewClient(f.tr, nil)
	sedctl.SetKernelForTest(t, func(path string) (*sedioctl.Kernel, error) {
		if path != kdev {
			return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
		}
		return sedioctl.NewWithIoctl(path, f.ioctl)
	}, func(ctx context.Context, path string) (transport.Identity, error) {
		return f.tr.Identify(ctx)
	})
	return f
}

// userBytes is the user buffer a struct's __u64 pointer names (the
// pointer came from a pinned Go slice: sedioctl's ioctl.Addr).
func userBytes(addr, n uint64) []byte {
	if addr == 0 || n == 0 {
		return nil
	}
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	return unsafe.Slice((*byte)(p), n)
}

// auth is the authority the kernel opens a session as: Admin1 (who 0),
// UserN, or with sum User(lr+1); the key is used as given.
func auth(s sedioctl.SessionInfo) opal.Auth {
	who := method.Admin(1)
	switch {
	case s.SUM != 0:
		who = method.User(uint32(s.Key.LR) + 1)
	case s.Who != sedioctl.Admin1:
		who = method.User(uint32(s.Who))
	}
	return opal.Auth{Authority: who, PIN: key(s.Key)}
}

func key(k sedioctl.Key) hash.PIN { return hash.PIN(bytes.Clone(k.Key[:k.KeyLen])) }

func user(w sedioctl.User) method.UID {
	if w == sedioctl.Admin1 {
		return method.Admin(1)
	}
	return method.User(uint32(w))
}

// result turns the library's outcome into the ioctl's: 0, a method
// status, or an errno (ENODEV for an active Locking SP, as
// get_lsp_lifecycle answers).
func (f *fakeSedOpal) result(name string, err error) (int, error) {
	var st method.MethodStatus
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &st) && st != method.StatusSuccess:
		return int(st), nil
	case errors.Is(err, opal.ErrOwned):
		return int(method.StatusNotAuthorized), nil
	case errors.Is(err, opal.ErrActive):
		return 0, syscall.ENODEV
	}
	f.t.Logf("fake kernel %s: %v", name, err)
	return 0, syscall.EIO
}

// tableFits is the kernel's check of offset+size against the table's
// Rows before a table transfer (EINVAL otherwise).
func (f *fakeSedOpal) tableFits(ctx context.Context, a opal.Auth, table method.UID, off, n uint64) error {
	size, err := opal.TableSize(ctx, f.c, a, table)
	if err != nil {
		return err
	}
	if off+n > size {
		return syscall.EINVAL
	}
	return nil
}

func (f *fakeSedOpal) ioctl(fd uintptr, req uint32, arg unsafe.Pointer) (int, error) {
	name := sedioctl.IoctlName(req)
	f.calls = append(f.calls, strings.TrimPrefix(name, "IOC_OPAL_"))
	if err := f.errno[req]; err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	switch req {
	case sedioctl.IoctlGetStatus:
		l0, err := f.c.Discover(ctx)
		if err != nil {
			return f.result(name, err)
		}
		var fl sedioctl.StatusFlags
		_, _, v1 := l0.ComIDs(discovery.SSCOpalV1)
		_, _, v2 := l0.ComIDs(discovery.SSCOpalV2)
		if v1 || v2 { // the kernel registers Opal 1 and 2 only
			fl |= sedioctl.FlSupported
		}
		for _, b := range []struct {
			on bool
			fl sedioctl.StatusFlags
		}{{l0.LockingSupported(), sedioctl.FlLockingSupported}, {l0.LockingEnabled(), sedioctl.FlLockingEnabled}, {l0.Locked(), sedioctl.FlLocked},
			{l0.MBREnabled(), sedioctl.FlMBREnabled}, {l0.MBRDone(), sedioctl.FlMBRDone}} {
			if b.on {
				fl |= b.fl
			}
		}
		*(*sedioctl.Status)(arg) = sedioctl.Status{Flags: fl}
		return 0, nil
	case sedioctl.IoctlDiscovery:
		a := (*sedioctl.DiscoveryArg)(arg)
		buf := make([]byte, 2048)
		if _, err := f.tr.IFRecv(ctx, 1, 1, buf); err != nil {
			return 0, syscall.EIO
		}
		n := min(int(binary.BigEndian.Uint32(buf))+4, len(buf))
		copy(userBytes(a.Data, a.Size), buf[:n])
		return n, nil
	case sedioctl.IoctlGetGeometry:
		l0, err := f.c.Discover(ctx)
		if err != nil || l0.Geometry == nil {
			return 0, syscall.EINVAL
		}
		g := l0.Geometry
		geo := sedioctl.Geometry{LogicalBlockSize: g.LogicalBlockSize, AlignmentGranularity: g.AlignmentGranularity, LowestAlignedLBA: g.LowestAlignedLBA}
		if g.Align {
			geo.Align = 1
		}
		*(*sedioctl.Geometry)(arg) = geo
		return 0, nil
	case sedioctl.IoctlGetLRStatus:
		a := (*sedioctl.LRStatus)(arg)
		r, err := opal.GetRange(ctx, f.c, auth(a.Session), uint32(a.Session.Key.LR))
		if err != nil {
			return f.result(name, err)
		}
		a.RangeStart, a.RangeLength = r.Start, r.Length
		a.RLE, a.WLE = b32(r.ReadLockEnabled), b32(r.WriteLockEnabled)
		switch {
		case r.ReadLocked && r.WriteLocked:
			a.LState = sedioctl.Locked
		case r.WriteLocked:
			a.LState = sedioctl.ReadOnly
		default:
			a.LState = sedioctl.ReadWrite
		}
		return 0, nil
	case sedioctl.IoctlLockUnlock:
		a := (*sedioctl.LockUnlock)(arg)
		st, ok := map[sedioctl.LockState]opal.LockState{sedioctl.ReadWrite: opal.ReadWrite, sedioctl.ReadOnly: opal.ReadOnly, sedioctl.Locked: opal.Locked}[a.LState]
		if !ok {
			return 0, syscall.EINVAL
		}
		err = opal.SetLockState(ctx, f.c, auth(a.Session), uint32(a.Session.Key.LR), st)
	case sedioctl.IoctlTakeOwnership:
		err = opal.TakeOwnership(ctx, f.c, key(*(*sedioctl.Key)(arg)))
	case sedioctl.IoctlActivateLSP:
		a := (*sedioctl.LRAct)(arg)
		err = opal.Activate(ctx, f.c, key(a.Key), nil)
	case sedioctl.IoctlSetPW:
		a := (*sedioctl.NewPW)(arg)
		err = opal.SetPIN(ctx, f.c, auth(a.Session), user(a.NewUserPW.Who), key(a.NewUserPW.Key))
	case sedioctl.IoctlSetSIDPW:
		a := (*sedioctl.NewPW)(arg)
		err = opal.SetPIN(ctx, f.c, opal.Auth{Authority: method.SID, PIN: key(a.Session.Key)}, method.SID, key(a.NewUserPW.Key))
	case sedioctl.IoctlActivateUsr:
		a := (*sedioctl.SessionInfo)(arg)
		if a.Who == sedioctl.Admin1 {
			return 0, syscall.EINVAL
		}
		err = opal.SetAuthorityEnabled(ctx, f.c, opal.Auth{Authority: method.Admin(1), PIN: key(a.Key)}, user(a.Who), true)
	case sedioctl.IoctlLRSetup, sedioctl.IoctlEnableDisableLR:
		a := (*sedioctl.UserLRSetup)(arg)
		rle, wle := a.RLE != 0, a.WLE != 0
		rs := opal.RangeSettings{ReadLockEnabled: &rle, WriteLockEnabled: &wle}
		switch f := false; {
		case req != sedioctl.IoctlLRSetup:
		case a.Session.Key.LR == 0:
			// enable_global_lr: RLE, WLE, and unlocked
			rs.ReadLocked, rs.WriteLocked = &f, &f
		default:
			rs.Start, rs.Length = &a.RangeStart, &a.RangeLength
		}
		err = opal.SetRange(ctx, f.c, auth(a.Session), uint32(a.Session.Key.LR), rs)
	case sedioctl.IoctlAddUsrToLR:
		a := (*sedioctl.LockUnlock)(arg)
		if a.Session.Who == sedioctl.Admin1 {
			return 0, syscall.EINVAL
		}
		err = opal.AddUserToRange(ctx, f.c, opal.Auth{Authority: method.Admin(1), PIN: key(a.Session.Key)}, uint32(a.Session.Who), uint32(a.Session.Key.LR))
	case sedioctl.IoctlEnableDisableMBR:
		a := (*sedioctl.MBRData)(arg)
		on := a.EnableDisable == sedioctl.MBREnable
		adm := opal.Auth{Authority: method.Admin(1), PIN: key(a.Key)}
		if err = opal.SetMBRControl(ctx, f.c, adm, opal.MBRSettings{Done: &on}); err == nil {
			err = opal.SetMBRControl(ctx, f.c, adm, opal.MBRSettings{Enable: &on})
		}
	case sedioctl.IoctlMBRDone:
		a := (*sedioctl.MBRDoneArg)(arg)
		done := a.DoneFlag == sedioctl.MBRIsDone
		err = opal.SetMBRControl(ctx, f.c, opal.Auth{Authority: method.Admin(1), PIN: key(a.Key)}, opal.MBRSettings{Done: &done})
	case sedioctl.IoctlWriteShadowMBR:
		a := (*sedioctl.ShadowMBR)(arg)
		adm := opal.Auth{Authority: method.Admin(1), PIN: key(a.Key)}
		if err = f.tableFits(ctx, adm, method.MBR, a.Offset, a.Size); err == nil {
			err = opal.WriteMBR(ctx, f.c, adm, a.Offset, userBytes(a.Data, a.Size), nil)
		}
	case sedioctl.IoctlGenericTableRW:
		a := (*sedioctl.ReadWriteTable)(arg)
		adm := opal.Auth{Authority: method.Admin(1), PIN: key(a.Key)}
		table := method.UID(a.TableUID)
		if err = f.tableFits(ctx, adm, table, a.Offset, a.Size); err == nil {
			switch a.Flags {
			case sedioctl.TableRead:
				err = opal.ReadTable(ctx, f.c, adm, table, a.Offset, userBytes(a.Data, a.Size))
			case sedioctl.TableWrite:
				err = opal.WriteTable(ctx, f.c, adm, table, a.Offset, userBytes(a.Data, a.Size), nil)
			default:
				err = syscall.EINVAL
			}
		}
	case sedioctl.IoctlSecureEraseLR:
		a := (*sedioctl.SessionInfo)(arg)
		err = opal.GenKey(ctx, f.c, auth(*a), uint32(a.Key.LR))
	case sedioctl.IoctlRevertTPR:
		err = opal.Revert(ctx, f.c, opal.Auth{Authority: method.SID, PIN: key(*(*sedioctl.Key)(arg))})
	case sedioctl.IoctlPSIDRevertTPR:
		err = opal.Revert(ctx, f.c, opal.Auth{Authority: method.PSID, PIN: key(*(*sedioctl.Key)(arg))})
	case sedioctl.IoctlRevertLSP:
		a := (*sedioctl.RevertLSP)(arg)
		err = opal.RevertSP(ctx, f.c, opal.Auth{Authority: method.Admin(1), PIN: key(a.Key)}, a.Options&sedioctl.Preserve != 0)
	case sedioctl.IoctlStackReset:
		err = f.c.StackReset(ctx)
	default:
		return 0, syscall.ENOTTY
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return 0, errno
	}
	return f.result(name, err)
}

func b32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// called reports whether the fake saw each ioctl, in this order.
func (f *fakeSedOpal) called(t *testing.T, names ...string) {
	t.Helper()
	i := 0
	for _, c := range f.calls {
		if i < len(names) && c == names[i] {
			i++
		}
	}
	if i < len(names) {
		t.Errorf("ioctls %v; want %v among them, in order", f.calls, names)
	}
	f.calls = nil
}

// rangeOf returns range n of a normal-path 'range list'.
func rangeOf(t *testing.T, rs []rangeJSON, n uint32) rangeJSON {
	t.Helper()
	for _, r := range rs {
		if r.Range == n {
			return r
		}
	}
	t.Fatalf("range %d not listed: %+v", n, rs)
	return rangeJSON{}
}

type mbrStatus struct {
	Enable bool `json:"enable"`
	Done   bool `json:"done"`
}

// TestViaKernel drives a sedsim drive through the fake kernel with --via
// kernel and checks every effect through the normal path (sedsim socket)
// or the drive itself.
func TestViaKernel(t *testing.T) {
	s := newSim(t, sim.Config{Serial: "KERNELTEST01"})
	f := kernelOn(t, s)
	pw := secretFile(t, "kernel-pw")
	via := func(args ...string) []string { return append(args, "--via", "kernel", kdev) }

	var q struct {
		Identity struct{ Serial string }
		Via      string
		SSC      string
		Kernel   struct {
			Supported        bool `json:"supported"`
			LockingSupported bool `json:"locking_supported"`
			LockingEnabled   bool `json:"locking_enabled"`
		} `json:"kernel_status"`
		Geometry *struct {
			LogicalBlockSize uint32 `json:"logical_block_size"`
		}
		Level0 *struct {
			Locking *struct {
				LockingEnabled bool `json:"locking_enabled"`
			} `json:"locking"`
		}
	}
	runJSON(t, &q, via("query")...)
	f.called(t, "GET_STATUS", "DISCOVERY", "GET_GEOMETRY")
	if q.Via != "kernel" || !q.Kernel.Supported || !q.Kernel.LockingSupported || q.Kernel.LockingEnabled || q.SSC != "opal2" ||
		q.Geometry == nil || q.Geometry.LogicalBlockSize != s.d.Info().BlockSize || q.Level0 == nil || q.Level0.Locking == nil ||
		!strings.HasPrefix(q.Identity.Serial, "KERNELTEST01") {
		t.Errorf("query --via kernel = %+v", q)
	}

	// setup through the kernel; the PINs it set (default --hash, salted
	// with the serial) open the drive on the normal path.
	mustRun(t, via("setup", "--password-file", pw)...)
	f.called(t, "TAKE_OWNERSHIP", "ACTIVATE_LSP", "LR_SETUP", "LOCK_UNLOCK")
	if r := rangeOf(t, s.ranges(pw), 0); r.ReadLockEnabled || r.WriteLockEnabled || r.ReadLocked || r.WriteLocked {
		t.Errorf("global range after setup --via kernel: %+v", r)
	}
	wantCode(t, sedctl.ExitRefused, []string{"already set up"}, via("setup", "--password-file", pw)...)

	// A range set up, enabled and locked through the kernel is locked on
	// the drive.
	mustRun(t, via("range", "setup", "1", "2048", "4096", "--password-file", pw)...)
	f.called(t, "LR_SETUP", "LOCK_UNLOCK", "SECURE_ERASE_LR")
	mustRun(t, via("range", "enable", "1", "--password-file", pw)...)
	mustRun(t, via("range", "lock", "1", "--password-file", pw)...)
	f.called(t, "LOCK_UNLOCK")
	r1 := rangeOf(t, s.ranges(pw), 1)
	if r1.Start != 2048 || r1.Length != 4096 || !r1.ReadLockEnabled || !r1.WriteLockEnabled || !r1.ReadLocked || !r1.WriteLocked {
		t.Errorf("range 1 after setup/enable/lock --via kernel: %+v", r1)
	}
	if s.readable(2048) || !s.readable(0) {
		t.Errorf("after range lock 1 --via kernel: block 2048 readable %v, block 0 readable %v; want false, true", s.readable(2048), s.readable(0))
	}
	var kl struct{ Ranges []rangeJSON }
	runJSON(t, &kl, via("range", "list", "--password-file", pw)...)
	k1 := rangeOf(t, kl.Ranges, 1)
	k1.LockOnReset, r1.LockOnReset = nil, nil // the kernel does not read LockOnReset
	if fmt.Sprint(k1) != fmt.Sprint(r1) {
		t.Errorf("range list --via kernel: range 1 %+v; the normal path says %+v", k1, r1)
	}

	// A wrong password: the drive's status is the exit code, the lock
	// stays.
	bad := secretFile(t, "wrong")
	wantCode(t, 1, []string{"NOT_AUTHORIZED", "--hash sedutil-sha1"}, via("range", "unlock", "1", "--password-file", bad)...)
	je := failJSON(t, 1, via("range", "unlock", "1", "--password-file", bad)...)
	if je.Error.Status != "NOT_AUTHORIZED" || je.Error.Authority != "Admin1" {
		t.Errorf("wrong password --json: %+v", je.Error)
	}
	if s.readable(2048) {
		t.Error("a refused unlock --via kernel unlocked range 1")
	}
	mustRun(t, via("range", "unlock", "1", "--password-file", pw)...)
	if r := rangeOf(t, s.ranges(pw), 1); r.ReadLocked || r.WriteLocked || !s.readable(2048) {
		t.Errorf("range 1 after unlock --via kernel: %+v", r)
	}
	mustRun(t, via("range", "set", "1", "RO", "--password-file", pw)...)
	if r := rangeOf(t, s.ranges(pw), 1); r.ReadLocked || !r.WriteLocked {
		t.Errorf("range 1 after set RO --via kernel: %+v", r)
	}
	mustRun(t, via("range", "disable", "1", "--password-file", pw)...)
	if r := rangeOf(t, s.ranges(pw), 1); r.ReadLockEnabled || r.WriteLockEnabled {
		t.Errorf("range 1 after disable --via kernel: %+v", r)
	}

	// Shadow MBR: enable, done off and on, checked with mbr status.
	mbr := func() mbrStatus {
		var m mbrStatus
		runJSON(t, &m, "mbr", "status", "--password-file", pw, s.dev)
		return m
	}
	mustRun(t, via("mbr", "enable", "--password-file", pw)...)
	f.called(t, "ENABLE_DISABLE_MBR")
	if m := mbr(); !m.Enable || !m.Done {
		t.Errorf("after mbr enable --via kernel: %+v", m)
	}
	mustRun(t, via("mbr", "done", "off", "--password-file", pw)...)
	f.called(t, "MBR_DONE")
	if m := mbr(); !m.Enable || m.Done {
		t.Errorf("after mbr done off --via kernel: %+v", m)
	}
	mustRun(t, via("mbr", "done", "on", "--password-file", pw)...)
	if m := mbr(); !m.Done {
		t.Errorf("after mbr done on --via kernel: %+v", m)
	}
	img := secretFile(t, strings.Repeat("PBA!", 3000))
	mustRun(t, via("mbr", "load", img, "--password-file", pw)...)
	f.called(t, "GENERIC_TABLE_RW", "WRITE_SHADOW_MBR", "GENERIC_TABLE_RW")
	mustRun(t, via("mbr", "disable", "--password-file", pw)...)
	if m := mbr(); m.Enable {
		t.Errorf("after mbr disable --via kernel: %+v", m)
	}

	// DataStore: written through the kernel, read on the normal path,
	// and back.
	ds := secretFile(t, "kernel datastore")
	mustRun(t, via("datastore", "write", "--offset", "100", ds, "--password-file", pw)...)
	got := mustRun(t, "datastore", "read", "--offset", "100", "--length", "17", "--password-file", pw, s.dev).stdout
	if got != "kernel datastore\n" {
		t.Errorf("datastore written --via kernel reads %q on the normal path", got)
	}
	if got := mustRun(t, via("datastore", "read", "--offset", "100", "--length", "17", "--password-file", pw)...).stdout; got != "kernel datastore\n" {
		t.Errorf("datastore read --via kernel = %q", got)
	}
	wantCode(t, sedctl.ExitData, []string{"past"}, via("datastore", "read", "--offset", "65530", "--length", "17", "--password-file", pw)...)

	// Users: enabled, given a password and range 1, then unlocking it.
	upw := secretFile(t, "user1-pw")
	mustRun(t, via("user", "enable", "user1", "--password-file", pw)...)
	f.called(t, "ACTIVATE_USR")
	mustRun(t, via("password", "set", "--authority", "user1", "--password-file", pw, "--new-password-file", upw)...)
	f.called(t, "SET_PW")
	mustRun(t, via("range", "add-user", "1", "user1", "--password-file", pw)...)
	f.called(t, "ADD_USR_TO_LR", "ADD_USR_TO_LR")
	mustRun(t, via("range", "lock", "1", "--password-file", pw)...)
	mustRun(t, via("range", "unlock", "1", "--as", "user1", "--password-file", upw)...)
	if r := rangeOf(t, s.ranges(pw), 1); r.ReadLocked || r.WriteLocked {
		t.Errorf("range 1 after unlock --as user1 --via kernel: %+v", r)
	}
	wantCode(t, sedctl.ExitUsage, []string{"admin1 or user1..user9"}, via("range", "lock", "1", "--as", "admin2", "--password-file", pw)...)

	// Admin1's and SID's passwords changed through the kernel.
	pw2 := secretFile(t, "kernel-pw-2")
	mustRun(t, via("password", "set", "--authority", "admin1", "--password-file", pw, "--new-password-file", pw2)...)
	s.ranges(pw2)
	wantCode(t, 1, nil, "range", "list", "--password-file", pw, s.dev)
	sid2 := secretFile(t, "sid-2")
	mustRun(t, via("password", "set", "--authority", "sid", "--password-file", pw, "--new-password-file", sid2)...)
	f.called(t, "SET_SID_PW")

	// Reverting the Locking SP keeping data, then the TPer.
	mustRun(t, via("revert", "--locking-sp", "--keep-data", "--yes", "--password-file", pw2)...)
	f.called(t, "REVERT_LSP")
	if l0, err := s.client().Discover(t.Context()); err != nil || l0.LockingEnabled() {
		t.Errorf("after revert --locking-sp --via kernel: locking enabled %v (%v)", l0.LockingEnabled(), err)
	}
	wantCode(t, 1, []string{"NOT_AUTHORIZED"}, via("revert", "--tper", "--yes", "--password-file", pw)...)
	mustRun(t, via("revert", "--tper", "--yes", "--password-file", sid2)...)
	f.called(t, "REVERT_TPR")
	// The SID password is the MSID again: the normal path takes ownership.
	mustRun(t, "setup", "--password-file", pw, s.dev)

	// The PSID from the label resets it through the kernel as well.
	psid := secretFile(t, s.psid)
	mustRun(t, via("psid-revert", "--yes", "--password-file", psid)...)
	f.called(t, "PSID_REVERT_TPR")
	mustRun(t, "take-ownership", "--password-file", pw, s.dev)

	mustRun(t, via("reset")...)
	f.called(t, "STACK_RESET")
}

// TestViaKernelRefusals: commands the ioctls do not cover, options the
// kernel cannot honour and a serial that cannot be read fail clearly.
func TestViaKernelRefusals(t *testing.T) {
	s := newSim(t, sim.Config{})
	kernelOn(t, s)
	pw := secretFile(t, "pw")
	for _, c := range []struct {
		code int
		args []string
		msgs []string
	}{
		{sedctl.ExitUnsupported, []string{"msid", kdev}, []string{"'sedctl msid'", "leave out --via kernel", "range lock"}},
		{sedctl.ExitUnsupported, []string{"sum", "activate", "1", "--password-file", pw, kdev}, []string{"'sedctl sum activate'", "leave out --via kernel"}},
		{sedctl.ExitUnsupported, []string{"raw", "get", "admin", "anybody", "C_PIN_MSID", kdev}, []string{"'sedctl raw get'"}},
		{sedctl.ExitUnsupported, []string{"user", "list", "--password-file", pw, kdev}, []string{"'sedctl user list'"}},
		{sedctl.ExitUnsupported, []string{"reset", "--power-cycle", kdev}, []string{"--power-cycle", "leave out --via kernel"}},
		{sedctl.ExitUnsupported, []string{"range", "lock", "9", "--password-file", pw, kdev}, []string{"ranges 0 to 8"}},
		{sedctl.ExitUsage, []string{"hash", "--serial", "X", "--password-file", pw}, []string{"'sedctl hash'", "leave out --via kernel"}},
		{sedctl.ExitUsage, []string{"scan"}, []string{"'sedctl scan'"}},
		{sedctl.ExitUsage, []string{"range", "list", "--password-file", pw, s.dev}, []string{"sedsim socket"}},
		{sedctl.ExitUsage, []string{"range", "list", "--trace", "--password-file", pw, kdev}, []string{"--trace"}},
		{sedctl.ExitUsage, []string{"datastore", "read", "--password-file", pw, kdev}, []string{"--length"}},
		{sedctl.ExitUsage, []string{"revert", "--locking-sp", "--as", "sid", "--yes", "--password-file", pw, kdev}, []string{"Admin1 only"}},
		{sedctl.ExitIO, []string{"query", "/dev/sedctl-nothing"}, []string{"no such file"}},
	} {
		wantCode(t, c.code, c.msgs, append(c.args, "--via", "kernel")...)
	}

	// Without a serial, the default hash cannot be derived: sedctl says
	// which --hash to pass, and one that needs none works.
	sedctl.SetKernelForTest(t, func(path string) (*sedioctl.Kernel, error) {
		f := &fakeSedOpal{t: t, tr: s.d.Transport(), errno: map[uint32]error{}}
		f.c = session.NewClient(f.tr, nil)
		return sedioctl.NewWithIoctl(path, f.ioctl)
	}, func(context.Context, string) (transport.Identity, error) {
		return transport.Identity{}, fmt.Errorf("identify: %w", syscall.EOPNOTSUPP)
	})
	wantCode(t, sedctl.ExitUsage, []string{"serial", "--hash", "none"}, "setup", "--password-file", pw, "--via", "kernel", kdev)
	if l0, err := s.client().Discover(t.Context()); err != nil || l0.LockingEnabled() || (l0.BlockSID != nil && l0.BlockSID.SIDValueState) {
		t.Fatalf("a setup refused for want of a serial changed the drive (%v)", err)
	}
	mustRun(t, "setup", "--hash", "none", "--password-file", pw, "--via", "kernel", kdev)
	s.ranges(pw, "--hash", "none")
}

// TestViaKernelErrnos: the errnos of the sed-opal ioctls, explained and
// mapped to exit codes, at open (the GET_STATUS probe) and later.
func TestViaKernelErrnos(t *testing.T) {
	s := newSim(t, sim.Config{})
	pw := s.setup("pw")
	pwf := pw
	for _, c := range []struct {
		name  string
		req   uint32
		errno syscall.Errno
		code  int
		msgs  []string
	}{
		{"ENOTTY at open", sedioctl.IoctlGetStatus, syscall.ENOTTY, sedctl.ExitUnsupported, []string{"CONFIG_BLK_SED_OPAL", "leave out --via kernel"}},
		{"EOPNOTSUPP at open", sedioctl.IoctlGetStatus, syscall.EOPNOTSUPP, sedctl.ExitUnsupported, []string{"Opal 1 and 2", "leave out --via kernel"}},
		{"EACCES at open", sedioctl.IoctlGetStatus, syscall.EACCES, sedctl.ExitIO, []string{"CAP_SYS_ADMIN", "root"}},
		{"ENOTTY on LOCK_UNLOCK", sedioctl.IoctlLockUnlock, syscall.ENOTTY, sedctl.ExitUnsupported, []string{"IOC_OPAL_LOCK_UNLOCK", "leave out --via kernel"}},
		{"EACCES on LOCK_UNLOCK", sedioctl.IoctlLockUnlock, syscall.EACCES, sedctl.ExitIO, []string{"IOC_OPAL_LOCK_UNLOCK", "CAP_SYS_ADMIN"}},
		{"EOPNOTSUPP on LOCK_UNLOCK", sedioctl.IoctlLockUnlock, syscall.EOPNOTSUPP, sedctl.ExitUnsupported, []string{"Opal"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := kernelOn(t, s)
			f.errno[c.req] = c.errno
			je := failJSON(t, c.code, "range", "lock", "0", "--password-file", pwf, "--via", "kernel", kdev)
			if len(je.Error.Hints) == 0 {
				t.Errorf("no hints: %+v", je.Error)
			}
			wantCode(t, c.code, c.msgs, "range", "lock", "0", "--password-file", pwf, "--via", "kernel", kdev)
		})
	}
	// A kernel before 6.6 (no IOC_OPAL_DISCOVERY) and 6.4 (no geometry):
	// query shows what it has and says what it lacks.
	f := kernelOn(t, s)
	f.errno[sedioctl.IoctlDiscovery] = syscall.ENOTTY
	f.errno[sedioctl.IoctlGetGeometry] = syscall.ENOTTY
	out := mustRun(t, "query", "--via", "kernel", kdev).stdout
	for _, want := range []string{"locking enabled true", "IOC_OPAL_DISCOVERY", "IOC_OPAL_GET_GEOMETRY"} {
		if !strings.Contains(out, want) {
			t.Errorf("query on an old kernel lacks %q:\n%s", want, out)
		}
	}
	// Before the 2026 ENABLE_DISABLE_LR, range enable reads the range and
	// sets it up with its own start and length.
	mustRun(t, "range", "setup", "1", "4096", "8192", "--password-file", pwf, s.dev)
	f.errno[sedioctl.IoctlEnableDisableLR] = syscall.ENOTTY
	mustRun(t, "range", "enable", "1", "--password-file", pwf, "--via", "kernel", kdev)
	f.called(t, "ENABLE_DISABLE_LR", "GET_LR_STATUS", "LR_SETUP")
	if r := rangeOf(t, s.ranges(pwf), 1); r.Start != 4096 || r.Length != 8192 || !r.ReadLockEnabled || !r.WriteLockEnabled {
		t.Errorf("range 1 after enable on an old kernel: %+v", r)
	}
	if !slices.Contains(sedctl.KernelCommands(), "range lock") {
		t.Errorf("KernelCommands() = %v", sedctl.KernelCommands())
	}
}
