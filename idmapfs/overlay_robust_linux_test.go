package idmapfs_test

// Overlay mode under concurrency: two mounts of the same lowers with
// different maps and uppers, written at once; and a storm of renames
// racing lookups, listings and reads on one mount.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
	"github.com/shiftlock/shiftlock/idmapfs"
	"github.com/shiftlock/shiftlock/internal/image"
)

// mountOverlay mounts an overlay on mnt and returns a function that
// unmounts it; the test's end unmounts it if that was not called.
func mountOverlay(t *testing.T, mnt string, opts idmapfs.Options) func() {
	t.Helper()
	server, f, err := idmapfs.Mount("", mnt, opts)
	if err != nil {
		t.Fatalf("Mount(--lower %q --upper %s, %s): %v", opts.Lowers, opts.Upper, mnt, err)
	}
	var once sync.Once
	unmount := func() {
		once.Do(func() {
			if err := server.Unmount(); err != nil {
				t.Logf("unmount %s: %v; detaching", mnt, err)
				if err := idmapfs.Unmount(mnt, true); err != nil {
					t.Errorf("lazy unmount %s: %v", mnt, err)
				}
			}
			server.Wait()
			f.Close()
		})
	}
	t.Cleanup(unmount)
	return unmount
}

// twoMapsLower is the directory lower of TestOverlayTwoMaps; twoMapsImage
// goes into the squashfs lower under it.
var (
	twoMapsLower = []ovEnt{
		{name: "a", kind: unix.S_IFREG, mode: 0o644, data: "a lower\n"},
		{name: "gone", kind: unix.S_IFREG, mode: 0o644, data: "gone\n"},
		{name: "m", kind: unix.S_IFDIR, mode: 0o755},
		{name: "m/x", kind: unix.S_IFREG, mode: 0o644, data: "x lower\n"},
		{name: "pub", kind: unix.S_IFDIR, mode: 0o777},
		{name: "pub/p", kind: unix.S_IFREG, mode: 0o666, data: "p lower\n"},
		{name: "owned", kind: unix.S_IFREG, mode: 0o644, uid: 1000, gid: 1000, data: "owned by 1000\n"},
	}
	twoMapsImage = []ovEnt{
		{name: "i", kind: unix.S_IFREG, mode: 0o644, data: "i image\n"},
		{name: "m", kind: unix.S_IFDIR, mode: 0o755},
		{name: "m/y", kind: unix.S_IFREG, mode: 0o644, data: "y image\n"},
		{name: "sub", kind: unix.S_IFDIR, mode: 0o755},
		{name: "sub/z", kind: unix.S_IFREG, mode: 0o644, data: "z image\n"},
	}
)

// twoMapsRoot is what container root does on each mount, TAG naming the
// mount; twoMapsUser what container uid 1000 does at the same time.
const (
	twoMapsRoot = `set -e
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	echo "TAG $i" >> a
	echo "TAG $i" >> i
	echo "TAG $i" > m/new$i
	mv m/new$i m/moved$i
	mkdir d$i
	echo "TAG $i" > d$i/f
	echo "TAG $i" >> sub/z
	cat m/y m/x > /dev/null
	ls -l . m sub pub > /dev/null
done
chmod 600 m/x
rm gone
echo TAG > m/y
`
	twoMapsUser = `set -e
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	echo "TAG $i" > pub/u$i
	echo "TAG $i" >> pub/p
	cat a owned > /dev/null
done
`
)

// TestOverlayTwoMaps mounts the same lowers, a directory and a squashfs
// image, twice at once with different maps and uppers, and has container
// root and a container user of each mount change it in parallel. Each
// mount sees only its own changes (checked against the kernel's overlayfs
// of its own upper), the lowers do not change, and the two uppers hold the
// same disk ids. Upper A mounted again under map B then shows map B's ids.
func TestOverlayTwoMaps(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("needs mksquashfs (apt-get install squashfs-tools)")
	}
	base := sharedDir(t)
	dl, il := filepath.Join(base, "lower"), filepath.Join(base, "imgsrc")
	buildLower(t, dl, twoMapsLower)
	buildLower(t, il, twoMapsImage)
	img := filepath.Join(base, "lower.sqfs")
	if out, err := exec.Command("mksquashfs", il, img, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	imgState := func() string {
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(img, &st); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("sha256=%x atime=%v mtime=%v ctime=%v", sha256.Sum256(b), st.Atim, st.Mtim, st.Ctim)
	}
	lowers := []string{dl, img}
	dlBefore, imgBefore := lowerState(t, dl), imgState()

	type side struct {
		tag          string
		ids          idmap.IDMap
		host         uint32 // host id of disk 0
		upper, mnt   string
		unmount      func()
		view, stored map[string]string
	}
	sides := []*side{
		{tag: "A", ids: parseIDMap(t, "0:100000:65536"), host: 100000},
		{tag: "B", ids: parseIDMap(t, "0:200000:65536"), host: 200000},
	}
	for _, s := range sides {
		s.upper, s.mnt = filepath.Join(base, "upper"+s.tag), filepath.Join(base, "mnt"+s.tag)
		mkdirs(t, s.upper, s.mnt)
		opts := defaultOptions(t)
		opts.IDs, opts.Lowers, opts.Upper = s.ids, lowers, s.upper
		s.unmount = mountOverlay(t, s.mnt, opts)
	}

	// Four writers at once: container root and uid 1000 of each mount.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, s := range sides {
		for _, w := range []struct {
			uid    uint32
			script string
		}{{s.host, twoMapsRoot}, {s.host + 1000, twoMapsUser}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := caller{name: fmt.Sprintf("%s-%d", s.tag, w.uid), uid: w.uid, gid: w.uid}
				// cd in the shell, not cmd.Dir: a chdir into the mount
				// between fork and exec blocks the forking thread on
				// this process's own FUSE server, which a stop-the-world
				// then waits for, forever.
				cmd := c.command(s.ids, "/bin/sh", "-c", `cd "$0" && `+strings.ReplaceAll(w.script, "TAG", s.tag), s.mnt)
				runtime.LockOSThread() // Pdeathsig belongs to the forking thread
				out, err := cmd.CombinedOutput()
				runtime.UnlockOSThread()
				if err != nil {
					errs <- fmt.Errorf("writer %s on mount %s: %v\n%s", c.name, s.tag, err, out)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Each mount shows its own changes only, with its own ids.
	var lines, zlines, plines string
	for i := 1; i <= 20; i++ {
		lines += fmt.Sprintf("TAG %d\n", i)
	}
	zlines, plines = "z image\n"+lines, "p lower\n"+lines
	for _, s := range sides {
		want := map[string]string{
			"a":      "a lower\n" + lines,
			"i":      "i image\n" + lines,
			"sub/z":  zlines,
			"pub/p":  plines,
			"m/y":    "TAG\n",
			"m/x":    "x lower\n",
			"owned":  "owned by 1000\n",
			"d7/f":   "TAG 7\n",
			"pub/u3": "TAG 3\n",
		}
		for p, data := range want {
			data = strings.ReplaceAll(data, "TAG", s.tag)
			if b, err := os.ReadFile(filepath.Join(s.mnt, p)); err != nil || string(b) != data {
				t.Errorf("mount %s: %s = %q, %v; want %q", s.tag, p, b, err, data)
			}
		}
		owners := map[string]uint32{"a": 0, "m/moved5": 0, "d5": 0, "pub/u5": 1000, "owned": 1000, "sub/z": 0, "i": 0}
		for p, disk := range owners {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(s.mnt, p), &st); err != nil || st.Uid != s.host+disk || st.Gid != s.host+disk {
				t.Errorf("mount %s: %s: %v, owner %d:%d; want %d", s.tag, p, err, st.Uid, st.Gid, s.host+disk)
			}
		}
		for _, p := range []string{"gone", "m/new1"} {
			if _, err := os.Lstat(filepath.Join(s.mnt, p)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("mount %s: %s: %v; want ENOENT", s.tag, p, err)
			}
		}
		s.view = mergedTree(t, s.mnt, nil, nil)
		for p, v := range s.view {
			other := "A"
			if s.tag == "A" {
				other = "B"
			}
			if strings.Contains(v, fmt.Sprintf(`data="%s`, other)) || strings.Contains(v, fmt.Sprintf(`\n%s `, other)) {
				t.Errorf("mount %s shows mount %s's change: %s: %s", s.tag, other, p, v)
			}
		}
		s.stored = upperState(t, s.upper)
	}

	// The uppers hold disk ids, the same in both; they differ only in
	// the data (the tags).
	strip := regexp.MustCompile(` sha=[0-9a-f]+`)
	for p, a := range sides[0].stored {
		b, ok := sides[1].stored[p]
		if !ok {
			t.Errorf("upper A has %s, upper B not", p)
			continue
		}
		if strip.ReplaceAllString(a, "") != strip.ReplaceAllString(b, "") {
			t.Errorf("%s stored differently: upper A %s, upper B %s", p, a, b)
		}
		if !strings.Contains(a, " uid=0 gid=0 ") && !strings.Contains(a, " uid=1000 gid=1000 ") {
			t.Errorf("upper A: %s: %s; want disk ids 0 or 1000", p, a)
		}
	}
	if len(sides[0].stored) != len(sides[1].stored) {
		t.Errorf("upper A has %d objects, upper B %d", len(sides[0].stored), len(sides[1].stored))
	}
	for p, want := range map[string]string{"pub/u1": " uid=1000 gid=1000 ", "pub/p": " uid=0 gid=0 ", "m/moved1": " uid=0 gid=0 "} {
		if s := sides[0].stored[p]; !strings.Contains(s, want) {
			t.Errorf("upper A: %s: %s; want disk ids%s", p, s, want)
		}
	}

	// The lowers: unchanged to the atime (before the kernel's overlayfs
	// reads them, which moves atimes).
	if diff := diffStates(dlBefore, lowerState(t, dl)); len(diff) > 0 {
		t.Errorf("directory lower changed (idmapfs{} is before, kernel{} after):\n%s", strings.Join(diff, "\n"))
	}
	if s := imgState(); s != imgBefore {
		t.Errorf("image lower changed: %s; was %s", s, imgBefore)
	}

	// Upper A again, under map B.
	sides[0].unmount()
	a2 := filepath.Join(base, "mntA2")
	mkdirs(t, a2)
	opts := defaultOptions(t)
	opts.IDs, opts.Lowers, opts.Upper = sides[1].ids, lowers, sides[0].upper
	mountOverlay(t, a2, opts)
	for p, disk := range map[string]uint32{"a": 0, "m/moved5": 0, "pub/u5": 1000, "owned": 1000} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(a2, p), &st); err != nil || st.Uid != 200000+disk || st.Gid != 200000+disk {
			t.Errorf("upper A under map B: %s: %v, owner %d:%d; want %d", p, err, st.Uid, st.Gid, 200000+disk)
		}
	}
	if b, err := os.ReadFile(filepath.Join(a2, "pub/u5")); err != nil || string(b) != "A 5\n" {
		t.Errorf("upper A under map B: pub/u5 = %q, %v; want A's data", b, err)
	}
	viewA2 := mergedTree(t, a2, nil, nil)

	// The oracle: the kernel's overlayfs of each upper over the same
	// lowers, ids mapped as each mount must show them.
	im, err := image.Attach(context.Background(), img, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	for _, c := range []struct {
		name  string
		upper string
		ids   idmap.IDMap
		view  map[string]string
	}{
		{"A", sides[0].upper, sides[0].ids, sides[0].view},
		{"B", sides[1].upper, sides[1].ids, sides[1].view},
		{"A under map B", sides[0].upper, sides[1].ids, viewA2},
	} {
		kmnt := filepath.Join(base, "kernel"+strings.ReplaceAll(c.name, " ", ""))
		mkdirs(t, kmnt)
		kernelOverlay(t, kmnt, c.upper, dl, im.Path())
		if diff := diffStates(noDirSizes(c.view), noDirSizes(mergedTree(t, kmnt, &c.ids, nil))); len(diff) > 0 {
			t.Errorf("mount %s and the kernel's overlayfs of its upper differ (idmapfs, kernel):\n%s", c.name, strings.Join(diff, "\n"))
		}
	}
}

// noDirSizes drops the sizes of directories from a mergedTree state: a
// copy-up into a directory changes its size behind the kernel's attribute
// cache (reported; not what these tests are about).
func noDirSizes(state map[string]string) map[string]string {
	out := make(map[string]string, len(state))
	for k, v := range state {
		if strings.HasPrefix(v, "mode=004") {
			v = dirSize.ReplaceAllString(v, "")
		}
		out[k] = v
	}
	return out
}

var dirSize = regexp.MustCompile(` size=\d+`)

// TestOverlayRenameStorm renames files among directories from several
// goroutines at once (lower files, which copy up on rename, upper-only
// files, and files inside upper-only directories that move too) while
// others stat, list and read the same directories. Rename may say ENOENT
// (another racer moved the file first), stat and open too; nothing else.
// No read sees data of a file other than one of the originals, and no file
// is lost or duplicated. The upper then shows the same tree under the
// kernel's overlayfs.
func TestOverlayRenameStorm(t *testing.T) {
	base := sharedDir(t)
	lower, upper, mnt := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "mnt")
	const nDirs, perDir = 4, 8
	var ents []ovEnt
	var dirs []string
	contents := map[string]int{} // every file's data; each is unique
	for d := 0; d < nDirs; d++ {
		dir := fmt.Sprintf("d%d", d)
		dirs = append(dirs, dir)
		ents = append(ents, ovEnt{name: dir, kind: unix.S_IFDIR, mode: 0o755})
		for k := 0; k < perDir; k++ {
			data := fmt.Sprintf("lower %s/%d\n", dir, k)
			ents = append(ents, ovEnt{name: fmt.Sprintf("%s/l%d", dir, k), kind: unix.S_IFREG, mode: 0o644, data: data})
			contents[data]++
		}
	}
	buildLower(t, lower, ents)
	mkdirs(t, upper, mnt)
	ids := parseIDMap(t, "0:0:65536") // host root acts as disk root
	opts := defaultOptions(t)
	opts.IDs, opts.Lowers, opts.Upper = ids, []string{lower}, upper
	unmount := mountOverlay(t, mnt, opts)

	// Upper-only files, and two upper-only directories with files.
	for d, dir := range dirs {
		for k := 0; k < perDir/2; k++ {
			data := fmt.Sprintf("upper %s/%d\n", dir, k)
			if err := os.WriteFile(filepath.Join(mnt, dir, fmt.Sprintf("u%d", k)), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			contents[data]++
		}
		if d < 2 {
			ud := filepath.Join(mnt, dir, fmt.Sprintf("ud%d", d))
			if err := os.Mkdir(ud, 0o755); err != nil {
				t.Fatal(err)
			}
			for k := 0; k < perDir/2; k++ {
				data := fmt.Sprintf("in ud%d/%d\n", d, k)
				if err := os.WriteFile(filepath.Join(ud, fmt.Sprintf("f%d", k)), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
				contents[data]++
			}
		}
	}

	var (
		mu       sync.Mutex
		bad      []string
		renames  atomic.Int64
		enoents  atomic.Int64
		observed atomic.Int64
	)
	report := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(bad) < 40 {
			bad = append(bad, fmt.Sprintf(format, a...))
		}
	}
	// okErr accepts nil and ENOENT: a racer moved the name first.
	okErr := func(op, p string, err error) bool {
		if err == nil {
			return true
		}
		if errors.Is(err, unix.ENOENT) {
			enoents.Add(1)
			return false
		}
		report("%s %s: %v", op, p, err)
		return false
	}
	// pick returns a random entry of the directory dir (relative to mnt)
	// and whether it is a directory.
	pick := func(r *rand.Rand, dir string) (string, bool, bool) {
		es, err := os.ReadDir(filepath.Join(mnt, dir))
		if !okErr("readdir", dir, err) || len(es) == 0 {
			return "", false, false
		}
		e := es[r.IntN(len(es))]
		return filepath.Join(dir, e.Name()), e.IsDir(), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const racers, perRacer = 4, 150
	var wg, obs sync.WaitGroup
	for g := 0; g < racers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; i < perRacer && ctx.Err() == nil; i++ {
				// The source: a file of a top directory or of an
				// upper-only directory found in one.
				src, isDir, ok := pick(r, dirs[r.IntN(nDirs)])
				if ok && isDir {
					src, isDir, ok = pick(r, src)
				}
				if !ok || isDir {
					continue
				}
				dst := dirs[r.IntN(nDirs)]
				if p, isDir, ok := pick(r, dst); ok && isDir && r.IntN(2) == 0 {
					dst = p
				}
				to := filepath.Join(dst, fmt.Sprintf("r%d-%d", g, i))
				if okErr("rename", src+" -> "+to, os.Rename(filepath.Join(mnt, src), filepath.Join(mnt, to))) {
					renames.Add(1)
				}
			}
		}()
	}
	// The upper-only directories move among the top directories too.
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(99, 7))
		where := []string{"d0", "d1"}
		for i := 0; i < 60 && ctx.Err() == nil; i++ {
			k := r.IntN(2)
			to := dirs[r.IntN(nDirs)]
			from, dst := filepath.Join(mnt, where[k], fmt.Sprintf("ud%d", k)), filepath.Join(mnt, to, fmt.Sprintf("ud%d", k))
			if from == dst {
				continue
			}
			if err := os.Rename(from, dst); err != nil {
				report("rename directory %s -> %s: %v", from, dst, err)
				continue
			}
			where[k] = to
			renames.Add(1)
		}
	}()
	// Observers: stat, list and read whatever they find, until the racers
	// are done.
	done := make(chan struct{})
	for g := 0; g < 2; g++ {
		obs.Add(1)
		go func() {
			defer obs.Done()
			r := rand.New(rand.NewPCG(uint64(100+g), 7))
			for {
				select {
				case <-done:
					return
				default:
				}
				dir := dirs[r.IntN(nDirs)]
				es, err := os.ReadDir(filepath.Join(mnt, dir))
				if err != nil {
					report("readdir %s: %v", dir, err)
					continue
				}
				for _, e := range es {
					p := filepath.Join(mnt, dir, e.Name())
					var st unix.Stat_t
					if !okErr("stat", p, unix.Lstat(p, &st)) {
						continue
					}
					if st.Mode&unix.S_IFMT == unix.S_IFDIR {
						_, err := os.ReadDir(p)
						okErr("readdir", p, err)
						continue
					}
					b, err := os.ReadFile(p)
					if !okErr("read", p, err) {
						continue
					}
					observed.Add(1)
					mu.Lock()
					_, known := contents[string(b)]
					mu.Unlock()
					if !known {
						report("read %s: %q, which no file held", p, b)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	obs.Wait()
	if ctx.Err() != nil {
		t.Errorf("the storm did not finish within 60s")
	}
	for _, b := range bad {
		t.Error(b)
	}
	t.Logf("%d renames, %d ENOENTs, %d reads while renaming", renames.Load(), enoents.Load(), observed.Load())
	if renames.Load() < racers*perRacer/4 {
		t.Errorf("only %d renames succeeded: the storm did not storm", renames.Load())
	}

	// Every file is there once.
	view := mergedTree(t, mnt, nil, nil)
	got := map[string]int{}
	for p := range view {
		st, err := os.Lstat(filepath.Join(mnt, p))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().IsRegular() {
			b, err := os.ReadFile(filepath.Join(mnt, p))
			if err != nil {
				t.Fatal(err)
			}
			got[string(b)]++
		}
	}
	for data, n := range contents {
		if got[data] != n {
			t.Errorf("%q: %d files hold it after the storm; want %d", data, got[data], n)
		}
	}
	for data, n := range got {
		if _, ok := contents[data]; !ok {
			t.Errorf("%q: %d files hold it after the storm; no file did before", data, n)
		}
	}

	// The kernel's overlayfs shows the same tree from the upper, with
	// this mount still up and after it is gone.
	kmnt := filepath.Join(base, "kernel")
	mkdirs(t, kmnt)
	kernelOverlay(t, kmnt, upper, lower)
	if diff := diffStates(noDirSizes(view), noDirSizes(mergedTree(t, kmnt, &ids, nil))); len(diff) > 0 {
		t.Errorf("after the storm, idmapfs and the kernel's overlayfs of its upper differ (idmapfs, kernel):\n%s", strings.Join(diff, "\n"))
	}
	unmount()
	if diff := diffStates(noDirSizes(view), noDirSizes(mergedTree(t, kmnt, &ids, nil))); len(diff) > 0 {
		t.Errorf("after the unmount, the kernel's overlayfs of the upper shows another tree (idmapfs, kernel):\n%s", strings.Join(diff, "\n"))
	}
}
