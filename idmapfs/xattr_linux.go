package idmapfs

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
)

const (
	aclAccess  = "system.posix_acl_access"
	aclDefault = "system.posix_acl_default"
	capXattr   = "security.capability"
	maxXattr   = 64 << 10 // XATTR_SIZE_MAX
)

// xattrClass says how a name is treated (SEMANTICS.md rules 5-7).
type xattrClass int

const (
	xattrPass xattrClass = iota
	xattrACL
	xattrCap
	xattrHidden
	xattrUnsupported
)

func (f *FS) classify(name string) xattrClass {
	switch {
	case f.ov != nil && isOverlayXattr(name):
		// The layers' own metadata (opaque, whiteouts, redirects...) is
		// the overlay's business, as with the kernel's overlayfs.
		return xattrHidden
	case name == aclAccess || name == aclDefault:
		return xattrACL
	case name == capXattr:
		return xattrCap
	case strings.HasPrefix(name, "user."), strings.HasPrefix(name, "security."):
		return xattrPass
	case strings.HasPrefix(name, "trusted."):
		if f.opts.AllowTrusted {
			return xattrPass
		}
		return xattrHidden
	}
	return xattrUnsupported
}

// readXattr reads a whole value.
func readXattr(t xattrTarget, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := getxattrAt(t, name, buf)
		if err == nil {
			return buf[:n], nil
		}
		if err != syscall.ERANGE || len(buf) >= maxXattr { //nolint:errorlint // raw errno
			return nil, err
		}
		sz, err := getxattrAt(t, name, nil)
		if err != nil {
			return nil, err
		}
		buf = make([]byte, max(sz, 2*len(buf)))
	}
}

// isOverlayXattr reports whether name is overlayfs metadata in either of
// its namespaces.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// pinTarget pins an inode for one xattr call; release ends the pin.
type pinTarget func() (t xattrTarget, release func(), errno syscall.Errno)

func (n *Node) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return n.fsys.getxattr(name, dest, n.xattrTarget)
}

// getxattr reads name from the inode pin reaches, hiding what rules 5-7 hide
// and mapping ACL and capability ids to the host.
func (f *FS) getxattr(name string, dest []byte, pin pinTarget) (uint32, syscall.Errno) {
	class := f.classify(name)
	switch class {
	case xattrHidden:
		return 0, syscall.ENODATA
	case xattrUnsupported:
		return 0, syscall.EOPNOTSUPP
	}
	t, release, e := pin()
	if e != 0 {
		return 0, e
	}
	defer release()
	if class == xattrPass {
		sz, err := getxattrAt(t, name, dest)
		if err != nil {
			return 0, toErrno(f.log, "getxattr", err)
		}
		return uint32(sz), 0
	}
	raw, err := readXattr(t, name)
	if class == xattrACL && errors.Is(err, syscall.EOPNOTSUPP) {
		// A backing filesystem without ACLs (squashfs, or ext4 with
		// noacl) has none. The kernel's FUSE ACL support takes EOPNOTSUPP
		// as a failure: every permission check would fail with it.
		return 0, syscall.ENODATA
	}
	if err != nil {
		return 0, toErrno(f.log, "getxattr", err)
	}
	var val []byte
	if class == xattrACL {
		val, err = idmap.ACLToHost(raw, f.ids)
	} else {
		val, err = idmap.CapToHost(raw, f.ids)
	}
	if err != nil {
		return 0, toErrno(f.log, "getxattr", err)
	}
	if len(dest) == 0 {
		return uint32(len(val)), 0
	}
	if len(dest) < len(val) {
		return uint32(len(val)), syscall.ERANGE
	}
	return uint32(copy(dest, val)), 0
}

func (n *Node) Setxattr(ctx context.Context, name string, data []byte, flags uint32) syscall.Errno {
	f := n.fsys
	if f.opts.ReadOnly {
		return syscall.EROFS
	}
	data, e := f.xattrToDisk(name, data)
	if e != 0 {
		return e
	}
	t, release, e := n.xattrTarget()
	if e != 0 {
		return e
	}
	defer release()
	if e := n.writableXattrs(); e != 0 {
		return e
	}
	if err := setxattrAt(t, name, data, int(flags)); err != nil {
		return toErrno(f.log, "setxattr", err)
	}
	return 0
}

// xattrToDisk refuses what rule 7 refuses and maps the ids in an ACL or a
// capability value to disk ids (rules 5, 6).
func (f *FS) xattrToDisk(name string, data []byte) ([]byte, syscall.Errno) {
	var err error
	switch f.classify(name) {
	case xattrHidden:
		return nil, syscall.EPERM
	case xattrUnsupported:
		return nil, syscall.EOPNOTSUPP
	case xattrACL:
		data, err = idmap.ACLToDisk(data, f.ids)
	case xattrCap:
		data, err = idmap.CapToDisk(data, f.ids)
	}
	if err != nil {
		return nil, syscall.EINVAL
	}
	return data, 0
}

func (n *Node) Removexattr(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	if f.opts.ReadOnly {
		return syscall.EROFS
	}
	switch f.classify(name) {
	case xattrHidden:
		return syscall.ENODATA
	case xattrUnsupported:
		return syscall.EOPNOTSUPP
	}
	t, release, e := n.xattrTarget()
	if e != 0 {
		return e
	}
	defer release()
	if e := n.writableXattrs(); e != 0 {
		return e
	}
	if err := removexattrAt(t, name); err != nil {
		return toErrno(f.log, "removexattr", err)
	}
	return 0
}

func (n *Node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return n.fsys.listxattr(dest, n.xattrTarget)
}

// listxattr lists the names of the inode pin reaches that are shown.
func (f *FS) listxattr(dest []byte, pin pinTarget) (uint32, syscall.Errno) {
	t, release, e := pin()
	if e != 0 {
		return 0, e
	}
	defer release()
	buf := make([]byte, 1024)
	var sz int
	for {
		var err error
		sz, err = listxattrAt(t, buf)
		if err == nil {
			break
		}
		if err != syscall.ERANGE || len(buf) >= maxXattr { //nolint:errorlint // raw errno
			return 0, toErrno(f.log, "listxattr", err)
		}
		buf = make([]byte, 4*len(buf))
	}
	var out []byte
	for _, name := range bytes.Split(buf[:sz], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		if c := f.classify(string(name)); c == xattrHidden || c == xattrUnsupported {
			continue
		}
		out = append(out, name...)
		out = append(out, 0)
	}
	if len(dest) == 0 {
		return uint32(len(out)), 0
	}
	if len(dest) < len(out) {
		return uint32(len(out)), syscall.ERANGE
	}
	return uint32(copy(dest, out)), 0
}

// xattrTarget pins the node (and for a symlink its parent) for one xattr
// call.
func (n *Node) xattrTarget() (xattrTarget, func(), syscall.Errno) {
	fd, e := n.get()
	if e != 0 {
		return xattrTarget{}, nil, e
	}
	if n.StableAttr().Mode&syscall.S_IFMT != syscall.S_IFLNK {
		return xattrTarget{dirfd: unix.AT_FDCWD, path: procFd(fd)}, n.put, 0
	}
	name, parent := n.Parent()
	p, ok := parentNode(parent)
	if !ok {
		n.put()
		return xattrTarget{}, nil, syscall.ENOTSUP
	}
	pfd, e := p.get()
	if e != 0 {
		n.put()
		return xattrTarget{}, nil, e
	}
	release := func() { p.put(); n.put() }
	// The name must still be this symlink (SOURCE may have changed behind
	// the mount, e.g. through a second mount of the same tree).
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || (devIno{st.Dev, st.Ino}) != n.key {
		release()
		return xattrTarget{}, nil, syscall.ESTALE
	}
	return xattrTarget{dirfd: pfd, path: name, flags: unix.AT_SYMLINK_NOFOLLOW}, release, 0
}

func parentNode(in *fs.Inode) (*Node, bool) {
	if in == nil {
		return nil, false
	}
	p, ok := in.Operations().(*Node)
	return p, ok
}

// writableXattrs refuses xattr changes on an inode whose owner is unmapped
// (xattr_permission on an idmapped mount: EPERM).
func (n *Node) writableXattrs() syscall.Errno {
	fd, e := n.get()
	if e != 0 {
		return e
	}
	defer n.put()
	var st unix.Stat_t
	if err := fstatPath(fd, &st); err != nil {
		return toErrno(n.fsys.log, "stat", err)
	}
	if u, g := n.fsys.unmapped(&st); u || g {
		return syscall.EPERM
	}
	return 0
}
