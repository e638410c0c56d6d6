package resume

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/internal/resume/kernel"
	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
)

// kernelFor gives Enable the kernel model of td's drive.
func kernelFor(td *testDrive, m *kernel.Model) KernelOpener {
	return func(ctx context.Context, device string) (KernelOpal, error) {
		if device != td.spec {
			return nil, kernel.ErrUnsupported
		}
		return m, nil
	}
}

// Arming through the kernel path, a power cycle and the kernel's replay
// unlock the ranges; disable overwrites the entries so the next replay
// leaves them locked.
func TestKernelPathArmPowerCycleReplay(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{TryLimit: 5}, hash.Default(), 2)
	td.enableShadowMBR()
	m := kernel.NewModel(td.d.Transport())
	out := enable(t, td, dir, nil, EnableOptions{All: true, Kernel: kernelFor(td, m), KernelRelease: "6.8.0"})
	if !strings.Contains(out, "kernel path armed") || !strings.Contains(out, "OPAL_SAVE_FOR_LOCK") {
		t.Fatalf("Enable output:\n%s", out)
	}
	saved := m.Saved()
	if len(saved) != 2 {
		t.Fatalf("saved = %d entries; want 2", len(saved))
	}
	pin := td.pinFor(adminPassword)
	for i, lu := range saved {
		if lu.LR != uint8(i+1) || lu.Who != 0 || lu.State != kernel.RW || lu.Flags != kernel.SaveForLock || !lu.Key.Equal(pin) {
			t.Errorf("entry %d = lr %d who %d %v flags %d", i, lu.LR, lu.Who, lu.State, lu.Flags)
		}
	}

	td.d.PowerCycle()
	td.wantReadable(1, false)
	if td.mbrDone() {
		t.Fatal("MBR Done after power cycle")
	}
	if failed, errs := m.UnlockFromSuspend(td.ctx); failed || len(errs) != 0 {
		t.Fatalf("replay: %v", errs)
	}
	td.wantReadable(1, true)
	td.wantReadable(2, true)
	if !td.mbrDone() {
		t.Error("replay did not set MBR Done")
	}

	// Status shows the kernel entries; disable overwrites them.
	var st bytes.Buffer
	Status(td.ctx, StatusOptions{Socket: filepath.Join(dir, "none.sock"), Config: filepath.Join(dir, "resume.conf"), RunDir: filepath.Join(dir, "run")}, &st)
	if !strings.Contains(st.String(), td.spec+" as Admin1, ranges 1,2") {
		t.Errorf("status:\n%s", st.String())
	}
	var out2 bytes.Buffer
	if err := Disable(td.ctx, DisableOptions{Device: td.spec, Kernel: kernelFor(td, m), Socket: filepath.Join(dir, "none.sock"),
		Config: filepath.Join(dir, "resume.conf"), RunDir: filepath.Join(dir, "run")}, &out2); err != nil {
		t.Fatalf("Disable: %v\n%s", err, out2.String())
	}
	for _, lu := range m.Saved() {
		if lu.State != kernel.LK || lu.Key.Equal(pin) {
			t.Errorf("after disable: range %d %v, key unchanged %v", lu.LR, lu.State, lu.Key.Equal(pin))
		}
	}
	td.d.PowerCycle()
	failed, _ := m.UnlockFromSuspend(td.ctx)
	if !failed {
		t.Error("replay with forgotten keys succeeded")
	}
	td.wantReadable(1, false)
	if _, tries := td.tries(method.Admin(1)); tries >= 5 {
		t.Errorf("Tries = %d: locked out", tries)
	}
}

// IOC_OPAL_SAVE replaces the entry of the same range (add_suspend_info).
func TestKernelModelReplaceOnSameRange(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 2)
	m := kernel.NewModel(td.d.Transport())
	ctx := td.ctx
	good := td.pinFor(adminPassword)
	for _, lu := range []kernel.LockUnlock{
		{LR: 1, Key: hash.PIN("wrong"), State: kernel.RW},
		{LR: 2, Key: good, State: kernel.RW},
		{LR: 1, Key: good, State: kernel.RW},
	} {
		if err := m.Save(ctx, lu); err != nil {
			t.Fatal(err)
		}
	}
	if s := m.Saved(); len(s) != 2 || s[0].LR != 1 || !s[0].Key.Equal(good) || s[1].LR != 2 {
		t.Fatalf("list = %+v", s)
	}
	for _, bad := range []kernel.LockUnlock{
		{LR: 9, Key: good, State: kernel.RW},
		{LR: 1, Who: 10, Key: good, State: kernel.RW},
		{LR: 1, Key: make(hash.PIN, 257), State: kernel.RW},
		{LR: 1, Key: good, State: 3},
	} {
		if err := m.Save(ctx, bad); err == nil {
			t.Errorf("Save(%+v) accepted", bad)
		}
	}
	td.d.PowerCycle()
	if failed, errs := m.UnlockFromSuspend(ctx); failed {
		t.Fatalf("replay: %v", errs)
	}
	td.wantReadable(1, true)
	td.wantReadable(2, true)
	// OPAL_SAVE_FOR_LOCK: lock without the key.
	if err := m.Save(ctx, kernel.LockUnlock{LR: 2, Key: good, State: kernel.RW, Flags: kernel.SaveForLock}); err != nil {
		t.Fatal(err)
	}
	if err := m.LockUnlock(ctx, kernel.LockUnlock{LR: 2, State: kernel.LK, Flags: kernel.SaveForLock}); err != nil {
		t.Fatalf("lock with the saved key: %v", err)
	}
	td.wantReadable(2, false)
	if err := m.LockUnlock(ctx, kernel.LockUnlock{LR: 1, State: kernel.LK, Flags: kernel.SaveForLock}); err == nil {
		t.Error("lock of range 1 without a SAVE_FOR_LOCK entry accepted")
	}
}

// A User key with the shadow MBR enabled: Enable warns, and the model shows
// why (the kernel's Admin1 MBR Done with the user's key fails).
func TestKernelPathMBRUserWarning(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	a1 := td.admin1()
	c := td.client()
	user := td.pinFor(user1Password)
	td.must("enable User1", opal.EnableUser(td.ctx, c, a1, 1, true))
	td.must("User1 PIN", opal.SetPIN(td.ctx, c, a1, method.User(1), user))
	td.must("User1 range 1", opal.AddUserToRange(td.ctx, c, a1, 1, 1))
	td.enableShadowMBR()
	m := kernel.NewModel(td.d.Transport())
	var out bytes.Buffer
	err := Enable(td.ctx, EnableOptions{Device: td.spec, Open: simOpen, Kernel: kernelFor(td, m), Ranges: []uint32{1},
		Authority: method.User(1), Hash: hash.None, KernelRelease: "6.1.70",
		Password: PasswordSource{Prompt: func() ([]byte, error) { return []byte(user1Password), nil }},
		Config:   filepath.Join(dir, "resume.conf"), RunDir: filepath.Join(dir, "run")}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "warning: the shadow MBR is enabled") {
		t.Errorf("no MBR warning:\n%s", out.String())
	}
	if s := m.Saved(); len(s) != 1 || s[0].Who != 1 || s[0].Flags != 0 {
		t.Fatalf("saved = %+v (6.1 has no SAVE_FOR_LOCK)", s)
	}
	td.d.PowerCycle()
	failed, errs := m.UnlockFromSuspend(td.ctx)
	if failed || len(errs) != 1 || !errors.Is(errs[0], method.StatusNotAuthorized) {
		t.Fatalf("replay: failed %v, %v; want the range unlocked and MBR Done refused", failed, errs)
	}
	td.wantReadable(1, true)
	if td.mbrDone() {
		t.Error("MBR Done set with a user's key")
	}
}

// A device without the kernel facility, or an authority the kernel lacks,
// falls back to the daemon path; --path kernel then refuses.
func TestPathChoice(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	dm := startDaemon(t, dir, DaemonOptions{})
	none := func(ctx context.Context, device string) (KernelOpal, error) {
		return nil, kernel.ErrUnsupported
	}
	out := enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}, Kernel: none})
	if !strings.Contains(out, "using the daemon path") || !strings.Contains(out, "daemon path armed") {
		t.Errorf("output:\n%s", out)
	}
	var b bytes.Buffer
	err := Enable(td.ctx, EnableOptions{Device: td.spec, Open: simOpen, Kernel: none, Ranges: []uint32{1}, Hash: hash.None, Path: PathKernel,
		Password: PasswordSource{Prompt: func() ([]byte, error) { return []byte(adminPassword), nil }},
		Socket:   dm.socket, Config: filepath.Join(dir, "resume.conf")}, &b)
	if err == nil || !strings.Contains(err.Error(), "kernel path is not available") {
		t.Errorf("forced kernel path: %v", err)
	}
}

func TestKernelRelease(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want     kernel.Release
		saveLock bool
		sata     bool
	}{
		{"6.18.44-fc-v1272", rel(6, 18, 44), true, false},
		{"6.1.63", rel(6, 1, 63), false, false},
		{"6.1.64-generic", rel(6, 1, 64), false, true},
		{"6.6", rel(6, 6, 0), true, true},
		{"6.8.12+deb", rel(6, 8, 12), true, true},
		{"6.9.0", rel(6, 9, 0), true, false},
		{"5.15.0-91-generic", rel(5, 15, 0), false, false},
	} {
		r, err := kernel.ParseRelease(tc.in)
		if err != nil || r != tc.want {
			t.Errorf("ParseRelease(%q) = %v, %v; want %v", tc.in, r, err, tc.want)
			continue
		}
		if r.HasSaveForLock() != tc.saveLock || (r.SATAResumeRisk() != "") != tc.sata {
			t.Errorf("%v: save-for-lock %v, SATA risk %q", r, r.HasSaveForLock(), r.SATAResumeRisk())
		}
	}
	for _, bad := range []string{"", "6", "x.y", "6.-1", "6.1.2.3"} {
		if _, err := kernel.ParseRelease(bad); err == nil {
			t.Errorf("ParseRelease(%q) accepted", bad)
		}
	}
	for a, want := range map[method.UID]int{method.Admin(1): 0, method.User(1): 1, method.User(9): 9, method.Admin(2): -1, method.User(10): -1} {
		who, err := kernel.Who(a)
		if (err != nil) != (want < 0) || (want >= 0 && who != uint32(want)) {
			t.Errorf("Who(%v) = %d, %v; want %d", a, who, err, want)
		}
	}
}

func rel(major, minor, patch int) kernel.Release {
	return kernel.Release{Major: major, Minor: minor, Patch: patch}
}
