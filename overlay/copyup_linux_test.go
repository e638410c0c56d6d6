package overlay

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// makeRich creates at p an object of kind with owner, mode, xattrs, an ACL,
// a capability (regular files) and old timestamps.
func makeRich(t *testing.T, p, kind string) {
	t.Helper()
	switch kind {
	case "file":
		writeSparse(t, p, 8<<20, 0, 4<<20)
	case "dir":
		mkdir(t, p)
		lsetxattr(t, p, "system.posix_acl_default", aclXattr(1001))
	case "symlink":
		if err := os.Symlink("some/target", p); err != nil {
			t.Fatal(err)
		}
	case "fifo":
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(p, 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if kind != "symlink" {
		mode := uint32(0o2750)
		switch kind {
		case "file":
			mode = 0o4755
		case "fifo":
			mode = 0o1750 // the kernel's copy-up trigger (chown) would clear set-id bits
		}
		if err := unix.Fchmodat(unix.AT_FDCWD, p, mode, 0); err != nil {
			t.Fatal(err)
		}
		if kind != "fifo" { // user.* is for files and directories only
			lsetxattr(t, p, "user.note", []byte("kept"))
		}
		lsetxattr(t, p, "system.posix_acl_access", aclXattr(1002))
		if err := unix.Fchmodat(unix.AT_FDCWD, p, mode, 0); err != nil { // the ACL set the mode
			t.Fatal(err)
		}
	}
	lsetxattr(t, p, "trusted.note", []byte("kept too"))
	if kind == "file" {
		lsetxattr(t, p, "security.capability", capXattr())
	}
	setTimes(t, p, oldTime, oldTime.Add(3600e9))
}

// TestCopyUpMatchesKernel copies up twin objects, one with the kernel's
// overlayfs and one with Stack, and compares the results in the upper.
func TestCopyUpMatchesKernel(t *testing.T) {
	kinds := []string{"file", "dir", "symlink", "fifo"}
	l := newLayers(t, 1, false)
	lower := l.lowers[0]
	for _, k := range kinds {
		makeRich(t, filepath.Join(lower, "k-"+k), k)
		makeRich(t, filepath.Join(lower, "s-"+k), k)
	}

	// The kernel copies up without changing anything visible.
	unmount := l.mountKernel(t)
	for _, k := range kinds {
		p := filepath.Join(l.mnt, "k-"+k)
		var err error
		if k == "file" {
			var f *os.File
			if f, err = os.OpenFile(p, os.O_WRONLY, 0); err == nil {
				err = f.Close()
			}
		} else {
			err = os.Lchown(p, 1000, 1001) // same owner: a copy-up and nothing else
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	unmount()

	before := lowerSnapshot(t, lower)
	s := l.openStack(t)
	root, err := s.Root()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, k := range kinds {
		e, err := s.Lookup(root, "s-"+k)
		if err != nil {
			t.Fatalf("Lookup(%q) = %v; want an entry", "s-"+k, err)
		}
		defer e.Close()
		if err := s.CopyUp([]*Entry{root, e}); err != nil {
			t.Fatalf("CopyUp(%q) = %v", "s-"+k, err)
		}
		if !s.InUpper(e) || e.Layer != 0 {
			t.Errorf("after CopyUp(%q): Layer = %d; want 0 (upper)", "s-"+k, e.Layer)
		}
	}
	compareSnapshots(t, lower, before, lowerSnapshot(t, lower))

	wantXattrs := map[string][]string{
		"file":    {"security.capability", "system.posix_acl_access", "user.note", "trusted.note"},
		"dir":     {"system.posix_acl_default", "system.posix_acl_access", "user.note", "trusted.note"},
		"symlink": {"trusted.note"},
		"fifo":    {"system.posix_acl_access", "trusted.note"},
	}
	for _, k := range kinds {
		t.Run(k, func(t *testing.T) {
			kp, sp := filepath.Join(l.upper, "k-"+k), filepath.Join(l.upper, "s-"+k)
			var kst, sst unix.Stat_t
			if err := unix.Lstat(kp, &kst); err != nil {
				t.Fatalf("kernel did not copy up: %v", err)
			}
			if err := unix.Lstat(sp, &sst); err != nil {
				t.Fatalf("Stack did not copy up: %v", err)
			}
			type meta struct {
				Mode, UID, GID uint32
				Size           int64
				Atime, Mtime   unix.Timespec
				Xattrs         string
			}
			get := func(p string, st *unix.Stat_t) meta {
				names, err := llistxattr(p)
				if err != nil {
					t.Fatal(err)
				}
				xs, err := formatXattrs(names, func(name string) ([]byte, error) {
					buf := make([]byte, 64<<10)
					n, err := unix.Lgetxattr(p, name, buf)
					return buf[:max(n, 0)], err
				})
				if err != nil {
					t.Fatal(err)
				}
				m := meta{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Atime: st.Atim, Mtime: st.Mtim, Xattrs: xs}
				if k != "dir" {
					m.Size = st.Size
				}
				return m
			}
			km, sm := get(kp, &kst), get(sp, &sst)
			if km != sm {
				t.Errorf("CopyUp gave\n  %+v\nkernel overlayfs gave\n  %+v", sm, km)
			}
			for _, x := range wantXattrs[k] {
				if !strings.Contains(sm.Xattrs, x+"=") {
					t.Errorf("CopyUp(%q) lost xattr %s (has %s)", "s-"+k, x, sm.Xattrs)
				}
			}
			switch k {
			case "file":
				kd, _ := os.ReadFile(kp)
				sd, _ := os.ReadFile(sp)
				if !bytes.Equal(kd, sd) {
					t.Errorf("copied-up data differs from the kernel's copy-up")
				}
				if sst.Blocks*512 > 1<<20 {
					t.Errorf("copied-up sparse file uses %d bytes; want <= 1 MiB (holes kept)", sst.Blocks*512)
				}
			case "symlink":
				kt, _ := os.Readlink(kp)
				st, _ := os.Readlink(sp)
				if kt != st {
					t.Errorf("symlink target %q; kernel: %q", st, kt)
				}
			}
		})
	}
	// Nothing is left in the work directory.
	names, err := os.ReadDir(filepath.Join(l.work, workSubdir))
	if err != nil || len(names) != 0 {
		t.Errorf("work directory holds %v (%v); want it empty", names, err)
	}
}

// TestLookup checks single lookups against the merge rules.
func TestLookup(t *testing.T) {
	l := newLayers(t, 2, false)
	buildLowers(t, l)
	mknodWhiteout(t, filepath.Join(l.upper, "a.txt"))
	writeFile(t, filepath.Join(l.upper, "dir/u"), "u")
	s := l.openStack(t)
	root, err := s.Root()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tests := []struct {
		name    string
		want    string // type, or an errno
		layer   int
		nDirs   int
		opaque  bool
		wantErr unix.Errno
	}{
		{name: "a.txt", wantErr: unix.ENOENT},      // upper whiteout over two lowers
		{name: "hidden.txt", wantErr: unix.ENOENT}, // lower whiteout over the bottom
		{name: "absent", wantErr: unix.ENOENT},
		{name: "", wantErr: unix.EINVAL},
		{name: ".", wantErr: unix.EINVAL},
		{name: "..", wantErr: unix.EINVAL},
		{name: "/", wantErr: unix.EINVAL},
		{name: "dir/x", wantErr: unix.EINVAL},
		{name: "dir", want: "dir", layer: 0, nDirs: 3},
		{name: "opq", want: "dir", layer: 1, nDirs: 1, opaque: true},
		{name: "shadow", want: "file", layer: 1},
		{name: "only1", want: "dir", layer: 1, nDirs: 1},
		{name: "gone.txt", want: "file", layer: 2},
		{name: "link", want: "symlink", layer: 2},
		{name: "fifo", want: "fifo", layer: 2},
	}
	for _, tc := range tests {
		e, err := s.Lookup(root, tc.name)
		// LookupStat finds the same, without descriptors.
		st, merged, serr := s.LookupStat(root, tc.name)
		if tc.wantErr != 0 && !isErrno(serr, tc.wantErr) {
			t.Errorf("LookupStat(%q) = %v; want %v", tc.name, serr, tc.wantErr)
		}
		if tc.wantErr == 0 && err == nil && (serr != nil || st != e.Stat || merged != (len(e.Dirs) > 1)) {
			t.Errorf("LookupStat(%q) = %v, merged %v, %v; Lookup found %v, %d dirs", tc.name, st, merged, serr, e.Stat, len(e.Dirs))
		}
		if tc.wantErr != 0 {
			if !isErrno(err, tc.wantErr) {
				t.Errorf("Lookup(%q) = %v; want %v", tc.name, err, tc.wantErr)
			}
			if e != nil {
				e.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("Lookup(%q) = %v; want a %s", tc.name, err, tc.want)
			continue
		}
		got := struct {
			typ          string
			layer, nDirs int
			opaque       bool
		}{typeName(e.Stat.Mode), e.Layer, len(e.Dirs), e.Opaque}
		want := struct {
			typ          string
			layer, nDirs int
			opaque       bool
		}{tc.want, tc.layer, tc.nDirs, tc.opaque}
		if got != want {
			t.Errorf("Lookup(%q) = %+v; want %+v", tc.name, got, want)
		}
		e.Close()
	}
	f, err := s.Lookup(root, "gone.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Lookup(f, "x"); !isErrno(err, unix.ENOTDIR) {
		t.Errorf("Lookup in a file = %v; want ENOTDIR", err)
	}
	for _, flags := range []int{os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC, os.O_WRONLY | os.O_APPEND} {
		if _, err := s.Open(f, flags); !isErrno(err, unix.EROFS) {
			t.Errorf("Open(lower file, %#x) = %v; want EROFS", flags, err)
		}
	}
	// Even a raw write through a lower layer's descriptor is refused.
	if err := unix.Mkdirat(s.Layer(1).Fd(), "new", 0o755); !isErrno(err, unix.EROFS) {
		t.Errorf("mkdirat in a lower layer = %v; want EROFS", err)
	}
	if err := s.CopyUp([]*Entry{f}); err == nil {
		t.Errorf("CopyUp without the root = nil; want an error")
	}
}

// TestWhiteoutReplacesUpper: a whiteout over an existing upper object
// replaces it atomically; over a non-empty upper directory it is refused.
func TestWhiteoutReplacesUpper(t *testing.T) {
	l := newLayers(t, 1, false)
	writeFile(t, filepath.Join(l.lowers[0], "f"), "lower")
	writeFile(t, filepath.Join(l.lowers[0], "d/x"), "lower")
	writeFile(t, filepath.Join(l.upper, "f"), "upper")
	mkdir(t, filepath.Join(l.upper, "d"))
	mknodWhiteout(t, filepath.Join(l.upper, "d/x"))
	writeFile(t, filepath.Join(l.upper, "full/y"), "y")
	s := l.openStack(t)
	up := s.Layer(0).Fd()
	tests := []struct {
		name string
		want unix.Errno
	}{
		{"f", 0}, {"d", 0}, {"full", unix.ENOTEMPTY}, {"absent", 0}, {"f", 0}, {"..", unix.EINVAL},
	}
	for _, tc := range tests {
		err := s.Whiteout(up, tc.name)
		if tc.want != 0 {
			if !isErrno(err, tc.want) {
				t.Errorf("Whiteout(%q) = %v; want %v", tc.name, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("Whiteout(%q) = %v; want nil", tc.name, err)
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(l.upper, tc.name), &st); err != nil || !isWhiteout(&st) {
			t.Errorf("after Whiteout(%q): upper object is %#o (%v); want a whiteout", tc.name, st.Mode, err)
		}
	}
	if _, err := os.Stat(filepath.Join(l.upper, "full/y")); err != nil {
		t.Errorf("refused Whiteout(%q) lost the directory's contents: %v", "full", err)
	}
	names, err := os.ReadDir(filepath.Join(l.work, workSubdir))
	if err != nil || len(names) != 0 {
		t.Errorf("work directory holds %v (%v); want it empty", names, err)
	}
}
