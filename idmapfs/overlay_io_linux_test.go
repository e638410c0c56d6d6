package idmapfs_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/testutil"
)

// TestOverlayIOModes opens lower and upper files in the combinations that
// decide a handle's I/O mode in overlay mode with an upper: readers of a
// lower file share its read-only file as the passthrough backing file, so
// while one is open the data must not change (ETXTBSY, see newHandle);
// once they are closed the file copies up and every mode sees the new data.
func TestOverlayIOModes(t *testing.T) {
	testutil.RequireFUSE(t)
	for _, mode := range []string{"passthrough", "nopassthrough", "writeback"} {
		t.Run(mode, func(t *testing.T) {
			base := t.TempDir()
			lower, upper, mnt := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "mnt")
			mkdirs(t, lower, upper, mnt)
			data := bytes.Repeat([]byte("lower data\n"), 1000)
			if err := os.WriteFile(filepath.Join(lower, "f"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			opts := defaultOptions(t)
			opts.IDs = parseIDMap(t, "0:0:65536")
			opts.Lowers, opts.Upper = []string{lower}, upper
			opts.NoPassthrough = mode == "nopassthrough"
			opts.Writeback = mode == "writeback"
			f := mountIdmapfs(t, "", mnt, opts)
			if want := mode == "passthrough"; f.Passthrough() != want {
				t.Fatalf("Passthrough() = %v; want %v", f.Passthrough(), want)
			}
			p := filepath.Join(mnt, "f")

			r, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			w0, werr := os.OpenFile(p, os.O_WRONLY, 0)
			if werr == nil {
				w0.Close()
			}
			terr := os.Truncate(p, 3)
			if mode == "passthrough" {
				if !errorIs(werr, unix.ETXTBSY) || !errorIs(terr, unix.ETXTBSY) {
					t.Errorf("open for writing, truncate while a reader shares the lower's file: %v, %v; want ETXTBSY", werr, terr)
				}
			} else if werr != nil || terr != nil {
				t.Errorf("open for writing, truncate while a reader is open: %v, %v; want success", werr, terr)
			}
			// A metadata change copies up but keeps the data: readers
			// may go on sharing.
			if err := os.Chmod(p, 0o600); err != nil {
				t.Errorf("chmod while a reader is open: %v", err)
			}
			r2, err := os.Open(p)
			if err != nil {
				t.Errorf("open for reading after the copy-up: %v", err)
			} else {
				r2.Close()
			}
			r.Close()

			if err := os.WriteFile(p, []byte("new data\n"), 0o644); err != nil {
				t.Fatalf("write after the readers closed: %v", err)
			}
			w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p) // a reader while a writer is open
			if err != nil || string(got) != "new data\n" {
				t.Errorf("read of the copy: %q, %v", got, err)
			}
			if _, err := w.WriteString("more\n"); err != nil {
				t.Error(err)
			}
			w.Close()
			if got, err := os.ReadFile(filepath.Join(upper, "f")); err != nil || string(got) != "new data\nmore\n" {
				t.Errorf("the upper's copy: %q, %v", got, err)
			}
			if got, err := os.ReadFile(filepath.Join(lower, "f")); err != nil || !bytes.Equal(got, data) {
				t.Errorf("the lower changed: %d bytes, %v", len(got), err)
			}

			// A new file in the upper: written and read in one mode.
			q := filepath.Join(mnt, "g")
			if err := os.WriteFile(q, data, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err = os.Open(q)
			if err != nil {
				t.Fatal(err)
			}
			w, err = os.OpenFile(q, os.O_RDWR, 0)
			if err != nil {
				t.Fatalf("open for writing while a reader of an upper file is open: %v", err)
			}
			if _, err := w.WriteAt([]byte("X"), 0); err != nil {
				t.Error(err)
			}
			b := make([]byte, 1)
			if _, err := r.ReadAt(b, 0); err != nil || b[0] != 'X' {
				t.Errorf("reader sees %q, %v; want X", b, err)
			}
			w.Close()
			r.Close()
		})
	}
}

func errorIs(err error, errno unix.Errno) bool {
	var e unix.Errno
	for err != nil {
		if x, ok := err.(unix.Errno); ok {
			e = x
			break
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	return e == errno
}

// TestOverlayHardLinksCopyUp checks that the names of one lower file stay
// one inode after a change through one of them copies it up, in this mount
// and the next: the other names find the copy through the index.
func TestOverlayHardLinksCopyUp(t *testing.T) {
	testutil.RequireFUSE(t)
	base := t.TempDir()
	lower, upper, mnt := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "mnt")
	mkdirs(t, lower, upper, mnt, filepath.Join(lower, "d"))
	if err := os.WriteFile(filepath.Join(lower, "a"), []byte("lower\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "d/c"} {
		if err := os.Link(filepath.Join(lower, "a"), filepath.Join(lower, name)); err != nil {
			t.Fatal(err)
		}
	}
	before := lowerState(t, lower)
	opts := defaultOptions(t)
	opts.IDs = parseIDMap(t, "0:0:65536")
	opts.Lowers, opts.Upper = []string{lower}, upper

	names := []string{"a", "b", "d/c"}
	check := func(when, data string, mode uint32) {
		t.Helper()
		var ino uint64
		for i, name := range names {
			p := filepath.Join(mnt, name)
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				t.Fatalf("%s: stat %s: %v", when, name, err)
			}
			if i == 0 {
				ino = st.Ino
			} else if st.Ino != ino {
				t.Errorf("%s: %s has inode %d, a has %d", when, name, st.Ino, ino)
			}
			if st.Mode&0o7777 != mode {
				t.Errorf("%s: %s has mode %o, want %o", when, name, st.Mode&0o7777, mode)
			}
			if got, err := os.ReadFile(p); err != nil || string(got) != data {
				t.Errorf("%s: %s reads %q, %v; want %q", when, name, got, err, data)
			}
		}
	}
	mountIdmapfs(t, "", mnt, opts)
	check("before any change", "lower\n", 0o644)
	if err := os.WriteFile(filepath.Join(mnt, "b"), []byte("changed through b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("after a write through b", "changed through b\n", 0o644)
	if err := os.Chmod(filepath.Join(mnt, "d/c"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("after a chmod through d/c", "changed through b\n", 0o600)
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	check("after the kernel forgot the nodes", "changed through b\n", 0o600)
	unmountAll(t, mnt)

	mountIdmapfs(t, "", mnt, opts)
	check("after a remount", "changed through b\n", 0o600)
	f, err := os.OpenFile(filepath.Join(mnt, "a"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("and a\n"); err != nil {
		t.Error(err)
	}
	f.Close()
	check("after a write through a, remounted", "changed through b\nand a\n", 0o600)
	// One copy in the upper, whichever names it holds.
	var copies []uint64
	filepath.Walk(upper, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			ino := fi.Sys().(*syscall.Stat_t).Ino
			if !slices.Contains(copies, ino) {
				copies = append(copies, ino)
			}
		}
		return nil
	})
	if len(copies) != 1 {
		t.Errorf("the upper holds %d copies of the file, want 1", len(copies))
	}
	if diff := diffStates(before, lowerState(t, lower)); len(diff) > 0 {
		t.Errorf("the lower changed: %v", diff)
	}
}

// TestOverlayUserXattr: with UserXattr, a directory made over a removed
// lower one is opaque through user.overlay.opaque, which the kernel's
// overlayfs honours with its userxattr option, and trusted.* is untouched.
func TestOverlayUserXattr(t *testing.T) {
	testutil.RequireFUSE(t)
	base := t.TempDir()
	lower, upper, mnt, kmnt := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "mnt"), filepath.Join(base, "kernel")
	mkdirs(t, filepath.Join(lower, "d"), upper, mnt, kmnt)
	if err := os.WriteFile(filepath.Join(lower, "d", "f"), []byte("f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := defaultOptions(t)
	opts.IDs = parseIDMap(t, "0:0:65536")
	opts.Lowers, opts.Upper, opts.UserXattr = []string{lower}, upper, true
	mountIdmapfs(t, "", mnt, opts)
	if err := os.RemoveAll(filepath.Join(mnt, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(filepath.Join(mnt, "d")); err != nil || len(ents) != 0 {
		t.Errorf("new d through idmapfs: %v, %v; want empty", ents, err)
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(upper, "d"), "user.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("upper d: user.overlay.opaque = %q, %v; want y", buf[:max(n, 0)], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(upper, "d"), "trusted.overlay.opaque", buf); err != unix.ENODATA {
		t.Errorf("upper d: trusted.overlay.opaque: %v; want ENODATA", err)
	}
	if n, err := unix.Listxattr(filepath.Join(mnt, "d"), buf); err != nil || n != 0 {
		t.Errorf("listxattr of d through idmapfs: %q, %v; want the overlay's own xattr hidden", buf[:max(n, 0)], err)
	}
	if err := unix.Mount("overlay", kmnt, "overlay", unix.MS_RDONLY, "userxattr,lowerdir="+upper+":"+lower); err != nil {
		t.Fatalf("mount kernel overlayfs with userxattr: %v", err)
	}
	t.Cleanup(func() { unmountAll(t, kmnt) })
	if ents, err := os.ReadDir(filepath.Join(kmnt, "d")); err != nil || len(ents) != 0 {
		t.Errorf("d under the kernel's overlayfs (userxattr): %v, %v; want empty", ents, err)
	}
}

// TestOverlayRenameFlagsMatchKernel runs renames with RENAME_EXCHANGE and
// RENAME_NOREPLACE across layers on idmapfs and on the kernel's overlayfs
// (redirect_dir=off), as root with an identity map, and compares each
// result, the merged views and the uppers.
func TestOverlayRenameFlagsMatchKernel(t *testing.T) {
	testutil.RequireFUSE(t)
	base := sharedDir(t)
	lower := filepath.Join(base, "lower")
	buildLower(t, lower, []ovEnt{
		{name: "a", kind: unix.S_IFREG, mode: 0o644, data: "a\n"},
		{name: "b", kind: unix.S_IFREG, mode: 0o600, data: "b\n"},
		{name: "c", kind: unix.S_IFREG, mode: 0o644, data: "c\n"},
		{name: "ld", kind: unix.S_IFDIR, mode: 0o755},
		{name: "ld/x", kind: unix.S_IFREG, mode: 0o644, data: "x\n"},
		{name: "m", kind: unix.S_IFDIR, mode: 0o755},
		{name: "m/y", kind: unix.S_IFREG, mode: 0o644, data: "y\n"},
		{name: "m/z", kind: unix.S_IFREG, mode: 0o644, data: "z\n"},
		{name: "gone", kind: unix.S_IFREG, mode: 0o644, data: "gone\n"},
	})
	type step struct {
		op       string // "exchange", "noreplace", "create", "mkdir", "rm"
		from, to string
	}
	steps := []step{
		{"exchange", "a", "b"},   // two lower files
		{"create", "u1", ""},     // an upper file
		{"exchange", "u1", "a"},  // upper with (copied-up) lower
		{"exchange", "c", "m/y"}, // lower files in different directories
		{"exchange", "ld", "c"},  // a lower directory: EXDEV
		{"exchange", "c", "ld"},  // the same the other way round
		{"mkdir", "ud", ""},      // an upper directory
		{"create", "ud/f", ""},
		{"exchange", "ud", "m/z"},     // into a merged directory: opaque
		{"exchange", "u1", "nothere"}, // ENOENT
		{"noreplace", "b", "c"},       // EEXIST
		{"rm", "gone", ""},            // a whiteout
		{"noreplace", "b", "gone"},    // onto the whiteout
		{"noreplace", "m/y", "m/new"}, // to a new name: whiteout left
		{"exchange", "m", "ud"},       // a merged directory: EXDEV
	}
	run := func(mnt string) string {
		var log strings.Builder
		for _, s := range steps {
			from, to := filepath.Join(mnt, s.from), filepath.Join(mnt, s.to)
			var err error
			switch s.op {
			case "exchange":
				err = unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_EXCHANGE)
			case "noreplace":
				err = unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
			case "create":
				err = os.WriteFile(from, []byte(s.from+"\n"), 0o644)
			case "mkdir":
				err = os.Mkdir(from, 0o755)
			case "rm":
				err = os.Remove(from)
			}
			fmt.Fprintf(&log, "%s %s %s: %v\n", s.op, s.from, s.to, err)
		}
		return log.String()
	}
	before := lowerState(t, lower)

	upper, mnt := filepath.Join(base, "upper"), filepath.Join(base, "idmapfs")
	mkdirs(t, upper, mnt)
	opts := defaultOptions(t)
	opts.IDs = parseIDMap(t, "0:0:65536")
	opts.Lowers, opts.Upper = []string{lower}, upper
	mountIdmapfs(t, "", mnt, opts)
	gotLog := run(mnt)
	gotView := stable(mergedTree(t, mnt, nil, nil))
	gotUpper := stable(upperState(t, upper))

	kupper, kwork, kmnt := filepath.Join(base, "kupper"), filepath.Join(base, "kwork"), filepath.Join(base, "kernel")
	mkdirs(t, kupper, kwork, kmnt)
	kopts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,index=off,metacopy=off", lower, kupper, kwork)
	if err := unix.Mount("overlay", kmnt, "overlay", 0, kopts); err != nil {
		t.Fatalf("mount kernel overlayfs: %v", err)
	}
	t.Cleanup(func() { unmountAll(t, kmnt) })
	wantLog := run(kmnt)
	wantView := stable(mergedTree(t, kmnt, nil, nil))
	wantUpper := stable(upperState(t, kupper))

	t.Logf("results:\n%s", gotLog)
	if gotLog != wantLog {
		t.Errorf("results differ:\nidmapfs:\n%s\nkernel:\n%s", gotLog, wantLog)
	}
	if diff := diffStates(gotView, wantView); len(diff) > 0 {
		t.Errorf("merged views differ (idmapfs, kernel):\n%s", strings.Join(diff, "\n"))
	}
	if diff := diffStates(gotUpper, wantUpper); len(diff) > 0 {
		t.Errorf("uppers differ (idmapfs, kernel):\n%s", strings.Join(diff, "\n"))
	}
	if diff := diffStates(before, lowerState(t, lower)); len(diff) > 0 {
		t.Errorf("the lower changed: %v", diff)
	}
}

// TestOverlayCopyUpParentAttrs: a copy-up adds a name to the upper parent
// behind the kernel's attribute cache; the parent's size and ctime must
// show it at once, as on the kernel's overlayfs.
func TestOverlayCopyUpParentAttrs(t *testing.T) {
	testutil.RequireFUSE(t)
	base := sharedDir(t)
	lower, upper, mnt := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "mnt")
	mkdirs(t, filepath.Join(lower, "d"), upper, mnt)
	if err := os.WriteFile(filepath.Join(lower, "d", "f"), []byte("f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := defaultOptions(t)
	opts.IDs = parseIDMap(t, "0:0:65536")
	opts.Lowers, opts.Upper = []string{lower}, upper
	mountIdmapfs(t, "", mnt, opts)
	var before, after, up unix.Stat_t
	if err := unix.Stat(mnt, &before); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(mnt, "d", "f"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x\n")
	f.Close()
	if err := unix.Stat(mnt, &after); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(upper, &up); err != nil {
		t.Fatal(err)
	}
	if after.Size != up.Size || after.Ctim != up.Ctim {
		t.Errorf("root after the copy-up of d/f: size %d, ctime %v; the upper has %d, %v (before: %d)", after.Size, after.Ctim, up.Size, up.Ctim, before.Size)
	}
}

// TestOverlayReadOnlyUpper: --ro with an upper shows the upper's changes
// and writes nothing at all, not even a work directory.
func TestOverlayReadOnlyUpper(t *testing.T) {
	testutil.RequireFUSE(t)
	base := t.TempDir()
	lower, upper, mnt := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "mnt")
	mkdirs(t, lower, upper, mnt)
	for _, f := range []string{"kept", "deleted"} {
		if err := os.WriteFile(filepath.Join(lower, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mknod(filepath.Join(upper, "deleted"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := defaultOptions(t)
	opts.IDs = parseIDMap(t, "0:0:65536")
	opts.Lowers, opts.Upper, opts.ReadOnly = []string{lower}, upper, true
	mountIdmapfs(t, "", mnt, opts)
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "kept new" {
		t.Errorf("read-only view: %v; want kept new", names)
	}
	if err := os.WriteFile(filepath.Join(mnt, "x"), nil, 0o644); !errorIs(err, unix.EROFS) {
		t.Errorf("create on a read-only mount: %v; want EROFS", err)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 3 {
		t.Errorf("%s holds %d entries after a read-only mount; want lower, upper, mnt only", base, len(ents))
	}
}

// TestOverlayReaddirResume reads a merged directory in small getdents
// steps on one handle while another handle lists it whole and the
// directory changes in between: every name present throughout must come
// exactly once, and a telldir offset must mean the same place on a second
// handle (the kernel's listing cache is shared by all handles of a
// directory, and resumes one handle at offsets another's produced).
func TestOverlayReaddirResume(t *testing.T) {
	testutil.RequireFUSE(t)
	base := t.TempDir()
	lower, upper, mnt := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "mnt")
	mkdirs(t, filepath.Join(lower, "d"), filepath.Join(upper, "d"), mnt)
	const n = 600
	stable := map[string]bool{}
	for i := range n {
		dir := lower
		if i%3 == 0 {
			dir = upper
		}
		name := fmt.Sprintf("f%04d", i)
		if err := os.WriteFile(filepath.Join(dir, "d", name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if i%5 != 0 {
			stable[name] = true // f%5 == 0 are removed during the listing
		}
	}
	opts := defaultOptions(t)
	opts.IDs = parseIDMap(t, "0:0:65536")
	opts.Lowers, opts.Upper = []string{lower}, upper
	mountIdmapfs(t, "", mnt, opts)
	d := filepath.Join(mnt, "d")
	list := func() []string { // a whole listing on a fresh handle: fills the kernel's cache
		t.Helper()
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	list()
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	seen := map[string]int{}
	buf := make([]byte, 512) // a few entries per getdents
	for step := 0; ; step++ {
		nb, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatalf("getdents after %d steps: %v", step, err)
		}
		if nb == 0 {
			break
		}
		_, _, names := unix.ParseDirent(buf[:nb], -1, nil)
		for _, name := range names {
			seen[name]++
		}
		if step%4 == 1 { // change the directory, and let another handle refill the cache
			i := 5 * step
			if i < n {
				if err := os.Remove(filepath.Join(d, fmt.Sprintf("f%04d", i))); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("new%04d", step)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			list()
		}
	}
	for name := range stable {
		if seen[name] != 1 {
			t.Errorf("%s (present throughout) listed %d times", name, seen[name])
		}
	}
	for name, c := range seen {
		if c > 1 {
			t.Errorf("%s listed %d times", name, c)
		}
	}

	// telldir on one handle, seekdir on another: the same place.
	first := list()
	rest := func(fd int) []string {
		var names []string
		for {
			nb, err := unix.Getdents(fd, buf)
			if err != nil {
				t.Fatal(err)
			}
			if nb == 0 {
				return names
			}
			_, _, names = unix.ParseDirent(buf[:nb], -1, names)
		}
	}
	fd1, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd1)
	if _, err := unix.Getdents(fd1, buf); err != nil {
		t.Fatal(err)
	}
	off, err := unix.Seek(fd1, 0, io.SeekCurrent)
	if err != nil {
		t.Fatal(err)
	}
	rest1 := rest(fd1)
	fd2, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd2)
	if _, err := unix.Seek(fd2, off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest2 := rest(fd2)
	if len(rest1) == 0 || len(rest1) >= len(first) || !slices.Equal(rest1, rest2) {
		t.Errorf("after seekdir to the first handle's telldir, a second handle lists %d names, the first %d (of %d)", len(rest2), len(rest1), len(first))
	}
}
