package overlay

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// CopyUp makes every entry of path present in the upper layer, copying up
// the missing ones top-down: path[0] is the root, each next entry a child of
// the one before, so ancestors come first. A directory is copied without its
// contents (they stay merged from below). Each copied entry is updated in
// place: Layer becomes 0, Fd and Stat describe the upper object, and a
// directory gains the upper directory as Dirs[0].
//
// A copy is built under a temporary name in the work directory (data with
// holes preserved, then owner, xattrs, mode, atime and mtime), fsynced and
// renamed into the upper parent with RENAME_NOREPLACE, so a crash never
// leaves a partial object visible. The upper parent's timestamps are put
// back afterwards, as overlayfs does. If the name appeared in the upper
// meanwhile, the error matches unix.EEXIST: look the name up again.
func (s *Stack) CopyUp(path []*Entry) error {
	if s.workFd < 0 {
		return fmt.Errorf("overlay: copy up: %w", unix.EROFS)
	}
	if len(path) == 0 || path[0].Name != "" || !path[0].IsDir() {
		return fmt.Errorf("overlay: copy up: path must start at the root: %w", unix.EINVAL)
	}
	for i := 1; i < len(path); i++ {
		e := path[i]
		if s.IsUpper(e.Layer) {
			continue
		}
		p := path[i-1]
		if !p.IsDir() || !s.IsUpper(p.Dirs[0].Layer) {
			return fmt.Errorf("overlay: copy up %q: parent %q is not in the upper", e.Name, p.Name)
		}
		if err := s.copyUpOne(p.Dirs[0].Fd, e); err != nil {
			return fmt.Errorf("overlay: copy up %q: %w", e.Name, err)
		}
	}
	return nil
}

// copyUpOne copies e into the upper directory upperDir under e.Name.
func (s *Stack) copyUpOne(upperDir int, e *Entry) error {
	if err := checkName(e.Name); err != nil {
		return err
	}
	var pst unix.Stat_t
	if err := fstat(upperDir, &pst); err != nil {
		return err
	}
	st := e.Stat
	typ := st.Mode & unix.S_IFMT
	if e.Indexed {
		// Another name of the lower file was copied up: link its copy.
		if err := unix.Linkat(s.indexFd, e.index, upperDir, e.Name, 0); err != nil {
			return &os.PathError{Op: "linkat", Path: e.Name, Err: err}
		}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, procFd(upperDir), []unix.Timespec{pst.Atim, pst.Mtim}, 0)
		return s.adopt(upperDir, e, typ)
	}
	tmp := tempName()
	syncFd := -1
	var err error
	switch typ {
	case unix.S_IFREG:
		syncFd, err = s.copyFileData(e, tmp)
	case unix.S_IFDIR:
		err = unix.Mkdirat(s.workFd, tmp, 0o700)
		if err == nil {
			syncFd, err = openat(s.workFd, tmp, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		}
	case unix.S_IFLNK:
		var target string
		target, err = readlink(e.Fd)
		if err == nil {
			err = unix.Symlinkat(target, s.workFd, tmp)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		err = unix.Mknodat(s.workFd, tmp, typ|0o600, int(st.Rdev))
	default:
		err = fmt.Errorf("unknown file type %#o", typ)
	}
	if syncFd >= 0 {
		defer unix.Close(syncFd)
	}
	if err == nil {
		err = s.copyMeta(e, tmp, syncFd)
	}
	indexed := ""
	if err == nil && s.hardLinked(e) {
		// The complete copy gets its index name first: the lower file's
		// other names find it from now on, even after a crash.
		indexed = s.indexName(e)
		if lerr := unix.Linkat(s.workFd, tmp, s.indexFd, indexed, 0); lerr != nil {
			indexed = "" // the other names copy on their own
		}
	}
	if err == nil {
		err = renameat2(s.workFd, tmp, upperDir, e.Name, unix.RENAME_NOREPLACE)
	}
	if err != nil {
		if indexed != "" {
			unix.Unlinkat(s.indexFd, indexed, 0)
		}
		s.removeTemp(tmp, typ == unix.S_IFDIR)
		return err
	}
	// The new name changed the parent's times; put them back.
	_ = unix.UtimesNanoAt(unix.AT_FDCWD, procFd(upperDir), []unix.Timespec{pst.Atim, pst.Mtim}, 0)
	return s.adopt(upperDir, e, typ)
}

// adopt points e at its new upper object, name e.Name in upperDir.
func (s *Stack) adopt(upperDir int, e *Entry, typ uint32) error {
	fd, err := openat(upperDir, e.Name, unix.O_PATH, 0)
	if err != nil {
		return err
	}
	var nst unix.Stat_t
	if err := fstat(fd, &nst); err != nil {
		unix.Close(fd)
		return err
	}
	if nst.Mode&unix.S_IFMT != typ {
		unix.Close(fd)
		return fmt.Errorf("copied-up object was replaced: %w", unix.ESTALE)
	}
	if typ == unix.S_IFDIR {
		e.Dirs = append([]LayerDir{{Layer: 0, Fd: fd}}, e.Dirs...)
	} else {
		unix.Close(e.Fd)
	}
	e.Fd = fd
	e.Layer = 0
	e.Stat = nst
	e.Opaque = false
	e.Indexed, e.index = false, ""
	return nil
}

// copyMeta gives the temporary tmp the owner, xattrs, mode and times of e,
// then makes it durable. Order matters: chown clears security.capability
// and the set-id bits, so xattrs and mode come after it; setting an ACL
// rewrites the mode, so the mode comes after the xattrs; times come last.
func (s *Stack) copyMeta(e *Entry, tmp string, syncFd int) error {
	st := &e.Stat
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if err := unix.Fchownat(s.workFd, tmp, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fchownat", Path: tmp, Err: err}
	}
	tfd, err := openat(s.workFd, tmp, unix.O_PATH, 0)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	if err := s.copyXattrs(e.Fd, tfd); err != nil {
		return err
	}
	if !isLink {
		if err := unix.Fchmodat(s.workFd, tmp, st.Mode&0o7777, 0); err != nil {
			return &os.PathError{Op: "fchmodat", Path: tmp, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(s.workFd, tmp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: tmp, Err: err}
	}
	if syncFd < 0 {
		// Symlinks and special files cannot be opened to fsync; syncing
		// the work directory commits them on journalling filesystems.
		syncFd, err = openat(s.workFd, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		defer unix.Close(syncFd)
	}
	if err := unix.Fsync(syncFd); err != nil {
		return os.NewSyscallError("fsync", err)
	}
	return nil
}

// isPrivateXattr reports overlayfs-private xattrs, which describe the
// source layer and are never copied.
func isPrivateXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// copyXattrs copies every xattr but the overlay-private ones, raw (ACLs and
// capabilities keep their on-disk ids).
func (s *Stack) copyXattrs(src, dst int) error {
	names, err := listxattr(src)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return nil
		}
		return err
	}
	for _, name := range names {
		if isPrivateXattr(name) {
			continue
		}
		v, err := getxattr(src, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return err
		}
		if err := setxattr(dst, name, v, 0); err != nil {
			return err
		}
	}
	return nil
}

func readlink(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", &os.PathError{Op: "readlinkat", Path: procFd(fd), Err: err}
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= unix.PathMax {
			return "", &os.PathError{Op: "readlinkat", Path: procFd(fd), Err: unix.ENAMETOOLONG}
		}
	}
}

// copyFileData creates tmp in the work directory with e's data and returns
// its open descriptor.
func (s *Stack) copyFileData(e *Entry, tmp string) (int, error) {
	flags := unix.O_RDONLY
	if !s.IsUpper(e.Layer) {
		flags |= unix.O_NOATIME
	}
	in, err := reopen(e.Fd, flags)
	if err != nil {
		return -1, err
	}
	defer unix.Close(in)
	out, err := openat(s.workFd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return -1, err
	}
	if err := copySparse(out, in, e.Stat.Size); err != nil {
		unix.Close(out)
		return -1, err
	}
	return out, nil
}

// copySparse copies size bytes from in to out, data extents only
// (SEEK_DATA/SEEK_HOLE), so holes stay holes.
func copySparse(out, in int, size int64) error {
	for off := int64(0); off < size; {
		data, err := unix.Seek(in, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		end := size
		if err != nil {
			data = off // no SEEK_DATA here: copy everything
		} else if hole, err := unix.Seek(in, data, unix.SEEK_HOLE); err == nil {
			end = min(hole, size)
		}
		if end <= data {
			break
		}
		if err := copyRange(out, in, data, end-data); err != nil {
			return err
		}
		off = end
	}
	if err := unix.Ftruncate(out, size); err != nil {
		return os.NewSyscallError("ftruncate", err)
	}
	return nil
}

// copyRange copies n bytes at off with copy_file_range, falling back to
// pread/pwrite where the kernel cannot.
func copyRange(out, in int, off, n int64) error {
	roff, woff := off, off
	for n > 0 {
		c, err := unix.CopyFileRange(in, &roff, out, &woff, int(min(n, 1<<30)), 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
				return copyRangeRW(out, in, roff, n)
			}
			return os.NewSyscallError("copy_file_range", err)
		}
		if c == 0 {
			return fmt.Errorf("copy_file_range: source ended early: %w", unix.EIO)
		}
		n -= int64(c)
	}
	return nil
}

func copyRangeRW(out, in int, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		r, err := unix.Pread(in, buf[:min(n, int64(len(buf)))], off)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return os.NewSyscallError("pread", err)
		}
		if r == 0 {
			return fmt.Errorf("read: source ended early: %w", unix.EIO)
		}
		for w := 0; w < r; {
			k, err := unix.Pwrite(out, buf[w:r], off+int64(w))
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return os.NewSyscallError("pwrite", err)
			}
			w += k
		}
		off += int64(r)
		n -= int64(r)
	}
	return nil
}

// removeTemp removes a failed copy-up's temporary.
func (s *Stack) removeTemp(tmp string, dir bool) {
	flags := 0
	if dir {
		flags = unix.AT_REMOVEDIR
	}
	_ = unix.Unlinkat(s.workFd, tmp, flags)
}

// Whiteout records in the upper directory upperDir that name is deleted:
// it creates a whiteout (character device 0/0, mode 0) under a temporary
// name in the work directory and renames it into place, as overlayfs does.
// An existing upper object of that name is replaced atomically
// (RENAME_EXCHANGE, then the old object is removed from the work
// directory); an upper directory must be empty but for whiteouts
// (ENOTEMPTY otherwise). The caller checks that the merged name may go.
func (s *Stack) Whiteout(upperDir int, name string) error {
	if s.workFd < 0 {
		return fmt.Errorf("overlay: whiteout: %w", unix.EROFS)
	}
	if err := checkName(name); err != nil {
		return &os.PathError{Op: "whiteout", Path: name, Err: err}
	}
	wrap := func(err error) error { return fmt.Errorf("overlay: whiteout %q: %w", name, err) }
	var old unix.Stat_t
	exists := true
	if err := lstatat(upperDir, name, &old); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return wrap(err)
		}
		exists = false
	}
	if exists && isWhiteout(&old) {
		return nil
	}
	oldIsDir := exists && old.Mode&unix.S_IFMT == unix.S_IFDIR
	if oldIsDir {
		if err := onlyWhiteouts(upperDir, name); err != nil {
			return wrap(err)
		}
	}
	tmp := tempName()
	if err := unix.Mknodat(s.workFd, tmp, unix.S_IFCHR, 0); err != nil {
		return wrap(&os.PathError{Op: "mknodat", Path: tmp, Err: err})
	}
	flags := uint(unix.RENAME_NOREPLACE)
	if exists {
		flags = unix.RENAME_EXCHANGE
	}
	if err := renameat2(s.workFd, tmp, upperDir, name, flags); err != nil {
		s.removeTemp(tmp, false)
		return wrap(err)
	}
	if exists {
		// tmp now holds the old upper object.
		if oldIsDir {
			if fd, err := openat(s.workFd, tmp, unix.O_PATH|unix.O_DIRECTORY, 0); err == nil {
				clearDir(fd)
				unix.Close(fd)
			}
		}
		s.removeTemp(tmp, oldIsDir)
	}
	return nil
}

// onlyWhiteouts checks that the directory name in dirfd holds nothing but
// whiteouts.
func onlyWhiteouts(dirfd int, name string) error {
	fd, err := openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	names, err := readDirNames(fd, false)
	if err != nil {
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := lstatat(fd, n.name, &st); err != nil {
			return err
		}
		if !isWhiteout(&st) {
			return &os.PathError{Op: "whiteout", Path: name, Err: unix.ENOTEMPTY}
		}
	}
	return nil
}

// MakeOpaque marks the upper directory behind upperDirFd opaque
// (overlay.opaque = "y"): the layers below stop contributing to it.
func (s *Stack) MakeOpaque(upperDirFd int) error {
	if err := setxattr(upperDirFd, s.xattr("opaque"), []byte("y"), 0); err != nil {
		return fmt.Errorf("overlay: make opaque: %w", err)
	}
	return nil
}
