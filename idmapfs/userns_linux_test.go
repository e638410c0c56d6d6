package idmapfs_test

import (
	"bytes"
	"encoding/hex"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/internal/testutil"
)

// containerScript runs as container root (root of a user namespace with
// the test map) in the directory $1, a fixture from buildFixture. Each
// command prints one line: its tag, its exit status and its output. It
// uses busybox and the host's acl, attr and libcap tools, none of them
// written here.
const containerScript = `
cd "$1" || exit 99
umask 022
r() { tag=$1; shift; out=$("$@" 2>&1); rc=$?; echo "$tag rc=$rc" $out; }
S='%n %u %g %a'
r id-u busybox id -u
r id-g busybox id -g
r stat-fixture busybox stat -c "$S" . f f1000 f70000 fo sgid
r touch busybox touch new
r stat-new busybox stat -c "$S" new
r mkdir busybox mkdir newdir
r stat-newdir busybox stat -c "$S" newdir
r mkdir-sgid busybox mkdir sgid/sub
r touch-sgid busybox touch sgid/file
r stat-sgid busybox stat -c "$S" sgid/sub sgid/file
r chown busybox chown 1000:5 new
r stat-chown busybox stat -c "$S" new
r chown-unmapped busybox chown 70000 new
r chgrp busybox chgrp 0 new
r chmod busybox chmod 4755 new
r stat-chmod busybox stat -c "$S" new
r chown-overflow busybox chown 0 f70000
r rm-overflow busybox rm f70000
r symlink busybox ln -s target sym
r readlink busybox readlink sym
r stat-sym busybox stat -c '%n %u %g %F' sym
r link busybox ln new hard
r nlink busybox stat -c '%n %h' new
r mkfifo busybox mkfifo fifo2
r stat-fifo busybox stat -c '%n %u %g %F' fifo2
r mknod-chr busybox mknod null c 1 3
r mv busybox mv hard moved
r rm busybox rm moved
r rmdir busybox rmdir empty
r write busybox sh -c 'echo hello > kept'
r cat busybox cat kept
r truncate busybox truncate -s 3 kept
r touch-t busybox touch -t 200902132331.30 kept
r stat-kept busybox stat -c '%n %u %g %a %s %Y' kept
r write-suid busybox sh -c 'echo x >> suid'
r stat-suid busybox stat -c "$S" suid
r setfattr setfattr -n user.x -v y kept
r getfattr getfattr --only-values -n user.x kept
r setfacl setfacl -m u:5:rw,g:5:r kept
r getfacl getfacl -nc kept
r getfacl-fixture getfacl -nc acl
r setcap setcap cap_net_raw+ep kept
r getcap getcap kept
r getcap-fixture getcap cap
r ls busybox ls -n
`

// containerWant are lines the script must print on idmapfs.
var containerWant = []string{
	"id-u rc=0 0",
	"id-g rc=0 0",
	"stat-fixture rc=0 . 0 0 755 f 0 0 644 f1000 1000 1000 644 f70000 65534 65534 644 fo 1000 0 644 sgid 0 5 2775",
	"stat-new rc=0 new 0 0 644",
	"stat-newdir rc=0 newdir 0 0 755",
	"stat-sgid rc=0 sgid/sub 0 5 2755 sgid/file 0 5 644",
	"stat-chown rc=0 new 1000 5 644",
	"stat-chmod rc=0 new 1000 0 4755",
	"readlink rc=0 target",
	"stat-sym rc=0 sym 0 0 symbolic link",
	"nlink rc=0 new 2",
	"stat-fifo rc=0 fifo2 0 0 fifo",
	"cat rc=0 hello",
	"stat-kept rc=0 kept 0 0 644 3 1234567890",
	// Only CAP_FSETID in the initial namespace keeps setuid/setgid on
	// write (should_remove_suid uses capable()).
	"stat-suid rc=0 suid 1000 1000 755",
	"getfattr rc=0 y",
	"getfacl rc=0 user::rw- user:5:rw- group::r-- group:5:r-- mask::rw- other::r--",
	"getfacl-fixture rc=0 user::rw- user:5:rw- group::r-- group:5:rw- mask::rw- other::---",
	"getcap rc=0 kept cap_net_raw=ep",
	"getcap-fixture rc=0 cap cap_net_raw=ep",
}

// containerRefused are tags of commands that must fail on idmapfs.
var containerRefused = []string{
	"chown-unmapped", // 70000 has no id in the namespace
	"chown-overflow", // f70000's owner is not in the namespace: no CAP_CHOWN over it
	// The kernel refuses to delete an inode whose owner has no id on the
	// mount (may_delete: EOVERFLOW).
	"rm-overflow",
	"mknod-chr", // devices need CAP_MKNOD in the initial namespace
}

// TestContainerRoot runs containerScript as container root inside a user
// namespace on idmapfs, checks what it sees and what lands on disk, and
// runs it on a kernel idmapped mount of an identical tree: both must print
// the same and leave the same tree.
func TestContainerRoot(t *testing.T) {
	testutil.RequireFUSE(t)
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Fatalf("needs busybox: %v", err)
	}
	for _, tool := range []string{"setfacl", "getfacl", "setfattr", "getfattr", "setcap", "getcap"} {
		if _, err := exec.LookPath(tool); err != nil {
			// scripts/deps.sh installs acl, attr and libcap2-bin.
			t.Fatalf("needs %s (Debian packages acl, attr, libcap2-bin): %v", tool, err)
		}
	}
	ids := testMap(t)
	base := sharedDir(t)
	srcA, srcB, mntA, mntB := j(base, "srcA"), j(base, "srcB"), j(base, "mntA"), j(base, "mntB")
	mkdirs(t, srcA, srcB, mntA, mntB)
	for _, src := range []string{srcA, srcB} {
		if err := buildFixture(j(src, "c")); err != nil {
			t.Fatal(err)
		}
	}
	mountIdmapfs(t, srcA, mntA, defaultOptions(t))
	kernelIdmappedMount(t, srcB, mntB, usernsFD(t, ids))

	root := caller{name: "nsroot", userns: true}
	run := func(dir string) string {
		cmd := root.command(ids, "busybox", "sh", "-c", containerScript, "sh", dir)
		cmd.Env = append(cmd.Env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		runtime.LockOSThread()
		err := cmd.Run()
		runtime.UnlockOSThread()
		if err != nil {
			t.Fatalf("container script on %s: %v\n%s", dir, err, out.String())
		}
		return out.String()
	}
	outA, outB := run(j(mntA, "c")), run(j(mntB, "c"))
	t.Logf("idmapfs:\n%s", outA)

	linesA := strings.Split(strings.TrimSpace(outA), "\n")
	linesB := strings.Split(strings.TrimSpace(outB), "\n")
	for i := range max(len(linesA), len(linesB)) {
		var a, b string
		if i < len(linesA) {
			a = linesA[i]
		}
		if i < len(linesB) {
			b = linesB[i]
		}
		if a != b {
			t.Errorf("container root: idmapfs printed %q; kernel printed %q", a, b)
		}
	}
	for _, want := range containerWant {
		if !strings.Contains("\n"+outA+"\n", "\n"+want+"\n") {
			t.Errorf("container root on idmapfs: no line %q", want)
		}
	}
	for _, tag := range containerRefused {
		if strings.Contains("\n"+outA, "\n"+tag+" rc=0") {
			t.Errorf("container root on idmapfs: %s succeeded; want a failure", tag)
		}
	}

	diskA, err := treeState(j(srcA, "c"), true)
	if err != nil {
		t.Fatal(err)
	}
	diskB, err := treeState(j(srcB, "c"), true)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffStates(diskA, diskB); len(d) > 0 {
		t.Errorf("backing trees differ after the container script:\n  %s", strings.Join(d, "\n  "))
	}
	// On disk: disk ids, never host ids; a capability set by container
	// root is a plain v2 value (rootid 0); ACL entries hold disk ids.
	acl := hex.EncodeToString(aclXattr(
		aclEntry{aclUserObj, 6, aclNoID}, aclEntry{aclUser, 6, 5},
		aclEntry{aclGroupObj, 4, aclNoID}, aclEntry{aclGroup, 4, 5},
		aclEntry{aclMask, 6, aclNoID}, aclEntry{aclOther, 4, aclNoID}))
	diskWant := map[string][]string{
		"new":       {"uid=1000 gid=0", "mode=0104755", "nlink=1"},
		"newdir":    {"mode=0040755 uid=0 gid=0"},
		"sgid/sub":  {"mode=0042755 uid=0 gid=5"},
		"sgid/file": {"mode=0100644 uid=0 gid=5"},
		"sym":       {"uid=0 gid=0", "-> target"},
		"fifo2":     {"mode=0010644 uid=0 gid=0"},
		"kept": {"mode=0100664 uid=0 gid=0 size=3", "mtime=1234567890.000000000",
			"security.capability=" + hex.EncodeToString(capV2(capNetRaw)),
			"system.posix_acl_access=" + acl, "user.x=79"},
		"suid": {"mode=0100755 uid=1000 gid=1000"},
	}
	for name, wants := range diskWant {
		got, ok := diskA[name]
		if !ok {
			t.Errorf("on disk: %s missing", name)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Errorf("on disk: %s = {%s}; want %q", name, got, w)
			}
		}
	}
	for _, gone := range []string{"empty", "moved", "hard", "null"} {
		if _, ok := diskA[gone]; ok {
			t.Errorf("on disk: %s exists; want it gone (or never made)", gone)
		}
	}
}
