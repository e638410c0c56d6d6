package idmapfs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/overlay"
)

// The writable upper of overlay mode (Options.Upper). Changes follow the
// kernel's overlayfs and land in the upper in its on-disk format, with disk
// ids, so the same layers mount under either:
//   - a change to a lower object (open for writing, truncate, chmod, chown,
//     utimes, xattr change, link, rename) copies it up first, ancestors
//     first (package overlay: temporary in the work directory, fsync,
//     rename into place);
//   - a new name over a whiteout replaces it; a new directory there is
//     opaque;
//   - removing a name that a lower also has leaves a whiteout; rmdir needs
//     the merged directory empty;
//   - renaming a directory that is (partly) in a lower gives EXDEV (no
//     redirects, like redirect_dir=off); RENAME_EXCHANGE gives EXDEV unless
//     both objects are upper-only; RENAME_WHITEOUT gives EINVAL.
//
// Every change runs under ov.wmu, on entries resolved afresh from the
// root (wpath), so a copy-up never touches an entry another request holds.
// A node keeps the inode number it showed before its copy-up for the life
// of the mount (ov.copied).

// DefaultWork is the work directory used for upper when none is given: a
// hidden sibling of upper, ".NAME.idmapfs-work", on the same filesystem.
func DefaultWork(upper string) string {
	clean := filepath.Clean(upper)
	return filepath.Join(filepath.Dir(clean), "."+filepath.Base(clean)+".idmapfs-work")
}

// openUpper checks and opens opts.Upper and its work directory (creating a
// default work directory). Nothing is created until every check that can
// be made without it has passed, and a default work directory it made is
// removed again if a later check fails.
func (ov *overlayState) openUpper(opts *Options) (err error) {
	upper, err := realDir("upper", opts.Upper)
	if err != nil {
		return err
	}
	// The default work directory may not exist yet: check where it would be.
	var work string
	makeWork := false
	if opts.Work == "" {
		opts.Work = DefaultWork(opts.Upper)
		var st unix.Stat_t
		switch err := unix.Lstat(opts.Work, &st); {
		case errors.Is(err, unix.ENOENT):
			parent, err := realDir("parent of the work directory", filepath.Dir(opts.Work))
			if err != nil {
				return err
			}
			work, makeWork = filepath.Join(parent, filepath.Base(opts.Work)), true
		case err != nil:
			return fmt.Errorf("work directory %s: %w", opts.Work, err)
		}
	}
	if !makeWork {
		if work, err = realDir("work directory", opts.Work); err != nil {
			return err
		}
	}
	if within(upper, work) || within(work, upper) {
		return fmt.Errorf("upper %s and work %s must not contain each other: give a --work outside the upper, on its filesystem", opts.Upper, opts.Work)
	}
	for _, l := range opts.Lowers {
		fi, err := os.Stat(l)
		if err != nil || !fi.IsDir() {
			continue // image files are checked when attached
		}
		lower, err := realDir("lower", l)
		if err != nil {
			return err
		}
		if within(upper, lower) || within(lower, upper) {
			return fmt.Errorf("upper %s and lower %s must not contain each other: a lower must never change, so keep the upper outside every lower and the lowers outside the upper", opts.Upper, l)
		}
		if within(work, lower) || within(lower, work) {
			return fmt.Errorf("work directory %s and lower %s must not contain each other: give a --work outside every lower", opts.Work, l)
		}
	}
	// Copy-ups are renamed from the work directory into the upper, which
	// needs one mount (a bind mount of the same filesystem will not do).
	var ust, wst unix.Statx_t
	wdir := work
	if makeWork {
		wdir = filepath.Dir(work)
	}
	if err := unix.Statx(unix.AT_FDCWD, upper, 0, unix.STATX_MNT_ID, &ust); err != nil {
		return fmt.Errorf("upper %s: %w", opts.Upper, &os.PathError{Op: "statx", Path: upper, Err: err})
	}
	if err := unix.Statx(unix.AT_FDCWD, wdir, 0, unix.STATX_MNT_ID, &wst); err != nil {
		return fmt.Errorf("work directory %s: %w", opts.Work, &os.PathError{Op: "statx", Path: wdir, Err: err})
	}
	if ust.Mask&wst.Mask&unix.STATX_MNT_ID != 0 && ust.Mnt_id != wst.Mnt_id || ust.Dev_major != wst.Dev_major || ust.Dev_minor != wst.Dev_minor {
		if makeWork && ust.Attributes_mask&ust.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 {
			return fmt.Errorf("upper %s is the root of a mounted filesystem, so its default work directory %s would be on another one: make the upper a subdirectory of that filesystem and give --work another subdirectory of it", opts.Upper, opts.Work)
		}
		return fmt.Errorf("work directory %s is not on the mount of upper %s: copy-ups are renamed from one into the other, so give a --work on the same filesystem and mount as the upper, outside it", opts.Work, opts.Upper)
	}
	if makeWork {
		if err := os.Mkdir(work, 0o700); err != nil {
			if errors.Is(err, unix.EROFS) {
				return fmt.Errorf("upper %s is on a read-only filesystem: remount it read-write, choose an upper on a writable filesystem, or leave out --upper for a read-only overlay", opts.Upper)
			}
			return fmt.Errorf("work directory for upper %s: %w", opts.Upper, err)
		}
		defer func() {
			if err != nil {
				os.Remove(work)
			}
		}()
	}
	if err := checkUpperFS(work); err != nil {
		return fmt.Errorf("upper %s: %w", opts.Upper, err)
	}
	if ov.upper, err = overlay.OpenLayer(upper); err != nil {
		return err
	}
	if ov.work, err = overlay.OpenLayer(work); err != nil {
		return err
	}
	return nil
}

// realDir resolves path (what names it in messages) to an absolute path
// without symlinks and checks that it is a directory.
func realDir(what, path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s %s does not exist: create it first (mkdir -p %s)", what, path, path)
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s %s is not a directory", what, path)
	}
	return abs, nil
}

// within reports whether path is dir or inside it (both absolute and
// clean).
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// checkUpperFS makes sure the filesystem of the work directory (the
// upper's) can hold the overlay's metadata: trusted xattrs and whiteouts.
func checkUpperFS(work string) error {
	const fix = "put the upper and its work directory on tmpfs, ext4, xfs or btrfs"
	tmp := filepath.Join(work, "#check-"+rand.Text()[:12])
	if err := os.Mkdir(tmp, 0o700); err != nil {
		if errors.Is(err, unix.EROFS) {
			return fmt.Errorf("its filesystem is read-only: remount it read-write, choose an upper on a writable filesystem, or leave out --upper for a read-only overlay")
		}
		return fmt.Errorf("work directory %s is not writable: %w", work, err)
	}
	defer os.RemoveAll(tmp)
	if err := unix.Setxattr(tmp, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("its filesystem cannot store trusted.* xattrs (%w), which opaque directories need: %s", err, fix)
	}
	if err := unix.Mknod(filepath.Join(tmp, "wh"), unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("its filesystem cannot hold whiteouts, character devices 0/0 (%w), which deleting a lower file needs: %s", err, fix)
	}
	return nil
}

// showIno is the inode number shown for an object: the one shown before
// its copy-up for an upper copy this mount made.
func (ov *overlayState) showIno(f *FS, st *unix.Stat_t) uint64 {
	ov.cmu.Lock()
	v, ok := ov.copied[devIno{st.Dev, st.Ino}]
	ov.cmu.Unlock()
	if ok {
		return v
	}
	return f.ino(st)
}

// dropCopied forgets the shown inode number of an upper object that is
// gone, before its inode number is reused.
func (ov *overlayState) dropCopied(st *unix.Stat_t) {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
		return
	}
	ov.cmu.Lock()
	delete(ov.copied, devIno{st.Dev, st.Ino})
	ov.cmu.Unlock()
}

// refresh updates the attributes of a node in the upper, which change
// behind its back (writes, timestamps, link counts).
func (n *overlayNode) refresh() syscall.Errno {
	ov := n.fsys.ov
	if ov.upper == nil || n.getKey().dev != ov.upperDev {
		return 0
	}
	e, _, release, errno := n.pin()
	if errno != 0 {
		return errno
	}
	defer release()
	var st unix.Stat_t
	if err := fstatPath(e.Fd, &st); err != nil {
		return toErrno(n.fsys.log, "stat", err)
	}
	n.stMu.Lock()
	n.st = st
	n.stMu.Unlock()
	return 0
}

func closeAll(path []*overlay.Entry) {
	for _, e := range path {
		if e != nil {
			e.Close()
		}
	}
}

// wpath resolves n afresh for a change: the entries of the root, of each
// ancestor and of n, and the nodes they stand for. The caller holds ov.wmu
// and closes the entries.
func (n *overlayNode) wpath() ([]*overlay.Entry, []*overlayNode, syscall.Errno) {
	f := n.fsys
	ov := f.ov
	var nodes []*overlayNode
	var names []string
	for cur := n; cur != ov.root; {
		name, pin := cur.Parent()
		p, ok := overlayParent(pin)
		if !ok || p == cur || len(nodes) > 1<<12 {
			return nil, nil, syscall.ESTALE
		}
		nodes = append(nodes, cur)
		names = append(names, name)
		cur = p
	}
	nodes = append(nodes, ov.root)
	for i, j := 0, len(nodes)-1; i < j; i, j = i+1, j-1 {
		nodes[i], nodes[j] = nodes[j], nodes[i]
	}
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	root, err := ov.stack.Root()
	if err != nil {
		return nil, nil, toErrno(f.log, "root", err)
	}
	path := []*overlay.Entry{root}
	for i, name := range names {
		e, err := ov.stack.Lookup(path[len(path)-1], name)
		if err != nil {
			closeAll(path)
			if errors.Is(err, unix.ENOENT) {
				return nil, nil, syscall.ESTALE
			}
			return nil, nil, toErrno(f.log, "lookup", err)
		}
		path = append(path, e)
		if (devIno{e.Stat.Dev, e.Stat.Ino}) != nodes[i+1].getKey() {
			closeAll(path)
			return nil, nil, syscall.ESTALE
		}
	}
	return path, nodes, 0
}

// copyUp copies the entries of path (from wpath, possibly extended by one
// entry whose node may be nil) into the upper and moves their nodes over
// to the copies, keeping the inode numbers they showed.
func (ov *overlayState) copyUp(f *FS, path []*overlay.Entry, nodes []*overlayNode) syscall.Errno {
	was := make([]bool, len(path))
	ino := make([]uint64, len(path))
	for i, e := range path {
		was[i] = ov.stack.InUpper(e)
		if nodes[i] != nil {
			ino[i] = nodes[i].ino
		} else {
			ino[i] = ov.showIno(f, &e.Stat)
		}
	}
	err := ov.stack.CopyUp(path)
	for i, e := range path {
		if was[i] || !ov.stack.InUpper(e) {
			continue
		}
		key := devIno{e.Stat.Dev, e.Stat.Ino}
		ov.cmu.Lock()
		ov.copied[key] = ino[i]
		ov.cmu.Unlock()
		if n := nodes[i]; n != nil {
			n.copiedUp(e)
		}
		// The copy changed the upper parent (size, ctime) behind the
		// kernel's attribute cache, and the copy's own ctime.
		for _, n := range []*overlayNode{nodes[i-1], nodes[i]} {
			if n != nil {
				n.NotifyContent(-1, 0)
			}
		}
	}
	if err != nil {
		return toErrno(f.log, "copy up", err)
	}
	return 0
}

// copiedUp moves the node over to its upper copy e.
func (n *overlayNode) copiedUp(e *overlay.Entry) {
	ov := n.fsys.ov
	key := devIno{e.Stat.Dev, e.Stat.Ino}
	ov.mu.Lock()
	n.stMu.Lock()
	old := n.key
	n.key, n.st, n.merged = key, e.Stat, len(e.Dirs) > 1
	n.stMu.Unlock()
	if ov.nodes[old] == n {
		delete(ov.nodes, old)
		ov.nodes[key] = n
	}
	ov.mu.Unlock()
	if n.isDir() {
		// Its entry lacks the new upper directory: found again on next use.
		n.forget()
	}
}

// nodeOf returns the live node of an entry, or nil.
func (ov *overlayState) nodeOf(e *overlay.Entry) *overlayNode {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	return ov.nodes[devIno{e.Stat.Dev, e.Stat.Ino}]
}

// lowerPositive reports whether a lower layer below the merged directory
// pe has name (not hidden by a whiteout): removing or moving the name then
// needs a whiteout.
func (ov *overlayState) lowerPositive(pe *overlay.Entry, name string) bool {
	for _, d := range pe.Dirs {
		if ov.stack.IsUpper(d.Layer) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(d.Fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		return !isWhiteoutStat(&st)
	}
	return false
}

func isWhiteoutStat(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// clearWhiteout removes a whiteout of name from the upper directory dirfd
// so that a new object can take the name; it reports whether there was
// one (to be put back if the new object fails).
func (f *FS) clearWhiteout(dirfd int, name string) (bool, syscall.Errno) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, 0
		}
		return false, toErrno(f.log, "stat", err)
	}
	if !isWhiteoutStat(&st) {
		return false, syscall.EEXIST
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		return false, toErrno(f.log, "remove whiteout", err)
	}
	return true, 0
}

// targetOf names the entry e (child of pe, which is nil for the root) for
// the xattr calls.
func targetOf(e, pe *overlay.Entry) (xattrTarget, syscall.Errno) {
	if e.Stat.Mode&unix.S_IFMT != unix.S_IFLNK {
		return xattrTarget{dirfd: unix.AT_FDCWD, path: procFd(e.Fd)}, 0
	}
	if pe != nil {
		for _, d := range pe.Dirs {
			if d.Layer == e.Layer {
				return xattrTarget{dirfd: d.Fd, path: e.Name, flags: unix.AT_SYMLINK_NOFOLLOW}, 0
			}
		}
	}
	return xattrTarget{}, syscall.ESTALE
}

// parentOf returns the parent entry of the last entry of path, or nil.
func parentOf(path []*overlay.Entry) *overlay.Entry {
	if len(path) < 2 {
		return nil
	}
	return path[len(path)-2]
}

// upperPath is the short way to what a change of n needs when n's topmost
// object is in the upper already, so nothing is to be copied up: n's own
// entry and, for a non-directory, its parent's (path's last two), found
// from n and its parent instead of afresh from the root (wpath: a lookup
// in every layer for every ancestor). The entries are copies the caller
// closes. ok is false when n needs wpath. The caller holds ov.wmu.
func (n *overlayNode) upperPath() (path []*overlay.Entry, ok bool) {
	ov := n.fsys.ov
	if ov.upper == nil || n.getKey().dev != ov.upperDev {
		return nil, false
	}
	e, pe, release, errno := n.pin()
	if errno != 0 {
		return nil, false
	}
	defer release()
	if !ov.stack.InUpper(e) || e.Indexed || (devIno{e.Stat.Dev, e.Stat.Ino}) != n.getKey() {
		return nil, false
	}
	for _, src := range []*overlay.Entry{pe, e} {
		if src == nil {
			continue
		}
		c, err := cloneEntry(src)
		if err != nil {
			closeAll(path)
			return nil, false
		}
		path = append(path, c)
	}
	return path, true
}

// cloneEntry copies e with descriptors of its own, so that it outlives the
// pin it came from (a node's cached directory entry is pinned under the
// node's lock, which a change may need).
func cloneEntry(e *overlay.Entry) (*overlay.Entry, error) {
	c := *e
	c.Fd, c.Dirs = -1, make([]overlay.LayerDir, 0, len(e.Dirs))
	dup := func(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }
	for _, d := range e.Dirs {
		fd, err := dup(d.Fd)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Dirs = append(c.Dirs, overlay.LayerDir{Layer: d.Layer, Fd: fd})
		if d.Fd == e.Fd {
			c.Fd = fd // Close closes it once
		}
	}
	if c.Fd < 0 && e.Fd >= 0 {
		fd, err := dup(e.Fd)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Fd = fd
	}
	return &c, nil
}

// changeSelf copies n up and runs fn on its upper copy (the last entry of
// path), under ov.wmu. check, if not nil, runs on the entry before the
// copy-up and can refuse the change.
func (n *overlayNode) changeSelf(check func(path []*overlay.Entry) syscall.Errno, fn func(path []*overlay.Entry) syscall.Errno) syscall.Errno {
	f := n.fsys
	ov := f.ov
	if ov.upper == nil {
		return syscall.EROFS
	}
	ov.wmu.Lock()
	defer ov.wmu.Unlock()
	if path, ok := n.upperPath(); ok {
		defer closeAll(path)
		if check != nil {
			if e := check(path); e != 0 {
				return e
			}
		}
		return fn(path)
	}
	path, nodes, errno := n.wpath()
	if errno != 0 {
		return errno
	}
	defer closeAll(path)
	if check != nil {
		if e := check(path); e != 0 {
			return e
		}
	}
	if e := ov.copyUp(f, path, nodes); e != 0 {
		return e
	}
	return fn(path)
}

// lockUnpinned locks n.ioMu once no passthrough handle shares the lower's
// file (see newHandle), or answers ETXTBSY. The kernel sends RELEASE after
// close(2) has returned, so a reader that has just closed may still count:
// it waits a little for such releases before it gives up.
func (n *overlayNode) lockUnpinned() syscall.Errno {
	delay := 100 * time.Microsecond
	for waited := time.Duration(0); ; waited += delay {
		n.ioMu.Lock()
		if n.ptOpen == 0 || !n.ptLower {
			return 0
		}
		n.ioMu.Unlock()
		if waited >= 250*time.Millisecond {
			return syscall.ETXTBSY
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// openWrite copies n up and opens the copy with flags, which write.
func (n *overlayNode) openWrite(flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	// Held across the copy-up and the open, so that no handle can start
	// sharing the lower's file in between (see newHandle).
	if e := n.lockUnpinned(); e != 0 {
		return nil, 0, e
	}
	var fd int
	e := n.changeSelf(func(path []*overlay.Entry) syscall.Errno {
		st := &path[len(path)-1].Stat
		if u, g := f.unmapped(st); u || g {
			acc := flags & unix.O_ACCMODE
			if acc != unix.O_WRONLY {
				if e := otherAccess(st, false); e != 0 {
					return e
				}
			}
			if e := otherAccess(st, true); e != 0 {
				return e
			}
		}
		return 0
	}, func(path []*overlay.Entry) syscall.Errno {
		file, err := f.ov.stack.Open(path[len(path)-1], f.backingFlags(flags)&^(unix.O_CREAT|unix.O_EXCL|unix.O_NOCTTY))
		if err != nil {
			return toErrno(f.log, "open", err)
		}
		fd, err = unix.FcntlInt(file.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		file.Close()
		if err != nil {
			return toErrno(f.log, "open", err)
		}
		return 0
	})
	n.ioMu.Unlock()
	if e != 0 {
		return nil, 0, e
	}
	return f.newHandle(&n.ioState, fd, flags, true, false)
}

func (n *overlayNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	if in.Valid&fuse.FATTR_SIZE != 0 {
		// A truncate changes the data: not while handles share the
		// lower's file (see newHandle).
		if e := n.lockUnpinned(); e != 0 {
			return e
		}
		defer n.ioMu.Unlock()
	}
	e := n.changeSelf(nil, func(path []*overlay.Entry) syscall.Errno {
		fd := path[len(path)-1].Fd
		if e := f.setattrFd(fd, nil, in, out); e != 0 {
			return e
		}
		var st unix.Stat_t
		if err := fstatPath(fd, &st); err != nil {
			return toErrno(f.log, "stat", err)
		}
		n.stMu.Lock()
		n.st = st
		n.stMu.Unlock()
		return 0
	})
	if e != 0 {
		return e
	}
	n.attr(&out.Attr)
	return 0
}

func (n *overlayNode) Setxattr(ctx context.Context, name string, data []byte, flags uint32) syscall.Errno {
	f := n.fsys
	data, e := f.xattrToDisk(name, data)
	if e != 0 {
		return e
	}
	return n.changeSelf(func(path []*overlay.Entry) syscall.Errno {
		if u, g := f.unmapped(&path[len(path)-1].Stat); u || g {
			return syscall.EPERM
		}
		return 0
	}, func(path []*overlay.Entry) syscall.Errno {
		t, e := targetOf(path[len(path)-1], parentOf(path))
		if e != 0 {
			return e
		}
		if err := setxattrAt(t, name, data, int(flags)); err != nil {
			return toErrno(f.log, "setxattr", err)
		}
		return 0
	})
}

func (n *overlayNode) Removexattr(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	switch f.classify(name) {
	case xattrHidden:
		return syscall.ENODATA
	case xattrUnsupported:
		return syscall.EOPNOTSUPP
	}
	return n.changeSelf(func(path []*overlay.Entry) syscall.Errno {
		e := path[len(path)-1]
		if u, g := f.unmapped(&e.Stat); u || g {
			return syscall.EPERM
		}
		if !f.ov.stack.InUpper(e) {
			// No copy-up for an xattr the lower copy does not have.
			t, errno := targetOf(e, parentOf(path))
			if errno != 0 {
				return errno
			}
			if _, err := getxattrAt(t, name, nil); err != nil {
				return toErrno(f.log, "getxattr", err)
			}
		}
		return 0
	}, func(path []*overlay.Entry) syscall.Errno {
		t, e := targetOf(path[len(path)-1], parentOf(path))
		if e != 0 {
			return e
		}
		if err := removexattrAt(t, name); err != nil {
			return toErrno(f.log, "removexattr", err)
		}
		return 0
	})
}

// changeChild prepares a change of name in the directory n: it resolves n
// afresh, looks name up in it (child is nil when absent), lets check refuse
// the change, copies n up and runs fn with n's upper directory.
func (n *overlayNode) changeChild(name string, check func(pe, child *overlay.Entry) syscall.Errno, fn func(pe, child *overlay.Entry, dirfd int) syscall.Errno) syscall.Errno {
	f := n.fsys
	ov := f.ov
	if e := validName(name); e != 0 {
		return e
	}
	if ov.upper == nil {
		return syscall.EROFS
	}
	ov.wmu.Lock()
	defer ov.wmu.Unlock()
	path, ok := n.upperPath()
	var nodes []*overlayNode // nil: n is in the upper, nothing to copy up
	if !ok {
		var errno syscall.Errno
		if path, nodes, errno = n.wpath(); errno != 0 {
			return errno
		}
	}
	defer closeAll(path)
	pe := path[len(path)-1]
	if !pe.IsDir() {
		return syscall.ENOTDIR
	}
	child, err := ov.stack.Lookup(pe, name)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return toErrno(f.log, "lookup", err)
		}
		child = nil
	} else {
		defer child.Close()
	}
	if e := check(pe, child); e != 0 {
		return e
	}
	if nodes != nil {
		if e := ov.copyUp(f, path, nodes); e != 0 {
			return e
		}
	}
	return fn(pe, child, pe.Dirs[0].Fd)
}

// createChild makes a new object name in n as the caller with mk, over a
// whiteout if there is one (a directory there is made opaque), and returns
// its node.
func (n *overlayNode) createChild(ctx context.Context, op, name string, out *fuse.EntryOut, mk func(dirfd int) error) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	uid, gid, errno := f.caller(ctx)
	if errno != 0 && f.ov.upper != nil {
		return nil, errno
	}
	var ch *fs.Inode
	errno = n.changeChild(name, func(pe, child *overlay.Entry) syscall.Errno {
		if child != nil {
			return syscall.EEXIST
		}
		return 0
	}, func(pe, child *overlay.Entry, dirfd int) syscall.Errno {
		wh, e := f.clearWhiteout(dirfd, name)
		if e != 0 {
			return e
		}
		if err := f.creds.as(uid, gid, func() error { return mk(dirfd) }); err != nil {
			if wh {
				_ = f.ov.stack.Whiteout(dirfd, name)
			}
			return toErrno(f.log, op, err)
		}
		fd, err := openBeneath(dirfd, name, unix.O_PATH, 0)
		if err != nil {
			return toErrno(f.log, op+": open new entry", err)
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := fstatPath(fd, &st); err != nil {
			return toErrno(f.log, "stat", err)
		}
		if wh && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := f.ov.stack.MakeOpaque(fd); err != nil {
				return toErrno(f.log, op, err)
			}
		}
		ch = n.childNode(ctx, &st, false, out)
		return 0
	})
	return ch, errno
}

func (n *overlayNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	fd := -1
	ch, e := n.createChild(ctx, "create", name, out, func(dirfd int) error {
		return f.withUmask(mode, func(mode uint32) error {
			var err error
			fd, err = openBeneath(dirfd, name, f.backingFlags(flags)&^unix.O_NOCTTY|unix.O_CREAT|unix.O_EXCL, mode&0o7777)
			return err
		})
	})
	if e != 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, nil, 0, e
	}
	fh, fuseFlags, e := f.newHandle(&ch.Operations().(*overlayNode).ioState, fd, flags, true, false)
	if e != 0 {
		unix.Close(fd)
		return nil, nil, 0, e
	}
	return ch, fh, fuseFlags, 0
}

func (n *overlayNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.createChild(ctx, "mkdir", name, out, func(dirfd int) error {
		return n.fsys.withUmask(mode, func(mode uint32) error { return unix.Mkdirat(dirfd, name, mode&0o7777) })
	})
}

func (n *overlayNode) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.createChild(ctx, "mknod", name, out, func(dirfd int) error {
		return n.fsys.withUmask(mode, func(mode uint32) error { return unix.Mknodat(dirfd, name, mode, int(dev)) })
	})
}

func (n *overlayNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.createChild(ctx, "symlink", name, out, func(dirfd int) error {
		return unix.Symlinkat(target, dirfd, name)
	})
}

func (n *overlayNode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	ov := f.ov
	t, ok := target.(*overlayNode)
	if !ok {
		return nil, syscall.EXDEV
	}
	if e := validName(name); e != 0 {
		return nil, e
	}
	if ov.upper == nil {
		return nil, syscall.EROFS
	}
	if _, _, e := f.caller(ctx); e != 0 {
		return nil, e
	}
	// The target first: copied up on its own, under wmu like the rest.
	if e := t.changeSelf(func(path []*overlay.Entry) syscall.Errno {
		if u, g := f.unmapped(&path[len(path)-1].Stat); u || g {
			return syscall.EPERM // vfs_link: no hard link to an unmapped inode
		}
		return 0
	}, func([]*overlay.Entry) syscall.Errno { return 0 }); e != 0 {
		return nil, e
	}
	var ch *fs.Inode
	e := n.changeChild(name, func(pe, child *overlay.Entry) syscall.Errno {
		if child != nil {
			return syscall.EEXIST
		}
		return 0
	}, func(pe, child *overlay.Entry, dirfd int) syscall.Errno {
		tpath, _, e := t.wpath()
		if e != 0 {
			return e
		}
		defer closeAll(tpath)
		te := tpath[len(tpath)-1]
		if !ov.stack.InUpper(te) {
			return syscall.ESTALE
		}
		wh, e := f.clearWhiteout(dirfd, name)
		if e != 0 {
			return e
		}
		// linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH: as the daemon.
		if err := unix.Linkat(te.Fd, "", dirfd, name, unix.AT_EMPTY_PATH); err != nil {
			if wh {
				_ = ov.stack.Whiteout(dirfd, name)
			}
			return toErrno(f.log, "link", err)
		}
		var st unix.Stat_t
		if err := fstatPath(te.Fd, &st); err != nil {
			return toErrno(f.log, "stat", err)
		}
		ch = n.childNode(ctx, &st, false, out)
		return 0
	})
	return ch, e
}

func (n *overlayNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, false)
}

func (n *overlayNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, true)
}

// remove unlinks or rmdirs name: a whiteout if a lower has the name, a
// plain removal from the upper otherwise.
func (n *overlayNode) remove(name string, dir bool) syscall.Errno {
	f := n.fsys
	ov := f.ov
	return n.changeChild(name, func(pe, child *overlay.Entry) syscall.Errno {
		if child == nil {
			return syscall.ENOENT
		}
		if u, g := f.unmapped(&child.Stat); u || g {
			return syscall.EOVERFLOW
		}
		switch {
		case dir && !child.IsDir():
			return syscall.ENOTDIR
		case !dir && child.IsDir():
			return syscall.EISDIR
		case dir:
			ents, err := ov.stack.ReadDir(child)
			if err != nil {
				return toErrno(f.log, "readdir", err)
			}
			if len(ents) > 0 {
				return syscall.ENOTEMPTY
			}
		}
		return 0
	}, func(pe, child *overlay.Entry, dirfd int) syscall.Errno {
		if ov.stack.InUpper(child) {
			defer ov.dropCopied(&child.Stat)
		}
		if ov.lowerPositive(pe, name) {
			if err := ov.stack.Whiteout(dirfd, name); err != nil {
				return toErrno(f.log, "whiteout", err)
			}
			return 0
		}
		flags := 0
		if dir {
			flags = unix.AT_REMOVEDIR
		}
		err := unix.Unlinkat(dirfd, name, flags)
		if dir && errors.Is(err, unix.ENOTEMPTY) {
			// Only whiteouts are left in it (the merged directory is
			// empty): swap in a whiteout, which clears it, then drop that.
			if err = ov.stack.Whiteout(dirfd, name); err == nil {
				err = unix.Unlinkat(dirfd, name, 0)
			}
		}
		if err != nil {
			return toErrno(f.log, "remove", err)
		}
		return 0
	})
}

func (n *overlayNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	f := n.fsys
	ov := f.ov
	if e := validName(name); e != 0 {
		return e
	}
	if e := validName(newName); e != 0 {
		return e
	}
	if ov.upper == nil {
		return syscall.EROFS
	}
	np, ok := newParent.(*overlayNode)
	if !ok {
		return syscall.EXDEV
	}
	if flags&unix.RENAME_WHITEOUT != 0 {
		return syscall.EINVAL // as overlayfs
	}
	exchange := flags&unix.RENAME_EXCHANGE != 0
	ov.wmu.Lock()
	defer ov.wmu.Unlock()

	// Check everything before anything is copied up.
	spath, snodes, e := n.wpath()
	if e != 0 {
		return e
	}
	defer closeAll(spath)
	spe := spath[len(spath)-1]
	se, err := ov.stack.Lookup(spe, name)
	if err != nil {
		return toErrno(f.log, "lookup", err)
	}
	defer se.Close()
	if u, g := f.unmapped(&se.Stat); u || g {
		return syscall.EOVERFLOW
	}
	if se.IsDir() && (!ov.stack.InUpper(se) || len(se.Dirs) > 1) {
		return syscall.EXDEV // no redirects: mv copies the directory
	}
	srcLower := ov.lowerPositive(spe, name)
	var exDir, exOpaque bool // exchange: the destination is a directory, opaque
	de, errno := np.lookupForRename(newName)
	if errno != 0 {
		return errno
	}
	if de != nil {
		isSame := de.Stat.Dev == se.Stat.Dev && de.Stat.Ino == se.Stat.Ino
		u, g := f.unmapped(&de.Stat)
		deDir, deMerged, deUpper, deOpaque := de.IsDir(), len(de.Dirs) > 1, ov.stack.InUpper(de), de.Opaque
		exDir, exOpaque = deDir, deOpaque
		var ents []overlay.Dirent
		if deDir && !exchange {
			ents, err = ov.stack.ReadDir(de)
		}
		de.Close()
		switch {
		case err != nil:
			return toErrno(f.log, "readdir", err)
		case u || g:
			return syscall.EOVERFLOW
		case flags&unix.RENAME_NOREPLACE != 0:
			return syscall.EEXIST
		case isSame:
			return 0
		case exchange && deDir && (!deUpper || deMerged):
			return syscall.EXDEV // no redirects, as for the source
		case exchange:
		case deDir && !se.IsDir():
			return syscall.EISDIR
		case !deDir && se.IsDir():
			return syscall.ENOTDIR
		case len(ents) > 0:
			return syscall.ENOTEMPTY
		}
	} else {
		if exchange {
			return syscall.ENOENT
		}
		if _, _, e := f.caller(ctx); e != 0 {
			return e // may_create
		}
	}

	// Copy up the source (its ancestors first), then the destination's
	// ancestors, resolved again as the first copy-up may have covered them.
	snode := ov.nodeOf(se)
	full := append(append([]*overlay.Entry{}, spath...), se)
	fullNodes := append(append([]*overlayNode{}, snodes...), snode)
	if e := ov.copyUp(f, full, fullNodes); e != 0 {
		return e
	}
	dpath, dnodes, e := np.wpath()
	if e != 0 {
		return e
	}
	defer closeAll(dpath)
	dpe := dpath[len(dpath)-1]
	if e := ov.copyUp(f, dpath, dnodes); e != 0 {
		return e
	}
	sdir, ddir := spe.Dirs[0].Fd, dpe.Dirs[0].Fd
	if exchange {
		// The destination moves too: copied up as well.
		de, err := ov.stack.Lookup(dpe, newName)
		if err != nil {
			return toErrno(f.log, "lookup", err)
		}
		defer de.Close()
		dnode := ov.nodeOf(de)
		dfull := append(append([]*overlay.Entry{}, dpath...), de)
		if e := ov.copyUp(f, dfull, append(append([]*overlayNode{}, dnodes...), dnode)); e != 0 {
			return e
		}
		if exDir && !exOpaque && len(spe.Dirs) > 1 {
			if err := ov.stack.MakeOpaque(de.Fd); err != nil {
				return toErrno(f.log, "rename", err)
			}
		}
	}

	if se.IsDir() && !se.Opaque && len(dpe.Dirs) > 1 {
		// A directory moved into a merged one must not merge with a
		// lower directory of its new name (overlayfs does the same).
		if err := ov.stack.MakeOpaque(se.Fd); err != nil {
			return toErrno(f.log, "rename", err)
		}
	}
	var dst unix.Stat_t
	wh := false
	if err := unix.Fstatat(ddir, newName, &dst, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		switch {
		case isWhiteoutStat(&dst) && (se.IsDir() || flags&unix.RENAME_NOREPLACE != 0):
			if err := unix.Unlinkat(ddir, newName, 0); err != nil {
				return toErrno(f.log, "remove whiteout", err)
			}
			wh = true
		case dst.Mode&unix.S_IFMT == unix.S_IFDIR && !exchange:
			// The merged directory is empty: only whiteouts are left in
			// its upper part, and the directory replacing it is opaque.
			if e := clearWhiteouts(f, ddir, newName); e != 0 {
				return e
			}
		}
	}
	rflags := uint(flags) & (unix.RENAME_NOREPLACE | unix.RENAME_EXCHANGE)
	whiteoutSrc := srcLower && !exchange
	if whiteoutSrc {
		rflags |= unix.RENAME_WHITEOUT
	}
	err = unix.Renameat2(sdir, name, ddir, newName, rflags)
	if whiteoutSrc && errors.Is(err, unix.EINVAL) {
		rflags &^= unix.RENAME_WHITEOUT
		if err = unix.Renameat2(sdir, name, ddir, newName, rflags); err == nil {
			if werr := ov.stack.Whiteout(sdir, name); werr != nil {
				return toErrno(f.log, "whiteout", werr)
			}
		}
	}
	if err != nil {
		if wh {
			_ = ov.stack.Whiteout(ddir, newName)
		}
		return toErrno(f.log, "rename", err)
	}
	return 0
}

// lookupForRename looks name up in the directory n (nil when absent).
func (n *overlayNode) lookupForRename(name string) (*overlay.Entry, syscall.Errno) {
	ov := n.fsys.ov
	path, _, e := n.wpath()
	if e != 0 {
		return nil, e
	}
	defer closeAll(path)
	de, err := ov.stack.Lookup(path[len(path)-1], name)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, 0
		}
		return nil, toErrno(n.fsys.log, "lookup", err)
	}
	return de, 0
}

// clearWhiteouts removes the whiteouts inside the upper directory name of
// dirfd.
func clearWhiteouts(f *FS, dirfd int, name string) syscall.Errno {
	fd, err := openBeneath(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return toErrno(f.log, "open", err)
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return toErrno(f.log, "readdir", err)
	}
	for _, c := range names {
		var st unix.Stat_t
		if unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && isWhiteoutStat(&st) {
			if err := unix.Unlinkat(fd, c, 0); err != nil {
				return toErrno(f.log, "remove whiteout", err)
			}
		}
	}
	return 0
}
