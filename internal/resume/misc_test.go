//go:build linux

package resume

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/tcg/hash"
)

func TestInstallUninstall(t *testing.T) {
	root := t.TempDir()
	other := filepath.Join(root, "etc/systemd/system/other.service")
	os.MkdirAll(filepath.Dir(other), 0o755)
	os.WriteFile(other, []byte("[Unit]\n"), 0o644)
	var out bytes.Buffer
	if err := Install(root, InstallOptions{Sedctl: "/opt/bin/sedctl", Socket: "/run/x/r.sock"}, &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{DaemonUnit: 0o644, ArmUnit: 0o644, SleepHook: 0o755}
	for p, mode := range want {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v; want mode %v", p, fi, err, mode)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(root, DaemonUnit))
	for _, s := range []string{"Before=sleep.target", "Restart=on-failure", "ExecStart=/opt/bin/sedctl resume daemon --socket /run/x/r.sock",
		"LimitCORE=0", "NoNewPrivileges=yes", "ImportCredential=sedctl-resume.*"} {
		if !bytes.Contains(unit, []byte(s)) {
			t.Errorf("daemon unit lacks %q:\n%s", s, unit)
		}
	}
	hook, _ := os.ReadFile(filepath.Join(root, SleepHook))
	if !bytes.Contains(hook, []byte("post) exec /opt/bin/sedctl resume notify post --socket /run/x/r.sock")) || !bytes.HasPrefix(hook, []byte("#!/bin/sh\n")) {
		t.Errorf("hook:\n%s", hook)
	}
	if bytes.Contains(unit, []byte("<no value>")) {
		t.Error("template left a hole")
	}
	// The hook is valid shell.
	if sh, err := exec.LookPath("sh"); err == nil {
		if b, err := exec.Command(sh, "-n", filepath.Join(root, SleepHook)).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v %s", err, b)
		}
	}
	// Installing again overwrites our own files; a foreign file is kept.
	if err := Install(root, InstallOptions{}, &out); err != nil {
		t.Fatalf("reinstall: %v", err)
	}
	os.WriteFile(filepath.Join(root, ArmUnit), []byte("mine\n"), 0o644)
	if err := Install(root, InstallOptions{}, &out); err == nil {
		t.Error("install overwrote a foreign file")
	}
	if err := Install(root, InstallOptions{Sedctl: "/bin/sed ctl"}, &out); err == nil {
		t.Error("path with a space accepted")
	}
	if err := Uninstall(root, &out); err == nil {
		t.Error("uninstall did not report the foreign file")
	}
	for _, p := range []string{DaemonUnit, SleepHook} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s left", p)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, ArmUnit)); string(b) != "mine\n" {
		t.Error("foreign file removed")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("unrelated unit removed")
	}
	os.Remove(filepath.Join(root, ArmUnit))
	if err := Uninstall(root, &out); err != nil {
		t.Errorf("uninstall of nothing: %v", err)
	}
	// A symlink escaping the root is not followed.
	root2 := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(root2, "usr/lib/systemd"), 0o755)
	os.Symlink(outside, filepath.Join(root2, "usr/lib/systemd/system-sleep"))
	if err := Install(root2, InstallOptions{}, &out); err == nil {
		t.Error("install followed a symlink out of the root")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote outside the root: %v", ents)
	}
}

func TestVault(t *testing.T) {
	v, err := NewVault()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("key memory: %s", v.Backend())
	if v.Backend() == "heap" {
		t.Error("no locked memory on Linux")
	}
	a, _ := v.Put([]byte("alpha"))
	b, _ := v.Put(bytes.Repeat([]byte{7}, slotSize))
	if string(v.Key(a)) != "alpha" || len(v.Key(b)) != slotSize {
		t.Fatal("keys not kept")
	}
	ka := v.Key(a)
	v.Free(a)
	if !bytes.Equal(ka, make([]byte, 5)) || v.Key(a) != nil {
		t.Errorf("freed slot not zeroised: %q", ka)
	}
	if _, err := v.Put(make([]byte, slotSize+1)); err == nil {
		t.Error("oversized key accepted")
	}
	if v.Key(-1) != nil || v.Key(vaultSlots) != nil {
		t.Error("out-of-range slot")
	}
	kb := v.Key(b)
	release := v.release
	v.release = nil // keep the memory mapped to look at it after Close
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if release != nil {
		defer release()
	}
	if !bytes.Equal(kb, make([]byte, slotSize)) {
		t.Error("Close did not zeroise")
	}
	if v.Key(b) != nil || v.InUse() != 0 {
		t.Error("keys after Close")
	}
	v2, _ := NewVault()
	defer v2.Close()
	for i := range vaultSlots {
		if _, err := v2.Put([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v2.Put([]byte{1}); !errors.Is(err, ErrVaultFull) {
		t.Errorf("full vault: %v", err)
	}
}

// Harden runs in a child process, since mlockall and PR_SET_DUMPABLE stay.
func TestHarden(t *testing.T) {
	if os.Getenv("RESUME_HARDEN_CHILD") == "1" {
		r, err := Harden()
		if err != nil {
			os.Stdout.WriteString("ERR " + err.Error() + "\n")
			os.Exit(1)
		}
		d, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		var rl unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_CORE, &rl)
		st, _ := os.ReadFile("/proc/self/status")
		vmlck, rss := "", ""
		for l := range strings.Lines(string(st)) {
			if strings.HasPrefix(l, "VmLck:") {
				vmlck = strings.Fields(l)[1]
			}
			if strings.HasPrefix(l, "VmRSS:") {
				rss = strings.Fields(l)[1]
			}
		}
		os.Stdout.WriteString("locked=" + strconv.FormatBool(r.LockedAll) + " dumpable=" + strconv.Itoa(d) +
			" core=" + strconv.FormatUint(rl.Cur, 10) + " vmlck=" + vmlck + " rss=" + rss + "\n")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHarden$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RESUME_HARDEN_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	line := strings.TrimSpace(string(out))
	t.Log(line)
	if !strings.Contains(line, "dumpable=0 core=0") {
		t.Errorf("child: %s", line)
	}
	if os.Getuid() == 0 && (!strings.Contains(line, "locked=true") || strings.Contains(line, "vmlck=0 ")) {
		t.Errorf("root child not locked: %s", line)
	}
}

func TestProtocol(t *testing.T) {
	pin := []byte{0, 1, 2, 0xff, '"', '\n'}
	line, err := encodeRequest(Request{Op: OpRegister, Device: "d", Ranges: []uint32{1}, Authority: "Admin1", PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("line %q", line)
	}
	req, err := decodeRequest(line[:len(line)-1])
	if err != nil || !bytes.Equal(req.PIN, pin) || req.Device != "d" {
		t.Fatalf("decode = %+v, %v", req, err)
	}
	for _, bad := range []string{``, `{`, `[]`, `{"op":"ping","x":1}`, `{"op":"ping"} {"op":"ping"}`, `{"pin":"!!"}`} {
		if _, err := decodeRequest([]byte(bad)); err == nil {
			t.Errorf("decodeRequest(%q) accepted", bad)
		}
	}
	long := strings.Repeat("a", maxLine+10) + "\n"
	if _, err := readLine(bufio.NewReaderSize(strings.NewReader(long), 16)); err == nil {
		t.Error("over-long line accepted")
	}
	if l, err := readLine(bufio.NewReaderSize(strings.NewReader(strings.Repeat("b", 100)+"\n"), 16)); err != nil || len(l) != 100 {
		t.Errorf("readLine = %d, %v", len(l), err)
	}
	if _, err := readLine(bufio.NewReader(strings.NewReader("partial"))); err == nil {
		t.Error("unterminated line accepted")
	}
	for _, a := range []string{"", "Anybody", "zz", "0000000000000001"} {
		if _, err := parseAuthority(a); err == nil && a != "0000000000000001" {
			t.Errorf("parseAuthority(%q) accepted", a)
		}
	}
	for _, tc := range []struct {
		dev    string
		ranges []uint32
		all    bool
		pin    []byte
	}{
		{"", []uint32{1}, false, []byte{1}},
		{"d", nil, false, []byte{1}},
		{"d", []uint32{1}, true, []byte{1}},
		{"d", []uint32{1}, false, nil},
		{"d", []uint32{1}, false, make([]byte, 300)},
		{"d", []uint32{70000}, false, []byte{1}},
		{"d\x00", []uint32{1}, false, []byte{1}},
	} {
		if validateRegistration(tc.dev, tc.ranges, tc.all, tc.pin) == nil {
			t.Errorf("validateRegistration(%+v) accepted", tc)
		}
	}
}

func TestKeyFileChecks(t *testing.T) {
	dir := t.TempDir()
	me := uint32(os.Getuid())
	p := filepath.Join(dir, "k")
	pin := hash.PIN{1, 2, 3, 0xab}
	if err := WriteKeyFile(p, pin); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKeyFile(p, me)
	if err != nil || !got.Equal(pin) {
		t.Fatalf("ReadKeyFile = %v, %v", got, err)
	}
	if _, err := ReadKeyFile(p, me+1); err == nil || !strings.Contains(err.Error(), "chown") {
		t.Errorf("wrong owner: %v", err)
	}
	os.Chmod(p, 0o640)
	if _, err := ReadKeyFile(p, me); err == nil || !strings.Contains(err.Error(), "chmod 0400") {
		t.Errorf("mode 0640: %v", err)
	}
	os.Chmod(p, 0o600)
	link := filepath.Join(dir, "l")
	os.Symlink(p, link)
	if _, err := ReadKeyFile(link, me); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlink: %v", err)
	}
	for _, bad := range []string{"", "abc", "zz", strings.Repeat("00", 300)} {
		os.Remove(p)
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := ReadKeyFile(p, me); err == nil {
			t.Errorf("key file %q accepted", bad)
		}
	}
	// Credentials: read beneath the directory only.
	os.WriteFile(filepath.Join(dir, "sedctl-resume.x"), []byte("0a0b\n"), 0o600)
	if k, err := ReadCredentialKey(dir, "sedctl-resume.x"); err != nil || !k.Equal(hash.PIN{10, 11}) {
		t.Errorf("credential = %v, %v", k, err)
	}
	for _, bad := range []string{"../k", "", "..", "a/b"} {
		if _, err := ReadCredentialKey(dir, bad); err == nil {
			t.Errorf("credential %q accepted", bad)
		}
	}
	if _, err := ReadCredentialKey("", "x"); err == nil {
		t.Error("no $CREDENTIALS_DIRECTORY accepted")
	}
	// Password sources.
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret\r\nsecond line"), 0o644)
	if _, err := (PasswordSource{File: pw, FileOwner: -1}).read(); err == nil {
		t.Error("password file open to others accepted")
	}
	os.Chmod(pw, 0o600)
	if b, err := (PasswordSource{File: pw, FileOwner: -1}).read(); err != nil || string(b) != "secret" {
		t.Errorf("password file = %q, %v", b, err)
	}
	if _, err := (PasswordSource{File: pw, Credential: "x"}).read(); err == nil {
		t.Error("two sources accepted")
	}
	os.WriteFile(filepath.Join(dir, "cred-pw"), []byte("from-cred\n"), 0o600)
	if b, err := (PasswordSource{Credential: "cred-pw", CredentialsDir: dir}).read(); err != nil || string(b) != "from-cred" {
		t.Errorf("credential password = %q, %v", b, err)
	}
}

// A credential-stored key re-arms a restarted daemon.
func TestCredentialStorageRearm(t *testing.T) {
	dir := shortDir(t)
	td := newTestDrive(t, dir, "a", simConfig(), hash.None, 1)
	creds := filepath.Join(dir, "creds")
	os.MkdirAll(creds, 0o700)
	dm := startDaemon(t, dir, DaemonOptions{})
	enc := func(_ contextT, name string, pin hash.PIN) (string, error) {
		f := filepath.Join(creds, name)
		return f, WriteKeyFile(f, pin) // stands in for systemd-creds encrypt + decrypt at start
	}
	enable(t, td, dir, dm, EnableOptions{Ranges: []uint32{1}, Storage: StorageCredential, EncryptCredential: enc})
	dm.stop()
	dm2 := startDaemon(t, dir, DaemonOptions{Config: filepath.Join(dir, "resume.conf"), CredentialsDir: creds})
	if st := dm2.d.Status(); len(st.Entries) != 1 || !strings.HasPrefix(st.Entries[0].Source, "credential:sedctl-resume.") {
		t.Fatalf("status = %+v", st)
	}
	td.d.PowerCycle()
	if rep := notify(t, td.ctx, dm2.socket); !rep.OK() {
		t.Fatalf("run = %+v", rep)
	}
	td.wantReadable(1, true)
}

// TestWriteRunNothingArmed: a notification with nothing armed says so, not
// "unlocked in 3µs (0 sessions)".
func TestWriteRunNothingArmed(t *testing.T) {
	var b strings.Builder
	writeRun(&b, &RunReport{Trigger: "notify"})
	if got := b.String(); got != "nothing armed to unlock\n" {
		t.Errorf("writeRun of an empty run = %q", got)
	}
}

// A FIFO where a key file, the configuration, a credential or an installed
// file belongs is refused at once: opening it for reading used to block
// until a writer came, hanging the daemon at start (deaf to SIGTERM),
// status, enable, install and uninstall.
func TestFIFOsDoNotHang(t *testing.T) {
	dir := t.TempDir()
	fifo := func(name string) string {
		p := filepath.Join(dir, name)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile, conf := fifo("k"), fifo("resume.conf")
	fifo("sedctl-resume.x")
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(DaemonUnit)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, DaemonUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		me := uint32(os.Getuid())
		if _, err := ReadKeyFile(keyFile, me); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("ReadKeyFile(FIFO) = %v", err)
		}
		if _, err := LoadConfig(conf, me); err == nil {
			t.Error("LoadConfig(FIFO) accepted")
		}
		if _, err := ReadCredentialKey(dir, "sedctl-resume.x"); err == nil {
			t.Error("credential FIFO accepted")
		}
		var out bytes.Buffer
		if err := Install(root, InstallOptions{}, &out); err == nil {
			t.Error("Install over a FIFO without --force accepted")
		}
		if err := Uninstall(root, &out); err == nil {
			t.Error("Uninstall removed a FIFO")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		// Unblock the opens so that the test can end.
		for _, n := range []string{"k", "resume.conf", "sedctl-resume.x", "root/" + DaemonUnit} {
			if f, err := os.OpenFile(filepath.Join(dir, n), os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
		t.Fatal("opening a FIFO blocked")
	}
}

// A socket whose listener accepts and never answers (a hung daemon, some
// other program) makes status and disable fail after a bound instead of
// hanging for ever.
func TestCallToMuteSocketEnds(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "mute.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	defer func(a, b time.Duration) { callTimeout, callChangeTimeout = a, b }(callTimeout, callChangeTimeout)
	callTimeout, callChangeTimeout = 200*time.Millisecond, 300*time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := GetStatus(context.Background(), StatusOptions{Socket: sock, Config: filepath.Join(dir, "none.conf"), RunDir: dir})
		if r.Daemon != nil || !strings.Contains(r.DaemonError, "did not answer") {
			t.Errorf("status of a mute socket: %+v", r)
		}
		var out bytes.Buffer
		err := Disable(context.Background(), DisableOptions{Device: "sim:/nowhere", Socket: sock, Config: filepath.Join(dir, "none.conf"), RunDir: dir}, &out)
		if err == nil || !strings.Contains(err.Error(), "did not answer") {
			t.Errorf("disable with a mute socket: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a call to a mute socket hangs")
	}
}

// TestStatusJSONLists: with nothing configured, armed or reachable, the
// JSON has empty lists, not nulls.
func TestStatusJSONLists(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	err := Status(t.Context(), StatusOptions{Socket: dir + "/none.sock", Config: dir + "/resume.conf", RunDir: dir, JSON: true}, &b)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"config": []`, `"kernel": []`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status --json lacks %s:\n%s", want, b.String())
		}
	}
}
