package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/testutil"
)

// The tree every test image holds.
var (
	helloData = []byte("hello, image\n")
	blobData  = func() []byte { // incompressible, so images have real size
		b := make([]byte, 300<<10)
		x := uint64(88172645463325252)
		for i := range b {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b[i] = byte(x)
		}
		return b
	}()
)

// requireTool skips (or, under CI, fails) when an image builder is missing.
func requireTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("needs %s (Debian package %s; scripts/deps.sh installs it)", tool, pkg)
		}
		t.Skipf("needs %s (apt-get install %s)", tool, pkg)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// buildImage makes an image of fstype in a fresh temp dir holding hello.txt,
// sub/blob.bin and link -> hello.txt.
func buildImage(t *testing.T, fstype string) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), helloData, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "sub", "blob.bin"), blobData, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hello.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, fstype+".img")
	switch fstype {
	case Squashfs:
		requireTool(t, "mksquashfs", "squashfs-tools")
		run(t, "mksquashfs", src, img, "-noappend", "-quiet", "-no-progress")
	case EROFS:
		requireTool(t, "mkfs.erofs", "erofs-utils")
		run(t, "mkfs.erofs", "--quiet", img, src)
	case Ext4:
		requireTool(t, "mkfs.ext4", "e2fsprogs")
		run(t, "mkfs.ext4", "-q", "-F", "-d", src, img, "4M")
	default:
		t.Fatalf("buildImage(%q): unknown type", fstype)
	}
	return img
}

// boundTo lists the loop devices whose backing file is path.
func boundTo(t *testing.T, path string) []string {
	t.Helper()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		real = path
	}
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var devs []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // unbound between Glob and ReadFile
		}
		bf := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if bf == real || bf == path {
			devs = append(devs, filepath.Base(filepath.Dir(filepath.Dir(f))))
		}
	}
	return devs
}

// assertUnbound fails t if a loop device is still bound to path.
func assertUnbound(t *testing.T, path string) {
	t.Helper()
	if devs := boundTo(t, path); len(devs) > 0 {
		t.Errorf("loop devices %v still bound to %s; want none", devs, path)
	}
}

// attachT attaches path and, in t.Cleanup, closes the Image and checks
// that its loop device is free again.
func attachT(t *testing.T, path string, opts Options) *Image {
	t.Helper()
	im, err := Attach(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Attach(%s) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := im.Close(); err != nil {
			t.Errorf("Close(%s) = %v", path, err)
		}
		assertUnbound(t, path)
	})
	return im
}

// readAt reads name relative to dirfd, never following a symlink.
func readAt(t *testing.T, dirfd int, name string) []byte {
	t.Helper()
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		t.Fatalf("openat(root, %q) = %v", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

func fileSHA(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := openNoatime(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// ageTimes sets atime 48 h and mtime 47 h in the past, so that any read
// through an ordinary open would update atime even under relatime.
func ageTimes(t *testing.T, path string) {
	t.Helper()
	now := time.Now()
	if err := os.Chtimes(path, now.Add(-48*time.Hour), now.Add(-47*time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// pristine records an image's checksum and timestamps; check fails t if
// either changed since.
type pristine struct {
	path  string
	sum   [32]byte
	times fileTimes
}

func record(t *testing.T, path string) pristine {
	t.Helper()
	sum := fileSHA(t, path)
	ageTimes(t, path)
	return pristine{path, sum, statTimes(t, path)}
}

func (p pristine) check(t *testing.T) {
	t.Helper()
	if got := statTimes(t, p.path); got != p.times {
		t.Errorf("%s times changed: %+v; want %+v", p.path, got, p.times)
	}
	if got := fileSHA(t, p.path); got != p.sum {
		t.Errorf("%s sha256 changed: %x; want %x", p.path, got, p.sum)
	}
}

func TestAttach(t *testing.T) {
	for _, fstype := range []string{Squashfs, EROFS, Ext4} {
		for _, dio := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dio=%v", fstype, dio), func(t *testing.T) {
				img := buildImage(t, fstype)
				before := record(t, img)

				im := attachT(t, img, Options{DirectIO: dio})
				if im.Type() != fstype {
					t.Errorf("Type() = %q; want %q", im.Type(), fstype)
				}
				if devs := boundTo(t, img); len(devs) != 1 || "/dev/"+devs[0] != im.Device() {
					t.Errorf("loop devices bound to %s = %v; want just %s", img, devs, im.Device())
				}
				checkLoopSysfs(t, im, dio)
				checkContents(t, im)
				checkReadOnly(t, im)

				if err := im.Close(); err != nil {
					t.Fatalf("Close() = %v", err)
				}
				if err := im.Close(); err != nil {
					t.Errorf("second Close() = %v; want nil", err)
				}
				assertUnbound(t, img)
				before.check(t)
				checkAtimeControl(t, img)
			})
		}
	}
}

// checkLoopSysfs checks the loop device's settings as the kernel shows them.
func checkLoopSysfs(t *testing.T, im *Image, dio bool) {
	t.Helper()
	dev := filepath.Base(im.Device())
	want := map[string]string{"ro": "1", "loop/autoclear": "1", "loop/partscan": "0"}
	if dio {
		want["loop/dio"] = "1"
	}
	for attr, w := range want {
		b, err := os.ReadFile(filepath.Join("/sys/block", dev, attr))
		if got := strings.TrimSpace(string(b)); err != nil || got != w {
			t.Errorf("/sys/block/%s/%s = %q, %v; want %q", dev, attr, got, err, w)
		}
	}
}

func checkContents(t *testing.T, im *Image) {
	t.Helper()
	root := im.Root()
	if got := readAt(t, root, "hello.txt"); !bytes.Equal(got, helloData) {
		t.Errorf("hello.txt = %q; want %q", got, helloData)
	}
	if got := readAt(t, root, "sub/blob.bin"); !bytes.Equal(got, blobData) {
		t.Errorf("sub/blob.bin: %d bytes, differs from the %d written", len(got), len(blobData))
	}
	buf := make([]byte, 64)
	n, err := unix.Readlinkat(root, "link", buf)
	if err != nil || string(buf[:n]) != "hello.txt" {
		t.Errorf("readlinkat(link) = %q, %v; want hello.txt", buf[:n], err)
	}
	if got, err := os.ReadFile(im.Path() + "/hello.txt"); err != nil || !bytes.Equal(got, helloData) {
		t.Errorf("ReadFile(%s/hello.txt) = %q, %v; want %q", im.Path(), got, err, helloData)
	}
}

func checkReadOnly(t *testing.T, im *Image) {
	t.Helper()
	root := im.Root()
	writes := []struct {
		name string
		do   func() error
	}{
		{"open for writing", func() error {
			fd, err := unix.Openat(root, "hello.txt", unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
		{"create", func() error {
			fd, err := unix.Openat(root, "new.txt", unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
		{"mkdir", func() error { return unix.Mkdirat(root, "newdir", 0o755) }},
		{"unlink", func() error { return unix.Unlinkat(root, "hello.txt", 0) }},
		{"rename", func() error { return unix.Renameat(root, "hello.txt", root, "moved.txt") }},
		{"chmod", func() error { return unix.Fchmodat(root, "hello.txt", 0o777, 0) }},
		{"utimes", func() error { return unix.UtimesNanoAt(root, "hello.txt", make([]unix.Timespec, 2), 0) }},
	}
	for _, w := range writes {
		if err := w.do(); !errors.Is(err, unix.EROFS) {
			t.Errorf("%s in the image = %v; want EROFS", w.name, err)
		}
	}
}

// checkAtimeControl shows the timestamp check can fail: an ordinary read of
// the aged image does move its atime (unless its filesystem is noatime).
func checkAtimeControl(t *testing.T, img string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(img, &st); err != nil {
		t.Fatal(err)
	}
	if st.Flags&unix.ST_NOATIME != 0 {
		return
	}
	before := statTimes(t, img)
	if _, err := os.ReadFile(img); err != nil {
		t.Fatal(err)
	}
	if statTimes(t, img).Atime == before.Atime {
		t.Errorf("control: a plain read of %s left its 48 h old atime alone; the atime checks prove nothing", img)
	}
}

// TestAttachExt4DirtyJournal attaches an ext4 image whose journal holds a
// committed transaction that was never replayed: noload must leave it so.
func TestAttachExt4DirtyJournal(t *testing.T) {
	img := buildImage(t, Ext4)
	requireTool(t, "debugfs", "e2fsprogs")
	dir := filepath.Dir(img)
	block := bytes.Repeat([]byte("JOURNALED BLOCK "), 1024/16)
	if err := os.WriteFile(filepath.Join(dir, "block"), block, 0o644); err != nil {
		t.Fatal(err)
	}
	cmds := filepath.Join(dir, "cmds")
	if err := os.WriteFile(cmds, []byte("jo\njw -b 300 "+filepath.Join(dir, "block")+"\njc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "debugfs", "-w", "-f", cmds, img)
	if !ext4NeedsRecovery(t, img) {
		t.Fatalf("debugfs did not leave %s with needs_recovery set", img)
	}
	before := record(t, img)

	im := attachT(t, img, Options{})
	checkContents(t, im)
	checkReadOnly(t, im)
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	assertUnbound(t, img)
	before.check(t)
	if !ext4NeedsRecovery(t, img) {
		t.Errorf("%s: needs_recovery was cleared: the journal was replayed", img)
	}
}

func ext4NeedsRecovery(t *testing.T, img string) bool {
	t.Helper()
	f, err := openNoatime(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4)
	if _, err := f.ReadAt(b, extSuperOff+extOffIncompat); err != nil {
		t.Fatal(err)
	}
	const incompatRecover = 0x4 // EXT4_FEATURE_INCOMPAT_RECOVER
	return binary.LittleEndian.Uint32(b)&incompatRecover != 0
}

func TestAttachBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	random, _ := writeTestFile(t, dir, "random.img", 1<<20)

	sq := buildImage(t, Squashfs)
	sqData, err := os.ReadFile(sq)
	if err != nil {
		t.Fatal(err)
	}
	truncated := write("truncated.img", sqData[:len(sqData)/2])
	// Keep the superblock, zero everything after it: the tables it points
	// to are garbage, which only the kernel can notice.
	corrupt := append(append([]byte(nil), sqData[:sqSuperSize]...), make([]byte, len(sqData)-sqSuperSize)...)
	corruptPath := write("corrupt.img", corrupt)
	ext := buildImage(t, Ext4)
	extData, err := os.ReadFile(ext)
	if err != nil {
		t.Fatal(err)
	}
	extTrunc := write("ext4-truncated.img", extData[:1<<20])

	tests := []struct {
		name    string
		path    string
		opts    Options
		wantErr string
		wantIs  error
	}{
		{"missing", filepath.Join(dir, "missing.img"), Options{}, "missing.img", os.ErrNotExist},
		{"directory", dir, Options{}, dir + ": is a directory; pass it as a directory lower", nil},
		{"empty", write("empty.img", nil), Options{}, "empty.img: empty file, not a squashfs, erofs or ext4 image", ErrUnknownType},
		{"random", random, Options{}, "random.img: not a squashfs, erofs or ext4 image", ErrUnknownType},
		{"text", write("foo.img", []byte("hello\n")), Options{}, "foo.img: not a squashfs, erofs or ext4 image", ErrUnknownType},
		{"truncated squashfs", truncated, Options{}, "truncated.img: truncated: its squashfs superblock says it spans", nil},
		{"truncated ext4", extTrunc, Options{}, "ext4-truncated.img: truncated: its ext4 superblock says it spans 4194304 bytes but the file has 1048576", nil},
		{"corrupt squashfs", corruptPath, Options{}, "corrupt.img: mount squashfs from /dev/loop", nil},
		{"wrong type", sq, Options{Type: Ext4}, "is a squashfs image, not ext4", nil},
		{"bad block size", sq, Options{BlockSize: 3000}, "block size 3000", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, err := Attach(context.Background(), tt.path, tt.opts)
			if err == nil {
				im.Close()
				t.Fatalf("Attach(%s) = nil error; want %q", tt.path, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Attach(%s) = %v; want error containing %q", tt.path, err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Attach(%s) = %v; want errors.Is %v", tt.path, err, tt.wantIs)
			}
			t.Logf("%s: %v", tt.name, err)
			assertUnbound(t, tt.path)
		})
	}

	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Attach(ctx, sq, Options{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Attach(canceled) = %v; want context.Canceled", err)
		}
		assertUnbound(t, sq)
	})
}

// TestAttachConcurrent attaches one image many times at once, so the
// goroutines race for the same free loop device and must retry on EBUSY.
func TestAttachConcurrent(t *testing.T) {
	img := buildImage(t, Squashfs)
	before := record(t, img)
	const n = 6
	ims := make([]*Image, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ims[i], errs[i] = Attach(context.Background(), img, Options{})
		}()
	}
	wg.Wait()
	t.Logf("LOOP_CONFIGURE lost %d races (EBUSY) so far", busyRetries.Load())
	devs := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Attach #%d = %v", i, errs[i])
			continue
		}
		if devs[ims[i].Device()] {
			t.Errorf("Attach #%d got %s twice", i, ims[i].Device())
		}
		devs[ims[i].Device()] = true
		if got := readAt(t, ims[i].Root(), "hello.txt"); !bytes.Equal(got, helloData) {
			t.Errorf("#%d hello.txt = %q", i, got)
		}
	}
	for i := range n {
		if ims[i] != nil {
			if err := ims[i].Close(); err != nil {
				t.Errorf("Close #%d = %v", i, err)
			}
		}
	}
	assertUnbound(t, img)
	before.check(t)
}

// TestCloseWhileInUse: a file of the image still open after Close keeps the
// mount and the loop device; closing it frees both (autoclear).
func TestCloseWhileInUse(t *testing.T) {
	img := buildImage(t, EROFS)
	im := attachT(t, img, Options{})
	fd, err := unix.Openat(im.Root(), "hello.txt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if devs := boundTo(t, img); len(devs) != 1 {
		t.Errorf("after Close with a file open: bound to %v; want still one device", devs)
	}
	buf := make([]byte, 64)
	if n, err := unix.Pread(fd, buf, 0); err != nil || !bytes.Equal(buf[:n], helloData) {
		t.Errorf("pread after Close = %q, %v; want %q", buf[:n], err, helloData)
	}
	unix.Close(fd)
	deadline := time.Now().Add(5 * time.Second)
	for len(boundTo(t, img)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assertUnbound(t, img)
}
