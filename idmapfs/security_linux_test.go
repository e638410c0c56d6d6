package idmapfs_test

// Security tests: the container (untrusted) controls every name and symlink
// in SOURCE, and idmapfs runs as root. Whatever the container does, the
// daemon must never act on anything outside SOURCE, never expose device nodes
// or setuid bits unless asked to, and never leave a file owned by the wrong
// id, not even for a moment.
//
// The callers run in child processes (this test binary, re-executed through
// TestSecurityChildProcess) as host root, as plain host uid 100000, or as
// root or an ordinary user of a user namespace mapped 0:100000:65536 (a real
// container root, with capabilities over its own ids). Every child gets a
// private mount namespace in which the canary directory outside SOURCE is
// covered by an empty tmpfs: when the kernel itself follows a symlink on the
// client side (which it does, and may), it lands there. Any change to the
// real canary directory can therefore only have been made by the daemon.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
	"github.com/shiftlock/shiftlock/idmapfs"
	"github.com/shiftlock/shiftlock/internal/testutil"
)

const (
	// secMap is the usual container map: container root is host 100000.
	secMap = "0:100000:65536"
	// secRootMap keeps disk 0 as host 0, for the setuid and device tests.
	secRootMap = "0:0:1,1:100001:65535"
	// secChildEnv carries a child's instructions (JSON secSpec).
	secChildEnv = "IDMAPFS_SECTEST_CHILD"
	// secCanaryUID/GID own the canary files outside SOURCE.
	secCanaryUID, secCanaryGID = 4242, 4243
)

func secIDs(t testing.TB, spec string) idmap.IDMap {
	t.Helper()
	m, err := idmap.ParseMap(spec)
	if err != nil {
		t.Fatalf("ParseMap(%q) = %v", spec, err)
	}
	return idmap.IDMap{UID: m, GID: m}
}

// secEnv is one test's tree: base/src (SOURCE), base/mnt (the idmapfs
// mount), base/outside (the canary, outside SOURCE) and base/bin (this test
// binary, reachable by unprivileged callers).
type secEnv struct {
	base, src, mnt, outside, bin string
}

func secNewEnv(t *testing.T) *secEnv {
	t.Helper()
	testutil.RequireFUSE(t)
	base := t.TempDir()
	// t.TempDir makes 0700 directories; callers other than root must reach
	// the mount.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := &secEnv{
		base:    base,
		src:     filepath.Join(base, "src"),
		mnt:     filepath.Join(base, "mnt"),
		outside: filepath.Join(base, "outside"),
		bin:     filepath.Join(base, "bin", "idmapfs.test"),
	}
	for _, d := range []string{e.src, e.mnt, e.outside, filepath.Dir(e.bin)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secCanary(t, e.outside)
	secCopyBinary(t, e.bin)
	return e
}

// secCopyBinary makes this test binary executable by host uid 100000 (the go
// build directory is private to root).
func secCopyBinary(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Link(self, dst); err == nil {
		return
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// mount mounts e.src on e.mnt and unmounts it when the test ends.
func (e *secEnv) mount(t *testing.T, opts idmapfs.Options) *idmapfs.FS {
	t.Helper()
	if opts.IDs.UID.Empty() {
		opts.IDs = secIDs(t, secMap)
	}
	opts.AllowOther = true
	server, fsys, err := idmapfs.Mount(e.src, e.mnt, opts)
	if err != nil {
		t.Fatalf("Mount(%s, %s) = %v", e.src, e.mnt, err)
	}
	t.Cleanup(func() { secUnmount(t, server, e.mnt) })
	return fsys
}

func secUnmount(t *testing.T, server *fuse.Server, mnt string) {
	if err := server.Unmount(); err != nil {
		t.Logf("unmount %s: %v; detaching it lazily", mnt, err)
		if err := idmapfs.Unmount(mnt, true); err != nil {
			t.Errorf("lazy unmount %s: %v", mnt, err)
			return
		}
	}
	done := make(chan struct{})
	go func() { server.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("server for %s still running 10s after unmount", mnt)
	}
}

// secCanary fills dir with files whose every attribute the tests watch.
func secCanary(t *testing.T, dir string) {
	t.Helper()
	files := []struct {
		name string
		mode os.FileMode
		data string
	}{
		{"canary", 0o640, "canary data\n"},
		{"sub/deep", 0o600, "deep canary\n"},
		{"exec", 0o755, "#!/bin/sh\n"},
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, secCanaryUID, secCanaryGID); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lsetxattr(p, "user.canary", []byte("keep"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("canary", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

// secSnap describes every entry under a directory: type, mode, owner, size,
// links, inode, ctime, mtime, xattrs and a hash of the content. ctime moves
// on any chmod, chown, xattr change, write, truncate, link or rename.
type secSnap map[string]string

func secSnapshot(t *testing.T, dir string) secSnap {
	t.Helper()
	s := secSnap{}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		d := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d nlink=%d ino=%d ctime=%d.%09d mtime=%d.%09d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, st.Ino, st.Ctim.Sec, st.Ctim.Nsec, st.Mtim.Sec, st.Mtim.Nsec)
		d += " xattrs=" + secXattrs(p)
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			d += fmt.Sprintf(" sha=%x", sha256.Sum256(b))
		}
		rel, _ := filepath.Rel(dir, p)
		s[rel] = d
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return s
}

func secXattrs(p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return "err:" + err.Error()
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var parts []string
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			parts = append(parts, name+"=err:"+err.Error())
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%x", name, v[:m]))
	}
	return strings.Join(parts, ",")
}

// secSame fails t for every difference between two snapshots of dir.
func secSame(t *testing.T, what string, before, after secSnap) {
	t.Helper()
	var keys []string
	for k := range before {
		keys = append(keys, k)
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b, inB := before[k]
		a, inA := after[k]
		switch {
		case !inA:
			t.Errorf("%s/%s was removed (was %s)", what, k, b)
		case !inB:
			t.Errorf("%s/%s was created: %s", what, k, a)
		case a != b:
			t.Errorf("%s/%s was changed:\n\tbefore %s\n\tafter  %s", what, k, b, a)
		}
	}
}

// secWho is a caller.
type secWho struct {
	name   string
	userns bool // inside a user namespace mapped by secMap
	uid    int  // host uid (plain) or namespace uid (userns); 0 = root
	gid    int
}

var (
	secHostRoot      = secWho{name: "host-root"}
	secPlainCRoot    = secWho{name: "host-uid-100000", uid: 100000, gid: 100000}
	secContainerRoot = secWho{name: "container-root", userns: true}
	secContainerUser = secWho{name: "container-uid-1000", userns: true, uid: 1000, gid: 1000}
)

// secOp is one operation a child performs; see secDo.
type secOp struct {
	Op     string
	Path   string
	Path2  string `json:",omitempty"`
	Mode   uint32 `json:",omitempty"`
	Dev    int    `json:",omitempty"`
	UID    int    `json:",omitempty"`
	GID    int    `json:",omitempty"`
	Data   string `json:",omitempty"`
	Expect string `json:"-"` // "" = don't care, "OK", or an errno name
}

// secLoop is a child's racing workload.
type secLoop struct {
	Dirs    []string
	Prefix  string
	Millis  int
	Create  bool
	ChownTo int // id to chown created entries to (caller's view)
	Count   int // stop after this many creates (0: run until Millis)
}

type secSpec struct {
	Hide    []string // cover with a private tmpfs first
	DropUID int      // become this uid/gid after hiding (-1: stay)
	DropGID int
	Ops     []secOp
	Loop    *secLoop
}

type secResult struct {
	Err string // "" on success, else an errno name
	Out string
}

// TestSecurityChildProcess is not a test: it is the body of the child
// processes the security tests start.
func TestSecurityChildProcess(t *testing.T) {
	spec := os.Getenv(secChildEnv)
	if spec == "" {
		return
	}
	os.Exit(secChildMain(spec))
}

func secChildMain(raw string) int {
	var s secSpec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad spec:", err)
		return 3
	}
	for _, d := range s.Hide {
		if err := unix.Mount("tmpfs", d, "tmpfs", 0, "mode=1777"); err != nil {
			fmt.Fprintf(os.Stderr, "child: hide %s: %v\n", d, err)
			return 3
		}
	}
	if s.DropUID >= 0 {
		// The syscall package applies these to every thread.
		if err := syscall.Setgroups(nil); err != nil {
			fmt.Fprintln(os.Stderr, "child: setgroups:", err)
			return 3
		}
		if err := syscall.Setresgid(s.DropGID, s.DropGID, s.DropGID); err != nil {
			fmt.Fprintln(os.Stderr, "child: setresgid:", err)
			return 3
		}
		if err := syscall.Setresuid(s.DropUID, s.DropUID, s.DropUID); err != nil {
			fmt.Fprintln(os.Stderr, "child: setresuid:", err)
			return 3
		}
	}
	unix.Umask(0o022)
	var out any
	if s.Loop != nil {
		out = secRunLoop(s.Loop)
	} else {
		res := make([]secResult, len(s.Ops))
		for i, op := range s.Ops {
			res[i] = secDo(op)
		}
		out = res
	}
	b, _ := json.Marshal(out)
	fmt.Printf("\nSECRESULT %s\n", b)
	return 0
}

func secErrName(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
	}
	return err.Error()
}

// secDo performs one operation in the child.
func secDo(op secOp) secResult {
	var err error
	var out string
	p := op.Path
	switch op.Op {
	case "create", "createx", "createnf", "write", "trunc-open":
		flags := unix.O_WRONLY | unix.O_CLOEXEC
		switch op.Op {
		case "create":
			flags |= unix.O_CREAT
		case "createx":
			flags |= unix.O_CREAT | unix.O_EXCL
		case "createnf":
			flags |= unix.O_CREAT | unix.O_NOFOLLOW
		case "trunc-open":
			flags |= unix.O_TRUNC
		}
		var fd int
		fd, err = unix.Open(p, flags, op.Mode)
		if err == nil {
			if op.Data != "" {
				_, err = unix.Write(fd, []byte(op.Data))
			}
			unix.Close(fd)
		}
	case "open":
		var fd int
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			buf := make([]byte, 16)
			var n int
			n, err = unix.Read(fd, buf)
			if n > 0 {
				out = fmt.Sprintf("%x", buf[:n])
			}
			unix.Close(fd)
		}
	case "read":
		var b []byte
		b, err = os.ReadFile(p)
		out = string(b)
	case "readdir":
		var ents []os.DirEntry
		ents, err = os.ReadDir(p)
		for _, e := range ents {
			out += e.Name() + " "
		}
	case "chmod":
		err = unix.Chmod(p, op.Mode)
	case "chown":
		err = unix.Chown(p, op.UID, op.GID)
	case "lchown":
		err = unix.Lchown(p, op.UID, op.GID)
	case "truncate":
		err = unix.Truncate(p, int64(op.Mode))
	case "setxattr":
		err = unix.Setxattr(p, op.Path2, []byte(op.Data), 0)
	case "lsetxattr":
		err = unix.Lsetxattr(p, op.Path2, []byte(op.Data), 0)
	case "lremovexattr":
		err = unix.Lremovexattr(p, op.Path2)
	case "lgetxattr":
		buf := make([]byte, 4096)
		var n int
		n, err = unix.Lgetxattr(p, op.Path2, buf)
		if err == nil {
			out = string(buf[:n])
		}
	case "link":
		err = unix.Linkat(unix.AT_FDCWD, p, unix.AT_FDCWD, op.Path2, 0)
	case "linkfollow":
		err = unix.Linkat(unix.AT_FDCWD, p, unix.AT_FDCWD, op.Path2, unix.AT_SYMLINK_FOLLOW)
	case "rename":
		err = unix.Rename(p, op.Path2)
	case "exchange":
		err = unix.Renameat2(unix.AT_FDCWD, p, unix.AT_FDCWD, op.Path2, unix.RENAME_EXCHANGE)
	case "whiteout":
		err = unix.Renameat2(unix.AT_FDCWD, p, unix.AT_FDCWD, op.Path2, unix.RENAME_WHITEOUT)
	case "mkdir":
		err = unix.Mkdir(p, op.Mode)
	case "rmdir":
		err = unix.Rmdir(p)
	case "unlink":
		err = unix.Unlink(p)
	case "mknod":
		err = unix.Mknod(p, op.Mode, op.Dev)
	case "symlink":
		err = unix.Symlink(op.Path2, p)
	case "lutimes":
		ts := []unix.Timespec{{Sec: 1}, {Sec: 1}}
		err = unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	case "utimes":
		ts := []unix.Timespec{{Sec: 1}, {Sec: 1}}
		err = unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0)
	case "lstat", "stat":
		var st unix.Stat_t
		if op.Op == "lstat" {
			err = unix.Lstat(p, &st)
		} else {
			err = unix.Stat(p, &st)
		}
		if err == nil {
			out = fmt.Sprintf("mode=%o uid=%d gid=%d ino=%d", st.Mode, st.Uid, st.Gid, st.Ino)
		}
	case "tmpfile":
		var fd int
		fd, err = unix.Open(p, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, op.Mode)
		if err == nil {
			if op.Path2 != "" {
				err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, op.Path2, unix.AT_SYMLINK_FOLLOW)
			}
			unix.Close(fd)
		}
	case "hold":
		// Keep an O_PATH descriptor of the link itself for "setxattr-held".
		secHeld, err = unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	case "setxattr-held":
		// Through the magic link: the kernel goes straight to the held
		// inode, with no lookup of its name.
		err = unix.Setxattr("/proc/self/fd/"+strconv.Itoa(secHeld), op.Path2, []byte(op.Data), 0)
	case "ready":
		fmt.Println("SECREADY")
	case "wait":
		// Wait for the parent to change SOURCE.
		_, err = fmt.Fscanln(os.Stdin)
	default:
		err = fmt.Errorf("unknown op %q", op.Op)
	}
	return secResult{Err: secErrName(err), Out: out}
}

// secReadyWriter collects a child's stdout and closes ready when the child
// prints its "ready" line.
type secReadyWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	ready chan struct{}
	seen  bool
}

func (w *secReadyWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if !w.seen && strings.Contains(w.buf.String(), "SECREADY") {
		w.seen = true
		close(w.ready)
	}
	return len(b), nil
}

func (w *secReadyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// secHeld is the descriptor of the child's "hold" op.
var secHeld = -1

// secRunLoop hammers the mount until the deadline (or Count creates) and
// returns how often each operation succeeded.
func secRunLoop(l *secLoop) map[string]int {
	ok := map[string]int{}
	deadline := time.Now().Add(time.Duration(l.Millis) * time.Millisecond)
	did := func(name string, err error) {
		if err == nil {
			ok[name]++
		}
	}
	creates := 0
	for i := 0; ; i++ {
		if l.Count > 0 && creates >= l.Count {
			break
		}
		if l.Count == 0 && !time.Now().Before(deadline) {
			break
		}
		d := l.Dirs[i%len(l.Dirs)]
		name := filepath.Join(d, fmt.Sprintf("%s%d", l.Prefix, i%97))
		if l.Count > 0 {
			name = filepath.Join(d, fmt.Sprintf("%s%d", l.Prefix, i))
		}
		if l.Count == 0 {
			var st unix.Stat_t
			did("lstat-dir", unix.Lstat(d, &st))
		}
		if l.Create {
			creates++
			switch i % 4 {
			case 0:
				// O_NONBLOCK: the name may be a FIFO left by an earlier
				// round, and a blocking open would wait for a reader.
				fd, err := unix.Open(name, unix.O_CREAT|unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
				if err == nil {
					unix.Write(fd, []byte("x"))
					unix.Close(fd)
				}
				did("create", err)
			case 1:
				did("mkdir", unix.Mkdir(name, 0o755))
			case 2:
				did("mkfifo", unix.Mknod(name, unix.S_IFIFO|0o644, 0))
			case 3:
				did("symlink", unix.Symlink("/etc/passwd", name))
			}
			if l.Count > 0 {
				continue
			}
		}
		did("chmod", unix.Chmod(name, 0o600))
		did("chmod-dir", unix.Chmod(d, 0o777))
		did("lchown", unix.Lchown(name, l.ChownTo, l.ChownTo))
		did("setxattr", unix.Lsetxattr(name, "user.race", []byte("1"), 0))
		did("truncate", unix.Truncate(name, 0))
		did("utimes", unix.UtimesNanoAt(unix.AT_FDCWD, name, []unix.Timespec{{Sec: 2}, {Sec: 2}}, unix.AT_SYMLINK_NOFOLLOW))
		did("link", unix.Link(name, name+"l"))
		did("rename", unix.Rename(name+"l", name+"r"))
		did("unlink", unix.Unlink(name+"r"))
		if _, err := os.ReadDir(d); err == nil {
			ok["readdir"]++
		}
		did("unlink", unix.Unlink(name))
		did("rmdir", unix.Rmdir(name))
		// Victims that only exist in the canary directory.
		did("unlink-canary", unix.Unlink(filepath.Join(d, "canary")))
		did("chmod-canary", unix.Chmod(filepath.Join(d, "canary"), 0o777))
	}
	return ok
}

// secStart starts a child as who with spec; hide lists directories to cover.
func (e *secEnv) secStart(t *testing.T, who secWho, spec secSpec, stdout io.Writer) *exec.Cmd {
	t.Helper()
	return e.secStartStdin(t, who, spec, stdout, nil)
}

// secStartStdin is secStart with the child's stdin (for "wait" ops).
func (e *secEnv) secStartStdin(t *testing.T, who secWho, spec secSpec, stdout io.Writer, stdin *os.File) *exec.Cmd {
	t.Helper()
	spec.DropUID, spec.DropGID = -1, -1
	if who.uid != 0 || who.gid != 0 {
		spec.DropUID, spec.DropGID = who.uid, who.gid
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.bin, "-test.run=^TestSecurityChildProcess$")
	// The race runtime sleeps a second at exit unless told not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), secChildEnv+"="+string(raw), "GORACE="+gorace)
	cmd.Stdout = stdout
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Stderr = &secPrefixWriter{t: t, prefix: who.name + ": "}
	cmd.Dir = "/"
	if who.userns {
		m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings:                m,
			GidMappings:                m,
			GidMappingsEnableSetgroups: true,
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0},
		}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	}
	// A child that outlives its test (a failure, a hang) must not keep the
	// mount busy or survive the test binary.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", who.name, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	return cmd
}

type secPrefixWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
}

func (w *secPrefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line != "" && !strings.HasPrefix(line, "PASS") {
			w.t.Logf("%s%s", w.prefix, line)
		}
	}
	return len(b), nil
}

// secRun runs ops as who (with the canary directory hidden) and checks the
// expected results.
func (e *secEnv) secRun(t *testing.T, who secWho, ops []secOp) []secResult {
	t.Helper()
	var out strings.Builder
	cmd := e.secStart(t, who, secSpec{Hide: []string{e.outside}, Ops: ops}, &out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child %s: %v\n%s", who.name, err, out.String())
	}
	var res []secResult
	secParse(t, out.String(), &res)
	if len(res) != len(ops) {
		t.Fatalf("child %s: %d results for %d ops", who.name, len(res), len(ops))
	}
	for i, op := range ops {
		got := res[i].Err
		if got == "" {
			got = "OK"
		}
		if op.Expect != "" && got != op.Expect {
			t.Errorf("%s: %s(%s%s) = %s; want %s", who.name, op.Op, op.Path, secArrow(op.Path2), got, op.Expect)
		}
	}
	return res
}

func secArrow(p string) string {
	if p == "" {
		return ""
	}
	return ", " + p
}

func secParse(t *testing.T, out string, v any) {
	t.Helper()
	i := strings.LastIndex(out, "SECRESULT ")
	if i < 0 {
		t.Fatalf("child printed no result:\n%s", out)
	}
	line := out[i+len("SECRESULT "):]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	if err := json.Unmarshal([]byte(line), v); err != nil {
		t.Fatalf("child result %q: %v", line, err)
	}
}

func secLstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func secMkdirs(t *testing.T, mode os.FileMode, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.Mkdir(d, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
}

func secSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// secEtc describes /etc and /etc/passwd, which a symlink in SOURCE points at.
func secEtc(t *testing.T) string {
	t.Helper()
	var s string
	for _, p := range []string{"/etc", "/etc/passwd"} {
		st := secLstat(t, p)
		s += fmt.Sprintf("%s mode=%o uid=%d gid=%d size=%d xattrs=%s; ", p, st.Mode, st.Uid, st.Gid, st.Size, secXattrs(p))
	}
	return s
}

// TestSecuritySymlinkEscape plants absolute and relative symlinks that point
// outside SOURCE and drives every operation through them, following and not
// following, as host root, as plain uid 100000 and as container root.
func TestSecuritySymlinkEscape(t *testing.T) {
	e := secNewEnv(t)
	rel, err := filepath.Rel(filepath.Dir(e.base), e.outside) // "NNN/outside"
	if err != nil {
		t.Fatal(err)
	}
	secMkdirs(t, 0o777, filepath.Join(e.src, "d"))
	links := map[string]string{
		"abs":          e.outside,
		"etc":          "/etc",
		"rel":          "../outside",
		"up":           "../../" + rel, // climbs above the mount, then down
		"root":         "/",
		"d/abs":        e.outside,
		"d/rel":        "../../outside",
		"file":         filepath.Join(e.outside, "canary"),
		"file-rel":     "../outside/canary",
		"dangling":     filepath.Join(e.outside, "created-by-daemon"),
		"dangling-rel": "../outside/created-by-daemon",
	}
	var names []string
	for name, target := range links {
		secSymlink(t, target, filepath.Join(e.src, name))
		names = append(names, name)
	}
	sort.Strings(names)
	e.mount(t, idmapfs.Options{EntryTimeout: idmapfs.DefaultTimeout, AttrTimeout: idmapfs.DefaultTimeout, NegativeTimeout: idmapfs.DefaultTimeout})
	before, etcBefore := secSnapshot(t, e.outside), secEtc(t)

	for _, who := range []secWho{secHostRoot, secPlainCRoot, secContainerRoot} {
		t.Run(who.name, func(t *testing.T) {
			// Ids as the caller names them: host ids outside a user
			// namespace, namespace ids inside.
			five := 100005
			if who.userns {
				five = 5
			}
			var ops []secOp
			for _, name := range names {
				m := filepath.Join(e.mnt, name)
				// Operations on the link itself: the daemon acts on
				// the symlink in SOURCE.
				lchownWant := "OK"
				if who == secPlainCRoot {
					lchownWant = "EPERM"
				}
				ops = append(ops,
					secOp{Op: "lstat", Path: m, Expect: "OK"},
					secOp{Op: "lchown", Path: m, UID: five, GID: five, Expect: lchownWant},
					secOp{Op: "lutimes", Path: m},
					secOp{Op: "lsetxattr", Path: m, Path2: "user.escape", Data: "x"},
					secOp{Op: "lsetxattr", Path: m, Path2: "security.escape", Data: "x"},
					secOp{Op: "lsetxattr", Path: m, Path2: "trusted.escape", Data: "x"},
					secOp{Op: "lremovexattr", Path: m, Path2: "user.canary"},
					secOp{Op: "link", Path: m, Path2: m + ".hl"},
					secOp{Op: "rename", Path: m, Path2: m + ".mv"},
					secOp{Op: "rename", Path: m + ".mv", Path2: m},
					secOp{Op: "createx", Path: m, Mode: 0o644, Expect: "EEXIST"},
					secOp{Op: "createnf", Path: m, Mode: 0o644},
					secOp{Op: "mkdir", Path: m, Mode: 0o755, Expect: "EEXIST"},
					secOp{Op: "mknod", Path: m, Mode: unix.S_IFIFO | 0o644, Expect: "EEXIST"},
					secOp{Op: "symlink", Path: m, Path2: "x", Expect: "EEXIST"},
				)
				if name == "etc" || name == "root" {
					// The kernel follows these on the client side,
					// into the caller's own /etc: read only.
					ops = append(ops, secOp{Op: "stat", Path: m + "/passwd"})
					continue
				}
				// Operations the kernel resolves through the link on
				// the client side (into the caller's private tmpfs).
				in := m
				if !strings.HasPrefix(name, "file") && !strings.HasPrefix(name, "dangling") {
					in = m + "/canary"
				}
				ops = append(ops,
					secOp{Op: "create", Path: in, Mode: 0o666, Data: "pwned"},
					secOp{Op: "trunc-open", Path: in},
					secOp{Op: "chmod", Path: in, Mode: 0o777},
					secOp{Op: "chown", Path: in, UID: five, GID: five},
					secOp{Op: "truncate", Path: in},
					secOp{Op: "utimes", Path: in},
					secOp{Op: "setxattr", Path: in, Path2: "user.escape", Data: "x"},
					secOp{Op: "linkfollow", Path: m, Path2: m + ".lf"},
					secOp{Op: "mkdir", Path: m + "/newdir", Mode: 0o755},
					secOp{Op: "tmpfile", Path: m, Mode: 0o644},
					secOp{Op: "chmod", Path: m, Mode: 0o700},
				)
				if in != m {
					// rename and unlink do not follow a final symlink.
					ops = append(ops,
						secOp{Op: "rename", Path: in, Path2: filepath.Join(e.mnt, "stolen")},
						secOp{Op: "unlink", Path: in},
					)
				}
			}
			e.secRun(t, who, ops)
			secSame(t, e.outside, before, secSnapshot(t, e.outside))
			if got := secEtc(t); got != etcBefore {
				t.Errorf("ESCAPE: /etc changed:\n\tbefore %s\n\tafter  %s", etcBefore, got)
			}
			// The daemon acted on the links themselves.
			if who != secPlainCRoot {
				for _, name := range names {
					st := secLstat(t, filepath.Join(e.src, name))
					if st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Uid != 5 || st.Gid != 5 {
						t.Errorf("after lchown through the mount, %s on disk = mode %o, %d:%d; want a symlink owned 5:5", name, st.Mode, st.Uid, st.Gid)
					}
				}
			}
		})
	}
	for _, name := range []string{"created-by-daemon", "stolen"} {
		if _, err := os.Lstat(filepath.Join(e.outside, name)); err == nil {
			t.Errorf("ESCAPE: %s exists outside SOURCE", name)
		}
	}
}

// TestSecuritySwappedCachedDir: the kernel holds a node for SOURCE/d, and the
// container replaces d by a symlink to a directory outside (directly on
// disk, behind the mount's back). Operations through MNT/d must stay in
// SOURCE. Also: a name the kernel caches as absent, replaced on disk by a
// symlink, must not be followed by the create the kernel then sends.
func TestSecuritySwappedCachedDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{{"cached", idmapfs.DefaultTimeout}, {"uncached", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			e := secNewEnv(t)
			e.mount(t, idmapfs.Options{EntryTimeout: tc.timeout, AttrTimeout: tc.timeout, NegativeTimeout: tc.timeout})
			d := filepath.Join(e.mnt, "d")
			e.secRun(t, secContainerRoot, []secOp{
				{Op: "mkdir", Path: d, Mode: 0o777, Expect: "OK"},
				{Op: "create", Path: d + "/f", Mode: 0o644, Data: "f", Expect: "OK"},
				{Op: "create", Path: d + "/g", Mode: 0o644, Data: "g", Expect: "OK"},
				{Op: "create", Path: e.mnt + "/top", Mode: 0o644, Expect: "OK"},
				{Op: "lstat", Path: d + "/canary", Expect: "ENOENT"},
				{Op: "lstat", Path: d + "/sub", Expect: "ENOENT"},
				{Op: "lstat", Path: e.mnt + "/ghost", Expect: "ENOENT"},
				{Op: "lstat", Path: e.mnt + "/ghostdir", Expect: "ENOENT"},
				{Op: "lstat", Path: e.mnt + "/ghostnod", Expect: "ENOENT"},
				{Op: "lstat", Path: e.mnt + "/ghostln", Expect: "ENOENT"},
				{Op: "lstat", Path: e.mnt + "/ghostsl", Expect: "ENOENT"},
				{Op: "lstat", Path: e.mnt + "/ghosttmp", Expect: "ENOENT"},
			})
			// The container swaps the directory for a symlink out, and
			// plants symlinks where the kernel believes nothing is.
			if err := os.Rename(filepath.Join(e.src, "d"), filepath.Join(e.src, "d.moved")); err != nil {
				t.Fatal(err)
			}
			secSymlink(t, e.outside, filepath.Join(e.src, "d"))
			for _, g := range []string{"ghost", "ghostdir", "ghostnod", "ghostln", "ghostsl", "ghosttmp"} {
				secSymlink(t, filepath.Join(e.outside, g+"-planted"), filepath.Join(e.src, g))
			}
			secSymlink(t, "../../outside/sub", filepath.Join(e.src, "d.moved", "sub"))
			before := secSnapshot(t, e.outside)

			ops := func(five int) []secOp {
				return []secOp{
					{Op: "create", Path: d + "/new", Mode: 0o644, Data: "new"},
					{Op: "createx", Path: d + "/canary", Mode: 0o644},
					{Op: "create", Path: d + "/canary", Mode: 0o644, Data: "pwned"},
					{Op: "chmod", Path: d, Mode: 0o700},
					{Op: "chmod", Path: d + "/canary", Mode: 0o777},
					{Op: "chmod", Path: d + "/f", Mode: 0o600},
					{Op: "chown", Path: d, UID: five, GID: five},
					{Op: "chown", Path: d + "/canary", UID: five, GID: five},
					{Op: "setxattr", Path: d, Path2: "user.x", Data: "1"},
					{Op: "setxattr", Path: d + "/canary", Path2: "user.x", Data: "1"},
					{Op: "truncate", Path: d + "/canary"},
					{Op: "truncate", Path: d + "/f"},
					{Op: "utimes", Path: d + "/canary"},
					{Op: "link", Path: d + "/g", Path2: d + "/g2"},
					{Op: "link", Path: d + "/canary", Path2: d + "/c2"},
					{Op: "rename", Path: d + "/g2", Path2: d + "/g3"},
					{Op: "rename", Path: d + "/canary", Path2: e.mnt + "/stolen"},
					{Op: "mkdir", Path: d + "/newdir", Mode: 0o755},
					{Op: "mkdir", Path: d + "/sub/x", Mode: 0o755},
					{Op: "create", Path: d + "/sub/deep", Mode: 0o644, Data: "pwned"},
					{Op: "mknod", Path: d + "/fifo", Mode: unix.S_IFIFO | 0o644},
					{Op: "symlink", Path: d + "/sl", Path2: "x"},
					{Op: "tmpfile", Path: d, Mode: 0o644, Path2: d + "/tmp"},
					{Op: "unlink", Path: d + "/canary"},
					{Op: "unlink", Path: d + "/exec"},
					{Op: "rmdir", Path: d + "/sub"},
					{Op: "readdir", Path: d},
					// Negative entries replaced by planted symlinks.
					{Op: "create", Path: e.mnt + "/ghost", Mode: 0o644, Data: "pwned"},
					{Op: "mkdir", Path: e.mnt + "/ghostdir", Mode: 0o755},
					{Op: "mknod", Path: e.mnt + "/ghostnod", Mode: unix.S_IFIFO | 0o644},
					{Op: "link", Path: e.mnt + "/top", Path2: e.mnt + "/ghostln"},
					{Op: "symlink", Path: e.mnt + "/ghostsl", Path2: "x"},
					{Op: "tmpfile", Path: e.mnt, Mode: 0o644, Path2: e.mnt + "/ghosttmp"},
				}
			}
			e.secRun(t, secContainerRoot, ops(5))
			secSame(t, e.outside, before, secSnapshot(t, e.outside))
			e.secRun(t, secHostRoot, ops(100005))
			secSame(t, e.outside, before, secSnapshot(t, e.outside))
			e.secRun(t, secContainerUser, ops(1000))
			secSame(t, e.outside, before, secSnapshot(t, e.outside))
			ents, _ := os.ReadDir(filepath.Join(e.src, "d.moved"))
			var got []string
			for _, ent := range ents {
				got = append(got, ent.Name())
			}
			t.Logf("SOURCE/d.moved now holds %v", got)
		})
	}
}

// TestSecurityRaceSymlinkSwap swaps a directory and a symlink to the canary
// directory (renameat2 RENAME_EXCHANGE, on disk, in a tight loop, at two
// levels) while container root, a container user and host root hammer
// MNT/dir/... with lookups, creates, chmods, chowns, xattrs, links, renames
// and unlinks. Nothing outside may change, and everything created in SOURCE
// must carry its creator's disk id.
func TestSecurityRaceSymlinkSwap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		millis  int
	}{{"uncached", 0, 2000}, {"cached", idmapfs.DefaultTimeout, 800}} {
		t.Run(tc.name, func(t *testing.T) {
			e := secNewEnv(t)
			dir := filepath.Join(e.src, "dir")
			secMkdirs(t, 0o777, dir, filepath.Join(dir, "sub"))
			secSymlink(t, e.outside, filepath.Join(e.src, "link"))
			secSymlink(t, "../../outside", filepath.Join(dir, "subl"))
			secSymlink(t, "../outside", filepath.Join(e.src, "rel"))
			e.mount(t, idmapfs.Options{EntryTimeout: tc.timeout, AttrTimeout: tc.timeout, NegativeTimeout: tc.timeout})
			before := secSnapshot(t, e.outside)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var swaps atomic.Int64
			var wg sync.WaitGroup
			rootfd, err := unix.Open(e.src, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(rootfd)
			dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(dirfd)
			swap := func(fd int, a, b string) {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					if err := unix.Renameat2(fd, a, fd, b, unix.RENAME_EXCHANGE); err != nil {
						t.Errorf("swap %s <-> %s: %v", a, b, err)
						return
					}
					swaps.Add(1)
					if i%8 == 7 {
						// Leave the daemon (same process) some CPU.
						time.Sleep(50 * time.Microsecond)
					}
				}
			}
			wg.Add(2)
			go swap(rootfd, "dir", "link")
			go swap(dirfd, "sub", "subl")

			m := e.mnt
			dirs := []string{m + "/dir", m + "/dir/sub", m + "/link", m + "/link/sub", m + "/dir/subl", m + "/rel", m + "/link/subl"}
			workers := []struct {
				who    secWho
				loop   secLoop
				prefix string
			}{
				{secContainerRoot, secLoop{Prefix: "r0-", Create: true, ChownTo: 0}, "r0-"},
				{secContainerUser, secLoop{Prefix: "u1000-", Create: true, ChownTo: 1000}, "u1000-"},
				{secHostRoot, secLoop{Prefix: "h-", Create: true, ChownTo: 100000}, "h-"},
			}
			outs := make([]strings.Builder, len(workers))
			var cmds []*exec.Cmd
			for i, w := range workers {
				w.loop.Dirs, w.loop.Millis = dirs, tc.millis
				loop := w.loop
				cmds = append(cmds, e.secStart(t, w.who, secSpec{Hide: []string{e.outside}, Loop: &loop}, &outs[i]))
			}
			for i, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Errorf("worker %s: %v\n%s", workers[i].who.name, err, outs[i].String())
				}
			}
			cancel()
			wg.Wait()
			for i, w := range workers {
				var counts map[string]int
				secParse(t, outs[i].String(), &counts)
				t.Logf("%s succeeded: %v", w.who.name, counts)
				if w.who != secHostRoot && counts["create"]+counts["mkdir"] == 0 {
					t.Errorf("%s created nothing: the race did not run", w.who.name)
				}
			}
			t.Logf("%d swaps", swaps.Load())
			secSame(t, e.outside, before, secSnapshot(t, e.outside))

			// Ownership of everything the workers left in SOURCE.
			want := map[string]uint32{"r0-": 0, "u1000-": 1000}
			err = filepath.WalkDir(e.src, func(p string, de fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				base := filepath.Base(p)
				for prefix, id := range want {
					if strings.HasPrefix(base, prefix) {
						st := secLstat(t, p)
						if st.Uid != id || st.Gid != id {
							t.Errorf("%s owned %d:%d on disk; its creator is disk %d", p, st.Uid, st.Gid, id)
						}
					}
				}
				if strings.HasPrefix(base, "h-") {
					t.Errorf("%s exists: host root is unmapped and must not create (EOVERFLOW)", p)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSecurityDotDot: names with dots, ".." itself handed to the node API,
// and symlinks made of "..".
func TestSecurityDotDot(t *testing.T) {
	e := secNewEnv(t)
	secMkdirs(t, 0o777, filepath.Join(e.src, "d"))

	t.Run("node-api", func(t *testing.T) {
		before := secSnapshot(t, e.outside)
		srcBefore := secSnapshot(t, e.src)
		root, _, err := idmapfs.New(e.src, idmapfs.Options{IDs: secIDs(t, secMap)})
		if err != nil {
			t.Fatal(err)
		}
		ctx := fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: 100000, Gid: 100000}})
		bad := []string{"..", ".", "", "../outside", "../outside/canary", "d/../..", "a/b", "/etc", "../../../../../../etc/passwd"}
		for _, name := range bad {
			var out fuse.EntryOut
			if _, errno := root.Lookup(ctx, name, &out); errno != syscall.EINVAL {
				t.Errorf("Lookup(%q) = %v; want EINVAL", name, errno)
			}
			if _, errno := root.Mkdir(ctx, name, 0o755, &out); errno != syscall.EINVAL {
				t.Errorf("Mkdir(%q) = %v; want EINVAL", name, errno)
			}
			if _, _, _, errno := root.Create(ctx, name, uint32(os.O_WRONLY), 0o644, &out); errno != syscall.EINVAL {
				t.Errorf("Create(%q) = %v; want EINVAL", name, errno)
			}
			if _, errno := root.Mknod(ctx, name, unix.S_IFIFO|0o644, 0, &out); errno != syscall.EINVAL {
				t.Errorf("Mknod(%q) = %v; want EINVAL", name, errno)
			}
			if _, errno := root.Symlink(ctx, "/", name, &out); errno != syscall.EINVAL {
				t.Errorf("Symlink(%q) = %v; want EINVAL", name, errno)
			}
			if _, errno := root.Link(ctx, root, name, &out); errno != syscall.EINVAL {
				t.Errorf("Link(%q) = %v; want EINVAL", name, errno)
			}
			if errno := root.Unlink(ctx, name); errno != syscall.EINVAL {
				t.Errorf("Unlink(%q) = %v; want EINVAL", name, errno)
			}
			if errno := root.Rmdir(ctx, name); errno != syscall.EINVAL {
				t.Errorf("Rmdir(%q) = %v; want EINVAL", name, errno)
			}
			if errno := root.Rename(ctx, "d", root, name, 0); errno != syscall.EINVAL {
				t.Errorf("Rename(d, %q) = %v; want EINVAL", name, errno)
			}
			if errno := root.Rename(ctx, name, root, "x", 0); errno != syscall.EINVAL {
				t.Errorf("Rename(%q, x) = %v; want EINVAL", name, errno)
			}
		}
		secSame(t, e.outside, before, secSnapshot(t, e.outside))
		secSame(t, e.src, srcBefore, secSnapshot(t, e.src))
	})

	t.Run("mounted", func(t *testing.T) {
		e.mount(t, idmapfs.Options{EntryTimeout: idmapfs.DefaultTimeout, AttrTimeout: idmapfs.DefaultTimeout})
		before := secSnapshot(t, e.outside)
		m := e.mnt
		deep := strings.Repeat("../", 12) + strings.TrimPrefix(e.outside, "/")
		var ops []secOp
		dotty := []string{"...", "..a", "a..", ".. ", " ..", "....", ".\\..", "..\u2215outside"}
		for _, n := range dotty {
			ops = append(ops, secOp{Op: "create", Path: m + "/d/" + n, Mode: 0o644, Data: n, Expect: "OK"})
		}
		ops = append(ops,
			secOp{Op: "symlink", Path: m + "/d/dd", Path2: deep, Expect: "OK"},
			secOp{Op: "symlink", Path: m + "/d/dotdot", Path2: "..", Expect: "OK"},
			secOp{Op: "symlink", Path: m + "/d/up", Path2: "../..", Expect: "OK"},
		)
		for _, l := range []string{"dd", "dotdot", "up"} {
			p := m + "/d/" + l
			ops = append(ops,
				secOp{Op: "lchown", Path: p, UID: 7, GID: 7, Expect: "OK"},
				secOp{Op: "lsetxattr", Path: p, Path2: "security.dotdot", Data: "x"},
				secOp{Op: "link", Path: p, Path2: p + ".hl", Expect: "OK"},
				secOp{Op: "rename", Path: p + ".hl", Path2: p + ".mv", Expect: "OK"},
				secOp{Op: "unlink", Path: p + ".mv", Expect: "OK"},
				secOp{Op: "lutimes", Path: p, Expect: "OK"},
			)
		}
		ops = append(ops,
			secOp{Op: "create", Path: m + "/d/dotdot/viadotdot", Mode: 0o644, Expect: "OK"},
			secOp{Op: "mkdir", Path: m + "/d/../d2", Mode: 0o755, Expect: "OK"},
		)
		e.secRun(t, secContainerRoot, ops)
		secSame(t, e.outside, before, secSnapshot(t, e.outside))
		for _, n := range dotty {
			b, err := os.ReadFile(filepath.Join(e.src, "d", n))
			if err != nil || string(b) != n {
				t.Errorf("SOURCE/d/%q = %q, %v; want the file created through the mount", n, b, err)
			}
		}
		for _, p := range []string{"d/dd", "d/dotdot", "d/up"} {
			st := secLstat(t, filepath.Join(e.src, p))
			if st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Uid != 7 {
				t.Errorf("SOURCE/%s: mode %o uid %d; want a symlink owned by 7", p, st.Mode, st.Uid)
			}
		}
		for _, p := range []string{"viadotdot", "d2"} {
			if _, err := os.Lstat(filepath.Join(e.src, p)); err != nil {
				t.Errorf("SOURCE/%s: %v; want it created at the top of SOURCE", p, err)
			}
		}
		var mst, dst unix.Stat_t
		if err := unix.Stat(m, &mst); err != nil {
			t.Fatal(err)
		}
		if err := unix.Stat(m+"/d/..", &dst); err != nil {
			t.Fatal(err)
		}
		if mst.Ino != dst.Ino || mst.Dev != dst.Dev {
			t.Errorf("stat(MNT/d/..) = dev %d ino %d; want MNT, dev %d ino %d", dst.Dev, dst.Ino, mst.Dev, mst.Ino)
		}
	})
}

// TestSecurityXattrOnRenamedSymlink: a caller holds the symlink SOURCE/s
// (an O_PATH descriptor through the mount); the container moves the link
// away on disk and puts a regular file at s. An xattr write on the held
// symlink must land on the symlink (or fail), never on the file that now
// has its name.
func TestSecurityXattrOnRenamedSymlink(t *testing.T) {
	e := secNewEnv(t)
	secSymlink(t, e.outside, filepath.Join(e.src, "s"))
	e.mount(t, idmapfs.Options{EntryTimeout: idmapfs.DefaultTimeout, AttrTimeout: idmapfs.DefaultTimeout, NegativeTimeout: idmapfs.DefaultTimeout})
	ops := []secOp{
		{Op: "hold", Path: filepath.Join(e.mnt, "s"), Expect: "OK"},
		{Op: "ready"},
		{Op: "wait"},
		{Op: "setxattr-held", Path2: "security.idmapfs-test", Data: "x"},
	}
	out := &secReadyWriter{ready: make(chan struct{})}
	spec := secSpec{Hide: []string{e.outside}, Ops: ops}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd := e.secStartStdin(t, secHostRoot, spec, out, pr)
	pr.Close()
	// Once the child holds the link, swap it on disk.
	select {
	case <-out.ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("child never got ready:\n%s", out.String())
	}
	if err := os.Rename(filepath.Join(e.src, "s"), filepath.Join(e.src, "s.moved")); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(e.src, "s")
	if err := os.WriteFile(victim, []byte("victim"), 0o755); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(pw)
	pw.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	var res []secResult
	secParse(t, out.String(), &res)
	if res[0].Err != "" {
		t.Fatalf("hold MNT/s: %s", res[0].Err)
	}
	if res[3].Err != "" {
		t.Logf("setxattr on the held symlink: %s", res[3].Err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(victim, "security.idmapfs-test", buf); err == nil {
		t.Errorf("setxattr on the held symlink MNT/s (result %q) set security.idmapfs-test=%q on SOURCE/s, "+
			"the regular file that took its name on disk: the daemon picks a symlink's xattr target by "+
			"parent and name, not by the inode it holds", res[3].Err, buf[:n])
	}
	if n, err := unix.Lgetxattr(filepath.Join(e.src, "s.moved"), "security.idmapfs-test", buf); err == nil {
		t.Logf("the xattr landed on the symlink itself: %q", buf[:n])
	}
}

// TestSecurityNodev: device nodes are refused under nodev (the default),
// whether made through the mount or planted in the image, and work with
// Options.Dev.
func TestSecurityNodev(t *testing.T) {
	for _, dev := range []bool{false, true} {
		t.Run(fmt.Sprintf("dev=%v", dev), func(t *testing.T) {
			e := secNewEnv(t)
			if err := unix.Mknod(filepath.Join(e.src, "planted-zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
				t.Fatal(err)
			}
			secMkdirs(t, 0o777, filepath.Join(e.src, "w"))
			e.mount(t, idmapfs.Options{IDs: secIDs(t, secRootMap), Dev: dev})
			m := e.mnt
			openWant := "EACCES"
			if dev {
				openWant = "OK"
			}
			res := e.secRun(t, secHostRoot, []secOp{
				{Op: "mknod", Path: m + "/null", Mode: unix.S_IFCHR | 0o666, Dev: int(unix.Mkdev(1, 3)), Expect: "OK"},
				{Op: "open", Path: m + "/null", Expect: openWant},
				{Op: "create", Path: m + "/null", Data: "x", Expect: openWant},
				{Op: "open", Path: m + "/planted-zero", Expect: openWant},
			})
			if dev && res[3].Out != "00000000000000000000000000000000" {
				t.Errorf("read of MNT/planted-zero = %q; want 16 zero bytes", res[3].Out)
			}
			st := secLstat(t, filepath.Join(e.src, "null"))
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) || st.Uid != 0 {
				t.Errorf("SOURCE/null = mode %o rdev %x uid %d; want char 1:3 owned by 0", st.Mode, st.Rdev, st.Uid)
			}
			// Unprivileged callers may not make devices at all.
			e.secRun(t, secWho{name: "host-uid-100001", uid: 100001, gid: 100001}, []secOp{
				{Op: "mknod", Path: m + "/w/mem", Mode: unix.S_IFCHR | 0o666, Dev: int(unix.Mkdev(1, 1)), Expect: "EPERM"},
				{Op: "mknod", Path: m + "/w/sda", Mode: unix.S_IFBLK | 0o666, Dev: int(unix.Mkdev(8, 0)), Expect: "EPERM"},
			})
			for _, n := range []string{"mem", "sda"} {
				if _, err := os.Lstat(filepath.Join(e.src, "w", n)); err == nil {
					t.Errorf("SOURCE/w/%s exists after a refused mknod", n)
				}
			}
		})
	}
}

// secCapV2 is a security.capability v2 value granting cap_dac_read_search
// (effective, permitted) to whoever executes the file.
func secCapV2() []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|1) // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
	binary.LittleEndian.PutUint32(b[4:], 1<<unix.CAP_DAC_READ_SEARCH)
	return b
}

// TestSecurityNosuid: a setuid/setgid-root binary and a binary with file
// capabilities in SOURCE (disk 0 is host 0 under this map) give an
// unprivileged user nothing under the default nosuid, and do with Suid (the
// control that proves the test can see it).
func TestSecurityNosuid(t *testing.T) {
	for _, suid := range []bool{false, true} {
		t.Run(fmt.Sprintf("suid=%v", suid), func(t *testing.T) {
			e := secNewEnv(t)
			id := filepath.Join(e.src, "id")
			b, err := os.ReadFile("/usr/bin/id")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(id, b, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(id, 0, 0); err != nil {
				t.Fatal(err)
			}
			if err := unix.Chmod(id, 0o6755); err != nil {
				t.Fatal(err)
			}
			// busybox picks the applet from argv[0] unless it is
			// called busybox.
			secMkdirs(t, 0o755, filepath.Join(e.src, "cap"))
			bb := filepath.Join(e.src, "cap", "busybox")
			b, err = os.ReadFile("/bin/busybox")
			if err != nil {
				t.Fatalf("needs Debian's busybox-static: %v", err)
			}
			if err := os.WriteFile(bb, b, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(bb, "security.capability", secCapV2(), 0); err != nil {
				t.Fatal(err)
			}
			st := secLstat(t, id)
			if st.Mode&(unix.S_ISUID|unix.S_ISGID) != unix.S_ISUID|unix.S_ISGID {
				t.Fatalf("SOURCE/id mode %o; want setuid and setgid", st.Mode)
			}
			e.mount(t, idmapfs.Options{IDs: secIDs(t, secRootMap), Suid: suid})

			run := func(args ...string) string {
				// Never exec a file on the mount straight from this
				// process, which serves it: Go's vfork child would wait
				// for the daemon while the runtime waits for the vfork
				// (a stop-the-world deadlock). setpriv execs it instead.
				cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, args...)...)
				cmd.Dir = "/"
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%v as uid 65534: %v\n%s", args, err, out)
				}
				return strings.TrimSpace(string(out))
			}
			wantID := "65534"
			if suid {
				wantID = "0"
			}
			if got := run(filepath.Join(e.mnt, "id"), "-u"); got != wantID {
				t.Errorf("setuid-root id -u through the mount (suid=%v) = %s; want %s", suid, got, wantID)
			}
			if got := run(filepath.Join(e.mnt, "id"), "-g"); got != wantID {
				t.Errorf("setgid-root id -g through the mount (suid=%v) = %s; want %s", suid, got, wantID)
			}
			status := run(filepath.Join(e.mnt, "cap", "busybox"), "cat", "/proc/self/status")
			var capEff string
			for _, line := range strings.Split(status, "\n") {
				if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
					capEff = strings.TrimSpace(v)
				}
			}
			want := "0000000000000000"
			if suid {
				want = fmt.Sprintf("%016x", 1<<unix.CAP_DAC_READ_SEARCH)
			}
			if capEff != want {
				t.Errorf("file capabilities through the mount (suid=%v): CapEff %q; want %q", suid, capEff, want)
			}
		})
	}
}

// TestSecurityCreateOwnership: files never appear with the wrong owner, not
// even briefly, and a failed create leaves nothing behind.
func TestSecurityCreateOwnership(t *testing.T) {
	t.Run("failed-creates", func(t *testing.T) {
		e := secNewEnv(t)
		w := filepath.Join(e.src, "w")
		secMkdirs(t, 0o777, w)
		for _, f := range []struct {
			name string
			mode uint32
		}{{"exists", 0o644}, {"linkme", 0o666}} {
			p := filepath.Join(w, f.name)
			if err := os.WriteFile(p, []byte("orig"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := unix.Chmod(p, f.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(p, 7, 7); err != nil {
				t.Fatal(err)
			}
		}
		e.mount(t, idmapfs.Options{})
		before := secSnapshot(t, w)
		m := filepath.Join(e.mnt, "w")
		e.secRun(t, secContainerRoot, []secOp{
			{Op: "createx", Path: m + "/exists", Mode: 0o600, Data: "pwned", Expect: "EEXIST"},
			{Op: "mkdir", Path: m + "/exists", Mode: 0o700, Expect: "EEXIST"},
		})
		secSame(t, w, before, secSnapshot(t, w))
		// A caller with no disk id cannot store its id: EOVERFLOW, and
		// nothing is left behind.
		unmapped := secWho{name: "host-uid-5000", uid: 5000, gid: 5000}
		e.secRun(t, unmapped, []secOp{
			{Op: "create", Path: m + "/u-file", Mode: 0o644, Expect: "EOVERFLOW"},
			{Op: "createx", Path: m + "/u-filex", Mode: 0o644, Expect: "EOVERFLOW"},
			{Op: "mkdir", Path: m + "/u-dir", Mode: 0o755, Expect: "EOVERFLOW"},
			{Op: "mknod", Path: m + "/u-fifo", Mode: unix.S_IFIFO | 0o644, Expect: "EOVERFLOW"},
			{Op: "symlink", Path: m + "/u-link", Path2: "x", Expect: "EOVERFLOW"},
			// linkme is 0666, so protected_hardlinks lets anyone link it.
			{Op: "link", Path: m + "/linkme", Path2: m + "/u-hard", Expect: "EOVERFLOW"},
			{Op: "tmpfile", Path: m, Mode: 0o644, Expect: "EOVERFLOW"},
		})
		secSame(t, w, before, secSnapshot(t, w))
	})

	t.Run("whiteout", func(t *testing.T) {
		// RENAME_WHITEOUT leaves a character device 0:0 at the old name:
		// a new inode, which must belong to the caller like any other.
		e := secNewEnv(t)
		w := filepath.Join(e.src, "w")
		secMkdirs(t, 0o777, w)
		e.mount(t, idmapfs.Options{})
		m := filepath.Join(e.mnt, "w")
		e.secRun(t, secContainerUser, []secOp{
			{Op: "create", Path: m + "/a", Mode: 0o644, Expect: "OK"},
			{Op: "whiteout", Path: m + "/a", Path2: m + "/b", Expect: "OK"},
		})
		st := secLstat(t, filepath.Join(w, "a"))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Fatalf("SOURCE/w/a after RENAME_WHITEOUT: mode %o rdev %d; want a whiteout", st.Mode, st.Rdev)
		}
		if st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("whiteout made by container uid 1000 is owned %d:%d on disk; want 1000:1000 "+
				"(the daemon renames as itself, not as the caller)", st.Uid, st.Gid)
		}
	})

	t.Run("enospc", func(t *testing.T) {
		e := secNewEnv(t)
		// SOURCE is a tiny tmpfs: 48 inodes.
		if err := unix.Mount("tmpfs", e.src, "tmpfs", 0, "size=256k,nr_inodes=48,mode=0777"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(e.src, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount tmpfs %s: %v", e.src, err)
			}
		})
		e.mount(t, idmapfs.Options{})
		var out strings.Builder
		cmd := e.secStart(t, secContainerUser, secSpec{Hide: []string{e.outside}, Loop: &secLoop{
			Dirs: []string{e.mnt}, Prefix: "f", Create: true, Count: 120,
		}}, &out)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v\n%s", err, out.String())
		}
		var counts map[string]int
		secParse(t, out.String(), &counts)
		made := counts["create"] + counts["mkdir"] + counts["mkfifo"] + counts["symlink"]
		if made == 0 || made >= 120 {
			t.Fatalf("made %d of 120 entries on a 48-inode tmpfs (%v); want some to fail with ENOSPC", made, counts)
		}
		// Container root (the daemon's own disk id) fails the same way.
		e.secRun(t, secContainerRoot, []secOp{
			{Op: "createx", Path: e.mnt + "/root-file", Mode: 0o644, Expect: "ENOSPC"},
			{Op: "mkdir", Path: e.mnt + "/root-dir", Mode: 0o755, Expect: "ENOSPC"},
			{Op: "symlink", Path: e.mnt + "/root-link", Path2: "x", Expect: "ENOSPC"},
		})
		ents, err := os.ReadDir(e.src)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != made {
			t.Errorf("SOURCE holds %d entries; %d creates succeeded (a failed create left something behind)", len(ents), made)
		}
		for _, ent := range ents {
			st := secLstat(t, filepath.Join(e.src, ent.Name()))
			if st.Uid != 1000 || st.Gid != 1000 {
				t.Errorf("SOURCE/%s owned %d:%d; want 1000:1000", ent.Name(), st.Uid, st.Gid)
			}
		}
	})

	t.Run("never-briefly-wrong", func(t *testing.T) {
		e := secNewEnv(t)
		w := filepath.Join(e.src, "w")
		secMkdirs(t, 0o777, w)
		e.mount(t, idmapfs.Options{})
		// Every entry is stat'ed on disk the moment inotify reports its
		// creation: a create-then-chown would show the wrong owner there.
		ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(ino)
		if _, err := unix.InotifyAddWatch(ino, w, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
			t.Fatal(err)
		}
		wfd, err := unix.Open(w, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(wfd)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var (
			wrong   []string
			polls   int
			seen    = map[string]bool{}
			pollErr error
			wg      sync.WaitGroup
		)
		check := func(name string) {
			var st unix.Stat_t
			if unix.Fstatat(wfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				return
			}
			seen[name] = true
			polls++
			if (st.Uid != 1000 || st.Gid != 1000) && len(wrong) < 10 {
				wrong = append(wrong, fmt.Sprintf("%s mode %o owned %d:%d", name, st.Mode, st.Uid, st.Gid))
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := unix.Read(ino, buf)
				if errors.Is(err, unix.EAGAIN) {
					if ctx.Err() != nil {
						return
					}
					fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
					unix.Poll(fds, 50)
					continue
				}
				if err != nil {
					pollErr = err
					return
				}
				for off := 0; off+unix.SizeofInotifyEvent <= n; {
					ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
					name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
					check(strings.TrimRight(string(name), "\x00"))
					off += unix.SizeofInotifyEvent + int(ev.Len)
				}
			}
		}()
		// Two creators (1000 entries each) keep the daemon busy on both
		// CPUs; one is an ordinary host user with the same disk id.
		creators := []secWho{secContainerUser, {name: "host-uid-101000", uid: 101000, gid: 101000}}
		outs := make([]strings.Builder, len(creators))
		var cmds []*exec.Cmd
		for i, who := range creators {
			cmds = append(cmds, e.secStart(t, who, secSpec{Hide: []string{e.outside}, Loop: &secLoop{
				Dirs: []string{filepath.Join(e.mnt, "w")}, Prefix: fmt.Sprintf("n%d-", i), Create: true, Count: 1000,
			}}, &outs[i]))
		}
		var errs []error
		for _, cmd := range cmds {
			errs = append(errs, cmd.Wait())
		}
		cancel()
		wg.Wait()
		counts := map[string]int{}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("child %s: %v\n%s", creators[i].name, err, outs[i].String())
			}
			var c map[string]int
			secParse(t, outs[i].String(), &c)
			for k, v := range c {
				counts[k] += v
			}
		}
		if pollErr != nil {
			t.Fatal(pollErr)
		}
		t.Logf("created %v; stat'ed %d entries as inotify reported them", counts, len(seen))
		if len(seen) < 1000 {
			t.Errorf("inotify showed only %d of 2000 new entries", len(seen))
		}
		if n := counts["create"] + counts["mkdir"] + counts["mkfifo"] + counts["symlink"]; n != 2000 {
			t.Errorf("%d of 2000 creates succeeded", n)
		}
		for _, s := range wrong {
			t.Errorf("seen on disk while being created: %s; want 1000:1000 from the start", s)
		}
		ents, err := os.ReadDir(w)
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range ents {
			st := secLstat(t, filepath.Join(w, ent.Name()))
			if st.Uid != 1000 || st.Gid != 1000 {
				t.Errorf("SOURCE/w/%s owned %d:%d; want 1000:1000", ent.Name(), st.Uid, st.Gid)
			}
		}
	})
}
