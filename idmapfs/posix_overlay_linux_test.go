package idmapfs_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/testutil"
)

// posixOverlayOwner is the disk id of the test process (host root) under
// the map of TestPosixOverlay: lower directories owned by it are the test's
// own.
const posixOverlayOwner = 100000

// posixLayout is one arrangement of layers that TestPosixOverlay runs every
// case in.
type posixLayout struct {
	name string
	// lowers builds the lower layers in base for the cases names and
	// returns them, the top one first.
	lowers func(t *testing.T, base string, names []string) []string
	// before runs on the mount once, before any case.
	before func(t *testing.T, mnt string)
	// prepare returns the directory a case runs in.
	prepare func(t *testing.T, mnt, name string) string
	// whiteouts are the paths that must be whiteouts in the upper once
	// the cases ran have run.
	whiteouts func(ran []string) []string
}

// posixLayouts are the layouts of TestPosixOverlay:
//   - upper: an empty lower; each case makes its directory through the
//     mount, so everything it touches lives in the upper;
//   - lower: each case's directory is in the lower, so the case starts in a
//     lower directory and its first change copies that up;
//   - mixed: two lowers with unrelated files in both (one shadowing the
//     other, one removed through the mount before the cases run), each
//     case's directory in the bottom one with a file that is removed
//     through the mount first, so the case runs in a merged directory
//     holding a whiteout.
var posixLayouts = []posixLayout{
	{
		name: "upper",
		lowers: func(t *testing.T, base string, names []string) []string {
			l := filepath.Join(base, "lower")
			buildLower(t, l, nil)
			return []string{l}
		},
		prepare: func(t *testing.T, mnt, name string) string {
			dir := filepath.Join(mnt, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		},
	},
	{
		name: "lower",
		lowers: func(t *testing.T, base string, names []string) []string {
			l := filepath.Join(base, "lower")
			var ents []ovEnt
			for _, n := range names {
				ents = append(ents, ovEnt{name: n, kind: unix.S_IFDIR, mode: 0o755, uid: posixOverlayOwner, gid: posixOverlayOwner})
			}
			buildLower(t, l, ents)
			return []string{l}
		},
		prepare: func(t *testing.T, mnt, name string) string {
			return filepath.Join(mnt, name)
		},
	},
	{
		name: "mixed",
		lowers: func(t *testing.T, base string, names []string) []string {
			top, bottom := filepath.Join(base, "top"), filepath.Join(base, "bottom")
			o := posixOverlayOwner
			buildLower(t, top, []ovEnt{
				{name: "top-only", kind: unix.S_IFREG, mode: 0o644, uid: o, gid: o, data: "top only\n"},
				{name: "shadowed", kind: unix.S_IFREG, mode: 0o644, uid: o, gid: o, data: "shadowed from the top\n"},
				{name: "top-dir", kind: unix.S_IFDIR, mode: 0o755, uid: o, gid: o},
				{name: "top-dir/x", kind: unix.S_IFREG, mode: 0o644, uid: o, gid: o, data: "x\n"},
			})
			ents := []ovEnt{
				{name: "bottom-only", kind: unix.S_IFREG, mode: 0o644, uid: o, gid: o, data: "bottom only\n"},
				{name: "shadowed", kind: unix.S_IFREG, mode: 0o600, uid: o, gid: o, data: "shadowed\n"},
				{name: "gone", kind: unix.S_IFREG, mode: 0o644, uid: o, gid: o, data: "removed before the cases\n"},
			}
			for _, n := range names {
				ents = append(ents,
					ovEnt{name: n, kind: unix.S_IFDIR, mode: 0o755, uid: o, gid: o},
					ovEnt{name: n + "/victim", kind: unix.S_IFREG, mode: 0o644, uid: o, gid: o, data: "removed before the case\n"})
			}
			buildLower(t, bottom, ents)
			return []string{top, bottom}
		},
		before: func(t *testing.T, mnt string) {
			if err := os.Remove(filepath.Join(mnt, "gone")); err != nil {
				t.Fatal(err)
			}
		},
		prepare: func(t *testing.T, mnt, name string) string {
			dir := filepath.Join(mnt, name)
			if err := os.Remove(filepath.Join(dir, "victim")); err != nil {
				t.Fatal(err)
			}
			if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
				t.Fatalf("ReadDir(%s) after removing its only file = %v, %v; want it empty", dir, ents, err)
			}
			return dir
		},
		whiteouts: func(ran []string) []string {
			paths := []string{"gone"}
			for _, n := range ran {
				paths = append(paths, filepath.Join(n, "victim"))
			}
			return paths
		},
	},
}

// TestPosixOverlay runs go-fuse's posixtest suite against idmapfs in
// overlay mode with a writable upper, in each layout of posixLayouts, and
// then checks that no lower changed and that the whiteouts of the mixed
// layout are in the upper. The map is TestPosix's: disk 100000 is host root, the test
// process.
//
// The posixSkips apply as they are, and no case has a skip of its own in
// overlay mode: the kernel's overlayfs (mount -t overlay, same layouts, as
// root) passes every other case in all three layouts, so a case that fails
// here is an idmapfs bug.
func TestPosixOverlay(t *testing.T) {
	testutil.RequireFUSE(t)
	names := slices.Sorted(maps.Keys(posixtest.All))
	shared := sharedDir(t)
	for _, layout := range posixLayouts {
		t.Run(layout.name, func(t *testing.T) {
			base := filepath.Join(shared, layout.name)
			upper, work, mnt := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "mnt")
			lowers := layout.lowers(t, base, names)
			mkdirs(t, upper, work, mnt)
			before := map[string]map[string]string{}
			for _, l := range lowers {
				before[l] = lowerState(t, l)
			}
			opts := defaultOptions(t)
			opts.IDs = parseIDMap(t, "0:100000:65536,100000:0:1")
			opts.Lowers, opts.Upper, opts.Work = lowers, upper, work
			mountIdmapfs(t, "", mnt, opts)
			if layout.before != nil {
				layout.before(t, mnt)
			}
			var ran []string // the cases that were not skipped
			for _, name := range names {
				var sub *testing.T
				t.Run(name, func(t *testing.T) {
					sub = t
					if why, ok := posixSkips[name]; ok {
						t.Skip(why)
					}
					posixtest.All[name](t, layout.prepare(t, mnt, name))
				})
				if sub != nil && !sub.Skipped() { // nil: left out by -run
					ran = append(ran, name)
				}
			}
			if layout.whiteouts != nil {
				for _, p := range layout.whiteouts(ran) {
					var st unix.Stat_t
					if err := unix.Lstat(filepath.Join(upper, p), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
						t.Errorf("%s in the upper: mode %o rdev %d, %v; want a whiteout (char 0/0)", p, st.Mode, st.Rdev, err)
					}
				}
			}
			for _, l := range lowers {
				if diff := diffStates(before[l], lowerState(t, l)); len(diff) > 0 {
					t.Errorf("lower %s changed:\n%s", l, strings.Join(diff, "\n"))
				}
			}
		})
	}
}
