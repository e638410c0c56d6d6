package idmapfs_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/testutil"
)

// diffOp is one scripted operation of the differential test. run acts on a
// fixture (buildFixture) seen through a mount at dir, as the helper's
// caller, and returns what it read.
type diffOp struct {
	name string
	run  func(dir string, a opArgs) (string, error)
	// documented, if set, replaces the comparison with the kernel for a
	// caller where SEMANTICS.md says idmapfs differs on purpose: it checks
	// the idmapfs result and disk state on its own. It returns "" when
	// the caller behaves as the kernel does.
	documented func(c caller) string
}

// documentedWant is the idmapfs outcome a documented difference expects.
type documentedWant struct {
	errno syscall.Errno
	out   string
}

func j(dir string, names ...string) string { return filepath.Join(append([]string{dir}, names...)...) }

func create(p string) error {
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return err
	}
	_, err = unix.Write(fd, []byte("new\n"))
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 65536)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(buf[:n]), nil
}

func listxattr(p string) (string, error) {
	buf := make([]byte, 65536)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return "", err
	}
	var names []string
	for _, s := range bytes.Split(buf[:n], []byte{0}) {
		if len(s) > 0 {
			names = append(names, string(s))
		}
	}
	slices.Sort(names)
	return strings.Join(names, ","), nil
}

func statLine(p string) (string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s uid=%d gid=%d mode=%07o size=%d", filepath.Base(p), st.Uid, st.Gid, st.Mode, st.Size), nil
}

func writeAppend(p string) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, err = unix.Write(fd, []byte("more\n"))
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}

func openWrite(p string) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func chown(p string, uid, gid uint32) error { return unix.Lchown(p, int(int32(uid)), int(int32(gid))) }

const noID = ^uint32(0) // chown's -1

// diffOps is the script. Each op runs on a fresh fixture per caller.
var diffOps = []diffOp{
	{name: "stat", run: func(dir string, a opArgs) (string, error) {
		var lines []string
		for _, n := range []string{".", "f", "f1000", "f70000", "fo", "d", "sgid", "wd", "acl", "cap", "suid", "link", "fifo"} {
			l, err := statLine(j(dir, n))
			if err != nil {
				return strings.Join(lines, "\n"), err
			}
			lines = append(lines, l)
		}
		return strings.Join(lines, "\n"), nil
	}},
	{name: "readdir", run: func(dir string, a opArgs) (string, error) {
		ents, err := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, fmt.Sprintf("%s:%v", e.Name(), e.Type()))
		}
		return strings.Join(names, " "), err
	}},
	{name: "readlink", run: func(dir string, a opArgs) (string, error) { return os.Readlink(j(dir, "link")) }},
	{name: "read_f70000", run: func(dir string, a opArgs) (string, error) {
		b, err := os.ReadFile(j(dir, "f70000"))
		return string(b), err
	}},
	{name: "create", run: func(dir string, a opArgs) (string, error) { return "", create(j(dir, "new")) }},
	{name: "create_wd", run: func(dir string, a opArgs) (string, error) { return "", create(j(dir, "wd", "new")) }},
	{name: "create_sgid", run: func(dir string, a opArgs) (string, error) { return "", create(j(dir, "sgid", "new")) }},
	{name: "mkdir", run: func(dir string, a opArgs) (string, error) { return "", unix.Mkdir(j(dir, "newdir"), 0o777) }},
	{name: "mkdir_wd", run: func(dir string, a opArgs) (string, error) { return "", unix.Mkdir(j(dir, "wd", "newdir"), 0o777) }},
	{name: "mkdir_sgid", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Mkdir(j(dir, "sgid", "sub"), 0o777)
	}},
	{name: "tmpfile_wd", run: func(dir string, a opArgs) (string, error) {
		fd, err := unix.Open(j(dir, "wd"), unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o640)
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		if _, err := unix.Write(fd, []byte("tmp\n")); err != nil {
			return "", err
		}
		return "", unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, j(dir, "wd", "tmpf"), unix.AT_SYMLINK_FOLLOW)
	}},
	{name: "mkfifo_wd", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Mknod(j(dir, "wd", "newfifo"), unix.S_IFIFO|0o666, 0)
	}},
	{name: "mknod_chr", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Mknod(j(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	}},
	{name: "symlink_wd", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Symlink("target", j(dir, "wd", "newlink"))
	}},
	{name: "link", run: func(dir string, a opArgs) (string, error) { return "", unix.Link(j(dir, "f"), j(dir, "hard")) }},
	{name: "link_wd", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Link(j(dir, "wd", "wf"), j(dir, "wd", "hard"))
	}},
	{name: "rename", run: func(dir string, a opArgs) (string, error) { return "", unix.Rename(j(dir, "f"), j(dir, "renamed")) }},
	{name: "rename_wd", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Rename(j(dir, "wd", "wf"), j(dir, "wd", "wf2"))
	}},
	{name: "rename_noreplace", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Renameat2(unix.AT_FDCWD, j(dir, "f"), unix.AT_FDCWD, j(dir, "f1000"), unix.RENAME_NOREPLACE)
	}},
	{name: "rename_noreplace_new", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Renameat2(unix.AT_FDCWD, j(dir, "f"), unix.AT_FDCWD, j(dir, "g"), unix.RENAME_NOREPLACE)
	}},
	{name: "rename_exchange", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Renameat2(unix.AT_FDCWD, j(dir, "f"), unix.AT_FDCWD, j(dir, "d"), unix.RENAME_EXCHANGE)
	}},
	{name: "unlink", run: func(dir string, a opArgs) (string, error) { return "", unix.Unlink(j(dir, "f")) }},
	{name: "unlink_wd", run: func(dir string, a opArgs) (string, error) { return "", unix.Unlink(j(dir, "wd", "wf")) }},
	{name: "rmdir", run: func(dir string, a opArgs) (string, error) { return "", unix.Rmdir(j(dir, "empty")) }},
	{name: "chmod", run: func(dir string, a opArgs) (string, error) { return "", unix.Chmod(j(dir, "f"), 0o600) }},
	{name: "chmod_f1000", run: func(dir string, a opArgs) (string, error) { return "", unix.Chmod(j(dir, "f1000"), 0o4700) }},
	// fo is disk 1000:0: its owner is not in its group, so the kernel drops
	// the setgid bit it asks for.
	{name: "chmod_sgid_notingroup", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Chmod(j(dir, "fo"), 0o2755)
	}},
	{name: "chown_uid", run: func(dir string, a opArgs) (string, error) { return "", chown(j(dir, "f"), a.UID, noID) }},
	{name: "chown_gid", run: func(dir string, a opArgs) (string, error) { return "", chown(j(dir, "f"), noID, a.GID) }},
	{name: "chown_both", run: func(dir string, a opArgs) (string, error) { return "", chown(j(dir, "f"), a.UID, a.GID) }},
	{name: "chown_own_group", run: func(dir string, a opArgs) (string, error) { return "", chown(j(dir, "fo"), noID, a.UID) }},
	{name: "chown_unmapped_uid", run: func(dir string, a opArgs) (string, error) {
		return "", chown(j(dir, "f"), a.UnmappedID, noID)
	}},
	{name: "chown_unmapped_gid", run: func(dir string, a opArgs) (string, error) {
		return "", chown(j(dir, "f"), noID, a.UnmappedID)
	}},
	{name: "chown_noop", run: func(dir string, a opArgs) (string, error) { return "", chown(j(dir, "f"), noID, noID) }},
	{name: "chown_suid", run: func(dir string, a opArgs) (string, error) { return "", chown(j(dir, "suid"), a.UID, noID) }},
	{name: "chown_symlink", run: func(dir string, a opArgs) (string, error) { return "", chown(j(dir, "link"), a.UID, a.GID) }},
	// f70000 is owned by disk uid and gid 70000, which have no host id.
	// The kernel's idmapped mounts refuse to change or delete such an
	// inode (notify_change, may_delete, may_linkat: EOVERFLOW) unless the
	// change makes its ids valid.
	{name: "unlink_f70000", run: func(dir string, a opArgs) (string, error) { return "", unix.Unlink(j(dir, "f70000")) }},
	{name: "rename_f70000", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Rename(j(dir, "f70000"), j(dir, "f70000.moved"))
	}},
	{name: "rename_over_f70000", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Rename(j(dir, "f"), j(dir, "f70000"))
	}},
	{name: "link_f70000", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Link(j(dir, "f70000"), j(dir, "f70000.link"))
	}},
	{name: "chmod_f70000", run: func(dir string, a opArgs) (string, error) { return "", unix.Chmod(j(dir, "f70000"), 0o600) }},
	{name: "chown_f70000", run: func(dir string, a opArgs) (string, error) {
		return "", chown(j(dir, "f70000"), a.UID, a.GID)
	}},
	{name: "truncate_f70000", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Truncate(j(dir, "f70000"), 1)
	}},
	{name: "write_f70000", run: func(dir string, a opArgs) (string, error) { return "", writeAppend(j(dir, "f70000")) }},
	{name: "utimes_f70000", run: func(dir string, a opArgs) (string, error) {
		ts := []unix.Timespec{{Sec: 1234567890}, {Sec: 1234567891}}
		return "", unix.UtimesNanoAt(unix.AT_FDCWD, j(dir, "f70000"), ts, 0)
	}},
	{name: "setxattr_f70000", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Setxattr(j(dir, "f70000"), "user.test", []byte("v"), 0)
	}},
	{name: "truncate", run: func(dir string, a opArgs) (string, error) { return "", unix.Truncate(j(dir, "f"), 2) }},
	{name: "truncate_wd", run: func(dir string, a opArgs) (string, error) { return "", unix.Truncate(j(dir, "wd", "wf"), 1) }},
	{name: "utimes", run: func(dir string, a opArgs) (string, error) {
		ts := []unix.Timespec{{Sec: 1234567890, Nsec: 5}, {Sec: 1234567891, Nsec: 25}}
		return "", unix.UtimesNanoAt(unix.AT_FDCWD, j(dir, "f"), ts, 0)
	}},
	{name: "utimes_wd", run: func(dir string, a opArgs) (string, error) {
		ts := []unix.Timespec{{Sec: 1234567890}, {Sec: 1234567891}}
		return "", unix.UtimesNanoAt(unix.AT_FDCWD, j(dir, "wd", "wf"), ts, 0)
	}},
	{name: "utimes_now_wd", run: func(dir string, a opArgs) (string, error) {
		ts := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
		return "", unix.UtimesNanoAt(unix.AT_FDCWD, j(dir, "wd", "wf"), ts, 0)
	}},
	{name: "utimes_omit", run: func(dir string, a opArgs) (string, error) {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: 1234567891}}
		return "", unix.UtimesNanoAt(unix.AT_FDCWD, j(dir, "f"), ts, 0)
	}},
	{name: "utimes_symlink", run: func(dir string, a opArgs) (string, error) {
		ts := []unix.Timespec{{Sec: 1234567890}, {Sec: 1234567891}}
		return "", unix.UtimesNanoAt(unix.AT_FDCWD, j(dir, "link"), ts, unix.AT_SYMLINK_NOFOLLOW)
	}},
	{name: "write_f", run: func(dir string, a opArgs) (string, error) { return "", writeAppend(j(dir, "f")) }},
	{name: "write_suid", run: func(dir string, a opArgs) (string, error) { return "", writeAppend(j(dir, "suid")) }},
	{name: "write_suidw", run: func(dir string, a opArgs) (string, error) { return "", writeAppend(j(dir, "suidw")) }},
	{name: "truncate_suidw", run: func(dir string, a opArgs) (string, error) { return "", unix.Truncate(j(dir, "suidw"), 1) }},
	{name: "open_write_f", run: func(dir string, a opArgs) (string, error) { return "", openWrite(j(dir, "f")) }},
	{name: "open_write_acl", run: func(dir string, a opArgs) (string, error) { return "", openWrite(j(dir, "acl")) }},
	{name: "read_acl", run: func(dir string, a opArgs) (string, error) {
		b, err := os.ReadFile(j(dir, "acl"))
		return string(b), err
	}},
	{name: "setxattr_user", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Setxattr(j(dir, "f"), "user.test", []byte("v"), 0)
	}},
	{name: "getxattr_user", run: func(dir string, a opArgs) (string, error) { return getxattr(j(dir, "f"), "user.foo") }},
	{name: "removexattr_user", run: func(dir string, a opArgs) (string, error) { return "", unix.Removexattr(j(dir, "f"), "user.foo") }},
	{name: "listxattr", run: func(dir string, a opArgs) (string, error) { return listxattr(j(dir, "f")) }},
	{name: "listxattr_acl", run: func(dir string, a opArgs) (string, error) { return listxattr(j(dir, "acl")) }},
	{name: "getxattr_badns", run: func(dir string, a opArgs) (string, error) { return getxattr(j(dir, "f"), "bogus.x") }},
	{name: "setacl", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Setxattr(j(dir, "f"), "system.posix_acl_access", testACL(a.ACLID), 0)
	}},
	{name: "setacl_unmapped", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Setxattr(j(dir, "f"), "system.posix_acl_access", testACL(a.UnmappedID), 0)
	}},
	{name: "getacl", run: func(dir string, a opArgs) (string, error) { return getxattr(j(dir, "acl"), "system.posix_acl_access") }},
	{name: "removeacl", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Removexattr(j(dir, "acl"), "system.posix_acl_access")
	}},
	// A default ACL on d, then a file created in d inherits it.
	{name: "default_acl_inherit", run: func(dir string, a opArgs) (string, error) {
		if err := unix.Setxattr(j(dir, "d"), "system.posix_acl_default", testACL(a.ACLID), 0); err != nil {
			return "", err
		}
		if err := create(j(dir, "d", "inh")); err != nil {
			return "", err
		}
		return getxattr(j(dir, "d", "inh"), "system.posix_acl_access")
	}},
	{name: "getcap", run: func(dir string, a opArgs) (string, error) { return getxattr(j(dir, "cap"), "security.capability") }},
	{name: "setcap_v3", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Setxattr(j(dir, "f"), "security.capability", capV3(capNetRaw, a.CapRoot), 0)
	}},
	{name: "setcap_v2", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Setxattr(j(dir, "f"), "security.capability", capV2(capNetRaw), 0)
	}},
	// A v3 capability whose rootid is outside the map.
	{name: "setcap_v3_unmapped", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Setxattr(j(dir, "f"), "security.capability", capV3(capNetRaw, a.UnmappedID), 0)
	}},
	// trusted.* is hidden and refused by idmapfs (SEMANTICS.md rule 7);
	// the kernel shows it to host root, the only caller with
	// CAP_SYS_ADMIN in the initial namespace.
	{name: "getxattr_trusted", run: func(dir string, a opArgs) (string, error) { return getxattr(j(dir, "tr"), "trusted.foo") },
		documented: trustedHidden},
	{name: "listxattr_trusted", run: func(dir string, a opArgs) (string, error) { return listxattr(j(dir, "tr")) },
		documented: trustedHidden},
	{name: "setxattr_trusted", run: func(dir string, a opArgs) (string, error) {
		return "", unix.Setxattr(j(dir, "f"), "trusted.new", []byte("x"), 0)
	}, documented: trustedHidden},
}

// fuseOrder lists the (op.caller) cases where both mounts refuse and leave
// the tree alone, but with different errnos, and the pair {idmapfs,
// kernel}. The kernel's idmapped mount checks ids first: a caller's fsuid
// or a new owner without a mapping, or an inode whose owner has none
// (HAS_UNMAPPED_ID), is refused with EOVERFLOW (EPERM for xattr writes)
// before permissions are checked. Through FUSE the kernel checks
// permissions itself (default_permissions) against the ids idmapfs shows
// (65534 for an unmapped owner) before idmapfs sees the request, and
// answers EACCES or EPERM. idmapfs cannot answer first.
var fuseOrder = map[string][2]syscall.Errno{
	// An unmapped caller creating in a directory it may not write.
	"create.unmapped":      {syscall.EACCES, syscall.EOVERFLOW},
	"create_sgid.unmapped": {syscall.EACCES, syscall.EOVERFLOW},
	"mkdir.unmapped":       {syscall.EACCES, syscall.EOVERFLOW},
	"mkdir_sgid.unmapped":  {syscall.EACCES, syscall.EOVERFLOW},
	"mknod_chr.unmapped":   {syscall.EACCES, syscall.EOVERFLOW},
}

func init() {
	unprivileged := []string{"cuser", "cgroup", "unmapped"}
	notRoot := []string{"croot", "cuser", "cgroup", "unmapped"}
	add := func(op string, who []string, idmapfsErr, kernelErr syscall.Errno) {
		for _, c := range who {
			fuseOrder[op+"."+c] = [2]syscall.Errno{idmapfsErr, kernelErr}
		}
	}
	// chown to an unmapped id by a caller who may not chown at all.
	add("chown_unmapped_uid", notRoot, syscall.EPERM, syscall.EOVERFLOW)
	add("chown_unmapped_gid", notRoot, syscall.EPERM, syscall.EOVERFLOW)
	// f70000 (owner without a mapping) by callers who may not touch it.
	add("unlink_f70000", unprivileged, syscall.EACCES, syscall.EOVERFLOW)
	add("rename_f70000", unprivileged, syscall.EACCES, syscall.EOVERFLOW)
	// protected_hardlinks refuses first through FUSE, also for
	// container root, who has no capability over an unmapped owner.
	add("link_f70000", append(notRoot, "nsroot"), syscall.EPERM, syscall.EOVERFLOW)
	add("chmod_f70000", append(notRoot, "nsroot"), syscall.EPERM, syscall.EOVERFLOW)
	add("utimes_f70000", append(notRoot, "nsroot"), syscall.EPERM, syscall.EOVERFLOW)
	add("setxattr_f70000", append(notRoot, "nsroot"), syscall.EACCES, syscall.EPERM)
}

func trustedHidden(c caller) string {
	if c.name == "hostroot" {
		return "SEMANTICS.md rule 7: trusted.* is hidden and refused"
	}
	return ""
}

// trustedWant is what idmapfs answers host root for the trusted.* ops.
var trustedWant = map[string]documentedWant{
	"getxattr_trusted":  {errno: syscall.ENODATA},
	"listxattr_trusted": {out: ""},
	"setxattr_trusted":  {errno: syscall.EPERM},
}

func opsByName() map[string]diffOp {
	m := make(map[string]diffOp, len(diffOps))
	for _, o := range diffOps {
		m[o.name] = o
	}
	return m
}

// argsFor returns the ids an operation uses, as c names them.
func argsFor(c caller) opArgs {
	return opArgs{
		UID:        c.view(101000),
		GID:        c.view(100005),
		ACLID:      c.view(100005),
		UnmappedID: c.view(5000),
		CapRoot:    c.view(100000),
	}
}

// TestDiffKernel runs every operation of diffOps as every caller on an
// idmapfs mount and on a kernel idmapped bind mount of an identical tree
// with the same map, and compares errnos, what the operation read, the
// backing trees and what stat shows through each mount.
func TestDiffKernel(t *testing.T) { diffKernel(t, false) }

// TestDiffKernelOverlayUpper is TestDiffKernel in overlay mode, with the
// fixture as the upper over an empty lower: every object is in the upper
// already, so changes take the short way (upperPath) rather than
// resolving and copying up from the root, and must still match the kernel.
func TestDiffKernelOverlayUpper(t *testing.T) { diffKernel(t, true) }

func diffKernel(t *testing.T, overlayUpper bool) {
	testutil.RequireFUSE(t)
	ids := testMap(t)
	base := sharedDir(t)
	srcA, srcB := j(base, "srcA"), j(base, "srcB")
	mntA, mntB := j(base, "mntA"), j(base, "mntB")
	mkdirs(t, srcA, srcB, mntA, mntB)
	caseDir := func(op diffOp, c caller) string { return op.name + "." + c.name }
	for _, op := range diffOps {
		for _, c := range callers {
			for _, src := range []string{srcA, srcB} {
				if err := buildFixture(j(src, caseDir(op, c))); err != nil {
					t.Fatalf("build fixture: %v", err)
				}
			}
		}
	}
	if overlayUpper {
		lower := j(base, "lower")
		mkdirs(t, lower)
		opts := defaultOptions(t)
		opts.Lowers, opts.Upper = []string{lower}, srcA
		mountIdmapfs(t, "", mntA, opts)
	} else {
		mountIdmapfs(t, srcA, mntA, defaultOptions(t))
	}
	kernelIdmappedMount(t, srcB, mntB, usernsFD(t, ids))

	// The fixtures must look alike before anything runs.
	for _, c := range callers {
		a, errA := treeState(j(mntA, caseDir(diffOps[0], c)), false)
		b, errB := treeState(j(mntB, caseDir(diffOps[0], c)), false)
		if errA != nil || errB != nil {
			t.Fatalf("walk mounts: %v; %v", errA, errB)
		}
		if d := diffStates(a, b); len(d) > 0 {
			t.Fatalf("fixture differs through the mounts before any operation:\n%s", strings.Join(d, "\n"))
		}
		break
	}

	// One helper process per caller runs every operation, each on its own
	// fixture, first through idmapfs, then through the kernel mount.
	results := make(map[string][][]opResult)
	var mu sync.Mutex
	var wg sync.WaitGroup
	bin := helperBinary(t)
	for _, c := range callers {
		var calls []opCall
		for _, op := range diffOps {
			cd := caseDir(op, c)
			calls = append(calls, opCall{Op: op.name, Dirs: []string{j(mntA, cd), j(mntB, cd)}, Args: argsFor(c)})
		}
		wg.Go(func() {
			r, err := runOps(c, ids, bin, calls)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			results[c.name] = r
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for i, op := range diffOps {
		t.Run(op.name, func(t *testing.T) {
			for _, c := range callers {
				t.Run(c.name, func(t *testing.T) {
					cd := caseDir(op, c)
					r := results[c.name][i]
					ra, rb := r[0], r[1]
					diskA, err := treeState(j(srcA, cd), true)
					if err != nil {
						t.Fatal(err)
					}
					diskB, err := treeState(j(srcB, cd), true)
					if err != nil {
						t.Fatal(err)
					}
					if overlayUpper && strings.HasPrefix(op.name, "tmpfile") {
						// Overlay mode has no O_TMPFILE (README, "Where overlay
						// mode differs"): refused.
						if ra.Errno != int(unix.EOPNOTSUPP) {
							t.Errorf("op %s by %s in overlay mode: errno %v; want EOPNOTSUPP", op.name, c.name, ra.errnoString())
						}
						return
					}
					if op.documented != nil {
						if why := op.documented(c); why != "" {
							checkDocumented(t, op, c, why, ra, diskA, j(srcA, cd))
							return
						}
					}
					t.Logf("idmapfs errno=%v out=%q; kernel errno=%v out=%q", ra.errnoString(), ra.Out, rb.errnoString(), rb.Out)
					diskDiff := diffStates(diskA, diskB)
					if k, ok := fuseOrder[op.name+"."+c.name]; ok && len(diskDiff) == 0 &&
						ra.Errno == int(k[0]) && rb.Errno == int(k[1]) {
						t.Logf("known FUSE difference: idmapfs %v, kernel %v: the idmapped mount checks id mappings first, FUSE checks permissions (default_permissions) before idmapfs sees the request",
							unix.ErrnoName(k[0]), unix.ErrnoName(k[1]))
						return
					}
					if ra.Errno != rb.Errno || ra.Out != rb.Out || len(diskDiff) > 0 {
						t.Errorf("op %s by %s: idmapfs errno=%v out=%q disk=%v; kernel errno=%v out=%q disk=%v\ndisk differences:\n  %s",
							op.name, c.name, ra.errnoString(), ra.Out, diskA[changedKey(diskDiff)],
							rb.errnoString(), rb.Out, diskB[changedKey(diskDiff)], strings.Join(diskDiff, "\n  "))
					}
					viewA, errA := treeState(j(mntA, cd), false)
					viewB, errB := treeState(j(mntB, cd), false)
					if errA != nil || errB != nil {
						t.Fatalf("walk mounts: idmapfs %v; kernel %v", errA, errB)
					}
					if d := diffStates(viewA, viewB); len(d) > 0 {
						t.Errorf("op %s by %s: stat through the mounts differs:\n  %s", op.name, c.name, strings.Join(d, "\n  "))
					}
				})
			}
		})
	}
}

// changedKey names the first entry of a diffStates list.
func changedKey(diff []string) string {
	if len(diff) == 0 {
		return ""
	}
	k, _, _ := strings.Cut(diff[0], ": ")
	return k
}

// checkDocumented checks an operation where idmapfs differs from the kernel
// on purpose: the result must be the documented one and the backing tree
// must be the untouched fixture.
func checkDocumented(t *testing.T, op diffOp, c caller, why string, r opResult, disk map[string]string, dir string) {
	t.Helper()
	want, ok := trustedWant[op.name]
	if !ok {
		t.Fatalf("op %s by %s: documented difference (%s) without a wanted result", op.name, c.name, why)
	}
	if r.Errno != int(want.errno) || r.Out != want.out {
		t.Errorf("op %s by %s (%s): idmapfs errno=%v out=%q; want errno=%v out=%q",
			op.name, c.name, why, r.errnoString(), r.Out, unix.ErrnoName(want.errno), want.out)
	}
	fresh := dir + ".want"
	if err := buildFixture(fresh); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(fresh)
	wantDisk, err := treeState(fresh, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffStates(disk, wantDisk); len(d) > 0 {
		t.Errorf("op %s by %s (%s): idmapfs changed the backing tree:\n  %s", op.name, c.name, why, strings.Join(d, "\n  "))
	}
}
