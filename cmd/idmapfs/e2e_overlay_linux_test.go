package main

// End-to-end tests of overlay mode's robustness: a daemon killed in the
// middle of a copy-up, and input the mount must refuse without touching
// anything.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/testutil"
)

// e2eCrashMap is the map of the crash tests; e2eCrootUID is container root
// under it, the caller of every change.
const (
	e2eCrashMap = "0:100000:65536"
	e2eCrootUID = 100000
)

// e2eStartMount starts "idmapfs mount ARGS" in the foreground and waits for
// its "mounted" line. The process is killed when the test ends if it still
// runs.
func e2eStartMount(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(e2eBin, append([]string{"mount"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
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
			t.Fatalf("idmapfs mount %v: first line %q; stderr %s", args, l, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("idmapfs mount %v printed nothing in 20s; stderr %s", args, stderr)
	}
	return cmd
}

// lockedBuffer is a bytes.Buffer that the exec package may write while a
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// e2eAs returns a shell running script in dir as host uid and gid uid with
// no supplementary groups.
func e2eAs(uid uint32, dir, script string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	return cmd
}

func e2eRunAs(t *testing.T, uid uint32, dir, script string) {
	t.Helper()
	if out, err := e2eAs(uid, dir, script).CombinedOutput(); err != nil {
		t.Fatalf("as uid %d in %s: %s: %v\n%s", uid, dir, script, err, out)
	}
}

// e2eTmpfs mounts a tmpfs of size on a new directory under base.
func e2eTmpfs(t *testing.T, base, name, opts string) string {
	t.Helper()
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755,"+opts); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	e2eCleanupMount(t, dir)
	return dir
}

// e2eState describes every object under root: type, mode, ids, size,
// mtime, xattrs, symlink target and the sha256 of a file's data (read with
// O_NOATIME), and with times set to "c" or "ca", the ctime (to prove that
// nothing changed at all) and the atime (that nothing was even read). A
// copy-up restores the times of the directory it adds a name to, but not
// its ctime. skip leaves out a path and, for a directory, everything below
// it.
func e2eState(t *testing.T, root string, times string, skip func(rel string) bool) map[string]string {
	t.Helper()
	state := map[string]string{}
	var walk func(rel string) error
	walk = func(rel string) error {
		if skip != nil && skip(rel) {
			return nil
		}
		p := filepath.Join(root, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		s := fmt.Sprintf("mode=%07o uid=%d gid=%d rdev=%d:%d mtime=%d.%09d",
			st.Mode, st.Uid, st.Gid, unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Mtim.Sec, st.Mtim.Nsec)
		if strings.Contains(times, "c") {
			s += fmt.Sprintf(" ctime=%d.%09d", st.Ctim.Sec, st.Ctim.Nsec)
		}
		if strings.Contains(times, "a") {
			s += fmt.Sprintf(" atime=%d.%09d", st.Atim.Sec, st.Atim.Nsec)
		}
		var children []string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			sum, err := e2eFileSum(p, -1)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" size=%d sha256=%x", st.Size, sum)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			s += " -> " + target
		case unix.S_IFDIR:
			// O_NOATIME: describing a lower must not change it.
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: p, Err: err}
			}
			d := os.NewFile(uintptr(fd), p)
			children, err = d.Readdirnames(-1)
			d.Close()
			if err != nil {
				return err
			}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			x, err := e2eXattrs(p)
			if err != nil {
				return err
			}
			s += x
		}
		state[rel] = s
		for _, c := range children {
			if err := walk(filepath.Join(rel, c)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("."); err != nil {
		t.Fatalf("describe %s: %v", root, err)
	}
	return state
}

func e2eXattrs(p string) (string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("listxattr %s: %w", p, err)
	}
	var names []string
	for _, b := range bytes.Split(buf[:n], []byte{0}) {
		if len(b) > 0 {
			names = append(names, string(b))
		}
	}
	slices.Sort(names)
	var sb strings.Builder
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return "", fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		fmt.Fprintf(&sb, " %s=%x", name, v[:m])
	}
	return sb.String(), nil
}

// e2eFileSum hashes the first n bytes of a file (all of it for n < 0),
// opened with O_NOATIME.
func e2eFileSum(p string, n int64) ([32]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if err != nil {
		return [32]byte{}, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	h := sha256.New()
	var r io.Reader = f
	if n >= 0 {
		r = io.LimitReader(f, n)
	}
	if _, err := io.Copy(h, r); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

// e2eDiff lists the paths on which two states differ.
func e2eDiff(before, after map[string]string) []string {
	var out []string
	for k, a := range before {
		if b, ok := after[k]; !ok {
			out = append(out, fmt.Sprintf("%s: gone (was %s)", k, a))
		} else if a != b {
			out = append(out, fmt.Sprintf("%s: %s\n    was %s", k, b, a))
		}
	}
	for k, b := range after {
		if _, ok := before[k]; !ok {
			out = append(out, fmt.Sprintf("%s: new %s", k, b))
		}
	}
	slices.Sort(out)
	return out
}

// e2eWorkTemps lists the names in the private work directory of idmapfs
// (where copy-ups are built) with their sizes.
func e2eWorkTemps(t *testing.T, work string) map[string]int64 {
	t.Helper()
	dir := filepath.Join(work, "idmapfs-work")
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(dir, e.Name()), &st) == nil {
			out[e.Name()] = st.Size
		}
	}
	return out
}

// e2eKill kills the daemon and waits for it to go, then checks that the
// mount is dead (ENOTCONN), clears it with idmapfs umount --lazy and checks
// that it is gone.
func e2eKill(t *testing.T, daemon *exec.Cmd, mnt string) {
	t.Helper()
	if err := daemon.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e2eWait(t, daemon)
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("stat of the mount after its daemon was killed: %v; want ENOTCONN", err)
	}
	if r := e2eRun(t, "", e2eBin, "umount", "--lazy", mnt); r.code != 0 {
		t.Fatalf("idmapfs umount --lazy of a dead mount: %s", r)
	}
	if e2eMounted(t, mnt) {
		t.Fatalf("%s still mounted after idmapfs umount --lazy", mnt)
	}
}

// e2eNoLeftovers checks that no name of the work directory's leftovers
// shows anywhere in the merged view, and that the remount cleaned them.
func e2eNoLeftovers(t *testing.T, mnt, work string, leftovers map[string]int64) {
	t.Helper()
	filepath.WalkDir(mnt, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", p, err)
			return nil
		}
		if _, ok := leftovers[d.Name()]; ok || strings.HasPrefix(d.Name(), "#") {
			t.Errorf("%s: a work directory temporary is visible in the merged view", p)
		}
		return nil
	})
	now := e2eWorkTemps(t, work)
	for name := range leftovers {
		if _, ok := now[name]; ok {
			t.Errorf("work directory leftover %s (%d bytes) is still there after the remount", name, leftovers[name])
		}
	}
}

// TestE2EOverlayCrash kills the daemon with SIGKILL in the middle of a
// copy-up, then clears the dead mount, mounts the same upper and work
// again and checks that no partial object is visible or stored, that every
// change completed before the crash is there, and that the interrupted
// change can be made again.
func TestE2EOverlayCrash(t *testing.T) {
	testutil.RequireFUSE(t)

	t.Run("large-file", func(t *testing.T) {
		// The lower file is 512 MiB on tmpfs: its copy-up takes about a
		// second, long enough to see its temporary grow in the work
		// directory and kill the daemon then.
		const size = 512 << 20
		base := e2eDir(t)
		fs := e2eTmpfs(t, base, "fs", "size=1600m")
		lower, upper, work, mnt := filepath.Join(fs, "lower"), filepath.Join(fs, "upper"), filepath.Join(fs, "work"), filepath.Join(base, "mnt")
		for _, d := range []string{lower, upper, work, mnt, filepath.Join(lower, "dir")} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		e2eCleanupMount(t, mnt)
		big := filepath.Join(lower, "big")
		wantSum, head := e2eBigFile(t, big, size)
		for name, data := range map[string]string{"small": "small\n", "gone": "gone\n", "old": "old\n", "dir/file": "file\n"} {
			if err := os.WriteFile(filepath.Join(lower, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		lowerBefore := e2eState(t, lower, "ca", nil)
		args := []string{"--map", e2eCrashMap, "--lower", lower, "--upper", upper, "--work", work, mnt}
		daemon := e2eStartMount(t, args...)

		// Changes that complete before the crash.
		e2eRunAs(t, e2eCrootUID, mnt, "echo made > made && mkdir newdir && echo in > newdir/f && chmod 600 small && rm gone && mv old renamed && echo more >> dir/file")
		notBig := func(rel string) bool { return rel == "big" }
		mergedBefore := e2eState(t, mnt, "", notBig)
		upperBefore := e2eState(t, upper, "", nil)

		writer := e2eAs(e2eCrootUID, mnt, "printf x >> big")
		var werr bytes.Buffer
		writer.Stderr = &werr
		if err := writer.Start(); err != nil {
			t.Fatal(err)
		}
		wdone := make(chan error, 1)
		go func() { wdone <- writer.Wait() }()
		// Wait for the copy-up's temporary to grow in the work directory.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var partial int64
	wait:
		for {
			for _, sz := range e2eWorkTemps(t, work) {
				if sz > 0 && sz < size {
					partial = sz
					break wait
				}
			}
			select {
			case err := <-wdone:
				t.Fatalf("the write finished (%v) before the test saw its copy-up in progress; stderr %s", err, werr.String())
			case <-ctx.Done():
				t.Fatal("no copy-up temporary grew in the work directory within 60s")
			case <-time.After(time.Millisecond):
			}
		}
		e2eKill(t, daemon, mnt)
		if err := <-wdone; err == nil {
			t.Errorf("the write whose copy-up was interrupted succeeded")
		}
		leftovers := e2eWorkTemps(t, work)
		t.Logf("killed with a %d-byte temporary; work directory holds %v", partial, leftovers)

		// Nothing in the upper is partial: it is as before the crash, or
		// has a complete copy of big.
		upperAfter := e2eState(t, upper, "", notBig)
		if diff := e2eDiff(upperBefore, upperAfter); len(diff) > 0 {
			t.Errorf("the upper changed in the crash:\n%s", strings.Join(diff, "\n"))
		}
		if fi, err := os.Lstat(filepath.Join(upper, "big")); err == nil {
			sum, err := e2eFileSum(filepath.Join(upper, "big"), -1)
			if err != nil || fi.Size() != size || sum != wantSum {
				t.Errorf("upper/big after the crash: %d bytes, sha256 %x (%v); want absent or the whole lower file", fi.Size(), sum, err)
			}
		}

		daemon = e2eStartMount(t, args...)
		mergedAfter := e2eState(t, mnt, "", notBig)
		if diff := e2eDiff(mergedBefore, mergedAfter); len(diff) > 0 {
			t.Errorf("the merged view after the crash differs from before it:\n%s", strings.Join(diff, "\n"))
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(mnt, "big"), &st); err != nil || st.Size != size || st.Uid != e2eCrootUID {
			t.Errorf("big after the crash: %v, size %d, uid %d; want %d bytes, uid %d", err, st.Size, st.Uid, size, e2eCrootUID)
		}
		if sum, err := e2eFileSum(filepath.Join(mnt, "big"), -1); err != nil || sum != wantSum {
			t.Errorf("big after the crash: sha256 %x, %v; want the lower's %x", sum, err, wantSum)
		}
		e2eNoLeftovers(t, mnt, work, leftovers)

		// The interrupted change works now.
		e2eRunAs(t, e2eCrootUID, mnt, "printf x >> big")
		if err := unix.Stat(filepath.Join(mnt, "big"), &st); err != nil || st.Size != size+1 {
			t.Errorf("big after the write: %v, size %d; want %d", err, st.Size, size+1)
		}
		f, err := os.Open(filepath.Join(mnt, "big"))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(head))
		_, err1 := f.ReadAt(got, 0)
		tail := make([]byte, 2)
		_, err2 := f.ReadAt(tail, size-1)
		f.Close()
		if err1 != nil || !bytes.Equal(got, head) || err2 != nil || tail[1] != 'x' || tail[0] != head[len(head)-1] {
			t.Errorf("big after the write: first MiB equal %v (%v), last bytes %q (%v)", bytes.Equal(got, head), err1, tail, err2)
		}
		if r := e2eRun(t, "", e2eBin, "umount", mnt); r.code != 0 {
			t.Errorf("umount: %s", r)
		}
		e2eWait(t, daemon)
		if diff := e2eDiff(lowerBefore, e2eState(t, lower, "ca", nil)); len(diff) > 0 {
			t.Errorf("the lower changed:\n%s", strings.Join(diff, "\n"))
		}
	})

	t.Run("deep-dir", func(t *testing.T) {
		// A file created 300 directories deep copies up the 300 lower
		// directories first, each fsynced on the root filesystem; the
		// daemon is stopped and killed once a few are in the upper.
		const depth = 300
		base := e2eDir(t)
		lower, upper, work, mnt := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "mnt")
		for _, d := range []string{lower, upper, work, mnt, filepath.Join(lower, "other"), filepath.Join(lower, "other", "sub")} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		e2eCleanupMount(t, mnt)
		if err := os.WriteFile(filepath.Join(lower, "keep"), []byte("keep\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		chain := make([]string, depth) // chain[i] is the path of level i+1
		for i := range chain {
			name := fmt.Sprintf("d%d", i+1)
			if i == 0 {
				chain[i] = name
			} else {
				chain[i] = chain[i-1] + "/" + name
			}
			p := filepath.Join(lower, chain[i])
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			// Each level differs from a fresh directory in mode, group,
			// an xattr and its times.
			if err := os.Chmod(p, 0o751); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(p, 0, i%7); err != nil {
				t.Fatal(err)
			}
			if err := unix.Setxattr(p, "user.level", []byte(fmt.Sprint(i+1)), 0); err != nil {
				t.Fatalf("setxattr on the lower (needs user xattrs on %s): %v", base, err)
			}
		}
		for i := depth - 1; i >= 0; i-- {
			ts := []unix.Timespec{{Sec: 1_000_000_000 + int64(i)}, {Sec: 1_000_000_000 + int64(i)}}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(lower, chain[i]), ts, 0); err != nil {
				t.Fatal(err)
			}
		}
		lowerBefore := e2eState(t, lower, "ca", nil)
		args := []string{"--map", e2eCrashMap, "--lower", lower, "--upper", upper, "--work", work, mnt}
		daemon := e2eStartMount(t, args...)

		e2eRunAs(t, e2eCrootUID, mnt, "echo made > made && mkdir other/sub/new && chmod 700 other && rm keep")
		notChain := func(rel string) bool { return rel == "d1" }
		mergedBefore := e2eState(t, mnt, "", notChain)
		upperBefore := e2eState(t, upper, "", notChain)

		writer := e2eAs(e2eCrootUID, mnt, "touch "+chain[depth-1]+"/new")
		if err := writer.Start(); err != nil {
			t.Fatal(err)
		}
		wdone := make(chan error, 1)
		go func() { wdone <- writer.Wait() }()
		// copied counts the levels in the upper, following the chain.
		copied := func() int {
			n := 0
			for n < depth {
				if _, err := os.Lstat(filepath.Join(upper, chain[n])); err != nil {
					break
				}
				n++
			}
			return n
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for copied() < 3 {
			select {
			case err := <-wdone:
				t.Fatalf("the create finished (%v) before the test saw its copy-up in progress", err)
			case <-ctx.Done():
				t.Fatal("the copy-up of the directory chain did not start within 60s")
			case <-time.After(100 * time.Microsecond):
			}
		}
		// Stopped first, so that what the upper holds can be read while
		// nothing moves; then killed.
		if err := daemon.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		n := copied()
		if n >= depth {
			t.Fatalf("the whole chain was copied up before the daemon stopped; the test needs a slower copy-up")
		}
		e2eKill(t, daemon, mnt)
		if err := <-wdone; err == nil {
			t.Errorf("the create whose copy-up was interrupted succeeded")
		}
		leftovers := e2eWorkTemps(t, work)
		t.Logf("killed with %d of %d levels copied up; work directory holds %v", n, depth, leftovers)
		if got := copied(); got != n {
			t.Fatalf("%d levels in the upper after the kill, %d while stopped", got, n)
		}

		// Each copied level is complete: as its lower directory, but for
		// the times of the deepest one's parent, which a crash between
		// the rename into it and the restoring of its times leaves new
		// (the kernel's overlayfs has the same window).
		checkChain := func(root string, uidOff int, levels int, where string) {
			t.Helper()
			for i := 0; i < levels; i++ {
				var lst, ust unix.Stat_t
				if err := unix.Lstat(filepath.Join(lower, chain[i]), &lst); err != nil {
					t.Fatal(err)
				}
				if err := unix.Lstat(filepath.Join(root, chain[i]), &ust); err != nil {
					t.Errorf("%s: level %d: %v", where, i+1, err)
					continue
				}
				x, err := e2eXattrs(filepath.Join(root, chain[i]))
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("mode=%o uid=%d gid=%d user.level=%x", lst.Mode, int(lst.Uid)+uidOff, int(lst.Gid)+uidOff, fmt.Sprint(i+1))
				got := fmt.Sprintf("mode=%o uid=%d gid=%d", ust.Mode, ust.Uid, ust.Gid)
				for _, kv := range strings.Fields(x) {
					if strings.HasPrefix(kv, "user.") {
						got += " " + kv
					}
				}
				if got != want {
					t.Errorf("%s: level %d: %s; want %s", where, i+1, got, want)
				}
				if ust.Mtim != lst.Mtim {
					if i == n-2 {
						t.Logf("%s: level %d (the parent of the deepest copied) has mtime %v, the lower %v", where, i+1, ust.Mtim, lst.Mtim)
					} else {
						t.Errorf("%s: level %d: mtime %v; want the lower's %v", where, i+1, ust.Mtim, lst.Mtim)
					}
				}
			}
		}
		checkChain(upper, 0, n, "upper after the crash")
		if diff := e2eDiff(upperBefore, e2eState(t, upper, "", notChain)); len(diff) > 0 {
			t.Errorf("the upper changed in the crash:\n%s", strings.Join(diff, "\n"))
		}

		daemon = e2eStartMount(t, args...)
		if diff := e2eDiff(mergedBefore, e2eState(t, mnt, "", notChain)); len(diff) > 0 {
			t.Errorf("the merged view after the crash differs from before it:\n%s", strings.Join(diff, "\n"))
		}
		checkChain(mnt, e2eCrootUID, depth, "merged view after the crash")
		if _, err := os.Lstat(filepath.Join(mnt, chain[depth-1], "new")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the file whose create was interrupted: %v; want ENOENT", err)
		}
		e2eNoLeftovers(t, mnt, work, leftovers)

		e2eRunAs(t, e2eCrootUID, mnt, "touch "+chain[depth-1]+"/new")
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, chain[depth-1], "new"), &st); err != nil || st.Uid != 0 {
			t.Errorf("upper/.../new after the create: %v, uid %d; want disk uid 0", err, st.Uid)
		}
		checkChain(upper, 0, depth-1, "upper after the create") // the last level's mtime moved with the create
		if r := e2eRun(t, "", e2eBin, "umount", mnt); r.code != 0 {
			t.Errorf("umount: %s", r)
		}
		e2eWait(t, daemon)
		if diff := e2eDiff(lowerBefore, e2eState(t, lower, "ca", nil)); len(diff) > 0 {
			t.Errorf("the lower changed:\n%s", strings.Join(diff, "\n"))
		}
	})
}

// e2eBigFile writes size bytes of incompressible data to p and returns
// their sha256 and the first MiB.
func e2eBigFile(t *testing.T, p string, size int) ([32]byte, []byte) {
	t.Helper()
	block := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{'i', 'd', 'm', 'a', 'p'})
	r.Read(block)
	head := slices.Clone(block)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	for i := 0; i < size/len(block); i++ {
		binary.LittleEndian.PutUint64(block, uint64(i)) // every MiB differs
		if i == 0 {
			copy(head, block)
		}
		if _, err := w.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, head
}

// TestE2EOverlayBadInput gives overlay mode layers it must refuse: each
// invocation (mount, mount --daemon, run) fails with a message that says
// what is wrong and what to do, mounts nothing, leaves no loop device bound
// to an image, and changes nothing under the test's directory.
func TestE2EOverlayBadInput(t *testing.T) {
	testutil.RequireFUSE(t)
	requireMksquashfs(t)
	base := e2eDir(t)
	j := func(p ...string) string { return filepath.Join(append([]string{base}, p...)...) }
	for _, d := range []string{"lower", "lower/u", "lower/w", "upper", "upper/l", "upper/w", "work", "work/u", "mnt", "img"} {
		if err := os.Mkdir(j(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mnt := j("mnt")
	e2eCleanupMount(t, mnt)
	for name, data := range map[string]string{"lower/f": "lower\n", "upper/f": "upper\n", "notimage": "not a filesystem image\n"} {
		if err := os.WriteFile(j(name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Images: good, truncated (its superblock says it is longer), and one
	// with a valid superblock over garbage.
	rnd := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 256<<10)
	for i := range noise {
		noise[i] = byte(rnd.Uint32())
	}
	if err := os.WriteFile(j("img", "noise"), noise, 0o644); err != nil {
		t.Fatal(err)
	}
	good, trunc, garbage := j("good.sqfs"), j("trunc.sqfs"), j("garbage.sqfs")
	if out, err := exec.Command("mksquashfs", j("img"), good, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	img, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trunc, img[:len(img)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(img)
	for i := 96; i < len(bad); i++ { // 96: the squashfs superblock
		bad[i] = byte(rnd.Uint32())
	}
	if err := os.WriteFile(garbage, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	// Uppers on other filesystems: another tmpfs (for a work directory
	// elsewhere), ramfs (no xattrs), a bind mount of base (same
	// filesystem, another mount), and a read-only tmpfs.
	other := e2eTmpfs(t, base, "other", "size=1m")
	if err := os.Mkdir(j("ramfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("ramfs", j("ramfs"), "ramfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount ramfs: %v", err)
	}
	e2eCleanupMount(t, j("ramfs"))
	if err := os.Mkdir(j("ramfs", "u"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(j("bind"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(j("work"), j("bind"), "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	e2eCleanupMount(t, j("bind"))
	ro := e2eTmpfs(t, base, "ro", "size=1m")
	for _, d := range []string{"u", "w"} {
		if err := os.Mkdir(filepath.Join(ro, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("", ro, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", ro, err)
	}

	goodSum := fmt.Sprintf("%x", sha256.Sum256(img))
	wrongSum := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string
		// probed is a directory whose times may change: the parent of a
		// default work directory made (and removed) to try the upper's
		// filesystem. It is neither the upper nor a lower.
		probed string
	}{
		{"missing-lower", []string{"--lower", j("lower") + ":" + j("nope"), "--upper", j("upper")}, []string{j("nope"), "does not exist"}, ""},
		{"lower-not-an-image", []string{"--lower", j("notimage"), "--upper", j("upper")}, []string{j("notimage"), "not a squashfs, erofs or ext4 image"}, ""},
		{"upper-inside-lower", []string{"--lower", j("lower"), "--upper", j("lower", "u")}, []string{j("lower", "u"), "must not contain each other", "outside"}, ""},
		{"lower-inside-upper", []string{"--lower", j("upper", "l"), "--upper", j("upper")}, []string{j("upper", "l"), "must not contain each other", "outside"}, ""},
		{"work-inside-lower", []string{"--lower", j("lower"), "--upper", j("upper"), "--work", j("lower", "w")}, []string{j("lower", "w"), "must not contain each other", "--work outside"}, ""},
		{"work-inside-upper", []string{"--lower", j("lower"), "--upper", j("upper"), "--work", j("upper", "w")}, []string{j("upper", "w"), "must not contain each other", "--work outside"}, ""},
		{"upper-inside-work", []string{"--lower", j("lower"), "--upper", j("work", "u"), "--work", j("work")}, []string{j("work", "u"), "must not contain each other", "--work outside"}, ""},
		{"work-on-another-fs", []string{"--lower", j("lower"), "--upper", j("upper"), "--work", other}, []string{other, "not on the mount of upper", "--work on the same filesystem"}, ""},
		{"work-on-another-mount", []string{"--lower", j("lower"), "--upper", j("upper"), "--work", j("bind")}, []string{j("bind"), "not on the mount of upper", "--work on the same filesystem"}, ""},
		{"missing-upper", []string{"--lower", j("lower"), "--upper", j("nope")}, []string{"upper " + j("nope") + " does not exist", "mkdir"}, ""},
		{"missing-work", []string{"--lower", j("lower"), "--upper", j("upper"), "--work", j("nope")}, []string{"work directory " + j("nope") + " does not exist", "mkdir"}, ""},
		{"upper-is-a-file", []string{"--lower", j("lower"), "--upper", j("notimage")}, []string{j("notimage"), "not a directory"}, ""},
		{"upper-without-xattrs", []string{"--lower", j("lower"), "--upper", j("ramfs", "u")}, []string{j("ramfs", "u"), "trusted.* xattrs", "tmpfs, ext4"}, "ramfs"},
		{"upper-read-only", []string{"--lower", j("lower"), "--upper", filepath.Join(ro, "u")}, []string{filepath.Join(ro, "u"), "read-only", "remount it read-write"}, ""},
		{"upper-and-work-read-only", []string{"--lower", j("lower"), "--upper", filepath.Join(ro, "u"), "--work", filepath.Join(ro, "w")}, []string{filepath.Join(ro, "u"), "read-only", "remount it read-write"}, ""},
		{"upper-at-a-mount-root", []string{"--lower", j("lower"), "--upper", ro}, []string{ro, "root of a mounted filesystem", "--work"}, ""},
		{"truncated-image", []string{"--lower", trunc, "--upper", j("upper")}, []string{trunc, "truncated", "build it again"}, ""},
		{"garbage-image", []string{"--lower", garbage + ":" + j("lower"), "--upper", j("upper")}, []string{garbage, "corrupt", "build it again"}, ""},
		{"verify-mismatch", []string{"--lower", good, "--verify", wrongSum, "--upper", j("upper")}, []string{good, "mismatch", goodSum}, ""},
		{"bad-upper-after-image", []string{"--lower", good, "--upper", j("nope")}, []string{j("nope"), "does not exist"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := func() map[string]string {
				st := e2eState(t, base, "c", func(rel string) bool { return rel == "mnt" })
				if v, ok := st[tc.probed]; ok {
					st[tc.probed] = regexp.MustCompile(` [mc]time=[0-9.]+`).ReplaceAllString(v, "")
				}
				return st
			}
			before := state()
			for _, args := range [][]string{
				append(append([]string{"mount"}, tc.flags...), mnt),
				append(append([]string{"mount", "--daemon"}, tc.flags...), mnt),
				append(append([]string{"run"}, tc.flags...), "--", "/bin/true"),
			} {
				r := e2eRun(t, "", e2eBin, args...)
				e2eFails(t, r, mnt, tc.want...)
				if t.Failed() {
					t.Logf("idmapfs %s", strings.Join(args, " "))
				}
				if e2eMounted(t, mnt) {
					// Reported above; keep the next cases apart from it.
					unix.Unmount(mnt, unix.MNT_DETACH)
				}
				for _, m := range e2eMountinfo(t) {
					if strings.Contains(m.source, base) && (m.fstype == "fuse.idmapfs" || strings.HasPrefix(m.source, "overlay:")) {
						t.Errorf("idmapfs %s: left mounted: %+v", args[0], m)
					}
				}
				for _, im := range []string{good, trunc, garbage} {
					if slices.Contains(tc.flags, im) || strings.Contains(strings.Join(tc.flags, " "), im+":") {
						e2eNoLoop(t, im)
					}
				}
				if diff := e2eDiff(before, state()); len(diff) > 0 {
					t.Errorf("idmapfs %s changed the tree:\n%s", args[0], strings.Join(diff, "\n"))
				}
			}
		})
	}
	// The fixtures are right: the good image, the upper and the work
	// directory mount.
	t.Run("control", func(t *testing.T) {
		r := e2eRun(t, "", e2eBin, "mount", "--daemon", "--lower", good+":"+j("lower"), "--verify", "sha256:"+goodSum, "--upper", j("upper"), "--work", j("work"), mnt)
		if r.code != 0 {
			t.Fatalf("mount of good layers: %s", r)
		}
		if _, err := os.Stat(filepath.Join(mnt, "noise")); err != nil {
			t.Errorf("noise from the image: %v", err)
		}
		if r := e2eRun(t, "", e2eBin, "umount", mnt); r.code != 0 {
			t.Errorf("umount: %s", r)
		}
		e2eWaitNoDaemon(t, mnt)
		e2eNoLoop(t, good)
	})
}

// e2eNoLoop checks that no loop device is bound to img (losetup -j), giving
// the kernel's deferred autoclear a moment.
func e2eNoLoop(t *testing.T, img string) {
	t.Helper()
	var out []byte
	for i := 0; i < 40; i++ {
		var err error
		out, err = exec.Command("losetup", "-j", img).CombinedOutput()
		if err != nil {
			t.Fatalf("losetup -j %s: %v\n%s", img, err, out)
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("a loop device still reads %s: %s", img, out)
}
