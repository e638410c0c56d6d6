package main

// End-to-end: build sedsim, create and serve a drive with its media
// exposed, put ext4 on it through a loop device, and take it through
// lock, power cycle, unlock and sedsim restarts (clean and kill -9) with the
// host library on the socket, as a user's tools would.

import (
	"bufio"
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
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/testutil"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

// buildSedsim builds the command into a temporary directory.
func buildSedsim(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sedsim")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// requireTools skips t without the programs it runs (fails under CI).
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("needs %s (CI promises it)", n)
			}
			t.Skipf("needs %s", n)
		}
	}
}

// sh runs a program with a deadline and returns its combined output.
func sh(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func mustSh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := sh(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// unmountCleanup unmounts dir when the test ends, lazily as a last resort.
func unmountCleanup(t *testing.T, dir string) {
	t.Cleanup(func() {
		for i := 0; i < 20 && isMounted(t, dir); i++ {
			flags := 0
			if i >= 10 {
				flags = unix.MNT_DETACH
			}
			unix.Unmount(dir, flags)
			time.Sleep(50 * time.Millisecond)
		}
		if isMounted(t, dir) {
			t.Errorf("could not unmount %s", dir)
		}
	})
}

// server is a running "sedsim serve".
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *bytes.Buffer
	mnt    string
	sock   string
}

// serve starts sedsim serve and waits for its ready line. The process is
// killed, and its mount detached, when the test ends if it is still there.
func serve(t *testing.T, bin, state, sock, mnt string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--state", state, "--socket", sock, "--expose", mnt, "--log-level", "warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, done: make(chan struct{}), stderr: new(bytes.Buffer), mnt: mnt, sock: sock}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	unmountCleanup(t, mnt)
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case ready <- sc.Text():
			default:
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(s.done)
	}()
	select {
	case l := <-ready:
		if !strings.HasPrefix(l, "ready: ") {
			t.Fatalf("serve printed %q; want a ready line", l)
		}
	case <-s.done:
		t.Fatalf("serve exited before it was ready: %v\n%s", cmd.ProcessState, s.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve not ready after 60s\n%s", s.stderr)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket after ready: %v, %v; want a 0600 socket", fi, err)
	}
	return s
}

// stop sends sig and waits for the process (at most 30s).
func (s *server) stop(sig syscall.Signal) {
	s.t.Helper()
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		s.t.Fatalf("sedsim serve still running 30s after %v\n%s", sig, s.stderr)
	}
	if sig != syscall.SIGKILL {
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			s.t.Fatalf("sedsim serve exited %d after %v; want 0\n%s", code, sig, s.stderr)
		}
		if isMounted(s.t, s.mnt) {
			s.t.Fatalf("%s still mounted after sedsim serve stopped", s.mnt)
		}
		if _, err := os.Lstat(s.sock); !errors.Is(err, os.ErrNotExist) {
			s.t.Fatalf("socket still there after sedsim serve stopped: %v", err)
		}
	}
}

// attachLoop attaches file to a loop device, with direct I/O if the kernel
// takes it, and detaches it when the test ends.
func attachLoop(t *testing.T, file string) string {
	t.Helper()
	out, err := sh(t, "losetup", "--find", "--show", "--direct-io=on", file)
	if err != nil {
		t.Logf("losetup --direct-io=on refused (%v: %s); attaching with buffered I/O", err, strings.TrimSpace(out))
		out = mustSh(t, "losetup", "--find", "--show", file)
	}
	dev := strings.TrimSpace(out)
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup printed %q", out)
	}
	t.Cleanup(func() { detachLoop(t, dev) })
	return dev
}

func detachLoop(t *testing.T, dev string) {
	t.Helper()
	if out, err := sh(t, "losetup", dev); err != nil || strings.TrimSpace(out) == "" {
		return // already detached
	}
	if out, err := sh(t, "losetup", "-d", dev); err != nil {
		t.Errorf("losetup -d %s: %v %s", dev, err, out)
	}
}

// readDirect reads 4 KiB at off from path with O_DIRECT (no page cache).
func readDirect(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	_, err = f.ReadAt(buf, off)
	return err
}

type host struct {
	t   *testing.T
	ctx context.Context
	c   *session.Client
}

// connect opens a host-side client on the socket.
func connect(t *testing.T, sock string) *host {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	conn, err := opalwire.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &host{t: t, ctx: ctx, c: session.NewClient(conn, nil)}
}

func (h *host) must(what string, err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
}

var e2eSID = hash.PIN("e2e-sid-password-0123456789abcde")

func e2eAdmin1() opal.Auth { return opal.Auth{Authority: method.Admin(1), PIN: e2eSID} }

func (h *host) unlock() {
	h.t.Helper()
	res, err := opal.Unlock(h.ctx, h.c, e2eAdmin1(), []uint32{0}, nil)
	h.must("Unlock", err)
	h.t.Logf("unlock: %d exchanges, %d receives", res.Exchanges, res.Receives)
}

// fileSet is what the test writes on the filesystem: name -> sha256.
type fileSet map[string]string

func writeFiles(t *testing.T, dir string) fileSet {
	t.Helper()
	fs := fileSet{}
	for i := range 24 {
		size := 1 << (i % 12 * 2) // 1 byte .. 4 MiB
		if size > 4<<20 {
			size = 4 << 20
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*131 + j*7 + j>>11)
		}
		if i == 0 {
			data = []byte(plaintextMarker)
		}
		name := fmt.Sprintf("dir%d/file%02d", i%3, i)
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fs[name] = hex.EncodeToString(sum[:])
	}
	return fs
}

func checkFiles(t *testing.T, dir string, want fileSet) {
	t.Helper()
	testutil.CheckSHA256(t, dir, want)
}

// plaintextMarker is a file's content that must never show up in the
// drive's backing files.
const plaintextMarker = "sedsim e2e plaintext marker: if you can read this in the media file, encryption at rest failed"

// mountVerify runs fsck -n on dev, mounts it read-only on dir and checks
// the files, then unmounts.
func mountVerify(t *testing.T, dev, dir string, want fileSet) {
	t.Helper()
	mustSh(t, "blockdev", "--flushbufs", dev) // read through the drive, not old cache
	if out, err := sh(t, "fsck.ext4", "-n", "-f", dev); err != nil {
		t.Fatalf("fsck.ext4 -n -f %s: %v\n%s", dev, err, out)
	}
	mustSh(t, "mount", "-o", "ro", dev, dir)
	checkFiles(t, dir, want)
	mustSh(t, "umount", dir)
}

func TestE2EExt4LockUnlockRestart(t *testing.T) {
	testutil.RequireFUSE(t)
	requireTools(t, "losetup", "mkfs.ext4", "fsck.ext4", "mount", "umount", "blockdev")
	bin := buildSedsim(t)
	base := t.TempDir()
	state, sock := filepath.Join(base, "drive"), filepath.Join(base, "sedsim.sock")
	mnt, fsDir := filepath.Join(base, "expose"), filepath.Join(base, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	unmountCleanup(t, fsDir)

	out := mustSh(t, bin, "create", "--state", state, "--size", "64M", "--try-limit", "5")
	if !strings.Contains(out, "PSID: ") {
		t.Fatalf("create printed %q", out)
	}
	srv := serve(t, bin, state, sock, mnt)
	disk := filepath.Join(mnt, "disk")

	// Ownership, activation, the global range locking on power cycles.
	h := connect(t, sock)
	h.must("TakeOwnership", opal.TakeOwnership(h.ctx, h.c, e2eSID))
	h.must("Activate", opal.Activate(h.ctx, h.c, e2eSID, nil))
	h.must("SetLockEnabled", opal.SetLockEnabled(h.ctx, h.c, e2eAdmin1(), 0, true, true))
	h.must("SetLockOnReset", opal.SetLockOnReset(h.ctx, h.c, e2eAdmin1(), 0, []opal.ResetType{opal.PowerCycle}))

	// ext4 on a loop device over the exposed file.
	dev := attachLoop(t, disk)
	mustSh(t, "mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", dev)
	mustSh(t, "mount", dev, fsDir)
	files := writeFiles(t, fsDir)
	mustSh(t, "sync", "-f", fsDir)
	checkFiles(t, fsDir, files)
	mustSh(t, "umount", fsDir)
	if err := readDirect(dev, 0); err != nil {
		t.Fatalf("direct read of the unlocked loop device: %v", err)
	}

	// Power cycle through the CLI: the global range locks, and the block
	// device gets I/O errors, as from a locked drive.
	mustSh(t, bin, "power-cycle", "--socket", sock)
	for _, p := range []string{dev, disk} {
		for _, off := range []int64{0, 1 << 20, 64<<20 - 4096} {
			if err := readDirect(p, off); !errors.Is(err, syscall.EIO) {
				t.Fatalf("direct read at %d of %s on a locked drive = %v; want EIO", off, p, err)
			}
		}
	}
	if out, err := sh(t, "dd", "if=/dev/zero", "of="+dev, "bs=4096", "count=1", "seek=100", "oflag=direct"); err == nil {
		t.Fatalf("a write to the locked loop device succeeded: %s", out)
	}
	if out, err := sh(t, "mount", "-o", "ro", dev, fsDir); err == nil {
		t.Fatalf("mounting the locked drive succeeded: %s", out)
	}
	if out := mustSh(t, bin, "info", "--socket", sock); !strings.Contains(out, "yes (some range is locked)") {
		t.Errorf("info --socket on the locked drive:\n%s", out)
	}

	// Unlock with the library: everything is back, fsck is clean.
	h = connect(t, sock)
	h.unlock()
	mountVerify(t, dev, fsDir, files)

	// The backing files never hold plaintext.
	for _, name := range []string{"media", "state"} {
		b, err := os.ReadFile(filepath.Join(state, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(plaintextMarker)) {
			t.Fatalf("%s holds a file's plaintext", name)
		}
	}

	// A clean restart (SIGTERM; the loop device is detached first) is a
	// power cycle: the drive comes back locked, with its state.
	detachLoop(t, dev)
	srv.stop(syscall.SIGTERM)
	if out := mustSh(t, bin, "info", "--state", state); !strings.Contains(out, "yes (the SID PIN is not the MSID)") {
		t.Errorf("info --state after stop:\n%s", out)
	}
	srv = serve(t, bin, state, sock, mnt)
	if err := readDirect(disk, 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read after a restart = %v; want EIO (LockOnReset)", err)
	}
	if out := mustSh(t, bin, "info", "--state", state); !strings.Contains(out, "0 (global)  0      131072  locked") {
		t.Errorf("info --state of the restarted drive:\n%s", out)
	}
	h = connect(t, sock)
	h.unlock()
	dev = attachLoop(t, disk)
	mountVerify(t, dev, fsDir, files)

	// Write more, then kill -9 sedsim with the filesystem unmounted and
	// synced: nothing is lost, and serve recovers the dead mount and the
	// stale socket.
	mustSh(t, "mount", dev, fsDir)
	more := writeFiles(t, filepath.Join(fsDir, "more"))
	mustSh(t, "sync", "-f", fsDir)
	mustSh(t, "umount", fsDir)
	detachLoop(t, dev)
	srv.stop(syscall.SIGKILL)
	srv = serve(t, bin, state, sock, mnt)
	h = connect(t, sock)
	h.unlock()
	dev = attachLoop(t, disk)
	for name, sum := range more {
		files[filepath.Join("more", name)] = sum
	}
	mountVerify(t, dev, fsDir, files)
	detachLoop(t, dev)
	srv.stop(syscall.SIGINT)
}
