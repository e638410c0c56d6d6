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
