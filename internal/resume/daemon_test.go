package resume

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Register, power-cycle: locked; notify post: the daemon unlocks every
// range in one session.
func TestNotifyUnlocksAfterPowerCycle(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.Default(), 2)
	dm := startDaemon(t, dir, DaemonOptions{})
	out := enable(t, td, dir, dm, EnableOptions{All: true})
	if !strings.Contains(out, "daemon path armed") {
		t.Fatalf("Enable output:\n%s", out)
	}
	td.wantReadable(1, true)
	td.d.PowerCycle()
	td.wantReadable(1, false)
	td.wantReadable(2, false)

	rep := notify(t, td.ctx, dm.socket)
	if !rep.OK() || len(rep.Drives) != 1 || rep.Coalesced {
		t.Fatalf("run = %+v; want one successful session", rep)
	}
	if got := rep.Drives[0].Ranges; len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("ranges = %v; want [1 2]", got)
	}
	if rep.Drives[0].Exchanges < 3 {
		t.Errorf("exchanges = %d; an unlock takes at least StartSession, Set, EndOfSession", rep.Drives[0].Exchanges)
	}
	td.wantReadable(1, true)
	td.wantReadable(2, true)

	// Again, after another power cycle: the kept handle still works.
	td.d.PowerCycle()
	td.wantReadable(2, false)
	if rep := notify(t, td.ctx, dm.socket); !rep.OK() {
		t.Fatalf("second run = %+v", rep)
	}
	td.wantReadable(2, true)
}

// Two drives, one with the shadow MBR enabled: each gets one session, the
// shadowed one gets MBR Done.
func TestTwoDrivesAndShadowMBR(t *testing.T) {
	dir := shortDir(t)
	a := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	b := newTestDrive(t, dir, "b", sim.Config{}, hash.None, 2)
	b.enableShadowMBR()
	dm := startDaemon(t, dir, DaemonOptions{})
	enable(t, a, dir, dm, EnableOptions{Ranges: []uint32{1}})
	enable(t, b, dir, dm, EnableOptions{Ranges: []uint32{1, 2}})

	a.d.PowerCycle()
	b.d.PowerCycle()
	if b.mbrDone() {
		t.Fatal("MBR Done after a power cycle")
	}
	a.wantReadable(1, false)
	b.wantReadable(2, false)

	rep := notify(t, a.ctx, dm.socket)
	if !rep.OK() || len(rep.Drives) != 2 {
		t.Fatalf("run = %+v; want two sessions", rep)
	}
	for _, d := range rep.Drives {
		if want := d.Device == b.spec; d.MBRDone != want {
			t.Errorf("%s: MBRDone = %v; want %v", d.Device, d.MBRDone, want)
		}
	}
	a.wantReadable(1, true)
	b.wantReadable(1, true)
	b.wantReadable(2, true)
	if !b.mbrDone() {
		t.Error("MBR Done not set")
	}
}

// A wrong stored key is reported once and never retried: Tries stays at 1.
func TestWrongKeyReportedOnceNoLockoutBurn(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{TryLimit: 3}, hash.None, 1)
	dm := startDaemon(t, dir, DaemonOptions{})
	wrong := bytes.Repeat([]byte{0xEE}, 15)
	if err := dm.d.Register(td.ctx, td.spec, method.Admin(1), []uint32{1}, false, wrong, "test", false); err != nil {
		t.Fatal(err)
	}
	td.d.PowerCycle()
	for i := range 4 {
		rep := notify(t, td.ctx, dm.socket)
		if rep.OK() || len(rep.Drives) != 1 {
			t.Fatalf("run %d = %+v; want a failure", i, rep)
		}
		if d := rep.Drives[0]; (i == 0) == d.Skipped || d.Error == "" {
			t.Fatalf("run %d: %+v; want tried once, then skipped", i, d)
		}
	}
	td.wantReadable(1, false)
	if n := strings.Count(dm.log.String(), "RESUME UNLOCK REFUSED"); n != 1 {
		t.Errorf("refusal logged %d times; want once:\n%s", n, dm.log.String())
	}
	if limit, tries := td.tries(method.Admin(1)); limit != 3 || tries != 1 {
		t.Errorf("TryLimit, Tries = %d, %d; want 3, 1", limit, tries)
	}
	st := dm.d.Status()
	if len(st.Entries) != 1 || st.Entries[0].State != StateFailed {
		t.Fatalf("status = %+v", st.Entries)
	}
	// Registering the right key clears the failure.
	if err := dm.d.Register(td.ctx, td.spec, method.Admin(1), []uint32{1}, false, td.pinFor(adminPassword), "test", true); err != nil {
		t.Fatal(err)
	}
	if rep := notify(t, td.ctx, dm.socket); !rep.OK() {
		t.Fatalf("after re-registering: %+v", rep)
	}
	td.wantReadable(1, true)
}

// Self-detection: the suspended time grows, the daemon unlocks without
// being told; the hook's notification then joins that unlock.
func TestSelfDetection(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	clk := &fakeClock{}
	dm := startDaemon(t, dir, DaemonOptions{Clock: clk, DetectInterval: 2 * time.Millisecond, Debounce: time.Hour})
	enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}})

	td.d.PowerCycle()
	td.wantReadable(1, false)
	clk.suspend(500 * time.Millisecond) // under the threshold: nothing
	waitFor(t, func() bool { return false }, 50*time.Millisecond)
	td.wantReadable(1, false)

	clk.suspend(30 * time.Second)
	waitFor(t, func() bool { return dm.d.Status().LastRun != nil }, 30*time.Second)
	td.wantReadable(1, true)
	first := dm.d.Status().LastRun
	if first == nil || first.Trigger != "detect" {
		t.Fatalf("last run = %+v; want one by detect", first)
	}
	rep := notify(t, td.ctx, dm.socket)
	if !rep.Coalesced || !rep.Start.Equal(first.Start) {
		t.Errorf("notify after detect = %+v; want the detected run", rep)
	}

	// A second suspend: the notification and the detector race (either
	// may come first, as on a real machine); there is one unlock.
	td.d.PowerCycle()
	clk.suspend(10 * time.Second)
	rep = notify(t, td.ctx, dm.socket)
	if !rep.OK() {
		t.Fatalf("notify after a new suspend = %+v", rep)
	}
	if rep.Coalesced && rep.Trigger != "notify" {
		t.Errorf("coalesced report names trigger %q", rep.Trigger)
	}
	td.wantReadable(1, true)
	waitFor(t, func() bool { return false }, 50*time.Millisecond) // detector ticks
	if n := strings.Count(dm.log.String(), "resume unlock done"); n != 2 {
		t.Errorf("%d unlocks for 2 suspends:\n%s", n, dm.log.String())
	}
	if last := dm.d.Status().LastRun; last.Coalesced {
		t.Errorf("last run is a coalesced one: %+v", last)
	}
}

// Notify first, detector off: a later detected suspend with the same
// suspended time does not unlock again (the detector's trigger is fed in
// directly, so the order is fixed).
func TestNotifyThenDetectSameSuspend(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	clk := &fakeClock{}
	dm := startDaemon(t, dir, DaemonOptions{Clock: clk, Debounce: time.Hour})
	enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}})
	td.d.PowerCycle()
	clk.suspend(10 * time.Second)
	rep := notify(t, td.ctx, dm.socket)
	if rep.Coalesced || !rep.OK() {
		t.Fatalf("notify = %+v", rep)
	}
	g, _ := clk.Suspended()
	det := dm.d.handleTrigger(td.ctx, &trigger{source: "detect", gap: g, gapOK: true})
	if !det.Coalesced || !det.Start.Equal(rep.Start) {
		t.Errorf("detect after notify = %+v; want the notify's run", det)
	}
	// A notification within the debounce window with no new suspend
	// joins too; one after a new suspend does not.
	if again := notify(t, td.ctx, dm.socket); !again.Coalesced {
		t.Errorf("second notify = %+v; want coalesced", again)
	}
	td.d.PowerCycle()
	clk.suspend(5 * time.Second)
	if next := notify(t, td.ctx, dm.socket); next.Coalesced || !next.OK() {
		t.Errorf("notify after another suspend = %+v; want a fresh unlock", next)
	}
	td.wantReadable(1, true)
}

// waitFor polls cond until it holds or d passes (then fails unless cond is
// the constant false, used to let time pass).
func waitFor(t *testing.T, cond func() bool, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			if cond() {
				return
			}
			if d >= time.Second {
				t.Fatalf("condition not met in %v", d)
			}
			return
		case <-tick.C:
		}
	}
}

// A restarted daemon re-arms from the key file; a prompt-mode entry is
// reported as not armed.
func TestDaemonRestartRearmsFromKeyFile(t *testing.T) {
	dir := shortDir(t)
	a := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	b := newTestDrive(t, dir, "b", sim.Config{}, hash.None, 1)
	conf := filepath.Join(dir, "resume.conf")
	dm := startDaemon(t, dir, DaemonOptions{})
	keyFile := filepath.Join(dir, "keys", "a.key")
	enable(t, a, dir, dm, EnableOptions{Ranges: []uint32{1}, Storage: StorageFile, KeyFile: keyFile})
	enable(t, b, dir, dm, EnableOptions{Ranges: []uint32{1}})
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	dm.stop()

	dm2 := startDaemon(t, dir, DaemonOptions{Config: conf, KeyFileOwner: uint32(os.Getuid())})
	st := dm2.d.Status()
	if len(st.Entries) != 1 || st.Entries[0].Device != a.spec || st.Entries[0].State != StateArmed {
		t.Fatalf("entries after restart = %+v", st.Entries)
	}
	if len(st.Unarmed) != 1 || st.Unarmed[0].Device != b.spec || !strings.Contains(st.Unarmed[0].Reason, "prompt") {
		t.Fatalf("unarmed after restart = %+v", st.Unarmed)
	}
	a.d.PowerCycle()
	a.wantReadable(1, false)
	if rep := notify(t, a.ctx, dm2.socket); !rep.OK() {
		t.Fatalf("run = %+v", rep)
	}
	a.wantReadable(1, true)

	// A key file open to others is refused, with a message saying so.
	dm2.stop()
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	dm3 := startDaemon(t, dir, DaemonOptions{Config: conf, KeyFileOwner: uint32(os.Getuid())})
	st = dm3.d.Status()
	if len(st.Entries) != 0 || len(st.Unarmed) != 2 || !strings.Contains(dm3.log.String(), "chmod 0400") {
		t.Fatalf("status = %+v\nlog:\n%s", st, dm3.log.String())
	}
}

// The socket admits only the configured uid (root in production).
func TestPeerCredentials(t *testing.T) {
	if err := checkPeer(Peer{PID: 1, UID: 0}, 0); err != nil {
		t.Errorf("root refused: %v", err)
	}
	if err := checkPeer(Peer{PID: 2, UID: 1000}, 0); err == nil {
		t.Error("uid 1000 admitted")
	}
	dir := shortDir(t)
	dm := startDaemon(t, dir, DaemonOptions{AllowUID: uint32(os.Getuid()) + 4242})
	_, err := call(testCtx(t), dm.socket, Request{Op: OpPing})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("ping from another uid: %v; want refused", err)
	}
	if fi, err := os.Stat(dm.socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", fi, err)
	}
}

// Nothing the daemon or status says contains the key.
func TestStatusNeverShowsKeys(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.Default(), 1)
	dm := startDaemon(t, dir, DaemonOptions{})
	enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}})
	td.d.PowerCycle()
	notify(t, td.ctx, dm.socket)

	pin := td.pinFor(adminPassword)
	var outs []string
	for _, js := range []bool{false, true} {
		var b bytes.Buffer
		if err := Status(td.ctx, StatusOptions{Socket: dm.socket, Config: filepath.Join(dir, "resume.conf"), RunDir: filepath.Join(dir, "run"), JSON: js}, &b); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b.String())
	}
	raw, err := call(td.ctx, dm.socket, Request{Op: OpStatus})
	if err != nil {
		t.Fatal(err)
	}
	rj, _ := json.Marshal(raw)
	outs = append(outs, string(rj), dm.log.String())
	conf, _ := os.ReadFile(filepath.Join(dir, "resume.conf"))
	outs = append(outs, string(conf))
	for i, o := range outs {
		for _, enc := range []string{string(pin), hex.EncodeToString(pin), strings.ToUpper(hex.EncodeToString(pin)),
			base64.StdEncoding.EncodeToString(pin), adminPassword} {
			if strings.Contains(o, enc) {
				t.Fatalf("output %d holds the key:\n%s", i, o)
			}
		}
	}
	if !strings.Contains(outs[0], "armed") || !strings.Contains(outs[0], td.spec) {
		t.Errorf("status text:\n%s", outs[0])
	}
}

// A wrong password stores and arms nothing, and costs one try.
func TestEnableWrongPasswordStoresNothing(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{TryLimit: 5}, hash.None, 1)
	dm := startDaemon(t, dir, DaemonOptions{})
	conf := filepath.Join(dir, "resume.conf")
	var out bytes.Buffer
	err := Enable(td.ctx, EnableOptions{Device: td.spec, Open: simOpen, Ranges: []uint32{1}, Hash: hash.None,
		Password: PasswordSource{Prompt: func() ([]byte, error) { return []byte("nope"), nil }},
		Storage:  StorageFile, KeyFile: filepath.Join(dir, "k"), Socket: dm.socket, Config: conf}, &out)
	if err == nil || !strings.Contains(err.Error(), "nothing was armed") {
		t.Fatalf("Enable with a wrong password: %v", err)
	}
	for _, p := range []string{conf, filepath.Join(dir, "k")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	if st := dm.d.Status(); len(st.Entries) != 0 {
		t.Errorf("daemon holds %+v", st.Entries)
	}
	if _, tries := td.tries(method.Admin(1)); tries != 1 {
		t.Errorf("Tries = %d; want 1 (Enable: %v)", tries, err)
	}
}

// Disable on the daemon path zeroises the key; the range stays locked
// after the next resume.
func TestDisableDaemonPath(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	dm := startDaemon(t, dir, DaemonOptions{})
	keyFile := filepath.Join(dir, "a.key")
	enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}, Storage: StorageFile, KeyFile: keyFile})
	if dm.d.vault.InUse() != 1 {
		t.Fatal("no key held")
	}
	var out bytes.Buffer
	if err := Disable(td.ctx, DisableOptions{Device: td.spec, Socket: dm.socket, Config: filepath.Join(dir, "resume.conf"), RunDir: filepath.Join(dir, "run")}, &out); err != nil {
		t.Fatalf("Disable: %v\n%s", err, out.String())
	}
	if n := dm.d.vault.InUse(); n != 0 {
		t.Errorf("%d keys still held", n)
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Error("key file left")
	}
	td.d.PowerCycle()
	rep := notify(t, td.ctx, dm.socket)
	if len(rep.Drives) != 0 {
		t.Errorf("run after disable = %+v", rep)
	}
	td.wantReadable(1, false)
	cfg, err := LoadConfig(filepath.Join(dir, "resume.conf"), uint32(os.Getuid()))
	if err != nil || len(cfg.Entries) != 0 {
		t.Errorf("config after disable: %+v %v", cfg, err)
	}
}

// A range the drive does not have is refused by Enable, which arms nothing:
// armed, it made every resume unlock fail (INVALID_PARAMETER). Pyrite has the
// global range only.
func TestEnableRangeThatDoesNotExist(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    sim.Config
		ranges []uint32
	}{
		{"opal2 range 9 of 8", sim.Config{Ranges: 8}, []uint32{0, 9}},
		{"opal2 range 65535", sim.Config{}, []uint32{65535}},
		{"pyrite2 range 1", sim.Config{Profile: sim.Pyrite2, MBRSize: 1}, []uint32{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortDir(t)
			nranges := 1
			if tc.cfg.Profile == sim.Pyrite2 {
				nranges = 0
			}
			td := newTestDrive(t, dir, "a", tc.cfg, hash.None, nranges)
			dm := startDaemon(t, dir, DaemonOptions{})
			pw := filepath.Join(dir, "pw")
			if err := os.WriteFile(pw, []byte(adminPassword+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err := Enable(td.ctx, EnableOptions{Device: td.spec, Open: simOpen, Ranges: tc.ranges, Hash: hash.None,
				Password: PasswordSource{File: pw, FileOwner: -1}, Socket: dm.socket,
				Config: filepath.Join(dir, "resume.conf"), RunDir: filepath.Join(dir, "run")}, &out)
			if err == nil || !strings.Contains(err.Error(), "does not exist") {
				t.Fatalf("Enable(ranges %v) = %v; want a range that does not exist\n%s", tc.ranges, err, out.String())
			}
			if st := dm.d.Status(); len(st.Entries) != 0 {
				t.Errorf("daemon holds %+v", st.Entries)
			}
		})
	}
}

// Enabling the same drive and authority again adds ranges in the
// configuration as it does in the daemon, so that a restarted daemon arms
// the same ranges; and a key stored before in another file is removed
// (nothing names it any more, so disable would leave it behind).
func TestEnableAgainMergesRangesAndMovesKey(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 2)
	conf := filepath.Join(dir, "resume.conf")
	dm := startDaemon(t, dir, DaemonOptions{})
	k1, k2 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
	enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}, Storage: StorageFile, KeyFile: k1})
	out := enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{2}, Storage: StorageFile, KeyFile: k2})
	if _, err := os.Stat(k1); err == nil {
		t.Errorf("old key file %s left behind\n%s", k1, out)
	}
	cfg, err := LoadConfig(conf, uint32(os.Getuid()))
	if err != nil || len(cfg.Entries) != 1 || !slices.Equal(cfg.Entries[0].Ranges, []uint32{1, 2}) || cfg.Entries[0].KeyFile != k2 {
		t.Fatalf("config = %+v, %v; want ranges [1 2] and key file %s", cfg, err, k2)
	}
	dm.stop()
	dm2 := startDaemon(t, dir, DaemonOptions{Config: conf, KeyFileOwner: uint32(os.Getuid())})
	if st := dm2.d.Status(); len(st.Entries) != 1 || !slices.Equal(st.Entries[0].Ranges, []uint32{1, 2}) {
		t.Fatalf("after restart: %+v", st)
	}

	// Back to prompt mode: no key stays on disk.
	enable(t, td, dir, dm2, EnableOptions{Ranges: []uint32{1}})
	if _, err := os.Stat(k2); err == nil {
		t.Errorf("key file %s left behind in prompt mode", k2)
	}
}

// Disabling an authority or a range that the daemon does not hold is
// "nothing is armed", not a report that keys were zeroised; what is armed
// stays armed.
func TestDisableWhatIsNotArmed(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	dm := startDaemon(t, dir, DaemonOptions{})
	enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}})
	for _, o := range []DisableOptions{{Authority: method.User(3)}, {Ranges: []uint32{5}}} {
		o.Device, o.Socket, o.Config, o.RunDir = td.spec, dm.socket, filepath.Join(dir, "resume.conf"), filepath.Join(dir, "run")
		var out bytes.Buffer
		err := Disable(td.ctx, o, &out)
		if err == nil || !strings.Contains(err.Error(), "nothing is armed") || strings.Contains(out.String(), "zeroised") {
			t.Errorf("Disable(%+v) = %v\n%s; want nothing is armed", o, err, out.String())
		}
	}
	if st := dm.d.Status(); len(st.Entries) != 1 || !slices.Equal(st.Entries[0].Ranges, []uint32{1}) {
		t.Errorf("daemon after disabling nothing: %+v", st.Entries)
	}
}

// flakyTransport fails every exchange while broken is set: a drive that is
// not back yet.
type flakyTransport struct {
	transport.Transport
	broken *atomic.Bool
}

func (f flakyTransport) IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error {
	if f.broken.Load() {
		return errors.New("drive not ready")
	}
	return f.Transport.IFSend(ctx, proto, spsp, data)
}

// A notification right after a failed run runs again rather than joining
// it: the failure used to be handed back for the whole debounce window
// while the drive, back by then, stayed locked.
func TestNotifyAfterFailedRunRetries(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	var broken atomic.Bool
	clk := &fakeClock{}
	dm := startDaemon(t, dir, DaemonOptions{Clock: clk, Debounce: time.Hour,
		Open: func(ctx context.Context, dev string) (transport.Transport, error) {
			tr, err := simOpen(ctx, dev)
			if err != nil {
				return nil, err
			}
			return flakyTransport{tr, &broken}, nil
		}})
	enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}})
	td.d.PowerCycle()
	clk.suspend(10 * time.Second)
	broken.Store(true)
	if rep := notify(t, td.ctx, dm.socket); rep.OK() {
		t.Fatalf("run with the drive away = %+v; want a failure", rep)
	}
	broken.Store(false)
	rep := notify(t, td.ctx, dm.socket)
	if rep.Coalesced || !rep.OK() {
		t.Fatalf("notify after a failed run = %+v; want a fresh, good unlock", rep)
	}
	td.wantReadable(1, true)
}

// A relative --key-file is recorded as an absolute name: the daemon and the
// boot unit run in /, where the relative name found no key.
func TestEnableRelativeKeyFile(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	dm := startDaemon(t, dir, DaemonOptions{})
	t.Chdir(dir)
	enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}, Storage: StorageFile, KeyFile: "rel.key"})
	cfg, err := LoadConfig(filepath.Join(dir, "resume.conf"), uint32(os.Getuid()))
	if err != nil || len(cfg.Entries) != 1 || cfg.Entries[0].KeyFile != filepath.Join(dir, "rel.key") {
		t.Fatalf("config = %+v, %v; want key file %s", cfg, err, filepath.Join(dir, "rel.key"))
	}
}

// A configuration Enable cannot update stops it before anything is armed:
// it used to register the key with the daemon, then fail.
func TestEnableBadConfigArmsNothing(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", sim.Config{}, hash.None, 1)
	dm := startDaemon(t, dir, DaemonOptions{})
	conf := filepath.Join(dir, "resume.conf")
	if err := os.WriteFile(conf, []byte(`{"version":1,"entr`), 0o600); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(adminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := Enable(td.ctx, EnableOptions{Device: td.spec, Open: simOpen, Ranges: []uint32{1}, Hash: hash.None,
		Password: PasswordSource{File: pw, FileOwner: -1}, Socket: dm.socket, Config: conf, RunDir: filepath.Join(dir, "run")}, &out)
	if err == nil || !strings.Contains(err.Error(), "resume configuration") {
		t.Fatalf("Enable with a truncated configuration = %v", err)
	}
	if st := dm.d.Status(); len(st.Entries) != 0 {
		t.Errorf("daemon holds %+v", st.Entries)
	}
}
