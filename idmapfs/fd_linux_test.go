package idmapfs_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestFdEviction walks a tree much larger than the descriptor budget
// through the mount: idle node descriptors are closed and reopened by name
// on demand, also after a rename through the mount, and never follow a
// symlink swapped in behind the mount's back.
func TestFdEviction(t *testing.T) {
	src := sharedDir(t)
	outside := sharedDir(t)
	mnt := filepath.Join(sharedDir(t), "mnt")
	mkdirs(t, mnt)
	const dirs, files = 3, 400
	for d := 0; d < dirs; d++ {
		dir := filepath.Join(src, fmt.Sprintf("d%d", d))
		mkdirs(t, dir, filepath.Join(outside, fmt.Sprintf("d%d", d)))
		for i := 0; i < files; i++ {
			name := fmt.Sprintf("f%d", i)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, fmt.Sprintf("d%d", d), name), []byte("OUTSIDE"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	opts := defaultOptions(t)
	opts.IDs = parseIDMap(t, "0:100000:65536,65536:0:1")
	opts.MaxFds = 200
	fsys := mountIdmapfs(t, src, mnt, opts)

	readAll := func(dir string) {
		t.Helper()
		for i := 0; i < files; i++ {
			name := fmt.Sprintf("f%d", i)
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatalf("read %s/%s: %v", dir, name, err)
			}
			if !bytes.Equal(got, []byte(name)) {
				t.Fatalf("read %s/%s = %q; want %q", dir, name, got, name)
			}
		}
	}
	for d := 0; d < dirs; d++ {
		readAll(filepath.Join(mnt, fmt.Sprintf("d%d", d)))
	}
	waitFds := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for fsys.OpenFds() > 200 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := fsys.OpenFds(); n > 200 {
			t.Fatalf("%d node descriptors open; want at most 200", n)
		}
	}
	waitFds()

	// Every file again: most nodes now reopen by name (the kernel still
	// caches their entries and attributes, so stat the files through
	// open, which always reaches the daemon).
	readAll(filepath.Join(mnt, "d1"))
	waitFds()

	// A rename through the mount: go-fuse moves the node, and a reopen
	// uses the new name.
	if err := os.Rename(filepath.Join(mnt, "d0"), filepath.Join(mnt, "moved")); err != nil {
		t.Fatal(err)
	}
	readAll(filepath.Join(mnt, "moved"))

	// Behind the mount's back, d2 becomes a symlink to a directory outside
	// SOURCE. Reopening d2's evicted nodes by name must not follow it.
	readAll(filepath.Join(mnt, "d2")) // cache d2's entries in the kernel
	for i := 0; i < 3; i++ {
		readAll(filepath.Join(mnt, "d1")) // push d2's nodes out
	}
	if err := os.Rename(filepath.Join(src, "d2"), filepath.Join(src, "d2-real")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "d2"), filepath.Join(src, "d2")); err != nil {
		t.Fatal(err)
	}
	if fsys.EvictIdle() == 0 {
		t.Fatal("EvictIdle closed no descriptor")
	}
	// The reader runs in its own mount namespace with an empty tmpfs over
	// the outside directory: should the kernel re-look d2 up and follow
	// the symlink on the caller's side (which is what a symlink in SOURCE
	// is for), it finds nothing there. Only the daemon acting outside
	// SOURCE could produce the outside content.
	script := fmt.Sprintf("mount -t tmpfs none %s && for i in $(seq 0 %d); do cat %s/d2/f$i 2>/dev/null; echo; done", outside, files-1, mnt)
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("reader: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("OUTSIDE")) {
		t.Fatalf("read through a swapped-in symlink reached outside SOURCE")
	}
}
