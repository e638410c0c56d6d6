package idmapfs

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Low-level helpers for acting on the backing tree through O_PATH file
// descriptors. Every helper here works on a descriptor that the daemon opened
// itself with O_NOFOLLOW, so no path string from the container is ever
// resolved from the root of the backing tree.

// retryEINTR runs fn until it stops failing with EINTR.
func retryEINTR(fn func() error) error {
	for {
		err := fn()
		if err != syscall.EINTR { //nolint:errorlint // raw errno from a syscall
			return err
		}
	}
}

// procFd is the magic link that reopens fd: "/proc/self/fd/N". Reopening a
// descriptor through it resolves to exactly the inode the descriptor holds.
func procFd(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// openBeneath opens name, a single path component, relative to dirfd without
// following a symlink in its place.
func openBeneath(dirfd int, name string, flags int, mode uint32) (int, error) {
	var fd int
	err := retryEINTR(func() error {
		var err error
		fd, err = unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		return err
	})
	return fd, err
}

// reopen opens the inode behind an O_PATH descriptor with new flags.
func reopen(fd int, flags int) (int, error) {
	var nfd int
	err := retryEINTR(func() error {
		var err error
		nfd, err = unix.Open(procFd(fd), flags|unix.O_CLOEXEC, 0)
		return err
	})
	return nfd, err
}

func fstatPath(fd int, st *unix.Stat_t) error {
	return unix.Fstatat(fd, "", st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

// statAt is fstatat(dirfd, name, flags) that also returns the inode's birth
// time in nanoseconds (0 where the filesystem does not keep one). The birth
// time tells an inode from a later one that reuses its number.
func statAt(dirfd int, name string, flags int, st *unix.Stat_t) (int64, error) {
	var sx unix.Statx_t
	if err := unix.Statx(dirfd, name, flags|unix.AT_STATX_SYNC_AS_STAT, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &sx); err != nil {
		return 0, err
	}
	*st = unix.Stat_t{
		Dev:     unix.Mkdev(sx.Dev_major, sx.Dev_minor),
		Ino:     sx.Ino,
		Nlink:   uint64(sx.Nlink),
		Mode:    uint32(sx.Mode),
		Uid:     sx.Uid,
		Gid:     sx.Gid,
		Rdev:    unix.Mkdev(sx.Rdev_major, sx.Rdev_minor),
		Size:    int64(sx.Size),
		Blksize: int64(sx.Blksize),
		Blocks:  int64(sx.Blocks),
		Atim:    unix.Timespec{Sec: sx.Atime.Sec, Nsec: int64(sx.Atime.Nsec)},
		Mtim:    unix.Timespec{Sec: sx.Mtime.Sec, Nsec: int64(sx.Mtime.Nsec)},
		Ctim:    unix.Timespec{Sec: sx.Ctime.Sec, Nsec: int64(sx.Ctime.Nsec)},
	}
	if sx.Mask&unix.STATX_BTIME == 0 {
		return 0, nil
	}
	return sx.Btime.Sec*1e9 + int64(sx.Btime.Nsec), nil
}

// xattrArgs mirrors struct xattr_args in include/uapi/linux/xattr.h.
type xattrArgs struct {
	Value uint64
	Size  uint32
	Flags uint32
}

var emptyPath = []byte{0}

// xattrTarget names an inode for the *xattrat(2) calls (Linux 6.13+):
// O_PATH descriptors are refused there, so a non-symlink is reached through
// its /proc/self/fd magic link, a symlink by its name in its parent.
type xattrTarget struct {
	dirfd int
	path  string
	flags int
}

func cstr(s string) (*byte, error) { return unix.BytePtrFromString(s) }

// getxattrAt reads an xattr of the inode behind fd (which may be an O_PATH
// descriptor of a symlink) with getxattrat(2), Linux 6.13+.
func getxattrAt(t xattrTarget, name string, dest []byte) (int, error) {
	p, err := cstr(name)
	if err != nil {
		return 0, err
	}
	path, err := cstr(t.path)
	if err != nil {
		return 0, err
	}
	args := xattrArgs{Size: uint32(len(dest))}
	if len(dest) > 0 {
		args.Value = uint64(uintptr(unsafe.Pointer(&dest[0])))
	}
	n, _, e := unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(t.dirfd), uintptr(unsafe.Pointer(path)),
		uintptr(t.flags), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(dest)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func setxattrAt(t xattrTarget, name string, data []byte, flags int) error {
	p, err := cstr(name)
	if err != nil {
		return err
	}
	path, err := cstr(t.path)
	if err != nil {
		return err
	}
	args := xattrArgs{Size: uint32(len(data)), Flags: uint32(flags)}
	if len(data) > 0 {
		args.Value = uint64(uintptr(unsafe.Pointer(&data[0])))
	}
	_, _, e := unix.Syscall6(unix.SYS_SETXATTRAT, uintptr(t.dirfd), uintptr(unsafe.Pointer(path)),
		uintptr(t.flags), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(data)
	if e != 0 {
		return e
	}
	return nil
}

func listxattrAt(t xattrTarget, dest []byte) (int, error) {
	path, err := cstr(t.path)
	if err != nil {
		return 0, err
	}
	var ptr uintptr
	if len(dest) > 0 {
		ptr = uintptr(unsafe.Pointer(&dest[0]))
	}
	n, _, e := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(t.dirfd), uintptr(unsafe.Pointer(path)),
		uintptr(t.flags), ptr, uintptr(len(dest)), 0)
	runtime.KeepAlive(dest)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func removexattrAt(t xattrTarget, name string) error {
	p, err := cstr(name)
	if err != nil {
		return err
	}
	path, err := cstr(t.path)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_REMOVEXATTRAT, uintptr(t.dirfd), uintptr(unsafe.Pointer(path)),
		uintptr(t.flags), uintptr(unsafe.Pointer(p)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// creds switches the calling OS thread's filesystem ids, so that a new
// inode is created with the right owner from the start.
//
// Changing fsuid away from 0 drops the filesystem capabilities
// (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID...) from the thread's effective
// set. The daemon needs them kept: the kernel already judged access on the
// FUSE side (default_permissions) with the caller's real groups and ACLs,
// and the backing filesystem must only store the new owner. With
// SECBIT_NO_SETUID_FIXUP set on every thread (possible in a cgo-free build)
// the kernel keeps them; otherwise capset puts them back per call.
type creds struct {
	noFixup bool
	caps    [2]unix.CapUserData
}

func newCreds() (*creds, error) {
	c := &creds{}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&hdr, &c.caps[0]); err != nil {
		return nil, fmt.Errorf("capget: %w", err)
	}
	const need = 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_CHOWN | 1<<unix.CAP_FOWNER
	if c.caps[0].Effective&need != need {
		return nil, errors.New("idmapfs needs CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_DAC_OVERRIDE and CAP_FOWNER: run it as root")
	}
	bits, _, e := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_GET_SECUREBITS, 0, 0)
	if e == 0 {
		_, _, e = syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_SECUREBITS, bits|secbitNoSetuidFixup, 0)
		c.noFixup = e == 0
	}
	return c, nil
}

// secbitNoSetuidFixup is SECBIT_NO_SETUID_FIXUP (include/uapi/linux/securebits.h).
const secbitNoSetuidFixup = 1 << 2

func rawSetfsuid(id uint32) uint32 {
	r, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, uintptr(id), 0, 0)
	return uint32(r)
}

func rawSetfsgid(id uint32) uint32 {
	r, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, uintptr(id), 0, 0)
	return uint32(r)
}

// as runs fn on a locked OS thread whose fsuid/fsgid are uid/gid (disk ids).
// setfsuid cannot fail for a holder of CAP_SETUID, which newCreds checked.
func (c *creds) as(uid, gid uint32, fn func() error) error {
	if uid == 0 && gid == 0 {
		return fn()
	}
	runtime.LockOSThread()
	rawSetfsgid(gid)
	rawSetfsuid(uid)
	if !c.noFixup {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		if err := unix.Capset(&hdr, &c.caps[0]); err != nil {
			c.restore(uid, gid)
			return fmt.Errorf("capset: %w", err)
		}
	}
	err := fn()
	c.restore(uid, gid)
	return err
}

// restore puts the thread back to fsuid/fsgid 0. setfsuid returns the
// previous value, which confirms the switch had taken.
func (c *creds) restore(uid, gid uint32) {
	prevU := rawSetfsuid(0)
	prevG := rawSetfsgid(0)
	if prevU != uid || prevG != gid {
		panic(fmt.Sprintf("idmapfs: thread fsuid/fsgid were %d/%d, want %d/%d", prevU, prevG, uid, gid))
	}
	if rawSetfsuid(^uint32(0)) == 0 && rawSetfsgid(^uint32(0)) == 0 {
		runtime.UnlockOSThread()
	}
	// Otherwise the thread stays locked to this goroutine and dies with it
	// rather than serve another request with foreign ids.
}
