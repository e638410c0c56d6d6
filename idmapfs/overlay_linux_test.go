package idmapfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
	"github.com/shiftlock/shiftlock/idmapfs"
	"github.com/shiftlock/shiftlock/internal/image"
)

// ovEnt is one object of a lower layer in an overlay test fixture.
type ovEnt struct {
	name     string
	kind     uint32 // S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR (a whiteout)
	mode     uint32
	uid, gid int
	data     string // file contents or symlink target
	xattrs   map[string][]byte
}

// ovLowers are three lower layers, the top one first: files shadowing each
// other, whiteouts in the top and the middle layer, an opaque directory,
// merged directories, a file over a directory and a directory over a file,
// symlinks, an ACL, a v2 capability, an unmapped owner, and a user xattr.
var ovLowers = [][]ovEnt{
	{ // top
		{name: "a", kind: unix.S_IFREG, mode: 0o644, data: "a from the top\n"},
		{name: "b", kind: unix.S_IFCHR},
		{name: "d", kind: unix.S_IFDIR, mode: 0o755, xattrs: map[string][]byte{"trusted.overlay.opaque": []byte("y")}},
		{name: "d/top", kind: unix.S_IFREG, mode: 0o600, uid: 1000, gid: 1000, data: "top\n"},
		{name: "m", kind: unix.S_IFDIR, mode: 0o750, gid: 5},
		{name: "m/p", kind: unix.S_IFREG, mode: 0o644, data: "p top\n"},
		{name: "m/gone", kind: unix.S_IFCHR},
		{name: "s", kind: unix.S_IFLNK, data: "a"},
		{name: "dangling", kind: unix.S_IFLNK, data: "../nowhere"},
		{name: "acl", kind: unix.S_IFREG, mode: 0o660, data: "acl\n",
			xattrs: map[string][]byte{"system.posix_acl_access": testACL(5), "user.foo": []byte("bar")}},
		{name: "cap", kind: unix.S_IFREG, mode: 0o755, data: "#!/bin/true\n",
			xattrs: map[string][]byte{"security.capability": capV2(capNetRaw)}},
		{name: "fileoverdir", kind: unix.S_IFREG, mode: 0o644, data: "file\n"},
		{name: "diroverfile", kind: unix.S_IFDIR, mode: 0o755},
		{name: "diroverfile/x", kind: unix.S_IFREG, mode: 0o644, data: "x\n"},
		{name: "f70000", kind: unix.S_IFREG, mode: 0o644, uid: 70000, gid: 70000, data: "unmapped\n"},
	},
	{ // middle
		{name: "a", kind: unix.S_IFREG, mode: 0o600, data: "a from the middle, longer\n"},
		{name: "b", kind: unix.S_IFREG, mode: 0o644, data: "whited out\n"},
		{name: "d", kind: unix.S_IFDIR, mode: 0o700},
		{name: "d/hidden", kind: unix.S_IFREG, mode: 0o644, data: "below an opaque dir\n"},
		{name: "m", kind: unix.S_IFDIR, mode: 0o755},
		{name: "m/p", kind: unix.S_IFREG, mode: 0o644, data: "p middle\n"},
		{name: "m/q", kind: unix.S_IFREG, mode: 0o640, uid: 1000, gid: 1000, data: "q middle\n"},
		{name: "m/gone", kind: unix.S_IFREG, mode: 0o644, data: "gone\n"},
		{name: "m/sub", kind: unix.S_IFDIR, mode: 0o755},
		{name: "m/sub/deep", kind: unix.S_IFREG, mode: 0o644, data: "deep\n"},
		{name: "w", kind: unix.S_IFCHR},
		{name: "fileoverdir", kind: unix.S_IFDIR, mode: 0o755},
		{name: "fileoverdir/under", kind: unix.S_IFREG, mode: 0o644, data: "under\n"},
		{name: "diroverfile", kind: unix.S_IFREG, mode: 0o644, data: "file\n"},
	},
	{ // bottom
		{name: "m", kind: unix.S_IFDIR, mode: 0o755},
		{name: "m/q", kind: unix.S_IFREG, mode: 0o644, data: "q bottom\n"},
		{name: "m/r", kind: unix.S_IFREG, mode: 0o644, data: "r bottom\n"},
		{name: "m/sub", kind: unix.S_IFDIR, mode: 0o755},
		{name: "m/sub/bottom", kind: unix.S_IFREG, mode: 0o644, data: "bottom\n"},
		{name: "w", kind: unix.S_IFREG, mode: 0o644, data: "whited out in the middle\n"},
		{name: "onlybottom", kind: unix.S_IFDIR, mode: 0o755},
		{name: "onlybottom/f", kind: unix.S_IFREG, mode: 0o644, data: "f\n"},
	},
}

// buildLower makes one lower layer in dir, times last (atime = mtime, so
// that any read with relatime would move the atime).
func buildLower(t *testing.T, dir string, ents []ovEnt) {
	t.Helper()
	mkdirs(t, dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.name)
		var err error
		switch e.kind {
		case unix.S_IFREG:
			err = os.WriteFile(p, []byte(e.data), 0o600)
		case unix.S_IFDIR:
			err = os.Mkdir(p, 0o700)
		case unix.S_IFLNK:
			err = os.Symlink(e.data, p)
		case unix.S_IFCHR:
			err = unix.Mknod(p, unix.S_IFCHR, 0) // a whiteout
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, e.uid, e.gid); err != nil {
			t.Fatal(err)
		}
		if e.kind == unix.S_IFREG || e.kind == unix.S_IFDIR {
			if err := unix.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range e.xattrs {
			if err := unix.Setxattr(p, k, v, 0); err != nil {
				t.Fatalf("setxattr %s %s: %v", p, k, err)
			}
		}
	}
	ts := []unix.Timespec{{Sec: fixtureTime}, {Sec: fixtureTime}}
	for i := len(ents) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, ents[i].name), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts, 0); err != nil {
		t.Fatal(err)
	}
}

// lowerState describes every object under dir without touching it: type,
// mode, ids, size, the three timestamps, the sha256 of a file's data (read
// with O_NOATIME) and every xattr. Directories are listed with O_NOATIME
// and symlinks are not read (readlink would move their atime).
func lowerState(t *testing.T, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(dir, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		s := fmt.Sprintf("mode=%07o uid=%d gid=%d size=%d rdev=%d atime=%d.%09d mtime=%d.%09d ctime=%d.%09d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Rdev, st.Atim.Sec, st.Atim.Nsec, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f := os.NewFile(uintptr(fd), p)
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			s += " sha256=" + hex.EncodeToString(h.Sum(nil))
		case unix.S_IFDIR:
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			f := os.NewFile(uintptr(fd), p)
			names, err := f.Readdirnames(-1)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				walk(filepath.Join(rel, n))
			}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			x, err := xattrState(p)
			if err != nil {
				t.Fatal(err)
			}
			s += x
		}
		state[rel] = s
	}
	walk(".")
	return state
}

// mergedTree describes every entry of a mounted merged tree, ids as the
// host sees them: kernel overlayfs shows disk ids, so toHost maps them (and
// the ids inside ACLs and capabilities) as idmapfs must. It fails on a
// duplicate or a whiteout in a listing, and records each inode number.
func mergedTree(t *testing.T, root string, toHost *idmap.IDMap, inos map[string]uint64) map[string]string {
	t.Helper()
	overflow := func(path string) uint32 {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var v uint32
		fmt.Sscan(strings.TrimSpace(string(b)), &v)
		return v
	}
	ovUID, ovGID := overflow("/proc/sys/fs/overflowuid"), overflow("/proc/sys/fs/overflowgid")
	host := func(m idmap.Map, id, over uint32) uint32 {
		if h, ok := m.ToHost(id); ok {
			return h
		}
		return over
	}
	state := map[string]string{}
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(root, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		uid, gid := st.Uid, st.Gid
		if toHost != nil {
			uid, gid = host(toHost.UID, uid, ovUID), host(toHost.GID, gid, ovGID)
		}
		if inos != nil {
			inos[rel] = st.Ino
		}
		s := fmt.Sprintf("mode=%07o uid=%d gid=%d size=%d nlink=%d mtime=%d.%09d",
			st.Mode, uid, gid, st.Size, st.Nlink, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			s += fmt.Sprintf(" data=%q", b)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				t.Fatal(err)
			}
			s += " -> " + target
		case unix.S_IFCHR:
			if st.Rdev == 0 {
				t.Errorf("%s: a whiteout is visible in %s", rel, root)
			}
		case unix.S_IFDIR:
			ents, err := os.ReadDir(p)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, e := range ents {
				if seen[e.Name()] {
					t.Errorf("%s: %q listed twice in %s", rel, e.Name(), root)
				}
				seen[e.Name()] = true
				walk(filepath.Join(rel, e.Name()))
			}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			names, err := llistxattr(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				v := make([]byte, 65536)
				m, err := unix.Lgetxattr(p, n, v)
				if err != nil {
					t.Fatalf("getxattr %s %s: %v", p, n, err)
				}
				v = v[:m]
				if toHost != nil {
					switch n {
					case "system.posix_acl_access", "system.posix_acl_default":
						v, err = idmap.ACLToHost(v, *toHost)
					case "security.capability":
						v, err = idmap.CapToHost(v, *toHost)
					}
					if err != nil {
						t.Fatalf("map %s of %s: %v", n, p, err)
					}
				}
				s += fmt.Sprintf(" %s=%x", n, v)
			}
		}
		state[rel] = s
	}
	walk(".")
	return state
}

func llistxattr(p string) ([]string, error) {
	buf := make([]byte, 65536)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("listxattr %s: %w", p, err)
	}
	var names []string
	for _, b := range bytes.Split(buf[:n], []byte{0}) {
		if len(b) > 0 {
			names = append(names, string(b))
		}
	}
	slices.Sort(names)
	return names, nil
}

// kernelOverlay mounts the kernel's overlayfs read-only over lowers (top
// first) on mnt, the oracle, and unmounts it in t.Cleanup.
func kernelOverlay(t *testing.T, mnt string, lowers ...string) {
	t.Helper()
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lowers, ":")); err != nil {
		t.Fatalf("mount kernel overlayfs on %s: %v", mnt, err)
	}
	t.Cleanup(func() { unmountAll(t, mnt) })
}

// checkReadOnly tries every kind of change on the mount; each must fail
// with EROFS.
func checkReadOnly(t *testing.T, mnt string) {
	t.Helper()
	j := func(n string) string { return filepath.Join(mnt, n) }
	ops := []struct {
		name string
		fn   func() error
	}{
		{"create", func() error { return create(j("new")) }},
		{"create in a merged dir", func() error { return create(j("m/new")) }},
		{"open for writing", func() error { return openWrite(j("a")) }},
		{"open for append", func() error { return writeAppend(j("m/q")) }},
		{"truncate", func() error { return unix.Truncate(j("a"), 0) }},
		{"unlink", func() error { return unix.Unlink(j("a")) }},
		{"unlink a lower-only file", func() error { return unix.Unlink(j("m/r")) }},
		{"rmdir", func() error { return unix.Rmdir(j("onlybottom")) }},
		{"mkdir", func() error { return unix.Mkdir(j("newdir"), 0o755) }},
		{"mknod", func() error { return unix.Mknod(j("fifo"), unix.S_IFIFO|0o644, 0) }},
		{"symlink", func() error { return unix.Symlink("a", j("newlink")) }},
		{"link", func() error { return unix.Link(j("a"), j("hardlink")) }},
		{"rename", func() error { return unix.Rename(j("a"), j("a2")) }},
		{"chmod", func() error { return unix.Chmod(j("a"), 0o777) }},
		{"chown", func() error { return unix.Lchown(j("a"), 100001, 100001) }},
		{"utimes", func() error { return unix.UtimesNano(j("a"), []unix.Timespec{{Sec: 1}, {Sec: 1}}) }},
		{"setxattr", func() error { return unix.Setxattr(j("a"), "user.x", []byte("y"), 0) }},
		{"removexattr", func() error { return unix.Removexattr(j("acl"), "user.foo") }},
		{"set an ACL", func() error { return unix.Setxattr(j("a"), "system.posix_acl_access", testACL(100005), 0) }},
	}
	for _, op := range ops {
		if err := op.fn(); !errors.Is(err, unix.EROFS) {
			t.Errorf("%s on %s: %v; want EROFS", op.name, mnt, err)
		}
	}
}

// checkDirents reads dir in small getdents batches: every name once, no
// whiteouts, the same names as one full read, and d_ino equal to st_ino.
func checkDirents(t *testing.T, dir string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 64) // one or two entries per call
	seen := map[string]uint64{}
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatalf("getdents %s: %v", dir, err)
		}
		if n == 0 {
			break
		}
		for b := buf[:n]; len(b) > 0; {
			reclen := int(b[16]) | int(b[17])<<8
			ino := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
				uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
			name := string(b[19:reclen])
			name = name[:strings.IndexByte(name, 0)]
			if _, dup := seen[name]; dup {
				t.Errorf("%s: %q returned twice", dir, name)
			}
			seen[name] = ino
			b = b[reclen:]
		}
	}
	for name, ino := range seen {
		if name == "." || name == ".." {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, name), &st); err != nil {
			t.Errorf("%s listed in %s but: %v", name, dir, err)
			continue
		}
		if st.Ino != ino {
			t.Errorf("%s/%s: d_ino %d, st_ino %d", dir, name, ino, st.Ino)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents)+2 != len(seen) {
		t.Errorf("%s: %d names in small reads, %d (+ . and ..) in one", dir, len(seen), len(ents))
	}
}

func TestOverlayReadOnlyMatchesKernel(t *testing.T) {
	base := sharedDir(t)
	var lowers []string
	for i, ents := range ovLowers {
		l := filepath.Join(base, fmt.Sprintf("l%d", i))
		buildLower(t, l, ents)
		lowers = append(lowers, l)
	}
	before := map[string]map[string]string{}
	for _, l := range lowers {
		before[l] = lowerState(t, l)
	}

	mnt := filepath.Join(base, "idmapfs")
	mkdirs(t, mnt)
	opts := defaultOptions(t)
	opts.Lowers = lowers
	mountIdmapfs(t, "", mnt, opts)

	inos := map[string]uint64{}
	got := mergedTree(t, mnt, nil, inos)
	for _, d := range []string{".", "m", "m/sub", "d", "diroverfile"} {
		checkDirents(t, filepath.Join(mnt, d))
	}
	checkReadOnly(t, mnt)
	// Inode numbers stay when the kernel forgets the inodes.
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	inos2 := map[string]uint64{}
	mergedTree(t, mnt, nil, inos2)
	seen := map[uint64]string{}
	for p, ino := range inos {
		if inos2[p] != ino {
			t.Errorf("%s: inode %d, then %d after the kernel forgot it", p, ino, inos2[p])
		}
		if q, dup := seen[ino]; dup {
			t.Errorf("%s and %s share inode %d", p, q, ino)
		}
		seen[ino] = p
	}
	// A passthrough read and a read through the daemon show the same data.
	if b, err := os.ReadFile(filepath.Join(mnt, "m/sub/bottom")); err != nil || string(b) != "bottom\n" {
		t.Errorf("read m/sub/bottom = %q, %v", b, err)
	}

	for _, l := range lowers {
		if diff := diffStates(before[l], lowerState(t, l)); len(diff) > 0 {
			t.Errorf("lower %s changed:\n%s", l, strings.Join(diff, "\n"))
		}
	}

	// The oracle last: the kernel's overlayfs moves the lowers' atimes.
	kmnt := filepath.Join(base, "kernel")
	mkdirs(t, kmnt)
	kernelOverlay(t, kmnt, lowers...)
	ids := testMap(t)
	want := mergedTree(t, kmnt, &ids, nil)
	if diff := diffStates(got, want); len(diff) > 0 {
		t.Errorf("idmapfs --lower and kernel overlayfs differ:\n%s", strings.Join(diff, "\n"))
	}
	for _, p := range []string{"b", "w", "m/gone", "d/hidden", "fileoverdir/under"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s is visible; want it hidden by a whiteout, an opaque dir or a file", p)
		}
	}
	for _, p := range []string{"m/r", "m/sub/deep", "m/sub/bottom", "onlybottom/f", "diroverfile/x"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s is missing from the merged view", p)
		}
	}
}

func TestOverlaySquashfsLower(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("needs mksquashfs (apt-get install squashfs-tools)")
	}
	base := sharedDir(t)
	top, bottom := filepath.Join(base, "top"), filepath.Join(base, "bottom")
	buildLower(t, top, ovLowers[0])
	buildLower(t, bottom, ovLowers[1])
	img := filepath.Join(base, "top.sqfs")
	if out, err := exec.Command("mksquashfs", top, img, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	sum := func() string {
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:])
	}
	sumBefore := sum()
	bottomBefore := lowerState(t, bottom)

	mnt := filepath.Join(base, "idmapfs")
	mkdirs(t, mnt)
	opts := defaultOptions(t)
	opts.Lowers = []string{img, bottom}
	opts.IDs = testMap(t)
	var got map[string]string
	func() {
		server, fsys, err := idmapfs.Mount("", mnt, opts)
		if err != nil {
			t.Fatalf("Mount(--lower %s:%s): %v", img, bottom, err)
		}
		defer func() {
			if err := server.Unmount(); err != nil {
				t.Errorf("unmount %s: %v", mnt, err)
				idmapfs.Unmount(mnt, true)
			}
			server.Wait()
			fsys.Close()
		}()
		inos := map[string]uint64{}
		got = mergedTree(t, mnt, nil, inos)
		seen := map[uint64]string{}
		for p, ino := range inos {
			if q, dup := seen[ino]; dup {
				t.Errorf("%s and %s share inode %d (layers on two devices)", p, q, ino)
			}
			seen[ino] = p
		}
		for _, d := range []string{".", "m", "d"} {
			checkDirents(t, filepath.Join(mnt, d))
		}
		checkReadOnly(t, mnt)
	}()
	// Detached at unmount: no loop device still reads the image.
	if backed, _ := filepath.Glob("/sys/block/loop*/loop/backing_file"); len(backed) > 0 {
		for _, bf := range backed {
			if b, err := os.ReadFile(bf); err == nil && strings.TrimSpace(string(b)) == img {
				t.Errorf("%s still backs %s after unmount", img, bf)
			}
		}
	}
	if s := sum(); s != sumBefore {
		t.Errorf("image sha256 %s, was %s", s, sumBefore)
	}
	if diff := diffStates(bottomBefore, lowerState(t, bottom)); len(diff) > 0 {
		t.Errorf("lower %s changed:\n%s", bottom, strings.Join(diff, "\n"))
	}

	// The oracle: the kernel's overlayfs over the same image (squashfs
	// keeps no ACLs and no nanoseconds, so the directory tree it was made
	// from is not the reference).
	im, err := image.Attach(context.Background(), img, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kmnt := filepath.Join(base, "kernel")
	mkdirs(t, kmnt)
	t.Cleanup(func() { im.Close() })
	kernelOverlay(t, kmnt, im.Path(), bottom)
	ids := testMap(t)
	want := mergedTree(t, kmnt, &ids, nil)
	if diff := diffStates(got, want); len(diff) > 0 {
		t.Errorf("idmapfs --lower IMAGE:DIR and kernel overlayfs of the same trees differ:\n%s", strings.Join(diff, "\n"))
	}
}

// The mount refuses what it cannot show, with nothing left mounted.
func TestOverlayBadLowers(t *testing.T) {
	base := sharedDir(t)
	mnt := filepath.Join(base, "mnt")
	notImage := filepath.Join(base, "notimage")
	mkdirs(t, mnt, filepath.Join(base, "ok"))
	if err := os.WriteFile(notImage, []byte("not a filesystem image"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, lowers := range [][]string{
		{filepath.Join(base, "missing")},
		{filepath.Join(base, "ok"), ""},
		{notImage},
	} {
		opts := defaultOptions(t)
		opts.Lowers = lowers
		server, fsys, err := idmapfs.Mount("", mnt, opts)
		if err == nil {
			server.Unmount()
			server.Wait()
			fsys.Close()
			t.Errorf("Mount(--lower %q) succeeded; want an error", lowers)
			continue
		}
		if m, _ := idmapfs.IsMountpoint(mnt); m {
			t.Errorf("Mount(--lower %q) failed (%v) but left a mount", lowers, err)
		}
	}
	opts := defaultOptions(t)
	opts.Lowers = []string{filepath.Join(base, "ok")}
	if _, _, err := idmapfs.Mount(base, mnt, opts); err == nil || !strings.Contains(err.Error(), "SOURCE") {
		t.Errorf("Mount(SOURCE, --lower) = %v; want a refusal", err)
	}
}
