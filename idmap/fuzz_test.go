package idmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fuzzMaps are the maps the xattr fuzz targets try every input with.
var fuzzMaps = []IDMap{
	Identity(),
	{UID: mustMap(Range{0, 100000, 65536}), GID: mustMap(Range{0, 200000, 65536})},
	{UID: mustMap(Range{0, 1000, 1}, Range{1, 100001, 65535}), GID: mustMap(Range{0, 100000, 65536})},
	{UID: mustMap(Range{1, 100001, 65535}), GID: Map{}},
	{UID: mustMap(manyRanges(340)...), GID: mustMap(Range{MaxID, 0, 1}, Range{0, MaxID, 1})},
	{},
}

// checkMap checks what any parsed map must satisfy: its text forms parse back
// to the same map, and both ends of every range round-trip.
func checkMap(t *testing.T, m Map) {
	t.Helper()
	if !m.Empty() {
		back, err := ParseMap(m.String())
		if err != nil || !slices.Equal(back.Ranges(), m.Ranges()) {
			t.Fatalf("ParseMap(%q) = %v, %v; want %v", m.String(), back, err, m)
		}
		back, err = ParseProcMap([]byte(m.ProcFormat()))
		if err != nil || !slices.Equal(back.Ranges(), m.Ranges()) {
			t.Fatalf("ParseProcMap(%q) = %v, %v; want %v", m.ProcFormat(), back, err, m)
		}
	}
	for _, r := range m.Ranges() {
		for _, x := range []uint32{r.Disk, r.Disk + r.Count - 1} {
			h, ok := m.ToHost(x)
			if !ok || h == InvalidID {
				t.Fatalf("%v: ToHost(%d) = %d, %v; want mapped", m, x, h, ok)
			}
			if d, ok := m.ToDisk(h); !ok || d != x {
				t.Fatalf("%v: ToDisk(%d) = %d, %v; want %d, true", m, h, d, ok, x)
			}
		}
	}
	if _, ok := m.ToHost(InvalidID); ok {
		t.Fatalf("%v: ToHost(InvalidID) mapped", m)
	}
	if _, ok := m.ToDisk(InvalidID); ok {
		t.Fatalf("%v: ToDisk(InvalidID) mapped", m)
	}
}

func FuzzParseMap(f *testing.F) {
	for _, s := range []string{
		"0:100000:65536", "0:1000:1,1:100001:65535", " 0:1000:1 , 1:100001:65535 ",
		"0:0:4294967295", "4294967294:4294967294:1", "0:100000:0", "4294967295:0:1",
		"0:0:10,5:100:1", "0:0:10,100:5:1", "+0:1:1", "0:-1:1", "0:0x10:1", "", ",",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMap(s)
		if err != nil {
			if !m.Empty() {
				t.Fatalf("ParseMap(%q) = %v, %v; want empty map with the error", s, m, err)
			}
			return
		}
		checkMap(t, m)
	})
}

func FuzzParseProcMap(f *testing.F) {
	for _, name := range []string{"proc_init.txt", "proc_container.txt", "proc_two_ranges.txt"} {
		f.Add(readProcGolden(f, name))
	}
	for _, s := range []string{"", "\n", "0 100000 0\n", "0 0 1\n\n1 1 1\n", "0\t1\t2", "0 1 2 3\n", "4294967295 0 1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseProcMap(b)
		if err != nil {
			return
		}
		checkMap(t, m)
		if m.Empty() {
			t.Fatalf("ParseProcMap(%q) = empty map, nil; want an error", b)
		}
	})
}

// addXattrSeeds seeds f with the inputs of the golden files matching glob.
func addXattrSeeds(f *testing.F, glob string) {
	for _, c := range loadXattrCases(f, glob) {
		f.Add(c.in)
		if c.want != nil {
			f.Add(c.want)
		}
	}
}

func FuzzACL(f *testing.F) {
	addXattrSeeds(f, "acl_*.txt")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range fuzzMaps {
			h, errH := ACLToHost(b, m)
			d, errD := ACLToDisk(b, m)
			if errors.Is(errH, ErrBadXattr) != errors.Is(errD, ErrBadXattr) {
				t.Fatalf("ACLToHost(%x) = %v but ACLToDisk = %v; want the same format check", b, errH, errD)
			}
			if errH != nil && !errors.Is(errH, ErrBadXattr) {
				t.Fatalf("ACLToHost(%x) = %v; want only ErrBadXattr errors", b, errH)
			}
			if errD != nil && !errors.Is(errD, ErrBadXattr) && !errors.Is(errD, ErrUnmapped) {
				t.Fatalf("ACLToDisk(%x) = %v; want ErrBadXattr or ErrUnmapped", b, errD)
			}
			if errH == nil && len(h) != len(b) {
				t.Fatalf("ACLToHost(%x) = %x; want the same length", b, h)
			}
			if errD == nil {
				back, err := ACLToHost(d, m)
				if err != nil || !bytes.Equal(back, b) {
					t.Fatalf("ACLToHost(ACLToDisk(%x) = %x) = %x, %v; want the input", b, d, back, err)
				}
			}
			if errH == nil {
				// Back to disk works exactly when every id had a host id.
				if back, err := ACLToDisk(h, m); err == nil && !bytes.Equal(back, b) {
					t.Fatalf("ACLToDisk(ACLToHost(%x) = %x) = %x; want the input", b, h, back)
				}
			}
		}
	})
}

// canonicalCap returns a valid security.capability value as revision 3 with
// its rootid (0 for revisions 1 and 2) replaced by rootid.
func canonicalCap(b []byte, rootid uint32) []byte {
	out := make([]byte, capSize3)
	binary.LittleEndian.PutUint32(out, capRevision3|binary.LittleEndian.Uint32(b)&^capRevisionMask)
	copy(out[4:capSize2], b[4:min(len(b), capSize2)])
	binary.LittleEndian.PutUint32(out[capSize2:], rootid)
	return out
}

func capRootID(b []byte) uint32 {
	if len(b) == capSize3 {
		return binary.LittleEndian.Uint32(b[capSize2:])
	}
	return 0
}

func FuzzCap(f *testing.F) {
	addXattrSeeds(f, "cap_*.txt")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range fuzzMaps {
			h, errH := CapToHost(b, m)
			d, errD := CapToDisk(b, m)
			if errors.Is(errH, ErrBadXattr) != errors.Is(errD, ErrBadXattr) {
				t.Fatalf("CapToHost(%x) = %v but CapToDisk = %v; want the same format check", b, errH, errD)
			}
			for _, err := range []error{errH, errD} {
				if err != nil && !errors.Is(err, ErrBadXattr) && !errors.Is(err, ErrUnmapped) {
					t.Fatalf("(%x) = %v; want ErrBadXattr or ErrUnmapped", b, err)
				}
			}
			if errD == nil {
				// Stored v2 exactly when the disk rootid is 0.
				if rev := binary.LittleEndian.Uint32(d) & capRevisionMask; (rev == capRevision2) != (len(d) == capSize2) || (len(d) != capSize2 && capRootID(d) == 0) {
					t.Fatalf("CapToDisk(%x) = %x; want v2 for rootid 0, else v3", b, d)
				}
				back, err := CapToHost(d, m)
				if want := canonicalCap(b, capRootID(b)); err != nil || !bytes.Equal(back, want) {
					t.Fatalf("CapToHost(CapToDisk(%x) = %x) = %x, %v; want %x", b, d, back, err, want)
				}
			}
			if errH == nil {
				if len(h) != capSize3 {
					t.Fatalf("CapToHost(%x) = %x; want a v3 value", b, h)
				}
				back, err := CapToDisk(h, m)
				if err != nil {
					t.Fatalf("CapToDisk(CapToHost(%x) = %x) = %v; want no error", b, h, err)
				}
				if want := canonicalCap(b, capRootID(b)); !bytes.Equal(canonicalCap(back, capRootID(back)), want) {
					t.Fatalf("CapToDisk(CapToHost(%x) = %x) = %x; want %x as stored", b, h, back, want)
				}
			}
		}
	})
}

// TestFuzzCorpusFiles checks the seed files under testdata/fuzz are ones the
// fuzz targets know (a renamed target would silently drop them).
func TestFuzzCorpusFiles(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*"))
	known := []string{"FuzzParseMap", "FuzzParseProcMap", "FuzzACL", "FuzzCap"}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && !slices.Contains(known, filepath.Base(d)) {
			t.Errorf("%s: no fuzz target %s (known: %s)", d, filepath.Base(d), strings.Join(known, ", "))
		}
	}
}
