package idmapfs_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
)

// upperScript is what a container does to an overlay: every line prints
// its command and exit status, so that both overlays must agree on errors
// too.
const upperScript = `
r() { "$@" >/dev/null 2>&1; echo "$* -> $?"; }
r sh -c 'echo more >> a'
r chmod 600 m/p
r chown 1000:1000 m/r
r setfattr -n user.x -v 1 acl
r truncate -s 3 m/q
r touch -m -d @1000000123 cap
r touch new
r mkdir newdir
r sh -c 'echo hi > newdir/f'
r ln -s a newlink
r mkfifo fifo
r rm fileoverdir
r rm -r m/sub
r mkdir m/sub
r sh -c 'echo again > m/sub/x'
r mv new new2
r mv newdir m/nd
r mv onlybottom ob2
r ln a m/alink
r mv m/p p2
r rm m/gone
r rmdir m
r rm w
r rmdir diroverfile
r rm diroverfile/x
r rmdir diroverfile
r mkdir diroverfile
`

var newTime = regexp.MustCompile(`mtime=\d+\.\d+`)

// stable replaces the times of objects the script made or changed with
// "mtime=new": the two runs happen at different moments.
func stable(state map[string]string) map[string]string {
	out := map[string]string{}
	fixed := fmt.Sprintf("mtime=%d.000000000", fixtureTime)
	for k, v := range state {
		out[k] = newTime.ReplaceAllStringFunc(v, func(s string) string {
			if s == fixed || s == "mtime=1000000123.000000000" {
				return s
			}
			return "mtime=new"
		})
	}
	return out
}

// upperState describes an upper layer as stored: types, modes, disk ids,
// data, whiteouts (char 0/0) and xattrs, of which only overlay.opaque of
// the overlay's own (the kernel adds origin and impure marks, which this
// implementation does not write).
func upperState(t *testing.T, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		s := fmt.Sprintf("mode=%07o uid=%d gid=%d rdev=%d", st.Mode, st.Uid, st.Gid, st.Rdev)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" size=%d sha=%x", st.Size, sha256.Sum256(b))
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			s += " -> " + target
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			names, err := llistxattr(p)
			if err != nil {
				return err
			}
			for _, n := range names {
				if strings.HasPrefix(n, "trusted.overlay.") && n != "trusted.overlay.opaque" {
					continue
				}
				v := make([]byte, 65536)
				m, err := unix.Lgetxattr(p, n, v)
				if err != nil {
					return err
				}
				s += fmt.Sprintf(" %s=%x", n, v[:m])
			}
		}
		state[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func runScript(t *testing.T, c caller, ids idmap.IDMap, dir string) string {
	t.Helper()
	cmd := c.command(ids, "/bin/sh", "-c", upperScript)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("script as %s in %s: %v\n%s", c.name, dir, err, errb.String())
	}
	return out.String()
}

// TestOverlayUpperMatchesKernel runs one container session on idmapfs with
// a writable upper (as container root, map 0:100000:65536) and on the
// kernel's overlayfs (as root), over the same lowers, and compares the
// exit statuses, the merged views and the uppers as stored.
func TestOverlayUpperMatchesKernel(t *testing.T) {
	base := sharedDir(t)
	var lowers []string
	for i, ents := range ovLowers {
		l := filepath.Join(base, fmt.Sprintf("l%d", i))
		buildLower(t, l, ents)
		lowers = append(lowers, l)
	}
	before := map[string]map[string]string{}
	for _, l := range lowers {
		before[l] = lowerState(t, l)
	}
	ids := testMap(t)

	// idmapfs, as container root.
	upper, mnt := filepath.Join(base, "upper"), filepath.Join(base, "idmapfs")
	mkdirs(t, upper, mnt)
	opts := defaultOptions(t)
	opts.Lowers, opts.Upper = lowers, upper
	mountIdmapfs(t, "", mnt, opts)
	var st0 unix.Stat_t
	if err := unix.Stat(filepath.Join(mnt, "a"), &st0); err != nil {
		t.Fatal(err)
	}
	nsroot := caller{name: "nsroot", userns: true}
	gotLog := runScript(t, nsroot, ids, mnt)
	var st1 unix.Stat_t
	if err := unix.Stat(filepath.Join(mnt, "a"), &st1); err != nil {
		t.Fatal(err)
	}
	if st0.Ino != st1.Ino {
		t.Errorf("a: inode %d before its copy-up, %d after", st0.Ino, st1.Ino)
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(mnt, "a"), &st1); err != nil {
		t.Fatal(err)
	}
	if st0.Ino != st1.Ino {
		t.Errorf("a: inode %d before its copy-up, %d after the kernel forgot it", st0.Ino, st1.Ino)
	}
	if err := unix.Rename(filepath.Join(mnt, "m"), filepath.Join(mnt, "m2")); err != unix.EXDEV {
		t.Errorf("rename of a merged directory: %v, want EXDEV", err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(mnt, "p2"), unix.AT_FDCWD, filepath.Join(mnt, "a"), unix.RENAME_NOREPLACE); err != unix.EEXIST {
		t.Errorf("rename with RENAME_NOREPLACE over a lower file: %v, want EEXIST", err)
	}
	gotView := stable(mergedTree(t, mnt, nil, nil))
	gotUpper := upperState(t, upper)
	for _, l := range lowers {
		if diff := diffStates(before[l], lowerState(t, l)); len(diff) > 0 {
			t.Errorf("lower %s changed:\n%s", l, strings.Join(diff, "\n"))
		}
	}
	if s := gotUpper["new2"]; !strings.Contains(s, " uid=0 gid=0 ") {
		t.Errorf("new2 in the upper: %s; want disk ids 0", s)
	}

	// The kernel's overlayfs, as root.
	kupper, kwork, kmnt := filepath.Join(base, "kupper"), filepath.Join(base, "kwork"), filepath.Join(base, "kernel")
	mkdirs(t, kupper, kwork, kmnt)
	kopts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,index=off,metacopy=off",
		strings.Join(lowers, ":"), kupper, kwork)
	if err := unix.Mount("overlay", kmnt, "overlay", 0, kopts); err != nil {
		t.Fatalf("mount kernel overlayfs: %v", err)
	}
	t.Cleanup(func() { unmountAll(t, kmnt) })
	wantLog := runScript(t, caller{name: "hostroot"}, ids, kmnt)
	wantView := stable(mergedTree(t, kmnt, &ids, nil))
	wantUpper := upperState(t, kupper)

	if gotLog != wantLog {
		t.Errorf("exit statuses differ:\nidmapfs:\n%s\nkernel:\n%s", gotLog, wantLog)
	}
	if diff := diffStates(gotView, wantView); len(diff) > 0 {
		t.Errorf("merged views differ (idmapfs, kernel):\n%s", strings.Join(diff, "\n"))
	}
	if diff := diffStates(gotUpper, wantUpper); len(diff) > 0 {
		t.Errorf("uppers differ (idmapfs, kernel):\n%s", strings.Join(diff, "\n"))
	}

	// The upper idmapfs wrote, under the kernel's overlayfs.
	cmnt := filepath.Join(base, "compat")
	mkdirs(t, cmnt)
	kernelOverlay(t, cmnt, append([]string{upper}, lowers...)...)
	if diff := diffStates(gotView, stable(mergedTree(t, cmnt, &ids, nil))); len(diff) > 0 {
		t.Errorf("idmapfs's upper under kernel overlayfs shows another tree (idmapfs, kernel):\n%s", strings.Join(diff, "\n"))
	}

	// The upper the kernel's overlayfs wrote, under idmapfs.
	rmnt := filepath.Join(base, "reverse")
	mkdirs(t, rmnt)
	ropts := defaultOptions(t)
	ropts.Lowers = append([]string{kupper}, lowers...)
	mountIdmapfs(t, "", rmnt, ropts)
	if diff := diffStates(wantView, stable(mergedTree(t, rmnt, nil, nil))); len(diff) > 0 {
		t.Errorf("kernel overlayfs's upper under idmapfs shows another tree (kernel, idmapfs):\n%s", strings.Join(diff, "\n"))
	}
}
