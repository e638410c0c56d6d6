package idmapfs_test

import (
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/shiftlock/shiftlock/idmapfs"
	"github.com/shiftlock/shiftlock/internal/testutil"
)

// posixSkips lists posixtest cases that idmapfs must not pass, with the
// reason.
var posixSkips = map[string]string{
	// The case takes a write lock and then a read lock on the same file
	// from the same process through two descriptors and expects EAGAIN.
	// POSIX record locks belong to the process, so the second F_SETLK
	// converts the first lock and succeeds: that is what the kernel does on
	// a local filesystem (the case fails the same way on a plain ext4 or
	// tmpfs directory) and on idmapfs, which leaves POSIX locks to the
	// kernel. Only go-fuse's loopback, which takes OFD locks on its own
	// backing descriptors, gives EAGAIN.
	"FcntlFlockLocksFile": "expects per-descriptor (OFD) semantics from F_SETLK; POSIX locks are per process (fails on a local filesystem too)",
}

// TestPosix runs go-fuse's posixtest suite against idmapfs in each I/O
// mode. The test process is host root, which the usual test map leaves
// unmapped (it could create nothing), so the map also gives host root a
// disk id: disk 100000 is host 0.
func TestPosix(t *testing.T) {
	testutil.RequireFUSE(t)
	modes := []struct {
		name string
		set  func(*idmapfs.Options)
	}{
		{"passthrough", func(*idmapfs.Options) {}},
		{"writeback", func(o *idmapfs.Options) { o.Writeback = true }},
		{"nopassthrough", func(o *idmapfs.Options) { o.NoPassthrough = true }},
	}
	names := slices.Sorted(maps.Keys(posixtest.All))
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			src, mnt := t.TempDir(), t.TempDir()
			opts := defaultOptions(t)
			opts.IDs = parseIDMap(t, "0:100000:65536,100000:0:1")
			mode.set(&opts)
			f := mountIdmapfs(t, src, mnt, opts)
			if want := mode.name == "passthrough"; f.Passthrough() != want {
				t.Errorf("Passthrough() = %v; want %v", f.Passthrough(), want)
			}
			for _, name := range names {
				t.Run(name, func(t *testing.T) {
					if why, ok := posixSkips[name]; ok {
						t.Skip(why)
					}
					dir := j(mnt, name)
					if err := os.Mkdir(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					posixtest.All[name](t, dir)
				})
			}
		})
	}
}

// TestReopenWhileOpen opens a file again while an earlier descriptor is
// still open, in each combination of I/O modes idmapfs picks per open: the
// kernel refuses (EIO) to open one inode in passthrough and cached mode at
// once, so idmapfs must not mix them on one inode.
func TestReopenWhileOpen(t *testing.T) {
	testutil.RequireFUSE(t)
	src, mnt := t.TempDir(), t.TempDir()
	opts := defaultOptions(t)
	opts.IDs = parseIDMap(t, "0:100000:65536,100000:0:1")
	mountIdmapfs(t, src, mnt, opts)
	cases := []struct {
		name        string
		mode        os.FileMode
		first, then int
		create      bool
	}{
		// A file created and still open, opened again.
		{name: "created", mode: 0o644, first: os.O_RDWR, then: os.O_RDWR, create: true},
		{name: "created-rdonly", mode: 0o644, first: os.O_RDWR, then: os.O_RDONLY, create: true},
		// A setuid file open for reading (passthrough), then for writing
		// (through the daemon, so that the write clears setuid).
		{name: "setuid", mode: 0o4755, first: os.O_RDONLY, then: os.O_WRONLY},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := j(mnt, c.name)
			if !c.create {
				if err := os.WriteFile(j(src, c.name), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(j(src, c.name), c.mode); err != nil {
					t.Fatal(err)
				}
			}
			flags := c.first
			if c.create {
				flags |= os.O_CREATE | os.O_EXCL
			}
			f1, err := os.OpenFile(p, flags, c.mode)
			if err != nil {
				t.Fatalf("first open: %v", err)
			}
			defer f1.Close()
			f2, err := os.OpenFile(p, c.then, 0)
			if err != nil {
				t.Fatalf("open %s again (flags %#x) while open (flags %#x): %v", c.name, c.then, flags, err)
			}
			f2.Close()
		})
	}
}
