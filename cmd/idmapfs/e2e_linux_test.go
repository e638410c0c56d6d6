package main

// End-to-end tests: build bin/idmapfs and drive it as a user would, through
// its exit status, its messages and /proc/self/mountinfo; then let a client
// nobody here wrote (util-linux unshare) run a container on a mount.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/testutil"
)

// e2eBin is the idmapfs binary TestMain builds.
var e2eBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "idmapfs-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Reachable by the unprivileged users some tests run as.
	os.Chmod(dir, 0o755)
	e2eBin = filepath.Join(dir, "idmapfs")
	build := exec.Command("go", "build", "-o", e2eBin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eDir returns a fresh directory every user can traverse.
func e2eDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// e2eTree makes base/src (with a file "hello", owned 0:0 on disk) and an
// empty base/mnt, and unmounts base/mnt when the test ends if a test left
// it mounted.
func e2eTree(t *testing.T) (src, mnt string) {
	t.Helper()
	testutil.RequireFUSE(t)
	base := e2eDir(t)
	src, mnt = filepath.Join(base, "src"), filepath.Join(base, "mnt")
	for _, d := range []string{src, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e2eCleanupMount(t, mnt)
	return src, mnt
}

// e2eCleanupMount unmounts mnt at the end of the test (lazily as a last
// resort) if it is still mounted.
func e2eCleanupMount(t *testing.T, mnt string) {
	t.Cleanup(func() {
		for i := 0; i < 20 && e2eMounted(t, mnt); i++ {
			if i < 10 {
				unix.Unmount(mnt, 0)
			} else {
				unix.Unmount(mnt, unix.MNT_DETACH)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if e2eMounted(t, mnt) {
			t.Errorf("could not unmount %s", mnt)
		}
	})
}

type e2eMount struct {
	mountpoint, source, fstype, options string
}

func e2eMountinfo(t *testing.T) []e2eMount {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []e2eMount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+2 < len(fields) && len(fields) > 5 {
				out = append(out, e2eMount{
					mountpoint: e2eUnescape(fields[4]),
					source:     e2eUnescape(fields[i+2]),
					fstype:     fields[i+1],
					options:    fields[5],
				})
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func e2eUnescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func e2eMounted(t *testing.T, mnt string) bool {
	t.Helper()
	for _, m := range e2eMountinfo(t) {
		if m.mountpoint == mnt {
			return true
		}
	}
	return false
}

type e2eResult struct {
	code           int
	stdout, stderr string
}

func (r e2eResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// e2eRun runs a command to completion (at most 30s).
func e2eRun(t *testing.T, stdin string, name string, args ...string) e2eResult {
	t.Helper()
	return e2eRunFor(t, 30*time.Second, stdin, name, args...)
}

func e2eRunFor(t *testing.T, limit time.Duration, stdin string, name string, args ...string) e2eResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var so, se bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.Dir = "/"
	err := cmd.Run()
	r := e2eResult{stdout: so.String(), stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ctx.Err() != nil {
			t.Fatalf("%s %v: still running after %v\n%s", name, args, limit, r)
		}
	default:
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

func e2eNoPanic(t *testing.T, r e2eResult) {
	t.Helper()
	all := r.stdout + r.stderr
	for _, bad := range []string{"panic:", "goroutine ", "runtime error", "SIGSEGV"} {
		if strings.Contains(all, bad) {
			t.Errorf("output contains %q:\n%s", bad, r)
		}
	}
}

// e2eFails checks a refused command: non-zero exit, every want in its
// message, no panic, nothing mounted on mnt.
func e2eFails(t *testing.T, r e2eResult, mnt string, want ...string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("exit 0; want a failure\n%s", r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("message does not mention %q:\n%s", w, r)
		}
	}
	e2eNoPanic(t, r)
	if mnt != "" && e2eMounted(t, mnt) {
		t.Errorf("%s is mounted after a failed mount", mnt)
	}
}

func TestE2EBadMaps(t *testing.T) {
	src, mnt := e2eTree(t)
	for _, tc := range []struct {
		flag, value, quote string
	}{
		{"--map", "0:100000:0", `"0:100000:0"`},
		{"--map", "0:100000", `"0:100000"`},
		{"--map", "a:b:c", `"a:b:c"`},
		{"--map", "0:100000:10,5:200000:10", `"5:200000:10"`},
		{"--map", "0:100000:10,20:100005:10", `"20:100005:10"`},
		{"--map", "0:4294967295:1", `"0:4294967295:1"`},
		{"--map", "4294967295:0:1", `"4294967295:0:1"`},
		{"--map", "0:4294967290:10", `"0:4294967290:10"`},
		{"--map", "-1:100000:1", `"-1:100000:1"`},
		{"--map", "0:100000:65536,", `"0:100000:65536,"`},
		{"--uid-map", "0:100000:0", `"0:100000:0"`},
		{"--uid-map=0:100000:65536 --gid-map", "x", `"x"`},
		{"--uid-map=0:100000:65536 --gid-map", "0:100000:65536,0:1:1", `"0:1:1"`},
	} {
		t.Run(tc.flag+"="+tc.value, func(t *testing.T) {
			flags := strings.Fields(tc.flag + "=" + tc.value)
			for _, cmd := range [][]string{
				append(append([]string{"mount"}, flags...), src, mnt),
				append(append([]string{"mount", "--daemon"}, flags...), src, mnt),
				append(append([]string{"run"}, flags...), src, "--", "/bin/true"),
			} {
				r := e2eRun(t, "", e2eBin, cmd...)
				e2eFails(t, r, mnt, tc.quote)
			}
		})
	}
}

func TestE2EBadArgs(t *testing.T) {
	src, mnt := e2eTree(t)
	base := filepath.Dir(src)
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(base, "missing")

	t.Run("missing-mountpoint", func(t *testing.T) {
		r := e2eRun(t, "", e2eBin, "mount", src, missing)
		e2eFails(t, r, missing, missing, "does not exist")
	})
	t.Run("mountpoint-is-a-file", func(t *testing.T) {
		r := e2eRun(t, "", e2eBin, "mount", src, file)
		e2eFails(t, r, file, file, "not a directory")
	})
	t.Run("source-missing", func(t *testing.T) {
		r := e2eRun(t, "", e2eBin, "mount", missing, mnt)
		e2eFails(t, r, mnt, missing)
	})
	t.Run("source-not-a-directory", func(t *testing.T) {
		r := e2eRun(t, "", e2eBin, "mount", file, mnt)
		e2eFails(t, r, mnt, file, "not a directory")
	})
	t.Run("daemon-source-missing", func(t *testing.T) {
		r := e2eRun(t, "", e2eBin, "mount", "--daemon", missing, mnt)
		e2eFails(t, r, mnt, missing)
	})
	t.Run("no-arguments", func(t *testing.T) {
		for _, args := range [][]string{{}, {"mount"}, {"mount", src}, {"bogus"}, {"umount"}, {"run", src}, {"mount", "--no-such-flag", src, mnt}} {
			r := e2eRun(t, "", e2eBin, args...)
			e2eFails(t, r, mnt)
		}
	})
	t.Run("umount-not-mounted", func(t *testing.T) {
		r := e2eRun(t, "", e2eBin, "umount", mnt)
		e2eFails(t, r, "", mnt)
	})
	t.Run("busy-mountpoint", func(t *testing.T) {
		r := e2eRun(t, "", e2eBin, "mount", "--daemon", src, mnt)
		if r.code != 0 {
			t.Fatalf("first mount: %s", r)
		}
		r2 := e2eRun(t, "", e2eBin, "mount", src, mnt)
		if r2.code == 0 {
			t.Errorf("second mount on a busy mountpoint: exit 0\n%s", r2)
		}
		if !strings.Contains(r2.stderr, "busy") || !strings.Contains(r2.stderr, mnt) {
			t.Errorf("second mount: message does not say %s is busy:\n%s", mnt, r2)
		}
		e2eNoPanic(t, r2)
		n := 0
		for _, m := range e2eMountinfo(t) {
			if m.mountpoint == mnt {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d mounts on %s; want 1 (the first)", n, mnt)
		}
		if b, err := os.ReadFile(filepath.Join(mnt, "hello")); err != nil || string(b) != "hello\n" {
			t.Errorf("the first mount stopped working: %q, %v", b, err)
		}
		if r := e2eRun(t, "", e2eBin, "umount", mnt); r.code != 0 {
			t.Errorf("umount: %s", r)
		}
	})
	t.Run("no-dev-fuse", func(t *testing.T) {
		// /dev/fuse absent, and /dev/fuse replaced by /dev/null.
		for _, hide := range []string{"mount -t tmpfs tmpfs /dev", "mount --bind /dev/null /dev/fuse"} {
			r := e2eRun(t, "", "unshare", "-m", "sh", "-c", hide+` && exec "$0" mount "$1" "$2"`, e2eBin, src, mnt)
			e2eFails(t, r, mnt, "/dev/fuse")
		}
	})
}

// e2eDaemonPIDs lists idmapfs processes whose command line names mnt.
func e2eDaemonPIDs(t *testing.T, mnt string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && filepath.Base(args[0]) == filepath.Base(e2eBin) && strings.Contains(string(b), mnt) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func e2eWaitNoDaemon(t *testing.T, mnt string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(e2eDaemonPIDs(t, mnt)) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("daemon for %s still running 5s after unmount: pids %v", mnt, e2eDaemonPIDs(t, mnt))
}

func e2eStatUID(t *testing.T, p string) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatalf("stat %s right after mount returned: %v", p, err)
	}
	return st.Uid
}

func TestE2EDaemon(t *testing.T) {
	src, mnt := e2eTree(t)
	r := e2eRun(t, "", e2eBin, "mount", "--daemon", src, mnt)
	if r.code != 0 {
		t.Fatalf("mount --daemon: %s", r)
	}
	e2eNoPanic(t, r)
	// Ready when it returns: no sleeping, no polling.
	if uid := e2eStatUID(t, filepath.Join(mnt, "hello")); uid != 100000 {
		t.Errorf("hello through the mount: uid %d; want 100000", uid)
	}
	if !strings.Contains(r.stdout, "mounted") {
		t.Errorf("mount --daemon printed no \"mounted\" line:\n%s", r)
	}
	var found bool
	for _, m := range e2eMountinfo(t) {
		if m.mountpoint == mnt {
			found = true
			if m.fstype != "fuse.idmapfs" || m.source != src {
				t.Errorf("mountinfo: %+v; want fuse.idmapfs from %s", m, src)
			}
			for _, o := range []string{"nosuid", "nodev"} {
				if !strings.Contains(m.options, o) {
					t.Errorf("mount options %q lack %s", m.options, o)
				}
			}
		}
	}
	if !found {
		t.Fatalf("%s not in mountinfo after mount --daemon returned", mnt)
	}
	if pids := e2eDaemonPIDs(t, mnt); len(pids) != 1 {
		t.Errorf("daemon processes for %s: %v; want one", mnt, pids)
	}
	r = e2eRun(t, "", e2eBin, "umount", mnt)
	if r.code != 0 {
		t.Fatalf("umount: %s", r)
	}
	if e2eMounted(t, mnt) {
		t.Errorf("%s still mounted after idmapfs umount", mnt)
	}
	e2eWaitNoDaemon(t, mnt)
}

// e2eForeground starts a foreground mount and waits for its "mounted" line.
func e2eForeground(t *testing.T, src, mnt string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(e2eBin, "mount", src, mnt)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		if !ok || !strings.HasPrefix(l, "mounted ") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("foreground mount: first line %q; stderr %s", l, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("foreground mount printed nothing in 20s; stderr %s", stderr.String())
	}
	return cmd, &stderr
}

func e2eWait(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("process %d did not exit within 15s", cmd.Process.Pid)
	}
	return -1
}

func TestE2ESigterm(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		src, mnt := e2eTree(t)
		cmd, stderr := e2eForeground(t, src, mnt)
		if uid := e2eStatUID(t, filepath.Join(mnt, "hello")); uid != 100000 {
			t.Errorf("uid %d; want 100000", uid)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if code := e2eWait(t, cmd); code != 0 {
			t.Errorf("SIGTERM: exit %d; want 0\n%s", code, stderr)
		}
		if e2eMounted(t, mnt) {
			t.Errorf("%s still mounted after SIGTERM", mnt)
		}
		e2eNoPanic(t, e2eResult{stderr: stderr.String()})
	})
	t.Run("busy", func(t *testing.T) {
		// A file held open: SIGTERM detaches the mount at once and the
		// daemon serves the open file until it is closed.
		src, mnt := e2eTree(t)
		cmd, stderr := e2eForeground(t, src, mnt)
		f, err := os.Open(filepath.Join(mnt, "hello"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		deadline := time.Now().Add(5 * time.Second)
		for e2eMounted(t, mnt) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if e2eMounted(t, mnt) {
			t.Errorf("%s still mounted 5s after SIGTERM with a file open", mnt)
		}
		b := make([]byte, 16)
		if n, err := f.ReadAt(b, 0); string(b[:n]) != "hello\n" {
			t.Errorf("read of a file open across SIGTERM = %q, %v", b[:n], err)
		}
		f.Close()
		if code := e2eWait(t, cmd); code != 0 {
			t.Errorf("SIGTERM on a busy mount: exit %d; want 0\n%s", code, stderr)
		}
		e2eNoPanic(t, e2eResult{stderr: stderr.String()})
	})
}

func TestE2EUmountDeadDaemon(t *testing.T) {
	src, mnt := e2eTree(t)
	cmd, _ := e2eForeground(t, src, mnt)
	cmd.Process.Kill()
	e2eWait(t, cmd)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(mnt, "hello"), &st); !errors.Is(err, unix.ENOTCONN) {
		t.Fatalf("stat on a mount whose daemon was killed = %v; want ENOTCONN", err)
	}
	r := e2eRun(t, "", e2eBin, "mount", src, mnt)
	if r.code == 0 || !strings.Contains(r.stderr, "umount") {
		t.Errorf("mount over a dead mount: want a refusal that says to run idmapfs umount\n%s", r)
	}
	e2eNoPanic(t, r)
	r = e2eRun(t, "", e2eBin, "umount", mnt)
	if r.code != 0 {
		t.Fatalf("umount of a dead mount: %s", r)
	}
	if e2eMounted(t, mnt) {
		t.Errorf("%s still mounted after idmapfs umount", mnt)
	}
	if err := unix.Stat(mnt, &st); err != nil {
		t.Errorf("stat %s after umount: %v", mnt, err)
	}
}

func TestE2EMountHelper(t *testing.T) {
	testutil.RequireFUSE(t)
	helper := "/sbin/mount.fuse.idmapfs"
	if err := unix.Access("/sbin", unix.W_OK); err != nil {
		t.Skipf("/sbin is not writable (%v): cannot install %s", err, helper)
	}
	// Keep whatever is installed there and put it back afterwards.
	if _, err := os.Lstat(helper); err == nil {
		saved := helper + ".e2e-saved"
		if err := os.Rename(helper, saved); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Rename(saved, helper) })
	}
	if err := os.Symlink(e2eBin, helper); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(helper) })

	src, mnt := e2eTree(t)
	r := e2eRun(t, "", "mount", "-t", "fuse.idmapfs", "-o", "map=0:100000:65536", src, mnt)
	if r.code != 0 {
		t.Fatalf("mount -t fuse.idmapfs: %s", r)
	}
	if uid := e2eStatUID(t, filepath.Join(mnt, "hello")); uid != 100000 {
		t.Errorf("uid %d through mount -t fuse.idmapfs; want 100000", uid)
	}
	if r := e2eRun(t, "", "umount", mnt); r.code != 0 {
		t.Errorf("umount: %s", r)
	}
	e2eWaitNoDaemon(t, mnt)

	// Options as fstab would pass them: a different map, read-only.
	r = e2eRun(t, "", "mount", "-t", "fuse.idmapfs", "-o", "ro,nosuid,nodev,map=0:200000:65536", src, mnt)
	if r.code != 0 {
		t.Fatalf("mount -t fuse.idmapfs -o ro,...: %s", r)
	}
	if uid := e2eStatUID(t, filepath.Join(mnt, "hello")); uid != 200000 {
		t.Errorf("uid %d with map=0:200000:65536; want 200000", uid)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("create on a ro mount = %v; want EROFS", err)
	}
	if r := e2eRun(t, "", "umount", mnt); r.code != 0 {
		t.Errorf("umount: %s", r)
	}
	e2eWaitNoDaemon(t, mnt)

	// suid and dev never reach a helper (mount(8) keeps them, its
	// defaults): allow-suid and allow-dev do.
	r = e2eRun(t, "", "mount", "-t", "fuse.idmapfs", "-o", "allow-suid,allow-dev,map=0:100000:65536", src, mnt)
	if r.code != 0 {
		t.Fatalf("mount -t fuse.idmapfs -o allow-suid,allow-dev,...: %s", r)
	}
	for _, m := range e2eMountinfo(t) {
		if m.mountpoint == mnt && (strings.Contains(m.options, "nosuid") || strings.Contains(m.options, "nodev")) {
			t.Errorf("-o allow-suid,allow-dev: mount options %q; want neither nosuid nor nodev", m.options)
		}
	}
	if r := e2eRun(t, "", "umount", mnt); r.code != 0 {
		t.Errorf("umount: %s", r)
	}
	e2eWaitNoDaemon(t, mnt)

	// Overlay mode, as fstab would give it: the source only names the
	// mount; the layers are options.
	upper := filepath.Join(filepath.Dir(mnt), "upper")
	if err := os.Mkdir(upper, 0o755); err != nil {
		t.Fatal(err)
	}
	r = e2eRun(t, "", "mount", "-t", "fuse.idmapfs", "-o", "lower="+src+",upper="+upper+",userxattr,map=0:0:65536", "overlay", mnt)
	if r.code != 0 {
		t.Fatalf("mount -t fuse.idmapfs -o lower=...,upper=...: %s", r)
	}
	if uid, want := e2eStatUID(t, filepath.Join(mnt, "hello")), e2eStatUID(t, filepath.Join(src, "hello")); uid != want {
		t.Errorf("uid %d through an overlay mount with map 0:0:65536; want %d", uid, want)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("x"), 0o644); err != nil {
		t.Errorf("create on the overlay mount: %v", err)
	}
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Errorf("the new file is not in the upper: %v", err)
	}
	if _, err := os.Stat(filepath.Join(src, "new")); err == nil {
		t.Errorf("the new file is in the lower")
	}
	if r := e2eRun(t, "", "umount", mnt); r.code != 0 {
		t.Errorf("umount: %s", r)
	}
	e2eWaitNoDaemon(t, mnt)

	// A bad option is refused, with nothing left mounted.
	r = e2eRun(t, "", "mount", "-t", "fuse.idmapfs", "-o", "map=0:100000:0", src, mnt)
	e2eFails(t, r, mnt, `"0:100000:0"`)
	r = e2eRun(t, "", "mount", "-t", "fuse.idmapfs", "-o", "upper="+upper, src, mnt)
	e2eFails(t, r, mnt, "--lower")
}

// e2eRootfs builds a busybox root filesystem owned 0:0 on disk.
func e2eRootfs(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("needs Debian's busybox-static (apt-get install busybox-static): %v", err)
	}
	root := filepath.Join(e2eDir(t), "rootfs")
	for _, d := range []string{"", "bin", "proc", "dev", "tmp", "etc", "root"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "id", "touch", "ls", "cat", "true", "echo", "stat"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// e2eMountsOf lists the mounts whose source is src.
func e2eMountsOf(t *testing.T, src string) []e2eMount {
	t.Helper()
	var out []e2eMount
	for _, m := range e2eMountinfo(t) {
		if m.source == src || strings.HasPrefix(m.mountpoint, src+"/") {
			out = append(out, m)
		}
	}
	return out
}

func TestE2ERun(t *testing.T) {
	testutil.RequireFUSE(t)
	root := e2eRootfs(t)
	for _, tc := range []struct {
		name       string
		stdin      string
		args       []string
		code       int
		stdout     string
		stderrWant string
	}{
		{name: "exit-3", args: []string{"sh", "-c", "exit 3"}, code: 3},
		{name: "missing-command", args: []string{"/no/such/command"}, code: 127, stderrWant: "/no/such/command"},
		{name: "missing-command-on-path", args: []string{"nosuchcommand"}, code: 127, stderrWant: "nosuchcommand"},
		{name: "id", args: []string{"id", "-u"}, stdout: "0\n"},
		{name: "stdin", stdin: "through\n", args: []string{"cat"}, stdout: "through\n"},
		{name: "create", args: []string{"sh", "-c", "touch /tmp/made && stat -c '%u:%g' /tmp/made"}, stdout: "0:0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e2eRunFor(t, 10*time.Second, tc.stdin, e2eBin, append([]string{"run", root, "--"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("idmapfs run %v: exit %d; want %d\n%s", tc.args, r.code, tc.code, r)
			}
			if tc.stdout != "" && r.stdout != tc.stdout {
				t.Errorf("idmapfs run %v: stdout %q; want %q", tc.args, r.stdout, tc.stdout)
			}
			if tc.stderrWant != "" && !strings.Contains(r.stderr, tc.stderrWant) {
				t.Errorf("idmapfs run %v: stderr %q does not mention %q", tc.args, r.stderr, tc.stderrWant)
			}
			e2eNoPanic(t, r)
			if ms := e2eMountsOf(t, root); len(ms) != 0 {
				t.Errorf("after idmapfs run exited, still mounted: %+v", ms)
			}
		})
	}
	t.Run("repeat", func(t *testing.T) {
		// idmapfs run must exit as soon as its command has, every time.
		for i := 0; i < 40; i++ {
			r := e2eRunFor(t, 10*time.Second, "", e2eBin, "run", root, "--", "true")
			if r.code != 0 {
				t.Fatalf("run %d: %s", i, r)
			}
		}
	})
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "tmp", "made"), &st); err != nil || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("SOURCE/tmp/made: %v, owner %d:%d; want disk 0:0", err, st.Uid, st.Gid)
	}
	for _, m := range e2eMountinfo(t) {
		if m.fstype == "fuse.idmapfs" && m.source == root {
			t.Errorf("left mounted: %+v", m)
		}
	}
}

// e2eSubids gives root the range 100000:65536 in /etc/subuid and
// /etc/subgid (newuidmap checks them even for root). The lines stay.
func e2eSubids(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		have := false
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) == "root:100000:65536" {
				have = true
			}
		}
		if have {
			continue
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		prefix := ""
		if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
			prefix = "\n"
		}
		if _, err := f.WriteString(prefix + "root:100000:65536\n"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestE2EUnshareClient runs a container with util-linux unshare (through
// newuidmap) on an idmapfs mount of a busybox rootfs.
func TestE2EUnshareClient(t *testing.T) {
	testutil.RequireFUSE(t)
	if _, err := exec.LookPath("newuidmap"); err != nil {
		t.Fatalf("needs Debian's uidmap package (newuidmap): %v", err)
	}
	e2eSubids(t)
	root := e2eRootfs(t)
	mnt := filepath.Join(filepath.Dir(root), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	e2eCleanupMount(t, mnt)
	if r := e2eRun(t, "", e2eBin, "mount", "--daemon", "--map", "0:100000:65536", root, mnt); r.code != 0 {
		t.Fatalf("mount: %s", r)
	}
	t.Cleanup(func() { e2eRun(t, "", e2eBin, "umount", mnt) })
	// util-linux 2.38 spells the ranges outer,inner,count; --setuid and
	// --setgid make the command root of the new namespace.
	r := e2eRun(t, "", "unshare",
		"--map-users=100000,0,65536", "--map-groups=100000,0,65536", "--setuid=0", "--setgid=0",
		"--root="+mnt, "--user", "--mount", "--pid", "--fork",
		"/bin/busybox", "sh", "-c", "id; touch /x; ls -ln /x")
	if r.code != 0 {
		t.Fatalf("unshare: %s", r)
	}
	if !strings.Contains(r.stdout, "uid=0") || !strings.Contains(r.stdout, "gid=0") {
		t.Errorf("id in the container: %q; want uid=0 gid=0", r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if f := strings.Fields(lines[len(lines)-1]); len(f) < 4 || f[2] != "0" || f[3] != "0" {
		t.Errorf("ls -ln /x in the container: %q; want owner 0 0", lines[len(lines)-1])
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "x"), &st); err != nil {
		t.Fatalf("SOURCE/x: %v", err)
	}
	if st.Uid != 0 || st.Gid != 0 {
		t.Errorf("SOURCE/x owned %d:%d on disk; want 0:0", st.Uid, st.Gid)
	}
	if err := unix.Lstat(filepath.Join(mnt, "x"), &st); err != nil || st.Uid != 100000 {
		t.Errorf("MNT/x: %v, uid %d; want host 100000", err, st.Uid)
	}
}

// TestE2ERunLowerImage runs a container on a read-only overlay of a
// squashfs image of the busybox rootfs under a directory layer: it sees
// both, writes nothing, and the image's checksum stays.
func TestE2ERunLowerImage(t *testing.T) {
	testutil.RequireFUSE(t)
	_, base, img := e2eSquashfs(t)
	top := filepath.Join(base, "top")
	if err := os.MkdirAll(filepath.Join(top, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(top, "etc", "motd"), []byte("from the top layer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := func() [32]byte {
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := sum()
	script := `cat /etc/motd; stat -c '%u:%g' /bin/busybox; ` +
		`touch /tmp/x 2>/dev/null && echo wrote; echo hi 2>/dev/null > /etc/motd && echo wrote; ` +
		`busybox grep -q ' / / ro,' /proc/self/mountinfo && echo ro`
	r := e2eRunFor(t, 20*time.Second, "", e2eBin, "run", "--lower", top+":"+img, "--", "sh", "-c", script)
	if r.code != 0 || r.stdout != "from the top layer\n0:0\nro\n" {
		t.Errorf("idmapfs run --lower: %s\nwant stdout %q", r, "from the top layer\n0:0\nro\n")
	}
	e2eNoPanic(t, r)
	if sum() != before {
		t.Errorf("the image's sha256 changed")
	}
	for _, m := range e2eMountinfo(t) {
		if m.fstype == "fuse.idmapfs" && strings.Contains(m.source, img) {
			t.Errorf("left mounted: %+v", m)
		}
	}
	if backed, _ := filepath.Glob("/sys/block/loop*/loop/backing_file"); len(backed) > 0 {
		for _, bf := range backed {
			if b, err := os.ReadFile(bf); err == nil && strings.TrimSpace(string(b)) == img {
				t.Errorf("%s still backs %s after idmapfs run exited", img, bf)
			}
		}
	}
}

// e2eSquashfs builds the busybox rootfs and a squashfs image of it in a
// fresh directory base.
func e2eSquashfs(t *testing.T) (root, base, img string) {
	t.Helper()
	requireMksquashfs(t)
	root = e2eRootfs(t)
	base = e2eDir(t)
	img = filepath.Join(base, "rootfs.sqfs")
	if out, err := exec.Command("mksquashfs", root, img, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	return root, base, img
}

// requireMksquashfs skips t without mksquashfs, except under CI, where
// scripts/deps.sh installs it.
func requireMksquashfs(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mksquashfs missing under CI: scripts/deps.sh installs squashfs-tools")
		}
		t.Skip("needs mksquashfs (apt-get install squashfs-tools)")
	}
}

// TestE2EVerify: an image lower is checked before it is attached; a
// mismatch refuses to run and leaves nothing mounted.
func TestE2EVerify(t *testing.T) {
	testutil.RequireFUSE(t)
	root, base, img := e2eSquashfs(t)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	good := fmt.Sprintf("%x", sha256.Sum256(b))
	bad := strings.Repeat("0", 64)
	sums := filepath.Join(base, "SUMS")
	if err := os.WriteFile(sums, []byte(good+"  rootfs.sqfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) e2eResult {
		t.Helper()
		r := e2eRunFor(t, 20*time.Second, "", e2eBin, append([]string{"run", "--lower", img}, append(args, "--", "sh", "-c", "echo ran")...)...)
		e2eNoPanic(t, r)
		return r
	}
	if r := run("--verify", "sha256:"+good); r.code != 0 || r.stdout != "ran\n" {
		t.Errorf("--verify with the right sum: %s", r)
	}
	if r := run("--verify-file", sums); r.code != 0 || r.stdout != "ran\n" {
		t.Errorf("--verify-file with the right sum: %s", r)
	}
	if r := run("--verify", "sha256:"+bad); r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, "mismatch") {
		t.Errorf("--verify with a wrong sum: %s; want a refusal that says mismatch", r)
	}
	for _, m := range e2eMountinfo(t) {
		// Only this test's: other packages' tests mount idmapfs meanwhile.
		if m.fstype == "fuse.idmapfs" && strings.Contains(m.source, img) || strings.HasPrefix(m.mountpoint, base) {
			t.Errorf("left mounted: %+v", m)
		}
	}
	if r := e2eRunFor(t, 20*time.Second, "", e2eBin, "mount", "--verify", "sha256:"+good, root, base); r.code != 2 {
		t.Errorf("--verify without --lower: %s; want exit 2", r)
	}
}
