package container

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
)

// hostRoot is the host uid and gid of container root in these tests.
const hostRoot = 100000

// busybox is Debian's busybox-static; .ci installs it.
const busybox = "/bin/busybox"

var applets = []string{"sh", "id", "cat", "ls", "hostname", "echo", "touch", "pwd", "stat", "test", "sleep", "readlink", "wc", "true", "mount"}

// testMap maps container ids 0-65535 to host ids 100000-165535.
func testMap(t *testing.T) idmap.IDMap {
	t.Helper()
	m, err := idmap.ParseMap("0:100000:65536")
	if err != nil {
		t.Fatalf("ParseMap = %v", err)
	}
	return idmap.IDMap{UID: m, GID: m}
}

// newRootfs builds a busybox root filesystem in a temporary directory,
// owned by container root. without lists top-level directories to leave
// out (such as "proc" or "dev").
func newRootfs(t *testing.T, without ...string) string {
	t.Helper()
	return newRootfsIn(t, t.TempDir(), hostRoot, without...)
}

// newRootfsIn is newRootfs in directory parent, owned by owner.
func newRootfsIn(t *testing.T, parent string, owner int, without ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create user namespaces with a 100000-based map")
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatalf("this test needs Debian's busybox-static (apt-get install busybox-static): %v", err)
	}
	root := filepath.Join(parent, "rootfs")
	dirs := map[string]os.FileMode{"bin": 0o755, "proc": 0o555, "dev": 0o755, "tmp": 0o1777, "root": 0o700, "etc": 0o755}
	for _, w := range without {
		delete(dirs, w)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for d, mode := range dirs {
		if err := os.Mkdir(filepath.Join(root, d), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(root, d), mode); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := dirs["bin"]; ok {
		if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, a := range applets {
			if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, owner, owner)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

type result struct {
	code           int
	stdout, stderr string
	err            error
}

// run runs args in a container on root and returns what came out.
func run(t *testing.T, root string, stdin string, args ...string) result {
	t.Helper()
	return runConfig(t, Config{Root: root, Args: args, Stdin: strings.NewReader(stdin)})
}

func runConfig(t *testing.T, cfg Config) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if cfg.IDs.UID.Len() == 0 {
		cfg.IDs = testMap(t)
	}
	var stdout, stderr bytes.Buffer
	cfg.Stdout, cfg.Stderr = &stdout, &stderr
	code, err := Run(ctx, cfg)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// mustRun runs args and fails the test unless they exit 0.
func mustRun(t *testing.T, root string, args ...string) string {
	t.Helper()
	r := run(t, root, "", args...)
	if r.err != nil || r.code != 0 {
		t.Fatalf("Run(%q) = %d, %v; want 0, nil (stderr %q)", args, r.code, r.err, r.stderr)
	}
	return r.stdout
}

func TestRunAsContainerRoot(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	if got := mustRun(t, root, "id"); !strings.HasPrefix(got, "uid=0(") && !strings.HasPrefix(got, "uid=0 ") {
		t.Errorf("id = %q; want uid=0", got)
	}
	if got := mustRun(t, root, "sh", "-c", "id -u; id -g"); got != "0\n0\n" {
		t.Errorf("id -u; id -g = %q; want %q", got, "0\n0\n")
	}
}

func TestRunIDMaps(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	for _, file := range []string{"/proc/self/uid_map", "/proc/self/gid_map"} {
		got := strings.Fields(mustRun(t, root, "cat", file))
		if want := []string{"0", "100000", "65536"}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("cat %s = %q; want %q", file, got, want)
		}
	}
}

func TestRunHostname(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	if got := mustRun(t, root, "hostname"); got != DefaultHostname+"\n" {
		t.Errorf("hostname = %q; want %q", got, DefaultHostname)
	}
	r := runConfig(t, Config{Root: root, Args: []string{"hostname"}, Hostname: "box1"})
	if r.err != nil || r.stdout != "box1\n" {
		t.Errorf("hostname with Hostname box1 = %q, %v; want %q", r.stdout, r.err, "box1\n")
	}
	host, _ := os.Hostname()
	if host == "box1" || host == DefaultHostname {
		t.Errorf("host's hostname changed to %q", host)
	}
}

func TestRunExitCode(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	for _, code := range []int{0, 1, 7, 124, 125, 255} {
		r := run(t, root, "", "sh", "-c", "exit "+strconv.Itoa(code))
		if r.err != nil || r.code != code {
			t.Errorf("sh -c 'exit %d' = %d, %v; want %d, nil", code, r.code, r.err, code)
		}
	}
}

func TestRunStdio(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	in := "hello\nworld\n"
	r := run(t, root, in, "cat")
	if r.err != nil || r.code != 0 || r.stdout != in {
		t.Errorf("cat with stdin %q = %d, %v, stdout %q; want 0, nil, the input", in, r.code, r.err, r.stdout)
	}
	r = run(t, root, "", "sh", "-c", "echo out; echo err >&2")
	if r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("stdout, stderr = %q, %q; want %q, %q", r.stdout, r.stderr, "out\n", "err\n")
	}
}

func TestRunPIDNamespace(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	if got := mustRun(t, root, "sh", "-c", "echo $$"); got != "1\n" {
		t.Errorf("echo $$ = %q; want 1", got)
	}
	// The fresh /proc shows only the container's processes.
	if got := mustRun(t, root, "sh", "-c", "ls -d /proc/[0-9]*"); got != "/proc/1\n" {
		t.Errorf("processes in /proc = %q; want only /proc/1", got)
	}
}

func TestRunEnvAndDir(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	got := mustRun(t, root, "sh", "-c", "echo $PATH; echo $HOME; echo $container; pwd")
	want := DefaultPath + "\n/root\nidmapfs\n/\n"
	if got != want {
		t.Errorf("default environment = %q; want %q", got, want)
	}
	r := runConfig(t, Config{Root: root, Args: []string{"/bin/sh", "-c", "echo $FOO; pwd"}, Env: []string{"FOO=bar"}, Dir: "/tmp"})
	if r.err != nil || r.stdout != "bar\n/tmp\n" {
		t.Errorf("Env FOO=bar, Dir /tmp: %q, %v; want %q", r.stdout, r.err, "bar\n/tmp\n")
	}
}

func TestRunCommandNotFound(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	r := run(t, root, "", "no-such-command")
	if r.err != nil || r.code != ExitNotFound || !strings.Contains(r.stderr, "no-such-command") {
		t.Errorf("Run(no-such-command) = %d, %v, stderr %q; want %d, nil, a message naming it", r.code, r.err, r.stderr, ExitNotFound)
	}
	// A file that is not executable: 126, like a shell.
	if err := os.WriteFile(filepath.Join(root, "bin/noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, root, "", "/bin/noexec")
	if r.err != nil || r.code != ExitCannotExecute {
		t.Errorf("Run(/bin/noexec) = %d, %v, stderr %q; want %d, nil", r.code, r.err, r.stderr, ExitCannotExecute)
	}
}

func TestRunBadRoot(t *testing.T) {
	t.Parallel()
	noProc := newRootfs(t, "proc")
	tests := []struct {
		name, root string
		want       string
	}{
		{"no proc", noProc, "no proc directory"},
		{"missing root", filepath.Join(t.TempDir(), "missing"), "no such file"},
		{"empty root", "", "no root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.root, "", "true")
			if r.err == nil || r.code != ExitSetupFailed || !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("Run(root %q) = %d, %v; want %d and an error containing %q", tt.root, r.code, r.err, ExitSetupFailed, tt.want)
			}
		})
	}
	// A symlink named proc must not be followed, even to a directory.
	if err := os.Symlink("/proc", filepath.Join(noProc, "proc")); err != nil {
		t.Fatal(err)
	}
	r := run(t, noProc, "", "true")
	if r.err == nil || !strings.Contains(r.err.Error(), "not a directory") {
		t.Errorf("Run(proc is a symlink) = %d, %v; want an error saying it is not a directory", r.code, r.err)
	}
}

func TestRunBadMap(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	noRoot, err := idmap.ParseMap("1:100001:100")
	if err != nil {
		t.Fatal(err)
	}
	r := runConfig(t, Config{Root: root, Args: []string{"true"}, IDs: idmap.IDMap{UID: noRoot, GID: noRoot}})
	if r.err == nil || r.code != ExitSetupFailed {
		t.Errorf("Run(map without 0) = %d, %v; want %d and an error", r.code, r.err, ExitSetupFailed)
	}
}

// TestRunSetupFailure checks that a step failing inside the namespaces comes
// back as a *SetupError, not as the command's status.
func TestRunSetupFailure(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	r := runConfig(t, Config{Root: root, Args: []string{"true"}, Dir: "/no/such/dir"})
	var se *SetupError
	if !errors.As(r.err, &se) || se.Step != stepChdir || !errors.Is(r.err, syscall.ENOENT) || r.code != ExitSetupFailed {
		t.Errorf("Run(Dir missing) = %d, %v; want %d and a *SetupError for %q wrapping ENOENT", r.code, r.err, ExitSetupFailed, stepChdir)
	}
}

func TestRunFilesOwnedByContainerRoot(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	mustRun(t, root, "sh", "-c", "echo data > /tmp/made && touch /root/also")
	for _, p := range []string{"tmp/made", "root/also"} {
		st, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Uid != hostRoot || sys.Gid != hostRoot {
			t.Errorf("%s is owned by %d:%d on the host; want %d:%d", p, sys.Uid, sys.Gid, hostRoot, hostRoot)
		}
	}
	// Inside, the image is root's.
	if got := mustRun(t, root, "stat", "-c", "%u:%g", "/", "/tmp/made"); got != "0:0\n0:0\n" {
		t.Errorf("owners inside = %q; want 0:0 twice", got)
	}
}

func TestRunDev(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	got := mustRun(t, root, "sh", "-c", "echo x > /dev/null && cat /dev/null && ls /dev")
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "fd", "pts", "shm"} {
		if !strings.Contains("\n"+got, "\n"+name+"\n") {
			t.Errorf("ls /dev = %q; missing %s", got, name)
		}
	}
	if got := mustRun(t, root, "sh", "-c", "echo x > /dev/full || echo full"); got != "full\n" {
		t.Errorf("writing /dev/full = %q; want the write to fail (ENOSPC)", got)
	}
	// Without /dev in the image, the container still runs.
	noDev := newRootfs(t, "dev")
	if got := mustRun(t, noDev, "echo", "ok"); got != "ok\n" {
		t.Errorf("echo ok without /dev = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(noDev, "dev")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Run created dev in the image: Lstat = %v", err)
	}
}

// TestRunIsolatedFromHost checks that the host's tree is gone inside: only
// the container's own mounts remain.
func TestRunIsolatedFromHost(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	got := mustRun(t, root, "cat", "/proc/self/mountinfo")
	var points []string
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			points = append(points, f[4])
		}
	}
	want := []string{"/", "/proc", "/dev", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/pts"}
	if strings.Join(points, " ") != strings.Join(want, " ") {
		t.Errorf("mount points inside = %q; want %q", points, want)
	}
	if got := mustRun(t, root, "ls", "/"); got != "bin\ndev\netc\nproc\nroot\ntmp\n" {
		t.Errorf("ls / = %q; want the image's top level only", got)
	}
}

func TestRunLeavesNoMounts(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	mustRun(t, root, "true")
	r := run(t, root, "", "no-such-command") // fails after the mounts are made
	if r.code != ExitNotFound {
		t.Fatalf("Run(no-such-command) = %d, %v", r.code, r.err)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 4 && strings.HasPrefix(fields[4], root) {
			t.Errorf("mount left behind: %s", s.Text())
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	stdoutR, stdoutW := io.Pipe()
	defer stdoutR.Close()
	done := make(chan result, 1)
	go func() {
		cfg := Config{Root: root, IDs: testMap(t), Args: []string{"sh", "-c", "echo started; exec cat"}, Stdin: stdinR, Stdout: stdoutW}
		code, err := Run(ctx, cfg)
		stdoutW.Close()
		done <- result{code: code, err: err}
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil || line != "started\n" {
		t.Fatalf("first line = %q, %v; want %q", line, err, "started\n")
	}
	go io.Copy(io.Discard, stdoutR)
	cancel()
	select {
	case r := <-done:
		if r.code != 128+int(syscall.SIGKILL) || !errors.Is(r.err, context.Canceled) {
			t.Errorf("Run after cancel = %d, %v; want %d and context.Canceled", r.code, r.err, 128+int(syscall.SIGKILL))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// TestRunKeepsMountFlagsLocked checks that container root cannot lift the
// nosuid and nodev of the mount its root lives on (for idmapfs, the FUSE
// mount): the kernel locks them only if the container's mounts are copies
// made for its user namespace, not mounts handed in from outside.
func TestRunKeepsMountFlagsLocked(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	root := newRootfsIn(t, dir, hostRoot)
	r := run(t, root, "", "sh", "-c", "mount -o remount,bind,dev,suid / 2>/dev/null; cat /proc/self/mountinfo")
	if r.err != nil {
		t.Fatalf("Run = %d, %v (stderr %q)", r.code, r.err, r.stderr)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			if opts := "," + f[5] + ","; !strings.Contains(opts, ",nodev,") || !strings.Contains(opts, ",nosuid,") {
				t.Errorf("after remount inside, / has options %s; want nodev and nosuid kept", f[5])
			}
			return
		}
	}
	t.Errorf("no / in mountinfo inside: %q", r.stdout)
}

func TestRunClosesInheritedDescriptors(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	// ls has 0, 1 and 2, plus 3 for the directory it lists.
	if got := mustRun(t, root, "ls", "/proc/self/fd"); got != "0\n1\n2\n3\n" {
		t.Errorf("ls /proc/self/fd = %q; want only stdin, stdout, stderr and ls's own", got)
	}
}

// TestRunRelaysSignals sends SIGTERM to the test process while a container
// runs: Run must catch it and pass it on. Not parallel: the signal reaches
// every Run in the process.
func TestRunRelaysSignals(t *testing.T) {
	root := newRootfs(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stdoutR, stdoutW := io.Pipe()
	defer stdoutR.Close()
	done := make(chan result, 1)
	go func() {
		cfg := Config{Root: root, IDs: testMap(t), Stdout: stdoutW,
			Args: []string{"sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done"}}
		code, err := Run(ctx, cfg)
		stdoutW.Close()
		done <- result{code: code, err: err}
	}()
	out := bufio.NewReader(stdoutR)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("first line = %q, %v; want %q", line, err, "ready\n")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	r := <-done
	if r.err != nil || r.code != 3 || string(rest) != "got TERM\n" {
		t.Errorf("after SIGTERM: Run = %d, %v, output %q; want 3, nil, %q", r.code, r.err, rest, "got TERM\n")
	}
}

// TestRunOnIDMappedMount runs on what idmapfs provides, with the kernel's
// idmapped mounts standing in for it: a root-owned image shown with host
// ids through a mount whose root is the container's root.
func TestRunOnIDMappedMount(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root for an idmapped mount")
	}
	disk := newRootfsIn(t, t.TempDir(), 0)
	target := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	idmapMount(t, disk, target, testMap(t))
	if st, err := os.Stat(filepath.Join(target, "bin/busybox")); err != nil || st.Sys().(*syscall.Stat_t).Uid != hostRoot {
		t.Fatalf("idmapped mount does not show host ids: %v, %v", st, err)
	}

	got := mustRun(t, target, "sh", "-c", "id -u; stat -c %u:%g /bin/busybox; touch /tmp/new; stat -c %u:%g /tmp/new")
	if want := "0\n0:0\n0:0\n"; got != want {
		t.Errorf("inside = %q; want %q", got, want)
	}
	st, err := os.Lstat(filepath.Join(disk, "tmp/new"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 0 || sys.Gid != 0 {
		t.Errorf("file made inside is %d:%d on disk; want 0:0", sys.Uid, sys.Gid)
	}
}

// idmapMount mounts dir on target with ids shifted by m, like idmapfs, and
// unmounts it when the test ends.
func idmapMount(t *testing.T, dir, target string, m idmap.IDMap) {
	t.Helper()
	sleep := exec.Command("/bin/busybox", "sleep", "60")
	sleep.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: procMappings(m.UID),
		GidMappings: procMappings(m.GID),
	}
	if err := sleep.Start(); err != nil {
		t.Fatalf("start a process in a user namespace: %v", err)
	}
	defer func() {
		sleep.Process.Kill()
		sleep.Wait()
	}()
	ns, err := os.Open("/proc/" + strconv.Itoa(sleep.Process.Pid) + "/ns/user")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		t.Fatalf("open_tree %s: %v", dir, err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		t.Fatalf("mount_setattr MOUNT_ATTR_IDMAP on %s: %v", dir, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		t.Fatalf("move_mount to %s: %v", target, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
}

// TestRunStdioFiles passes *os.File stdio, as the idmapfs command does.
func TestRunStdioFiles(t *testing.T) {
	t.Parallel()
	root := newRootfs(t)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := inW.WriteString("from a file\n"); err != nil {
		t.Fatal(err)
	}
	inW.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	code, err := Run(ctx, Config{Root: root, IDs: testMap(t), Args: []string{"cat"}, Stdin: inR, Stdout: out, Stderr: out})
	if err != nil || code != 0 {
		t.Fatalf("Run(cat) = %d, %v; want 0, nil", code, err)
	}
	got, err := os.ReadFile(out.Name())
	if err != nil || string(got) != "from a file\n" {
		t.Errorf("output = %q, %v; want %q", got, err, "from a file\n")
	}
}
