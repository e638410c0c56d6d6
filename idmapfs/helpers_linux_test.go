package idmapfs_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
	"github.com/shiftlock/shiftlock/idmapfs"
	"github.com/shiftlock/shiftlock/internal/testutil"
)

// helperEnv, when set, turns the test binary into a helper process that
// runs the operations it reads from stdin (as whatever credentials it was
// started with) and writes their results to stdout.
const helperEnv = "IDMAPFS_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain(os.Stdin, os.Stdout))
	}
	code := m.Run()
	if helperBinDir != "" {
		os.RemoveAll(helperBinDir)
	}
	os.Exit(code)
}

// testMap is the map of every mounted test: disk 0..65535 is host
// 100000..165535, for uids and gids alike. Host root is not mapped.
func testMap(t testing.TB) idmap.IDMap {
	t.Helper()
	return parseIDMap(t, "0:100000:65536")
}

func parseIDMap(t testing.TB, s string) idmap.IDMap {
	t.Helper()
	m, err := idmap.ParseMap(s)
	if err != nil {
		t.Fatalf("ParseMap(%q): %v", s, err)
	}
	return idmap.IDMap{UID: m, GID: m}
}

func procMappings(m idmap.Map) []syscall.SysProcIDMap {
	var out []syscall.SysProcIDMap
	for _, r := range m.Ranges() {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(r.Disk), HostID: int(r.Host), Size: int(r.Count)})
	}
	return out
}

// sharedDir makes a directory every test caller can traverse (t.TempDir is
// 0700 root) and mounts a fresh tmpfs on it: tmpfs has idmapped mounts,
// user xattrs, POSIX ACLs and security.capability, whatever / is.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "idmapfs-diff-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755,size=256m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unmountAll(t, dir) })
	return dir
}

// unmountAll unmounts dir, lazily if it is still busy.
func unmountAll(t testing.TB, dir string) {
	t.Helper()
	if err := unix.Unmount(dir, 0); err != nil {
		if err2 := unix.Unmount(dir, unix.MNT_DETACH); err2 != nil {
			t.Errorf("unmount %s: %v (lazy: %v)", dir, err, err2)
			return
		}
		t.Logf("unmount %s: %v; detached lazily", dir, err)
	}
}

// isMountPoint reports whether dir is on another device than its parent
// (or cannot be examined: a dead FUSE mount).
func isMountPoint(dir string) bool {
	var st, pst unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &pst) != nil {
		return true
	}
	return st.Dev != pst.Dev
}

func mkdirs(t testing.TB, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// mountIdmapfs mounts source on mnt through idmapfs and unmounts it in
// t.Cleanup.
func mountIdmapfs(t testing.TB, source, mnt string, opts idmapfs.Options) *idmapfs.FS {
	t.Helper()
	testutil.RequireFUSE(t)
	if opts.IDs.UID.Empty() {
		opts.IDs = testMap(t)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	server, f, err := idmapfs.Mount(source, mnt, opts)
	if err != nil {
		t.Fatalf("Mount(%s, %s): %v", source, mnt, err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil && isMountPoint(mnt) {
			t.Logf("unmount %s: %v; detaching", mnt, err)
			if err := idmapfs.Unmount(mnt, true); err != nil {
				t.Errorf("lazy unmount %s: %v", mnt, err)
			}
		}
		server.Wait()
		f.Close()
	})
	return f
}

// defaultOptions are the CLI's defaults with the mount open to every user
// (callers other than root use it).
func defaultOptions(t testing.TB) idmapfs.Options {
	return idmapfs.Options{
		IDs:             testMap(t),
		AllowOther:      true,
		EntryTimeout:    idmapfs.DefaultTimeout,
		AttrTimeout:     idmapfs.DefaultTimeout,
		NegativeTimeout: idmapfs.DefaultTimeout,
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// usernsFD returns a descriptor of a new user namespace with the map m,
// made by a short-lived child process.
func usernsFD(t testing.TB, m idmap.IDMap) *os.File {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: procMappings(m.UID),
		GidMappings: procMappings(m.GID),
		Pdeathsig:   syscall.SIGKILL,
	}
	runtime.LockOSThread()
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("start a process in a new user namespace: %v", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// kernelIdmappedMount bind-mounts dir on target as a kernel idmapped mount
// (open_tree, mount_setattr MOUNT_ATTR_IDMAP, move_mount) with the map of
// the user namespace ns, and unmounts it in t.Cleanup.
func kernelIdmappedMount(t testing.TB, dir, target string, ns *os.File) {
	t.Helper()
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		t.Fatalf("open_tree(%s): %v", dir, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		t.Fatalf("mount_setattr(%s, MOUNT_ATTR_IDMAP): %v (the filesystem may not support idmapped mounts)", dir, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		t.Fatalf("move_mount(%s): %v", target, err)
	}
	t.Cleanup(func() { unmountAll(t, target) })
}

// caller is a process identity that runs test operations.
type caller struct {
	name   string
	uid    uint32 // host ids; ignored when userns is set
	gid    uint32
	groups []uint32
	// userns runs the caller as root of a new user namespace with the test
	// map: host uid 100000 with every capability inside.
	userns bool
}

var callers = []caller{
	{name: "hostroot", uid: 0, gid: 0},
	{name: "croot", uid: 100000, gid: 100000},
	{name: "cuser", uid: 101000, gid: 101000},
	{name: "cgroup", uid: 101000, gid: 101000, groups: []uint32{100005}},
	{name: "unmapped", uid: 5000, gid: 5000},
	{name: "nsroot", userns: true},
}

// view returns how the caller names host id h: a process inside the user
// namespace sees disk ids. An id outside the namespace becomes 70000,
// which is unmapped there too.
func (c caller) view(h uint32) uint32 {
	if !c.userns {
		return h
	}
	if h >= 100000 && h < 165536 {
		return h - 100000
	}
	return 70000
}

var (
	helperBinOnce sync.Once
	helperBinDir  string
	helperBin     string
	helperBinErr  error
)

// helperBinary is a copy of the test binary that every caller may execute
// (the go build directory is root-only).
func helperBinary(t testing.TB) string {
	t.Helper()
	helperBinOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			helperBinErr = err
			return
		}
		dir, err := os.MkdirTemp("", "idmapfs-helper-")
		if err != nil {
			helperBinErr = err
			return
		}
		helperBinDir = dir
		if err := os.Chmod(dir, 0o755); err != nil {
			helperBinErr = err
			return
		}
		in, err := os.Open(self)
		if err != nil {
			helperBinErr = err
			return
		}
		defer in.Close()
		p := filepath.Join(dir, "idmapfs.test")
		out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
		if err != nil {
			helperBinErr = err
			return
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			helperBinErr = err
			return
		}
		helperBinErr = out.Close()
		helperBin = p
	})
	if helperBinErr != nil {
		t.Fatalf("copy test binary: %v", helperBinErr)
	}
	return helperBin
}

// procAttr returns the attributes that start a process as c.
func (c caller) procAttr(ids idmap.IDMap) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	switch {
	case c.userns:
		a.Cloneflags = syscall.CLONE_NEWUSER
		a.UidMappings = procMappings(ids.UID)
		a.GidMappings = procMappings(ids.GID)
		a.GidMappingsEnableSetgroups = true
		a.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	case c.uid != 0 || c.gid != 0 || len(c.groups) > 0:
		a.Credential = &syscall.Credential{Uid: c.uid, Gid: c.gid, Groups: c.groups}
	default:
		a.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	return a
}

// command starts name as caller c.
func (c caller) command(ids idmap.IDMap, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = c.procAttr(ids)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	return cmd
}

// opCall asks the helper to run one operation in each of dirs.
type opCall struct {
	Op   string
	Dirs []string
	Args opArgs
}

// opArgs are the ids an operation uses, as the caller names them.
type opArgs struct {
	UID, GID   uint32 // chown targets
	ACLID      uint32 // ACL_USER and ACL_GROUP entries
	UnmappedID uint32
	CapRoot    uint32 // rootid of a v3 capability
}

// opResult is the outcome of one operation in one directory.
type opResult struct {
	Errno int    // 0, an errno, or -1 for an error that is not an errno
	Err   string // the error text
	Out   string // what the operation read, if anything
}

func (r opResult) errnoString() string {
	switch r.Errno {
	case 0:
		return "0"
	case -1:
		return "error(" + r.Err + ")"
	}
	return unix.ErrnoName(syscall.Errno(r.Errno))
}

// runOps runs calls as c in one helper process. It may run on any
// goroutine, so it returns errors rather than failing t.
func runOps(c caller, ids idmap.IDMap, bin string, calls []opCall) ([][]opResult, error) {
	in, err := json.Marshal(calls)
	if err != nil {
		return nil, err
	}
	cmd := c.command(ids, bin)
	cmd.Env = append(cmd.Env, helperEnv+"=ops")
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runtime.LockOSThread() // Pdeathsig belongs to the forking thread
	err = cmd.Run()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("helper as %s: %w\nstderr: %s", c.name, err, stderr.String())
	}
	var out [][]opResult
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("helper as %s: decode %q: %w\nstderr: %s", c.name, stdout.String(), err, stderr.String())
	}
	if len(out) != len(calls) {
		return nil, fmt.Errorf("helper as %s: %d results for %d calls", c.name, len(out), len(calls))
	}
	return out, nil
}

func helperMain(stdin io.Reader, stdout io.Writer) int {
	syscall.Umask(0o022)
	var calls []opCall
	if err := json.NewDecoder(stdin).Decode(&calls); err != nil {
		fmt.Fprintln(os.Stderr, "helper: decode request:", err)
		return 2
	}
	ops := opsByName()
	out := make([][]opResult, len(calls))
	for i, c := range calls {
		o, ok := ops[c.Op]
		if !ok {
			fmt.Fprintln(os.Stderr, "helper: unknown op", c.Op)
			return 2
		}
		for _, dir := range c.Dirs {
			s, err := o.run(dir, c.Args)
			out[i] = append(out[i], result(s, err))
		}
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "helper: encode:", err)
		return 2
	}
	return 0
}

func result(out string, err error) opResult {
	if err == nil {
		return opResult{Out: out}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return opResult{Errno: int(errno), Err: err.Error(), Out: out}
	}
	return opResult{Errno: -1, Err: err.Error(), Out: out}
}

// POSIX ACL xattr encoding, include/uapi/linux/posix_acl_xattr.h: a
// little-endian version 2 header and 8-byte entries {tag, perm, id}.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xFFFFFFFF
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

func aclXattr(entries ...aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// testACL grants user id and group id read-write, everything else as mode
// 0660 does.
func testACL(id uint32) []byte {
	return aclXattr(
		aclEntry{aclUserObj, 6, aclNoID},
		aclEntry{aclUser, 6, id},
		aclEntry{aclGroupObj, 4, aclNoID},
		aclEntry{aclGroup, 6, id},
		aclEntry{aclMask, 6, aclNoID},
		aclEntry{aclOther, 0, aclNoID},
	)
}

// File capabilities, include/uapi/linux/capability.h. capNetRaw is
// CAP_NET_RAW in the permitted set, effective flag set.
const (
	capNetRaw = 1 << 13
	capMagic2 = 0x02000000 | 1
	capMagic3 = 0x03000000 | 1
)

func capV2(permitted uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, capMagic2)
	b = binary.LittleEndian.AppendUint32(b, permitted)
	return append(b, make([]byte, 12)...)
}

func capV3(permitted, rootid uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, capMagic3)
	b = binary.LittleEndian.AppendUint32(b, permitted)
	b = append(b, make([]byte, 12)...)
	return binary.LittleEndian.AppendUint32(b, rootid)
}

// fixtureTime is the mtime and atime of every fixture entry, so that an
// operation that touches a time shows up in the state.
const fixtureTime = 1_000_000_000

// buildFixture makes the tree one test case starts from in dir, in disk
// ids. Both trees of a differential case are built by this function.
func buildFixture(dir string) error {
	type ent struct {
		name     string
		kind     uint32 // S_IFREG, S_IFDIR, S_IFIFO, S_IFLNK
		mode     uint32
		uid, gid int
		data     string
		xattrs   map[string][]byte
	}
	ents := []ent{
		{name: "f", kind: unix.S_IFREG, mode: 0o644, data: "hello\n", xattrs: map[string][]byte{"user.foo": []byte("bar")}},
		{name: "f1000", kind: unix.S_IFREG, mode: 0o644, uid: 1000, gid: 1000, data: "f1000\n"},
		{name: "f70000", kind: unix.S_IFREG, mode: 0o644, uid: 70000, gid: 70000, data: "f70000\n"},
		{name: "fo", kind: unix.S_IFREG, mode: 0o644, uid: 1000, gid: 0},
		{name: "d", kind: unix.S_IFDIR, mode: 0o755},
		{name: "d/x", kind: unix.S_IFREG, mode: 0o644, data: "x"},
		{name: "empty", kind: unix.S_IFDIR, mode: 0o755},
		{name: "sgid", kind: unix.S_IFDIR, mode: 0o2775, gid: 5},
		{name: "wd", kind: unix.S_IFDIR, mode: 0o777},
		{name: "wd/wf", kind: unix.S_IFREG, mode: 0o666, data: "data"},
		{name: "acl", kind: unix.S_IFREG, mode: 0o660, data: "acl\n",
			xattrs: map[string][]byte{"system.posix_acl_access": testACL(5)}},
		{name: "cap", kind: unix.S_IFREG, mode: 0o755, data: "#!/bin/true\n",
			xattrs: map[string][]byte{"security.capability": capV2(capNetRaw)}},
		{name: "suid", kind: unix.S_IFREG, mode: 0o6755, uid: 1000, gid: 1000, data: "suid\n"},
		{name: "suidw", kind: unix.S_IFREG, mode: 0o6777, data: "suidw\n"},
		{name: "tr", kind: unix.S_IFREG, mode: 0o644, xattrs: map[string][]byte{"trusted.foo": []byte("bar")}},
		{name: "link", kind: unix.S_IFLNK, data: "f"},
		{name: "fifo", kind: unix.S_IFIFO, mode: 0o644},
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.name)
		var err error
		switch e.kind {
		case unix.S_IFREG:
			err = os.WriteFile(p, []byte(e.data), 0o600)
		case unix.S_IFDIR:
			err = os.Mkdir(p, 0o700)
		case unix.S_IFIFO:
			err = unix.Mkfifo(p, 0o600)
		case unix.S_IFLNK:
			err = os.Symlink(e.data, p)
		}
		if err != nil {
			return err
		}
		if err := os.Lchown(p, e.uid, e.gid); err != nil {
			return err
		}
		if e.kind != unix.S_IFLNK {
			if err := unix.Chmod(p, e.mode); err != nil {
				return fmt.Errorf("chmod %s: %w", p, err)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(e.xattrs)) {
			if err := unix.Setxattr(p, k, e.xattrs[k], 0); err != nil {
				return fmt.Errorf("setxattr %s %s: %w", p, k, err)
			}
		}
	}
	// Times last, children before parents.
	ts := []unix.Timespec{{Sec: fixtureTime}, {Sec: fixtureTime}}
	for i := len(ents) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, ents[i].name), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts, 0)
}

// timeClass describes a time so that two trees changed a few milliseconds
// apart compare equal: the fixture time, an explicit time a test set, or
// "now".
func timeClass(ts unix.Timespec) string {
	t := time.Unix(ts.Sec, ts.Nsec)
	switch {
	case ts.Sec == fixtureTime && ts.Nsec == 0:
		return "T0"
	case time.Since(t).Abs() < 10*time.Minute:
		return "now"
	}
	return fmt.Sprintf("%d.%09d", ts.Sec, ts.Nsec)
}

// treeState describes every entry under root: type, mode, ids, size, link
// count, device, symlink target, mtime class and, if xattrs is set, every
// xattr with its raw value. Paths are relative to root.
func treeState(root string, xattrs bool) (map[string]string, error) {
	state := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		size := st.Size
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			size = 0 // tmpfs counts entries; FUSE and kernel agree, but noise
		}
		s := fmt.Sprintf("mode=%07o uid=%d gid=%d size=%d nlink=%d rdev=%d:%d mtime=%s",
			st.Mode, st.Uid, st.Gid, size, st.Nlink, unix.Major(st.Rdev), unix.Minor(st.Rdev), timeClass(st.Mtim))
		if a := timeClass(st.Atim); a != "T0" && a != "now" {
			s += " atime=" + a
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			s += " -> " + target
		}
		if xattrs {
			x, err := xattrState(p)
			if err != nil {
				return err
			}
			s += x
		}
		state[rel] = s
		return nil
	})
	return state, err
}

func xattrState(p string) (string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil {
		return "", fmt.Errorf("listxattr %s: %w", p, err)
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return "", fmt.Errorf("listxattr %s: %w", p, err)
	}
	var names []string
	for _, n := range bytes.Split(buf[:sz], []byte{0}) {
		if len(n) > 0 {
			names = append(names, string(n))
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		v := make([]byte, 65536)
		m, err := unix.Lgetxattr(p, n, v)
		if err != nil {
			fmt.Fprintf(&b, " %s=<%v>", n, err)
			continue
		}
		fmt.Fprintf(&b, " %s=%s", n, hex.EncodeToString(v[:m]))
	}
	return b.String(), nil
}

// diffStates lists the entries on which a and b differ.
func diffStates(a, b map[string]string) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		if !oka {
			va = "<missing>"
		}
		if !okb {
			vb = "<missing>"
		}
		if va != vb {
			out = append(out, fmt.Sprintf("%s: idmapfs{%s} kernel{%s}", k, va, vb))
		}
	}
	return out
}
