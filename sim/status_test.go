package sim

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/method"
)

func TestStatusAndInspect(t *testing.T) {
	d, _ := newTestDrive(t, Config{Ranges: 2})
	st := d.Status()
	if st.Owned || st.LockingActive || len(st.Ranges) != 3 || st.Ranges[0].Length != d.Config().Blocks || st.MBR.Shown() {
		t.Fatalf("fresh drive Status = %+v", st)
	}
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	s.mustSet(method.LockingRange(1), named(3, u(64)), named(4, u(128)), named(5, b(true)), named(6, b(true)), named(7, b(true)), named(8, b(false)))
	s.mustSet(method.MBRControl, named(1, b(true)))
	s.end()

	for name, get := range map[string]func() (Status, error){
		"Status":  func() (Status, error) { return d.Status(), nil },
		"Inspect": func() (Status, error) { return Inspect(d.Dir()) },
	} {
		st, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := st.Ranges[1]
		if !st.Owned || !st.LockingActive || r.Start != 64 || r.Length != 128 || !r.ReadLockedNow() || r.WriteLockedNow() || !st.MBR.Shown() {
			t.Errorf("%s after ownership and range 1 setup = %+v", name, st)
		}
		if st.Ranges[0].ReadLockedNow() || st.Ranges[2].ReadLockedNow() {
			t.Errorf("%s: ranges 0 and 2 locked: %+v", name, st.Ranges)
		}
	}

	// A damaged state file is ErrCorrupt, a missing one fs.ErrNotExist.
	dir := t.TempDir()
	if _, err := Inspect(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Inspect of an empty directory = %v; want ErrNotExist", err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateName), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(dir); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Inspect of a foreign state file = %v; want ErrCorrupt", err)
	}
}

func TestSync(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	if err := d.Write(0, make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	d.Close()
	if err := d.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close = %v; want ErrClosed", err)
	}
}
