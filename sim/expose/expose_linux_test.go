package expose_test

// Mounted tests: a sedsim drive in process, exposed on a real FUSE mount,
// used through the file as a loop device or dd would use it.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/testutil"
	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/sim/expose"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
)

var sidPIN = hash.PIN(bytes.Repeat([]byte{0x51}, 32))

func admin1() opal.Auth { return opal.Auth{Authority: method.Admin(1), PIN: sidPIN} }

type testCase struct {
	t    *testing.T
	ctx  context.Context
	d    *sim.Drive
	c    *session.Client
	disk *expose.Disk
	mnt  string
	bs   int64
}

// newTestCase creates a drive of cfg in t.TempDir() and exposes it on a
// FUSE mount there; both go away when the test ends.
func newTestCase(t *testing.T, cfg sim.Config) *testCase {
	t.Helper()
	testutil.RequireFUSE(t)
	if cfg.Blocks == 0 {
		cfg.Blocks = 1 << 15 // 16 MiB of 512-byte blocks
	}
	if cfg.MBRSize == 0 {
		cfg.MBRSize = 1 << 20
	}
	if cfg.DataStoreSize == 0 {
		cfg.DataStoreSize = 1 << 20
	}
	base := t.TempDir()
	d, _, err := sim.Create(filepath.Join(base, "drive"), cfg)
	if err != nil {
		t.Fatalf("sim.Create: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	mnt := filepath.Join(base, "mnt")
	// EXPOSE_DEBUG=1 logs every FUSE request.
	debug := os.Getenv("EXPOSE_DEBUG") != ""
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	disk, err := expose.Mount(mnt, d, &expose.Options{Source: "sedsim:test", Debug: debug, Logger: logger})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := disk.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if mounted(t, mnt) {
			unix.Unmount(mnt, unix.MNT_DETACH)
			t.Errorf("%s still mounted after Close", mnt)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return &testCase{
		t: t, ctx: ctx, d: d, c: session.NewClient(d.Transport(), nil),
		disk: disk, mnt: mnt, bs: int64(d.Info().BlockSize),
	}
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(" "+dir+" "))
}

func (tc *testCase) open(flags int) *os.File {
	tc.t.Helper()
	f, err := os.OpenFile(tc.disk.Path(), flags, 0)
	if err != nil {
		tc.t.Fatalf("open: %v", err)
	}
	tc.t.Cleanup(func() { f.Close() })
	return f
}

func (tc *testCase) must(what string, err error) {
	tc.t.Helper()
	if err != nil {
		tc.t.Fatalf("%s: %v", what, err)
	}
}

// owned takes ownership and activates the Locking SP (Admin1 = SID PIN).
func (tc *testCase) owned() {
	tc.t.Helper()
	tc.must("TakeOwnership", opal.TakeOwnership(tc.ctx, tc.c, sidPIN))
	tc.must("Activate", opal.Activate(tc.ctx, tc.c, sidPIN, nil))
}

func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v; want %v", what, err, want)
	}
}

func TestFileShape(t *testing.T) {
	for _, bs := range []uint32{512, 4096} {
		t.Run(map[uint32]string{512: "512", 4096: "4096"}[bs], func(t *testing.T) {
			tc := newTestCase(t, sim.Config{BlockSize: bs, Blocks: 1 << 20 / uint64(bs) * 3})
			fi, err := os.Stat(tc.disk.Path())
			tc.must("stat", err)
			if want := int64(3 << 20); fi.Size() != want || tc.disk.Size() != want {
				t.Errorf("size = %d, Size() = %d; want %d", fi.Size(), tc.disk.Size(), want)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v; want a regular file, 0600", fi.Mode())
			}
			ents, err := os.ReadDir(tc.mnt)
			tc.must("readdir", err)
			if len(ents) != 1 || ents[0].Name() != expose.FileName {
				t.Errorf("directory holds %v; want only %q", ents, expose.FileName)
			}
			if _, err := os.Create(filepath.Join(tc.mnt, "other")); err == nil {
				t.Errorf("creating another file in the mount succeeded")
			}
		})
	}
}

// TestRoundTrip writes through the file and reads back through the file
// and the drive itself: the bytes go through the drive's Read and Write.
func TestRoundTrip(t *testing.T) {
	tc := newTestCase(t, sim.Config{})
	f := tc.open(os.O_RDWR)
	data := pattern(1<<20+4096, 1) // more than one FUSE request
	_, err := f.WriteAt(data, 1<<20)
	tc.must("write", err)
	got := make([]byte, len(data))
	_, err = f.ReadAt(got, 1<<20)
	tc.must("read", err)
	if !bytes.Equal(got, data) {
		t.Fatalf("file read back differs from what was written")
	}
	direct := make([]byte, len(data))
	tc.must("drive read", tc.d.Read((1<<20)/uint64(tc.bs), direct))
	if !bytes.Equal(direct, data) {
		t.Fatalf("the drive holds something else than what was written through the file")
	}
	// And the other way round: what the drive holds is what the file shows.
	other := pattern(8192, 2)
	tc.must("drive write", tc.d.Write(0, other))
	got = make([]byte, len(other))
	_, err = f.ReadAt(got, 0)
	tc.must("read", err)
	if !bytes.Equal(got, other) {
		t.Fatalf("the file shows something else than the drive holds (a stale cache?)")
	}
	tc.must("fsync", f.Sync())
}

// TestUnaligned checks byte-granular reads and writes (read-modify-write
// of partial blocks) against a model of the disk.
func TestUnaligned(t *testing.T) {
	for _, bs := range []uint32{512, 4096} {
		t.Run(map[uint32]string{512: "512", 4096: "4096"}[bs], func(t *testing.T) {
			const size = 1 << 20
			tc := newTestCase(t, sim.Config{BlockSize: bs, Blocks: size / uint64(bs)})
			f := tc.open(os.O_RDWR)
			model := make([]byte, size) // a fresh drive reads as noise
			_, err := f.ReadAt(model, 0)
			tc.must("read", err)
			r := rand.New(rand.NewPCG(uint64(bs), 7))
			check := func(off, n int) {
				t.Helper()
				got := make([]byte, n)
				m, err := f.ReadAt(got, int64(off))
				if err != nil && !(errors.Is(err, io.EOF) && off+m == size) {
					t.Fatalf("read %d bytes at %d: %v", n, off, err)
				}
				if want := model[off:min(off+n, size)]; !bytes.Equal(got[:m], want) {
					t.Fatalf("read %d bytes at %d: got %d bytes differing from the model", n, off, m)
				}
			}
			cases := [][2]int{
				{1, 1}, {int(bs) - 1, 2}, {int(bs) + 3, int(bs) - 6}, {5, 3 * int(bs)},
				{int(bs), int(bs)}, {3, 1}, {0, 1}, {size - 1, 1}, {size - 7, 7}, {2*int(bs) - 1, 1},
			}
			for range 200 {
				off := r.IntN(size)
				cases = append(cases, [2]int{off, 1 + r.IntN(min(size-off, 3*int(bs)+100))})
			}
			for i, c := range cases {
				off, n := c[0], c[1]
				data := pattern(n, uint64(i))
				if _, err := f.WriteAt(data, int64(off)); err != nil {
					t.Fatalf("write %d bytes at %d: %v", n, off, err)
				}
				copy(model[off:], data)
				check(max(off-int(bs), 0), n+2*int(bs))
				check(off, n)
			}
			// The whole disk, through reads of odd sizes.
			for off := 0; off < size; {
				n := 1 + r.IntN(3*int(bs))
				check(off, n)
				off += n
			}
			// Beyond the end: reads end, writes find no space.
			buf := make([]byte, 10)
			if n, err := f.ReadAt(buf, size); n != 0 || !errors.Is(err, io.EOF) {
				t.Errorf("read at the end = %d, %v; want 0, EOF", n, err)
			}
			_, err = f.WriteAt(buf, size)
			wantErrno(t, "write at the end", err, syscall.ENOSPC)
			// os.File.WriteAt drops the count of a short write that
			// ends in an error: ask pwrite(2) itself.
			tail := pattern(10, 99)
			if n, err := unix.Pwrite(int(f.Fd()), tail, size-4); n != 4 || err != nil {
				t.Errorf("pwrite across the end = %d, %v; want 4 bytes written", n, err)
			}
			copy(model[size-4:], tail)
			check(size-2*int(bs), 2*int(bs))
		})
	}
}

// TestLocked: a locked range gives EIO through the file, the rest of the
// disk works, and unlocking brings the data back.
func TestLocked(t *testing.T) {
	tc := newTestCase(t, sim.Config{})
	tc.owned()
	f := tc.open(os.O_RDWR)
	const start, length = 2048, 4096 // blocks: bytes 1 MiB .. 3 MiB
	a := admin1()
	// Each range has its own key: data goes in after the range exists.
	tc.must("SetupRange", opal.SetupRange(tc.ctx, tc.c, a, 1, start, length))
	before := pattern(8<<20, 3)
	_, err := f.WriteAt(before, 0)
	tc.must("write", err)

	tc.must("SetLockEnabled", opal.SetLockEnabled(tc.ctx, tc.c, a, 1, true, true))
	tc.must("lock", opal.SetLockState(tc.ctx, tc.c, a, 1, opal.Locked))

	lo, hi := int64(start*512), int64((start+length)*512)
	buf := make([]byte, 4096)
	for _, off := range []int64{lo, lo + 1, hi - 4096, hi - 1, lo - 10} {
		_, err := f.ReadAt(buf, off)
		wantErrno(t, "read of the locked range", err, syscall.EIO)
		_, err = f.WriteAt(buf, off)
		wantErrno(t, "write to the locked range", err, syscall.EIO)
	}
	// The rest of the disk is as it was and takes writes.
	for _, off := range []int64{0, lo - 4096, hi, 8<<20 - 4096} {
		_, err := f.ReadAt(buf, off)
		tc.must("read outside the locked range", err)
		if !bytes.Equal(buf, before[off:off+4096]) {
			t.Fatalf("data at %d changed", off)
		}
	}
	_, err = f.WriteAt(pattern(4096, 9), hi)
	tc.must("write after the locked range", err)
	copy(before[hi:], pattern(4096, 9))

	// Read-only: reads work, writes do not.
	tc.must("RO", opal.SetLockState(tc.ctx, tc.c, a, 1, opal.ReadOnly))
	_, err = f.ReadAt(buf, lo)
	tc.must("read of the read-only range", err)
	_, err = f.WriteAt(buf, lo)
	wantErrno(t, "write to the read-only range", err, syscall.EIO)

	// Power cycle: LockOnReset (PowerCycle, the default) locks it again.
	tc.d.PowerCycle()
	_, err = f.ReadAt(buf, lo)
	wantErrno(t, "read after a power cycle", err, syscall.EIO)

	res, err := opal.Unlock(tc.ctx, tc.c, a, []uint32{1}, nil)
	tc.must("Unlock", err)
	if res.Exchanges == 0 {
		t.Errorf("Unlock reported no exchanges")
	}
	got := make([]byte, len(before))
	_, err = f.ReadAt(got, 0)
	tc.must("read after unlock", err)
	if i := firstDiff(got, before); i >= 0 {
		t.Fatalf("data differs after lock and unlock, first at byte %d", i)
	}
	_, err = f.WriteAt(buf, lo+1)
	tc.must("write after unlock", err)
}

// TestShadowMBR: while the shadow MBR shows, the start of the file reads
// as the MBR table and refuses writes; after Done it is the media again.
func TestShadowMBR(t *testing.T) {
	tc := newTestCase(t, sim.Config{})
	tc.owned()
	f := tc.open(os.O_RDWR)
	media := pattern(1<<20, 4)
	_, err := f.WriteAt(media, 0)
	tc.must("write", err)
	pba := pattern(64<<10, 5)
	a := admin1()
	tc.must("WriteMBR", opal.WriteMBR(tc.ctx, tc.c, a, 0, pba, nil))
	yes, no := true, false
	tc.must("MBR enable", opal.SetMBRControl(tc.ctx, tc.c, a, opal.MBRSettings{Enable: &yes, Done: &no}))

	got := make([]byte, len(pba))
	_, err = f.ReadAt(got, 0)
	tc.must("read of the shadow", err)
	if !bytes.Equal(got, pba) {
		t.Fatalf("the start of the file is not the MBR table while the shadow shows")
	}
	_, err = f.WriteAt([]byte("x"), 100)
	wantErrno(t, "write to the shadow", err, syscall.EIO)

	tc.must("MBR done", opal.SetMBRControl(tc.ctx, tc.c, a, opal.MBRSettings{Done: &yes}))
	got = make([]byte, len(media))
	_, err = f.ReadAt(got, 0)
	tc.must("read after Done", err)
	if !bytes.Equal(got, media) {
		t.Fatalf("the media under the shadow changed")
	}
}

// TestTruncate: the size is fixed; open(O_TRUNC) changes nothing, as on a
// block device.
func TestTruncate(t *testing.T) {
	tc := newTestCase(t, sim.Config{})
	data := pattern(4096, 6)
	f := tc.open(os.O_RDWR)
	_, err := f.WriteAt(data, 0)
	tc.must("write", err)
	wantErrno(t, "ftruncate", f.Truncate(100), syscall.EINVAL)
	wantErrno(t, "truncate", os.Truncate(tc.disk.Path(), 1<<30), syscall.EINVAL)
	g := tc.open(os.O_WRONLY | os.O_TRUNC)
	g.Close()
	fi, err := os.Stat(tc.disk.Path())
	tc.must("stat", err)
	if fi.Size() != tc.disk.Size() {
		t.Fatalf("size after open(O_TRUNC) = %d; want %d", fi.Size(), tc.disk.Size())
	}
	got := make([]byte, len(data))
	_, err = f.ReadAt(got, 0)
	tc.must("read", err)
	if !bytes.Equal(got, data) {
		t.Fatalf("open(O_TRUNC) changed the data")
	}
	if err := os.Chmod(tc.disk.Path(), 0o644); err == nil {
		t.Errorf("chmod succeeded")
	}
}

// TestCloseBusy: Close with the file still open (as a loop device holds
// it) detaches the mount, and the holder gets EIO from then on.
func TestCloseBusy(t *testing.T) {
	tc := newTestCase(t, sim.Config{})
	f := tc.open(os.O_RDWR)
	buf := make([]byte, 512)
	_, err := f.ReadAt(buf, 0)
	tc.must("read", err)
	tc.must("Close", tc.disk.Close())
	if mounted(t, tc.mnt) {
		t.Fatalf("still mounted after Close")
	}
	_, err = f.ReadAt(buf, 0)
	if err == nil {
		t.Fatalf("read through a closed exposure succeeded")
	}
	f.Close()
	select {
	case <-tc.disk.Unmounted():
	case <-time.After(10 * time.Second):
		t.Fatalf("Unmounted not closed 10s after the last user went away")
	}
}

// TestMountpoint: a file or a live mount in the way is refused; a missing
// directory is created.
func TestMountpoint(t *testing.T) {
	tc := newTestCase(t, sim.Config{})
	if _, err := expose.Mount(tc.mnt, tc.d, nil); err == nil {
		t.Fatalf("a second Mount on a mounted directory succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	tc.must("create", os.WriteFile(file, nil, 0o600))
	if _, err := expose.Mount(file, tc.d, nil); err == nil {
		t.Fatalf("Mount on a regular file succeeded")
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	disk, err := expose.Mount(dir, tc.d, nil)
	tc.must("Mount on a missing directory", err)
	tc.must("Close", disk.Close())
	tc.must("Close again", disk.Close())
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestConcurrentPartialWrites: writers patching different bytes of the
// same blocks at once lose none of each other's bytes (the read, patch
// and write-back of a partial block is not interleaved with another).
func TestConcurrentPartialWrites(t *testing.T) {
	tc := newTestCase(t, sim.Config{})
	const writers, chunk, rounds = 4, 100, 200
	f := tc.open(os.O_RDWR)
	model := make([]byte, writers*chunk*rounds)
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			var err error
			for r := range rounds {
				off := (r*writers + w) * chunk // neighbours share 512-byte blocks
				data := pattern(chunk, uint64(off))
				if _, err = f.WriteAt(data, int64(off)); err != nil {
					break
				}
			}
			errs <- err
		}()
		for r := range rounds {
			off := (r*writers + w) * chunk
			copy(model[off:], pattern(chunk, uint64(off)))
		}
	}
	for range writers {
		tc.must("write", <-errs)
	}
	got := make([]byte, len(model))
	_, err := f.ReadAt(got, 0)
	tc.must("read", err)
	if i := firstDiff(got, model); i >= 0 {
		t.Fatalf("byte %d lost its write (concurrent partial writes interleaved)", i)
	}
}
