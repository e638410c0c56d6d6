package overlay

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/testutil"
)

// layers is one overlay's directories in t.TempDir().
type layers struct {
	lowers []string // top first
	upper  string
	work   string
	mnt    string
	user   bool // userxattr
}

func newLayers(t *testing.T, nLowers int, user bool) *layers {
	t.Helper()
	testutil.RequireRoot(t)
	base := t.TempDir()
	l := &layers{user: user}
	for i := range nLowers {
		l.lowers = append(l.lowers, mkdir(t, filepath.Join(base, fmt.Sprintf("lower%d", i+1))))
	}
	l.upper = mkdir(t, filepath.Join(base, "upper"))
	l.work = mkdir(t, filepath.Join(base, "work"))
	l.mnt = mkdir(t, filepath.Join(base, "mnt"))
	return l
}

func mkdir(t *testing.T, p string) string {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *layers) prefix() string {
	if l.user {
		return "user.overlay."
	}
	return "trusted.overlay."
}

// mountKernel mounts the kernel's overlayfs over the layers and returns a
// function that unmounts it (also run by t.Cleanup, lazily as a last
// resort).
func (l *layers) mountKernel(t *testing.T) (unmount func()) {
	t.Helper()
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=nofollow,index=off,metacopy=off",
		strings.Join(l.lowers, ":"), l.upper, l.work)
	if l.user {
		opts += ",userxattr"
	}
	if err := unix.Mount("overlay", l.mnt, "overlay", 0, opts); err != nil {
		t.Fatalf("mount -t overlay -o %s: %v", opts, err)
	}
	mounted := true
	unmount = func() {
		if !mounted {
			return
		}
		mounted = false
		if err := unix.Unmount(l.mnt, 0); err != nil {
			t.Errorf("umount %s: %v (detaching)", l.mnt, err)
			unix.Unmount(l.mnt, unix.MNT_DETACH)
		}
	}
	t.Cleanup(unmount)
	return unmount
}

// openStack opens the layers with this package.
func (l *layers) openStack(t *testing.T) *Stack {
	t.Helper()
	cfg := Config{UserXattr: l.user}
	for _, p := range l.lowers {
		ll, err := OpenLowerLayer(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ll.Close() })
		cfg.Lowers = append(cfg.Lowers, ll)
	}
	var err error
	if cfg.Upper, err = OpenLayer(l.upper); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Upper.Close() })
	if cfg.Work, err = OpenLayer(l.work); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Work.Close() })
	s, err := NewStack(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// --- building layers ---

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mknodWhiteout(t *testing.T, p string) {
	t.Helper()
	if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
}

func lsetxattr(t *testing.T, p, name string, v []byte) {
	t.Helper()
	if err := unix.Lsetxattr(p, name, v, 0); err != nil {
		t.Fatalf("setxattr %s %s: %v", p, name, err)
	}
}

// aclXattr encodes a POSIX ACL xattr value (include/uapi/linux/posix_acl_xattr.h):
// version 2, then {tag u16, perm u16, id u32} entries, little endian.
func aclXattr(userID uint32) []byte {
	type ent struct {
		tag, perm uint16
		id        uint32
	}
	const undefined = ^uint32(0)
	ents := []ent{
		{0x01, 6, undefined}, // ACL_USER_OBJ rw-
		{0x02, 4, userID},    // ACL_USER r--
		{0x04, 4, undefined}, // ACL_GROUP_OBJ r--
		{0x10, 4, undefined}, // ACL_MASK r--
		{0x20, 4, undefined}, // ACL_OTHER r--
	}
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range ents {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// capXattr encodes security.capability v2 (include/uapi/linux/capability.h)
// with CAP_NET_BIND_SERVICE permitted and effective.
func capXattr() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0x02000000|1) // VFS_CAP_REVISION_2 | EFFECTIVE
	b = binary.LittleEndian.AppendUint32(b, 1<<unix.CAP_NET_BIND_SERVICE)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return b
}

// writeSparse writes a file of size with chunks of data at the offsets.
func writeSparse(t *testing.T, p string, size int64, at ...int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, off := range at {
		if _, err := f.WriteAt([]byte(strings.Repeat(string(rune('a'+i)), 64<<10)), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

var oldTime = time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)

func setTimes(t *testing.T, p string, atime, mtime time.Time) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// --- snapshots of a merged tree ---

// node describes one object of a tree in the terms the two
// implementations must agree on.
type node struct {
	Type   string
	Mode   uint32 // permission bits
	UID    uint32
	GID    uint32
	Size   int64  // non-directories
	Mtime  string // non-directories
	Target string // symlinks
	Sum    string // regular files: sha256 of the contents
	Xattrs string // sorted name=value, overlay-private ones left out
}

// nodeFields is node without its String method.
type nodeFields node

func (n node) String() string { return fmt.Sprintf("%+v", nodeFields(n)) }

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFCHR:
		return "chardev"
	case unix.S_IFBLK:
		return "blockdev"
	case unix.S_IFSOCK:
		return "socket"
	}
	return "?"
}

func describe(st *unix.Stat_t, target string, sum string, xattrs string) node {
	n := node{
		Type: typeName(st.Mode), Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid,
		Target: target, Sum: sum, Xattrs: xattrs,
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		n.Size = st.Size
		n.Mtime = time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339Nano)
	}
	return n
}

func formatXattrs(names []string, get func(string) ([]byte, error)) (string, error) {
	var parts []string
	for _, name := range names {
		if isPrivateXattr(name) {
			continue
		}
		v, err := get(name)
		if err != nil {
			return "", fmt.Errorf("getxattr %s: %w", name, err)
		}
		parts = append(parts, name+"="+hex.EncodeToString(v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ","), nil
}

func sumReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// walkPath snapshots the tree under root through the path API (the
// kernel's overlay mount).
func walkPath(t *testing.T, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		var target, sum string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFREG:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			sum, err = sumReader(f)
			f.Close()
			if err != nil {
				return err
			}
		}
		names, err := llistxattr(p)
		if err != nil {
			return err
		}
		xs, err := formatXattrs(names, func(name string) ([]byte, error) {
			buf := make([]byte, 64<<10)
			n, err := unix.Lgetxattr(p, name, buf)
			return buf[:max(n, 0)], err
		})
		if err != nil {
			return err
		}
		out[rel] = describe(&st, target, sum, xs)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

func llistxattr(p string) ([]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range splitNul(buf[:n]) {
		names = append(names, string(b))
	}
	return names, nil
}

// walkStack snapshots the merged tree of s, checking on the way that
// ReadDir and Lookup agree and that ReadDir lists no name twice.
func walkStack(t *testing.T, s *Stack) map[string]node {
	t.Helper()
	out := map[string]node{}
	root, err := s.Root()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var walk func(e *Entry, rel string)
	walk = func(e *Entry, rel string) {
		out[rel] = describeEntry(t, s, e, rel)
		if !e.IsDir() {
			return
		}
		ents, err := s.ReadDir(e)
		if err != nil {
			t.Fatalf("ReadDir(%q) = %v", rel, err)
		}
		seen := map[string]bool{}
		for _, d := range ents {
			if seen[d.Name] {
				t.Errorf("ReadDir(%q) lists %q twice", rel, d.Name)
			}
			seen[d.Name] = true
			child, err := s.Lookup(e, d.Name)
			if err != nil {
				t.Errorf("Lookup(%q) = %v; want the entry ReadDir listed", filepath.Join(rel, d.Name), err)
				continue
			}
			if got := child.Stat.Mode & unix.S_IFMT; got != d.Type || child.Layer != d.Layer {
				t.Errorf("ReadDir(%q) lists %q as type %#o layer %d; Lookup finds %#o layer %d",
					rel, d.Name, d.Type, d.Layer, got, child.Layer)
			}
			walk(child, filepath.Join(rel, d.Name))
			child.Close()
		}
	}
	walk(root, ".")
	return out
}

func describeEntry(t *testing.T, s *Stack, e *Entry, rel string) node {
	t.Helper()
	var target, sum string
	var err error
	switch e.Stat.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		if target, err = readlink(e.Fd); err != nil {
			t.Fatalf("readlink %q: %v", rel, err)
		}
	case unix.S_IFREG:
		f, err := s.Open(e, os.O_RDONLY)
		if err != nil {
			t.Fatalf("Open(%q) = %v", rel, err)
		}
		sum, err = sumReader(f)
		f.Close()
		if err != nil {
			t.Fatalf("read %q: %v", rel, err)
		}
	}
	names, err := listxattr(e.Fd)
	if err != nil {
		t.Fatalf("listxattr %q: %v", rel, err)
	}
	xs, err := formatXattrs(names, func(name string) ([]byte, error) { return getxattr(e.Fd, name) })
	if err != nil {
		t.Fatalf("%q: %v", rel, err)
	}
	return describe(&e.Stat, target, sum, xs)
}

// compareTrees reports every difference between want and got.
func compareTrees(t *testing.T, wantName string, want map[string]node, gotName string, got map[string]node) {
	t.Helper()
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		w, inWant := want[p]
		g, inGot := got[p]
		switch {
		case !inWant:
			t.Errorf("%s has %q = %v; %s has no such name", gotName, p, g, wantName)
		case !inGot:
			t.Errorf("%s has no %q; %s has %v", gotName, p, wantName, w)
		case w != g:
			t.Errorf("%q:\n  %s: %v\n  %s: %v", p, gotName, g, wantName, w)
		}
	}
}

// lowerSnapshot records every lower object's contents, xattrs and all three
// timestamps, read through a read-only noatime clone so that taking the
// snapshot changes nothing.
func lowerSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	l, err := OpenLowerLayer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	root := procFd(l.Fd()) + "/" // the slash follows the magic link
	out := map[string]string{}
	for rel, n := range walkPath(t, root) {
		var st unix.Stat_t
		p := root + rel // not filepath.Join: the trailing slash must stay
		if rel == "." {
			p = root
		}
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		out[rel] = fmt.Sprintf("%v ino=%d size=%d atime=%v mtime=%v ctime=%v", n, st.Ino, st.Size, st.Atim, st.Mtim, st.Ctim)
	}
	return out
}

func isErrno(err error, want unix.Errno) bool { return errors.Is(err, want) }
