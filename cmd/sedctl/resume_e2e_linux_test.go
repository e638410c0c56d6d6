package main_test

// End-to-end unlock on resume, driven as a user drives it: the sedctl and
// sedsim binaries, a sedsim drive served with its media exposed, ext4 on a
// loop device over it, the resume daemon as a process, and a suspend
// simulated as "sync, then sedsim power-cycle" (the drive loses power and
// locks; the filesystem stays mounted and idle, as the kernel keeps it
// frozen during a real suspend). The resume is "sedctl resume notify post",
// what the system-sleep hook runs.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
)

// resumeEnv is the binaries and a scratch directory for one test.
type resumeEnv struct {
	t              *testing.T
	sedctl, sedsim string
}

func newResumeEnv(t *testing.T) *resumeEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	testutil.RequireRoot(t)
	dir := t.TempDir()
	env := &resumeEnv{t: t, sedctl: filepath.Join(dir, "sedctl"), sedsim: filepath.Join(dir, "sedsim")}
	for bin, pkg := range map[string]string{env.sedctl: ".", env.sedsim: "../sedsim"} {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return env
}

type runResult struct {
	code           int
	stdout, stderr string
}

func (r runResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// run runs a program with a deadline; no environment but PATH, so that no
// secret could come from it. Not tied to t.Context(): cleanups run it after
// that is cancelled.
func (env *resumeEnv) run(name string, args ...string) runResult {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		env.t.Fatalf("run %s: %v", name, err)
	}
	return runResult{code, out.String(), errb.String()}
}

func (env *resumeEnv) must(name string, args ...string) runResult {
	env.t.Helper()
	r := env.run(name, args...)
	if r.code != 0 {
		env.t.Fatalf("%s %s: %v", filepath.Base(name), strings.Join(args, " "), r)
	}
	return r
}

func (env *resumeEnv) ctl(args ...string) runResult {
	env.t.Helper()
	return env.must(env.sedctl, args...)
}

// secretFile writes a password file, mode 0600.
func secretFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a long-running child (sedsim serve, sedctl resume daemon),
// started and waited for its "ready" line, stopped at the latest when the
// test ends.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *syncBuffer
}

type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, done: make(chan struct{}), stderr: newSyncBuffer()}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
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
		close(p.done)
	}()
	select {
	case l := <-ready:
		if !strings.HasPrefix(l, "ready") {
			t.Fatalf("%s printed %q; want a ready line", filepath.Base(name), l)
		}
	case <-p.done:
		t.Fatalf("%s %s exited before it was ready: %v\n%s", filepath.Base(name), strings.Join(args, " "), cmd.ProcessState, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60s\n%s", filepath.Base(name), p.stderr)
	}
	return p
}

// stop signals the process and waits for it, at most 20 s, then kills it.
// It returns the exit code (-1 if killed).
func (p *proc) stop(sig syscall.Signal) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("%s still running 20s after %v; killed", p.cmd.Path, sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

// simDrive is a sedsim drive served by the sedsim binary.
type simDrive struct {
	env   *resumeEnv
	state string
	sock  string
	dev   string // sim:SOCK
	disk  string // MNT/disk with --expose, else ""
	srv   *proc
}

// newDrive creates a drive (try limit tries) and serves it, its media
// exposed when expose.
func (env *resumeEnv) newDrive(size string, tries int, expose bool) *simDrive {
	t := env.t
	t.Helper()
	dir := t.TempDir()
	d := &simDrive{env: env, state: filepath.Join(dir, "drive"), sock: filepath.Join(dir, "sim.sock")}
	d.dev = "sim:" + d.sock
	env.must(env.sedsim, "create", "--state", d.state, "--size", size, "--try-limit", fmt.Sprint(tries))
	args := []string{"serve", "--state", d.state, "--socket", d.sock, "--log-level", "warn"}
	if expose {
		mnt := filepath.Join(dir, "expose")
		args = append(args, "--expose", mnt)
		d.disk = filepath.Join(mnt, "disk")
		// After the process is gone (cleanups run last-in first-out):
		// detach the FUSE mount if the server could not.
		t.Cleanup(func() { unmount(t, mnt) })
	}
	d.srv = startProc(t, env.sedsim, args...)
	t.Cleanup(func() {
		if code := d.srv.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("sedsim serve exited %d\n%s", code, d.srv.stderr)
		}
	})
	return d
}

func (d *simDrive) powerCycle() {
	d.env.t.Helper()
	d.env.must(d.env.sedsim, "power-cycle", "--socket", d.sock)
}

// simInfo is what the test reads from 'sedsim info --json'.
type simInfo struct {
	Locked bool `json:"locked"`
	MBR    *struct {
		Enable bool `json:"enable"`
		Done   bool `json:"done"`
		Shown  bool `json:"shown"`
	} `json:"mbr_shadow"`
}

func (d *simDrive) info() simInfo {
	d.env.t.Helper()
	r := d.env.must(d.env.sedsim, "info", "--socket", d.sock, "--json")
	var i simInfo
	if err := json.Unmarshal([]byte(r.stdout), &i); err != nil {
		d.env.t.Fatalf("sedsim info --json: %v\n%s", err, r.stdout)
	}
	return i
}

// daemon is a running 'sedctl resume daemon'.
type daemon struct {
	*proc
	socket, config string
}

func (env *resumeEnv) startDaemon(socket, config string, extra ...string) *daemon {
	env.t.Helper()
	args := append([]string{"resume", "daemon", "--socket", socket, "--config", config}, extra...)
	return &daemon{proc: startProc(env.t, env.sedctl, args...), socket: socket, config: config}
}

// notify runs 'sedctl resume notify post' and returns what it did.
func (env *resumeEnv) notify(d *daemon, extra ...string) runResult {
	env.t.Helper()
	return env.run(env.sedctl, append([]string{"resume", "notify", "post", "--socket", d.socket}, extra...)...)
}

// resumeStatus is what the tests read from 'sedctl resume status --json'.
type resumeStatus struct {
	Config []struct {
		Device  string `json:"device"`
		Storage string `json:"storage"`
		KeyFile string `json:"key_file"`
	} `json:"config"`
	Daemon *struct {
		Entries []struct {
			Device, Authority, State, Source, Error string
			Ranges                                  []uint32
		} `json:"entries"`
		Unarmed []struct {
			Device, Authority, Reason string
		} `json:"unarmed"`
	} `json:"daemon"`
}

func (env *resumeEnv) status(d *daemon, runDir string) resumeStatus {
	env.t.Helper()
	r := env.ctl("resume", "status", "--json", "--socket", d.socket, "--config", d.config, "--run-dir", runDir)
	var st resumeStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Daemon == nil {
		env.t.Fatalf("resume status --json: %v\n%s", err, r)
	}
	return st
}

func isMountpoint(t *testing.T, dir string) bool {
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

// unmount unmounts dir if it is mounted: plainly for a while, lazily as a
// last resort.
func unmount(t *testing.T, dir string) {
	for i := 0; i < 40 && isMountpoint(t, dir); i++ {
		flags := 0
		if i >= 20 {
			flags = unix.MNT_DETACH
		}
		unix.Unmount(dir, flags)
		time.Sleep(50 * time.Millisecond)
	}
	if isMountpoint(t, dir) {
		t.Errorf("could not unmount %s", dir)
	}
}

// attachLoop attaches file to a loop device (direct I/O if the kernel takes
// it), detached when the test ends.
func (env *resumeEnv) attachLoop(file string) string {
	t := env.t
	t.Helper()
	r := env.run("losetup", "--find", "--show", "--direct-io=on", file)
	if r.code != 0 {
		t.Logf("losetup --direct-io=on refused (%s); attaching with buffered I/O", strings.TrimSpace(r.stderr))
		r = env.must("losetup", "--find", "--show", file)
	}
	dev := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup printed %q", r.stdout)
	}
	t.Cleanup(func() {
		if r := env.run("losetup", dev); r.code != 0 || !strings.Contains(r.stdout, file) {
			return // already detached
		}
		if r := env.run("losetup", "-d", dev); r.code != 0 {
			t.Errorf("losetup -d %s: %v", dev, r)
		}
	})
	return dev
}

// direct reads (or, with data, writes) 4 KiB at off with O_DIRECT, past
// every cache.
func direct(path string, off int64, data []byte) ([]byte, error) {
	flags := os.O_RDONLY
	if data != nil {
		flags = os.O_WRONLY
	}
	f, err := os.OpenFile(path, flags|syscall.O_DIRECT, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	defer unix.Munmap(buf)
	if data != nil {
		copy(buf, data)
		_, err = f.WriteAt(buf, off)
		return nil, err
	}
	_, err = f.ReadAt(buf, off)
	return bytes.Clone(buf), err
}

// files is what a test wrote: name -> sha256.
type files map[string]string

func writeFiles(t *testing.T, dir, prefix string, n int) files {
	t.Helper()
	fs := files{}
	for i := range n {
		data := make([]byte, 1<<(i%8*2+4)) // 16 B .. 256 KiB
		for j := range data {
			data[j] = byte(i*31 + j*7 + j>>9)
		}
		name := fmt.Sprintf("%s/d%d/f%02d", prefix, i%3, i)
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

func checkFiles(t *testing.T, dir string, want files) { t.Helper(); testutil.CheckSHA256(t, dir, want) }

// TestResumeE2EExt4 is the end-to-end test: a mounted ext4 on a
// sedsim drive survives a power cycle with the resume daemon armed.
func TestResumeE2EExt4(t *testing.T) {
	testutil.RequireFUSE(t)
	for _, p := range []string{"losetup", "mkfs.ext4", "fsck.ext4", "mount", "umount", "sync", "blockdev"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("needs %s (CI promises it)", p)
			}
			t.Skipf("needs %s", p)
		}
	}
	env := newResumeEnv(t)
	drv := env.newDrive("64M", 5, true)
	pw := secretFile(t, "admin1.pw", "resume e2e password")
	env.ctl("setup", "--password-file", pw, drv.dev)
	// Range 1: everything past the first MiB (512-byte blocks).
	const start, blocks = 2048, 131072 - 2048
	env.ctl("range", "setup", "1", fmt.Sprint(start), fmt.Sprint(blocks), "--password-file", pw, drv.dev)
	env.ctl("range", "enable", "1", "--password-file", pw, drv.dev)

	loop := env.attachLoop(drv.disk)
	env.must("mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", loop)
	fsDir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	env.must("mount", loop, fsDir)
	t.Cleanup(func() { unmount(t, fsDir) }) // runs before the loop device is detached
	before := writeFiles(t, fsDir, "before", 24)
	env.must("sync", "-f", fsDir)

	base := t.TempDir()
	d := env.startDaemon(filepath.Join(base, "run", "resume.sock"), filepath.Join(base, "resume.conf"))
	runDir := filepath.Join(base, "run")
	r := env.ctl("resume", "enable", "--range", "1", "--password-file", pw,
		"--socket", d.socket, "--config", d.config, "--run-dir", runDir, drv.dev)
	if !strings.Contains(r.stdout, "daemon path armed") {
		t.Fatalf("resume enable: %v", r)
	}
	if strings.Contains(r.stdout+r.stderr, "resume e2e password") {
		t.Fatalf("the password shows in enable's output: %v", r)
	}
	const inRange = 8 << 20 // a byte offset inside range 1
	if _, err := direct(loop, inRange, nil); err != nil {
		t.Fatalf("direct read of the unlocked drive: %v", err)
	}
	block, err := direct(loop, 32<<20, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Suspend: sync, then the drive loses power. The filesystem stays
	// mounted and idle.
	env.must("sync")
	drv.powerCycle()
	if !drv.info().Locked {
		t.Fatal("sedsim info: not locked after the power cycle")
	}
	for _, p := range []string{loop, drv.disk} {
		if _, err := direct(p, inRange, nil); !errors.Is(err, syscall.EIO) {
			t.Fatalf("direct read of the locked range through %s = %v; want EIO", p, err)
		}
	}
	if _, err := direct(loop, 0, nil); err != nil {
		t.Errorf("direct read before range 1 (not locked) = %v; want it to work", err)
	}
	// The same bytes written back: harmless if the lock failed to stop it.
	if _, err := direct(loop, 32<<20, block); !errors.Is(err, syscall.EIO) {
		t.Fatalf("direct write to the locked range = %v; want EIO", err)
	}

	// Resume: the hook's notification. The daemon unlocks before it
	// answers.
	r = env.notify(d)
	if r.code != 0 || !strings.Contains(r.stdout, "unlocked") {
		t.Fatalf("resume notify post: %v", r)
	}
	if drv.info().Locked {
		t.Fatal("sedsim info: still locked after notify post")
	}
	if _, err := direct(loop, inRange, nil); err != nil {
		t.Fatalf("direct read after the resume: %v", err)
	}
	if !strings.Contains(d.stderr.String(), "resume unlock done") {
		t.Errorf("daemon log lacks the unlock:\n%s", d.stderr)
	}

	// The filesystem carries on: reads, writes, sync.
	checkFiles(t, fsDir, before)
	after := writeFiles(t, fsDir, "after", 12)
	env.must("sync", "-f", fsDir)
	checkFiles(t, fsDir, after)
	env.must("umount", fsDir)

	// Through the drive, not the page cache: fsck is clean and every
	// file's checksum matches.
	env.must("blockdev", "--flushbufs", loop)
	if r := env.run("fsck.ext4", "-n", "-f", loop); r.code != 0 {
		t.Fatalf("fsck.ext4 -n -f: %v", r)
	}
	env.must("mount", "-o", "ro", loop, fsDir)
	checkFiles(t, fsDir, before)
	checkFiles(t, fsDir, after)
	env.must("umount", fsDir)

	env.ctl("resume", "disable", "--socket", d.socket, "--config", d.config, "--run-dir", runDir, drv.dev)
	if st := env.status(d, runDir); len(st.Daemon.Entries) != 0 || len(st.Config) != 0 {
		t.Errorf("after disable, status still shows %+v", st)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("daemon exited %d after SIGTERM\n%s", code, d.stderr)
	}
	if strings.Contains(d.stderr.String(), "resume e2e password") {
		t.Error("the password shows in the daemon's log")
	}
}

// TestResumeE2EWrongKey: a key the drive refuses on resume (the password
// changed after enable) is reported once and never tried again, so the
// drive's try limit is not used up.
func TestResumeE2EWrongKey(t *testing.T) {
	env := newResumeEnv(t)
	drv := env.newDrive("16M", 2, false) // two wrong tries lock Admin1 out
	old := secretFile(t, "old.pw", "the old password")
	newPw := secretFile(t, "new.pw", "the new password")
	env.ctl("setup", "--password-file", old, drv.dev)
	env.ctl("range", "enable", "0", "--password-file", old, drv.dev)
	base := t.TempDir()
	d := env.startDaemon(filepath.Join(base, "resume.sock"), filepath.Join(base, "resume.conf"), "--debounce", "0")
	runDir := filepath.Join(base, "run")
	loc := []string{"--socket", d.socket, "--config", d.config, "--run-dir", runDir}

	// A wrong password at enable: refused (exit 1), nothing armed.
	if r := env.run(env.sedctl, append([]string{"resume", "enable", "--password-file", newPw, drv.dev}, loc...)...); r.code != 1 || !strings.Contains(r.stderr, "NOT_AUTHORIZED") {
		t.Fatalf("enable with a wrong password: %v; want exit 1, NOT_AUTHORIZED", r)
	}
	if st := env.status(d, runDir); len(st.Daemon.Entries) != 0 {
		t.Fatalf("a refused enable armed something: %+v", st.Daemon.Entries)
	}

	env.ctl(append([]string{"resume", "enable", "--password-file", old, drv.dev}, loc...)...)
	env.ctl("password", "set", "--authority", "admin1", "--password-file", old, "--new-password-file", newPw, drv.dev)
	drv.powerCycle()
	for i := range 3 {
		r := env.notify(d, "--json")
		if r.code != 1 {
			t.Fatalf("notify post %d with a wrong stored key: %v; want exit 1", i+1, r)
		}
		var out struct {
			OK  bool `json:"ok"`
			Run struct {
				Drives []struct {
					Error   string `json:"error"`
					Skipped bool   `json:"skipped"`
				} `json:"drives"`
			} `json:"run"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.OK || len(out.Run.Drives) != 1 || out.Run.Drives[0].Error == "" {
			t.Fatalf("notify post %d --json: %v %+v\n%v", i+1, err, out, r)
		}
		if want := i > 0; out.Run.Drives[0].Skipped != want {
			t.Errorf("notify post %d: skipped = %v; want %v (only the first may try the key)", i+1, out.Run.Drives[0].Skipped, want)
		}
	}
	if n := strings.Count(d.stderr.String(), "RESUME UNLOCK REFUSED"); n != 1 {
		t.Errorf("the daemon reported the refused key %d times; want once\n%s", n, d.stderr)
	}
	st := env.status(d, runDir)
	if len(st.Daemon.Entries) != 1 || st.Daemon.Entries[0].State != "failed" {
		t.Errorf("status after the refusal: %+v; want one failed entry", st.Daemon.Entries)
	}
	if !drv.info().Locked {
		t.Fatal("the drive unlocked with a wrong key?")
	}
	// Admin1 is not locked out (try limit 2): the new password works.
	env.ctl("range", "list", "--password-file", newPw, drv.dev)

	// Registering the right key clears the failure.
	env.ctl(append([]string{"resume", "enable", "--password-file", newPw, drv.dev}, loc...)...)
	drv.powerCycle()
	if r := env.notify(d); r.code != 0 {
		t.Fatalf("notify post with the right key: %v", r)
	}
	if drv.info().Locked {
		t.Fatal("still locked after notify post with the right key")
	}
}

// TestResumeE2ERestart: a daemon restarted while armed re-arms the entries
// whose key is in a key file, and says which it cannot (prompt mode), and
// notify post then fails for them instead of claiming success.
func TestResumeE2ERestart(t *testing.T) {
	env := newResumeEnv(t)
	withFile := env.newDrive("16M", 5, false)
	withPrompt := env.newDrive("16M", 5, false)
	pw := secretFile(t, "pw", "restart password")
	for _, drv := range []*simDrive{withFile, withPrompt} {
		env.ctl("setup", "--password-file", pw, drv.dev)
		env.ctl("range", "enable", "0", "--password-file", pw, drv.dev)
	}
	base := t.TempDir()
	sock, conf, runDir := filepath.Join(base, "resume.sock"), filepath.Join(base, "resume.conf"), filepath.Join(base, "run")
	keyFile := filepath.Join(base, "keys", "file-drive.key")
	loc := []string{"--socket", sock, "--config", conf, "--run-dir", runDir}
	d := env.startDaemon(sock, conf)
	env.ctl(append([]string{"resume", "enable", "--password-file", pw, "--key-store", "file", "--key-file", keyFile, withFile.dev}, loc...)...)
	env.ctl(append([]string{"resume", "enable", "--password-file", pw, withPrompt.dev}, loc...)...)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("key file: %v %v; want mode 0400", fi, err)
	}
	if b, _ := os.ReadFile(keyFile); bytes.Contains(b, []byte("restart password")) {
		t.Fatal("the key file holds the password, not the derived key")
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon exited %d after SIGTERM\n%s", code, d.stderr)
	}

	d = env.startDaemon(sock, conf, "--debounce", "0")
	text := env.ctl(append([]string{"resume", "status"}, loc...)...).stdout
	if !strings.Contains(text, "key: prompt (kept nowhere") || !strings.Contains(text, keyFile+" (re-armed at boot)") {
		t.Errorf("resume status does not tell the key stores apart:\n%s", text)
	}
	st := env.status(d, runDir)
	if len(st.Daemon.Entries) != 1 || st.Daemon.Entries[0].Device != withFile.dev || st.Daemon.Entries[0].State != "armed" ||
		!strings.HasPrefix(st.Daemon.Entries[0].Source, "file") {
		t.Errorf("restarted daemon holds %+v; want %s armed from its key file", st.Daemon.Entries, withFile.dev)
	}
	if len(st.Daemon.Unarmed) != 1 || st.Daemon.Unarmed[0].Device != withPrompt.dev || !strings.Contains(st.Daemon.Unarmed[0].Reason, "prompt") {
		t.Errorf("restarted daemon's unarmed entries: %+v; want %s, prompt mode", st.Daemon.Unarmed, withPrompt.dev)
	}
	if !strings.Contains(d.stderr.String(), "cannot re-arm") {
		t.Errorf("the daemon's log does not say it cannot re-arm:\n%s", d.stderr)
	}
	withFile.powerCycle()
	withPrompt.powerCycle()
	r := env.notify(d)
	if r.code != 69 || !strings.Contains(r.stderr, "not armed") || !strings.Contains(r.stderr, withPrompt.dev) {
		t.Fatalf("notify post with a prompt-mode drive unarmed: %v; want exit 69 naming it", r)
	}
	if withFile.info().Locked {
		t.Error("the key-file drive is still locked")
	}
	if !withPrompt.info().Locked {
		t.Error("the prompt-mode drive unlocked without its key?")
	}
	// Enable again (what the prompt mode asks for): both unlock.
	env.ctl(append([]string{"resume", "enable", "--password-file", pw, withPrompt.dev}, loc...)...)
	if r := env.notify(d); r.code != 0 || withPrompt.info().Locked {
		t.Fatalf("notify post after enabling again: %v", r)
	}

	for _, drv := range []*simDrive{withFile, withPrompt} {
		env.ctl(append([]string{"resume", "disable", drv.dev}, loc...)...)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("disable left the key file: %v", err)
	}
	if r := env.run(env.sedctl, append([]string{"resume", "disable", withFile.dev}, loc...)...); r.code != 65 {
		t.Errorf("disable of a drive with nothing armed: %v; want exit 65", r)
	}
}

// TestResumeE2ETwoDrivesMBR: one notification unlocks two drives, one
// session each, and sets MBR Done on the drive whose shadow MBR is enabled.
func TestResumeE2ETwoDrivesMBR(t *testing.T) {
	env := newResumeEnv(t)
	mbr := env.newDrive("16M", 5, false)
	plain := env.newDrive("16M", 5, false)
	pw := secretFile(t, "pw", "two drives")
	env.ctl("setup", "--mbr", "--password-file", pw, mbr.dev)
	env.ctl("range", "enable", "0", "--password-file", pw, mbr.dev)
	env.ctl("setup", "--password-file", pw, plain.dev)
	env.ctl("range", "setup", "1", "4096", "8192", "--password-file", pw, plain.dev)
	env.ctl("range", "enable", "1", "--password-file", pw, plain.dev)

	base := t.TempDir()
	d := env.startDaemon(filepath.Join(base, "resume.sock"), filepath.Join(base, "resume.conf"))
	loc := []string{"--socket", d.socket, "--config", d.config, "--run-dir", filepath.Join(base, "run")}
	var en struct {
		Path   string   `json:"path"`
		Ranges []uint32 `json:"ranges"`
		All    bool     `json:"all"`
	}
	r := env.ctl(append([]string{"resume", "enable", "--json", "--password-file", pw, mbr.dev}, loc...)...)
	if err := json.Unmarshal([]byte(r.stdout), &en); err != nil || en.Path != "daemon" || !en.All {
		t.Fatalf("resume enable --json: %v %+v\n%v", err, en, r)
	}
	env.ctl(append([]string{"resume", "enable", "--range", "1", "--password-file", pw, plain.dev}, loc...)...)

	mbr.powerCycle()
	plain.powerCycle()
	if i := mbr.info(); !i.Locked || i.MBR == nil || !i.MBR.Enable || i.MBR.Done {
		t.Fatalf("MBR drive after the power cycle: %+v %+v; want locked, shadow MBR enabled, Done off", i, i.MBR)
	}
	if !plain.info().Locked {
		t.Fatal("the second drive is not locked after its power cycle")
	}
	r = env.notify(d)
	if r.code != 0 || !strings.Contains(r.stdout, "2 sessions") || !strings.Contains(r.stdout, "MBR Done set") {
		t.Fatalf("notify post: %v; want 2 sessions and MBR Done set", r)
	}
	if i := mbr.info(); i.Locked || i.MBR == nil || !i.MBR.Done {
		t.Errorf("MBR drive after the resume: %+v %+v; want unlocked, MBR Done", i, i.MBR)
	}
	if plain.info().Locked {
		t.Error("the second drive is still locked after the resume")
	}
}

// TestResumeInstall: install writes the three files naming the socket and
// configuration given, uninstall removes exactly those, and neither
// touches a file sedctl did not write.
func TestResumeInstall(t *testing.T) {
	env := newResumeEnv(t)
	root := t.TempDir()
	r := env.ctl("resume", "install", "--root", root, "--sedctl", "/usr/local/bin/sedctl", "--socket", "/run/x/r.sock", "--config", "/etc/x/r.conf")
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/sedctl-resume.service"))
	if err != nil {
		t.Fatalf("%v\n%v", err, r)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/sedctl resume daemon --socket /run/x/r.sock --config /etc/x/r.conf\n") {
		t.Errorf("daemon unit:\n%s", unit)
	}
	hook, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system-sleep/sedctl-resume"))
	if err != nil || !strings.Contains(string(hook), "resume notify post --socket /run/x/r.sock") {
		t.Errorf("sleep hook: %v\n%s", err, hook)
	}
	if !strings.Contains(r.stdout, "warning: the units run /usr/local/bin/sedctl, which is not there") {
		t.Errorf("install did not warn about the missing binary: %v", r)
	}
	// The command lines the files hold parse as sedctl commands.
	arm, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/sedctl-resume-arm.service"))
	for _, line := range strings.Split(string(unit)+string(arm)+string(hook), "\n") {
		_, cmdline, ok := strings.Cut(line, "/usr/local/bin/sedctl ")
		if !ok {
			continue
		}
		cmdline, _, _ = strings.Cut(cmdline, " ;;")
		cmdline, _, _ = strings.Cut(cmdline, " >")
		if r := env.run(env.sedctl, append(strings.Fields(cmdline), "--help")...); r.code != 0 {
			t.Errorf("installed command line %q: %v", cmdline, r)
		}
	}
	foreign := filepath.Join(root, "etc/systemd/system/sedctl-resume-arm.service")
	if err := os.WriteFile(foreign, []byte("[Unit]\n# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := env.run(env.sedctl, "resume", "uninstall", "--root", root); r.code != 77 || !strings.Contains(r.stderr, "not installed by sedctl") {
		t.Errorf("uninstall with a foreign file: %v; want exit 77", r)
	}
	if b, err := os.ReadFile(foreign); err != nil || string(b) != "[Unit]\n# mine\n" {
		t.Errorf("uninstall touched a foreign file: %v %q", err, b)
	}
	for _, f := range []string{"etc/systemd/system/sedctl-resume.service", "usr/lib/systemd/system-sleep/sedctl-resume"} {
		if _, err := os.Stat(filepath.Join(root, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("uninstall left %s: %v", f, err)
		}
	}
}
