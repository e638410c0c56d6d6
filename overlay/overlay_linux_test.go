package overlay

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// buildLowers fills two lowers (l.lowers[0] on top) with every case the
// merge rules distinguish.
func buildLowers(t *testing.T, l *layers) {
	t.Helper()
	top, bottom := l.lowers[0], l.lowers[1]
	// bottom layer
	writeFile(t, filepath.Join(bottom, "a.txt"), "a from bottom")
	writeFile(t, filepath.Join(bottom, "dir/x"), "x")
	writeFile(t, filepath.Join(bottom, "dir/y"), "y")
	writeFile(t, filepath.Join(bottom, "dir/sub/deep"), "deep")
	writeFile(t, filepath.Join(bottom, "gone.txt"), "gone")
	writeFile(t, filepath.Join(bottom, "moved.txt"), "moved")
	writeFile(t, filepath.Join(bottom, "replaced/old1"), "old1")
	writeFile(t, filepath.Join(bottom, "replaced/old2"), "old2")
	writeFile(t, filepath.Join(bottom, "shadow/s"), "s")
	writeFile(t, filepath.Join(bottom, "hidden.txt"), "hidden")
	writeFile(t, filepath.Join(bottom, "opq/lowfile"), "low")
	writeFile(t, filepath.Join(bottom, "perm.txt"), "perm")
	if err := os.Chown(filepath.Join(bottom, "perm.txt"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(bottom, "perm.txt"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(bottom, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(bottom, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeSparse(t, filepath.Join(bottom, "sparse"), 8<<20, 0, 4<<20)
	lsetxattr(t, filepath.Join(bottom, "dir/x"), "user.lower", []byte("1"))
	// top layer
	writeFile(t, filepath.Join(top, "a.txt"), "a from top")
	writeFile(t, filepath.Join(top, "dir/z"), "z")
	writeFile(t, filepath.Join(top, "shadow"), "a file over a directory")
	mknodWhiteout(t, filepath.Join(top, "hidden.txt"))
	writeFile(t, filepath.Join(top, "opq/topfile"), "top")
	lsetxattr(t, filepath.Join(top, "opq"), l.prefix()+"opaque", []byte("y"))
	writeFile(t, filepath.Join(top, "only1/f"), "f")
}

// kernelChanges makes changes through the kernel's overlay mount.
func kernelChanges(t *testing.T, m string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(m, "gone.txt")))                              // whiteout
	must(os.Rename(filepath.Join(m, "moved.txt"), filepath.Join(m, "moved2"))) // RENAME_WHITEOUT
	must(os.Remove(filepath.Join(m, "dir/z")))                                 // whiteout in a copied-up dir
	must(os.RemoveAll(filepath.Join(m, "replaced")))                           // whiteout of a dir
	must(os.Mkdir(filepath.Join(m, "replaced"), 0o750))                        // opaque dir
	must(os.WriteFile(filepath.Join(m, "replaced/new"), []byte("new"), 0o644)) // in the opaque dir
	f, err := os.OpenFile(filepath.Join(m, "dir/sub/deep"), os.O_WRONLY|os.O_APPEND, 0)
	must(err)
	_, err = f.WriteString(" and more")
	must(err)
	must(f.Close())                                                            // copy-up with ancestors
	must(os.Chmod(filepath.Join(m, "perm.txt"), 0o600))                        // metadata copy-up
	must(os.Lchown(filepath.Join(m, "a.txt"), 42, 43))                         // from the top lower
	must(unix.Setxattr(filepath.Join(m, "dir/x"), "user.x", []byte("set"), 0)) // xattr copy-up
	must(unix.Setxattr(filepath.Join(m, "dir/y"), "system.posix_acl_access", aclXattr(1000), 0))
	must(os.WriteFile(filepath.Join(m, "new.txt"), []byte("new file"), 0o600))
	must(os.MkdirAll(filepath.Join(m, "newdir/inner"), 0o700))
	must(os.Symlink("dir/x", filepath.Join(m, "newlink")))
	must(os.Lchown(filepath.Join(m, "link"), 7, 8))      // symlink copy-up
	must(os.Chmod(filepath.Join(m, "fifo"), 0o644))      // fifo copy-up
	must(os.Truncate(filepath.Join(m, "sparse"), 6<<20)) // sparse copy-up
}

// TestKernelUpperReadByStack: an upper written by the kernel's overlayfs
// shows the same tree through Stack as through the kernel.
func TestKernelUpperReadByStack(t *testing.T) {
	for _, user := range []bool{false, true} {
		name := "trusted"
		if user {
			name = "userxattr"
		}
		t.Run(name, func(t *testing.T) {
			l := newLayers(t, 2, user)
			buildLowers(t, l)
			unmount := l.mountKernel(t)
			kernelChanges(t, l.mnt)
			want := walkPath(t, l.mnt)
			unmount()

			// The kernel wrote what we expect to be reading.
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(l.upper, "gone.txt"), &st); err != nil || !isWhiteout(&st) {
				t.Fatalf("kernel left no whiteout for gone.txt in the upper (%v)", err)
			}
			if v, err := unix.Lgetxattr(filepath.Join(l.upper, "replaced"), l.prefix()+"opaque", make([]byte, 8)); err != nil || v != 1 {
				t.Fatalf("kernel did not make replaced/ opaque: %v", err)
			}

			s := l.openStack(t)
			got := walkStack(t, s)
			compareTrees(t, "kernel overlayfs", want, "Stack", got)
		})
	}
}

// stackChanges makes, with Stack, the changes kernelChanges makes through
// the kernel (those that need no FUSE-level logic).
func stackChanges(t *testing.T, s *Stack) {
	t.Helper()
	root, err := s.Root()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	upperRoot := root.Dirs[0].Fd
	lookup := func(parent *Entry, name string) *Entry {
		t.Helper()
		e, err := s.Lookup(parent, name)
		if err != nil {
			t.Fatalf("Lookup(%q) = %v; want an entry", name, err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	copyUp := func(path ...*Entry) {
		t.Helper()
		if err := s.CopyUp(path); err != nil {
			t.Fatalf("CopyUp(%q) = %v", path[len(path)-1].Name, err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Whiteout(upperRoot, "gone.txt"))
	// rename moved.txt -> moved2: copy-up, rename, whiteout
	moved := lookup(root, "moved.txt")
	copyUp(root, moved)
	must(unix.Renameat(upperRoot, "moved.txt", upperRoot, "moved2"))
	must(s.Whiteout(upperRoot, "moved.txt"))
	dir := lookup(root, "dir")
	copyUp(root, dir)
	must(s.Whiteout(dir.Dirs[0].Fd, "z"))
	// rm -r replaced; mkdir replaced
	must(s.Whiteout(upperRoot, "replaced"))
	must(unix.Mkdirat(s.workFd, "newdir.tmp", 0o750))
	tmpFd, err := openat(s.workFd, "newdir.tmp", unix.O_PATH|unix.O_DIRECTORY, 0)
	must(err)
	must(s.MakeOpaque(tmpFd))
	unix.Close(tmpFd)
	must(unix.Renameat2(s.workFd, "newdir.tmp", upperRoot, "replaced", unix.RENAME_EXCHANGE))
	must(unix.Unlinkat(s.workFd, "newdir.tmp", 0))
	writeFile(t, filepath.Join(procFd(upperRoot), "replaced/new"), "new")
	// append to dir/sub/deep
	sub := lookup(dir, "sub")
	deep := lookup(sub, "deep")
	copyUp(root, dir, sub, deep)
	f, err := s.Open(deep, os.O_WRONLY|os.O_APPEND)
	must(err)
	_, err = f.WriteString(" and more")
	must(err)
	must(f.Close())
	perm := lookup(root, "perm.txt")
	copyUp(root, perm)
	must(unix.Fchmodat(upperRoot, "perm.txt", 0o600, 0))
	a := lookup(root, "a.txt")
	copyUp(root, a)
	must(unix.Fchownat(upperRoot, "a.txt", 42, 43, unix.AT_SYMLINK_NOFOLLOW))
	x := lookup(dir, "x")
	copyUp(root, dir, x)
	must(setxattr(x.Fd, "user.x", []byte("set"), 0))
	y := lookup(dir, "y")
	copyUp(root, dir, y)
	must(setxattr(y.Fd, "system.posix_acl_access", aclXattr(1000), 0))
	must(unix.Fchmodat(dir.Dirs[0].Fd, "y", 0o644, 0)) // what setting this ACL does to the mode
	writeFile(t, filepath.Join(procFd(upperRoot), "new.txt"), "new file")
	must(os.Chmod(filepath.Join(procFd(upperRoot), "new.txt"), 0o600))
	must(os.MkdirAll(filepath.Join(procFd(upperRoot), "newdir/inner"), 0o700))
	must(os.Chmod(filepath.Join(procFd(upperRoot), "newdir"), 0o700))
	must(unix.Symlinkat("dir/x", upperRoot, "newlink"))
	link := lookup(root, "link")
	copyUp(root, link)
	must(unix.Fchownat(upperRoot, "link", 7, 8, unix.AT_SYMLINK_NOFOLLOW))
	fifo := lookup(root, "fifo")
	copyUp(root, fifo)
	must(unix.Fchmodat(upperRoot, "fifo", 0o644, 0))
	sparse := lookup(root, "sparse")
	copyUp(root, sparse)
	must(unix.Truncate(filepath.Join(procFd(sparse.Fd)), 6<<20))
}

// TestStackUpperReadByKernel: an upper written by Stack shows the same tree
// through the kernel's overlayfs as through Stack.
func TestStackUpperReadByKernel(t *testing.T) {
	for _, user := range []bool{false, true} {
		name := "trusted"
		if user {
			name = "userxattr"
		}
		t.Run(name, func(t *testing.T) {
			l := newLayers(t, 2, user)
			buildLowers(t, l)
			before := map[string]map[string]string{}
			for _, p := range l.lowers {
				before[p] = lowerSnapshot(t, p)
			}
			s := l.openStack(t)
			stackChanges(t, s)
			want := walkStack(t, s)
			for _, p := range l.lowers {
				compareSnapshots(t, p, before[p], lowerSnapshot(t, p))
			}

			l.mountKernel(t)
			got := walkPath(t, l.mnt)
			compareTrees(t, "Stack", want, "kernel overlayfs", got)
		})
	}
}

func compareSnapshots(t *testing.T, dir string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a := after[p]; a != b {
			t.Errorf("lower %s: %q changed:\n  before: %s\n  after:  %s", dir, p, b, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("lower %s: %q appeared", dir, p)
		}
	}
}
