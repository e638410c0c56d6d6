package overlay

import (
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Small fd-relative syscall helpers. Every helper retries EINTR and returns
// an *os.PathError or *os.SyscallError naming the operation.

func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// procFd is the magic link that reaches exactly the inode behind fd, even
// an O_PATH descriptor of a symlink (the link lands on the symlink itself).
func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// openat opens name, a single component, relative to dirfd without following
// a symlink in its place.
func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	var fd int
	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		return err
	})
	if err != nil {
		return -1, &os.PathError{Op: "openat", Path: name, Err: err}
	}
	return fd, nil
}

// reopen opens the inode behind fd (often an O_PATH descriptor) again with
// new flags. The inode must not be a symlink.
func reopen(fd int, flags int) (int, error) {
	var nfd int
	err := ignoringEINTR(func() error {
		var err error
		nfd, err = unix.Open(procFd(fd), flags|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, &os.PathError{Op: "reopen", Path: procFd(fd), Err: err}
	}
	return nfd, nil
}

func fstat(fd int, st *unix.Stat_t) error {
	err := ignoringEINTR(func() error {
		return unix.Fstatat(fd, "", st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return &os.PathError{Op: "fstat", Path: procFd(fd), Err: err}
	}
	return nil
}

func lstatat(dirfd int, name string, st *unix.Stat_t) error {
	err := ignoringEINTR(func() error {
		return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return &os.PathError{Op: "fstatat", Path: name, Err: err}
	}
	return nil
}

// isWhiteout reports whether st is a kernel overlayfs whiteout: a character
// device with device number 0/0.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

const maxXattrSize = 64 << 10 // XATTR_SIZE_MAX, include/uapi/linux/limits.h

// getxattr reads a whole xattr value of the inode behind fd (any type,
// O_PATH allowed). A missing xattr is ENODATA.
func getxattr(fd int, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		var n int
		err := ignoringEINTR(func() error {
			var err error
			n, err = unix.Getxattr(procFd(fd), name, buf)
			return err
		})
		if err == nil {
			return buf[:n], nil
		}
		if !errors.Is(err, syscall.ERANGE) || len(buf) >= maxXattrSize {
			return nil, &os.PathError{Op: "getxattr " + name, Path: procFd(fd), Err: err}
		}
		buf = make([]byte, maxXattrSize)
	}
}

func setxattr(fd int, name string, value []byte, flags int) error {
	err := ignoringEINTR(func() error { return unix.Setxattr(procFd(fd), name, value, flags) })
	if err != nil {
		return &os.PathError{Op: "setxattr " + name, Path: procFd(fd), Err: err}
	}
	return nil
}

// listxattr lists the xattr names of the inode behind fd.
func listxattr(fd int) ([]string, error) {
	var buf []byte
	for {
		var n int
		err := ignoringEINTR(func() error {
			var err error
			n, err = unix.Listxattr(procFd(fd), buf)
			return err
		})
		if err != nil {
			if errors.Is(err, syscall.ERANGE) {
				buf = nil
				continue
			}
			return nil, &os.PathError{Op: "listxattr", Path: procFd(fd), Err: err}
		}
		if buf == nil {
			if n == 0 {
				return nil, nil
			}
			buf = make([]byte, n)
			continue
		}
		var names []string
		for _, b := range splitNul(buf[:n]) {
			names = append(names, string(b))
		}
		return names, nil
	}
}

func splitNul(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}

func renameat2(olddir int, oldname string, newdir int, newname string, flags uint) error {
	err := ignoringEINTR(func() error { return unix.Renameat2(olddir, oldname, newdir, newname, flags) })
	if err != nil {
		return &os.LinkError{Op: "renameat2", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// direntType is the S_IFMT value of a linux_dirent64 d_type (DT_* << 12).
func direntType(dt uint8) uint32 { return uint32(dt) << 12 }

// rawDirent is one parsed linux_dirent64 (include/linux/dirent.h).
type rawDirent struct {
	ino  uint64
	typ  uint8
	name string
}

// parseDirents decodes a getdents64 buffer, checking every length.
func parseDirents(buf []byte, out []rawDirent) ([]rawDirent, error) {
	const hdr = 19 // d_ino u64, d_off s64, d_reclen u16, d_type u8
	for len(buf) > 0 {
		if len(buf) < hdr {
			return out, errors.New("getdents64: truncated record")
		}
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen < hdr || reclen > len(buf) {
			return out, errors.New("getdents64: bad record length")
		}
		name := buf[hdr:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		out = append(out, rawDirent{
			ino:  binary.NativeEndian.Uint64(buf[0:8]),
			typ:  buf[18],
			name: string(name),
		})
		buf = buf[reclen:]
	}
	return out, nil
}

// readDirNames lists the entries of the directory behind the O_PATH dirfd,
// without "." and "..", in getdents order.
func readDirNames(dirfd int, noatime bool) ([]rawDirent, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY
	if noatime {
		flags |= unix.O_NOATIME
	}
	fd, err := openat(dirfd, ".", flags, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 32<<10)
	var out []rawDirent
	for {
		var n int
		err := ignoringEINTR(func() error {
			var err error
			n, err = unix.Getdents(fd, buf)
			return err
		})
		if err != nil {
			return nil, os.NewSyscallError("getdents64", err)
		}
		if n <= 0 {
			break
		}
		if out, err = parseDirents(buf[:n], out); err != nil {
			return nil, err
		}
	}
	filtered := out[:0]
	for _, d := range out {
		if d.name != "." && d.name != ".." {
			filtered = append(filtered, d)
		}
	}
	return filtered, nil
}
