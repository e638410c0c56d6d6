package sedctl_test

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/internal/sedctl"
	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/session"
)

// TestWrongPasswordAndLockout: a wrong password is tried once (never
// retried), the message says how many tries are left when the drive tells
// and what AUTHORITY_LOCKED_OUT is; after TryLimit wrong tries even the
// right password is refused until a power cycle.
func TestWrongPasswordAndLockout(t *testing.T) {
	s := newSim(t, sim.Config{TryLimit: 3})
	pw := s.setup("right")
	bad := secretFile(t, "wrong")

	// Opal lets only admins read Tries, so by default the drive does not
	// tell: the message says so, and says where to look.
	je := failJSON(t, 1, "range", "list", "--password-file", bad, s.dev)
	if je.Error.Status != "NOT_AUTHORIZED" || je.Error.Authority != "Admin1" || je.Error.TriesLeft != nil {
		t.Errorf("wrong password: %+v", je.Error)
	}
	hint := strings.Join(je.Error.Hints, "\n")
	for _, want := range []string{"refused the password for Admin1", "does not tell", "sedctl user list", "never retries", "AUTHORITY_LOCKED_OUT", "sedutil-sha1"} {
		if !strings.Contains(hint, want) {
			t.Errorf("wrong password hint lacks %q:\n%s", want, hint)
		}
	}
	// One try spent, not more: sedctl did not retry. (Checked on User1,
	// whose Tries Admin1 can read without resetting them.)
	user := secretFile(t, "user")
	mustRun(t, "user", "enable", "user1", "--password-file", pw, s.dev)
	mustRun(t, "password", "set", "--authority", "user1", "--password-file", pw, "--new-password-file", user, s.dev)
	wantCode(t, 1, []string{"refused the password for User1"}, "range", "list", "--as", "user1", "--password-file", bad, s.dev)
	if tries := s.tries(pw, "User1"); tries != 1 {
		t.Errorf("after one wrong password: User1 Tries = %d; want 1 (no retry)", tries)
	}
	// The right password resets Tries.
	wantCode(t, 1, []string{"may not do this"}, "range", "lock", "1", "--as", "user1", "--password-file", user, s.dev)
	if tries := s.tries(pw, "User1"); tries != 0 {
		t.Errorf("after the right password: User1 Tries = %d; want 0", tries)
	}

	// Let Anybody read the C_PIN rows' non-PIN columns (ACE
	// ACE_C_PIN_Admins_Get_All_NOPIN, 0000000800 03A000): now the drive
	// tells, and sedctl says how many tries are left.
	anybody := "tokens:F2A400000C05A80000000900000001F3"
	mustRun(t, "raw", "set", "locking", "admin1", "000000080003A000", "3=[", anybody, "]", "--password-file", pw, s.dev)
	for i, left := range []uint64{2, 1, 0} {
		r := run(t, nil, nil, "range", "lock", "0", "--json", "--password-file", bad, s.dev)
		if r.code != 1 {
			t.Fatalf("wrong password %d: exit %d; want 1\n%v", i+1, r.code, r)
		}
		var je jsonError
		decode(t, r, &je)
		if je.Error.TriesLeft == nil || *je.Error.TriesLeft != left {
			t.Errorf("wrong password %d: tries_left %v; want %d", i+1, je.Error.TriesLeft, left)
		}
		want := map[uint64]string{2: "2 tries left", 1: "1 try left", 0: "0 tries left"}[left]
		if !strings.Contains(r.stderr, want) {
			t.Errorf("wrong password %d: stderr lacks %q:\n%s", i+1, want, r.stderr)
		}
	}
	// Locked out: the right password too, with exit 18 and an explanation.
	for _, f := range []string{bad, pw} {
		je := failJSON(t, 18, "range", "list", "--password-file", f, s.dev)
		if je.Error.Status != "AUTHORITY_LOCKED_OUT" || je.Error.TriesLeft == nil || *je.Error.TriesLeft != 0 {
			t.Errorf("locked out: %+v", je.Error)
		}
		hint := strings.Join(je.Error.Hints, "\n")
		for _, want := range []string{"locked out", "the right one too", "power-cycle", "sedctl reset --power-cycle"} {
			if !strings.Contains(hint, want) {
				t.Errorf("lockout hint lacks %q:\n%s", want, hint)
			}
		}
	}
	// SID is a different authority: not locked out.
	mustRun(t, "user", "list", "--as", "sid", "--password-file", pw, s.dev)
	// Until a power cycle.
	mustRun(t, "reset", "--power-cycle", s.dev)
	mustRun(t, "range", "list", "--password-file", pw, s.dev)

	// A wrong SID password: the same explanation for SID.
	r := wantCode(t, 1, []string{"refused the password for SID", "user list"}, "revert", "--tper", "--yes", "--password-file", bad, s.dev)
	if strings.Contains(r.stderr, "reverted") {
		t.Errorf("revert with a wrong SID password: %v", r)
	}
	// A wrong hash scheme is a wrong password, and the message names the
	// scheme used.
	wantCode(t, 1, []string{"--hash sedutil-sha512"}, "range", "list", "--hash", "sedutil-sha512", "--password-file", pw, s.dev)
}

// tries returns the Tries column of authority's C_PIN, read as Admin1.
func (s *testSim) tries(pwFile, authority string) uint64 {
	s.t.Helper()
	var users struct {
		Authorities []struct {
			Authority string  `json:"authority"`
			Tries     *uint64 `json:"tries"`
		} `json:"authorities"`
	}
	runJSON(s.t, &users, "user", "list", "--password-file", pwFile, s.dev)
	for _, a := range users.Authorities {
		if a.Authority == authority && a.Tries != nil {
			return *a.Tries
		}
	}
	s.t.Fatalf("user list: no tries for %s: %+v", authority, users)
	return 0
}

// TestSPBusy: while another host holds a write session to the Locking SP,
// sedctl gets SP_BUSY, explains it, and 'reset' (STACK_RESET) ends the
// stale session.
func TestSPBusy(t *testing.T) {
	s := newSim(t, sim.Config{})
	pw := s.setup("busy")
	ctx := context.Background()
	c := session.NewClient(s.d.Transport(), nil)
	held, err := c.StartSession(ctx, session.Params{SP: method.LockingSP, Write: true, Authority: method.Admin(1), Challenge: s.pin(hash.SedutilSHA1, "busy")})
	if err != nil {
		t.Fatal(err)
	}
	je := failJSON(t, 3, "range", "lock", "1", "--password-file", pw, s.dev)
	if je.Error.Status != "SP_BUSY" || !strings.Contains(strings.Join(je.Error.Hints, " "), "sedctl reset") {
		t.Errorf("SP_BUSY: %+v", je.Error)
	}
	wantCode(t, 3, []string{"SP_BUSY", "STACK_RESET"}, "mbr", "enable", "--password-file", pw, s.dev)
	// Not a wrong password: no try was spent.
	held.Close(ctx)
	if tries := s.tries(pw, "Admin1"); tries != 0 {
		t.Errorf("after SP_BUSY: Admin1 Tries = %d; want 0", tries)
	}
	// A host that died mid-session: STACK_RESET frees the SP.
	if _, err := c.StartSession(ctx, session.Params{SP: method.LockingSP, Write: true, Authority: method.Admin(1), Challenge: s.pin(hash.SedutilSHA1, "busy")}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, 3, nil, "range", "lock", "1", "--password-file", pw, s.dev)
	mustRun(t, "reset", s.dev)
	mustRun(t, "range", "lock", "1", "--password-file", pw, s.dev)
}

// TestBadRanges: ranges the drive does not have, unaligned ranges, and a
// Pyrite drive, which has only the global range.
func TestBadRanges(t *testing.T) {
	s := newSim(t, sim.Config{AlignmentGranularity: 16, LowestAlignedLBA: 8})
	pw := s.setup("ranges")

	je := failJSON(t, 12, "range", "lock", "9", "--password-file", pw, s.dev)
	if je.Error.Status != "INVALID_PARAMETER" || !strings.Contains(strings.Join(je.Error.Hints, " "), "range 9 does not exist: this drive has ranges 1..8") {
		t.Errorf("range 9: %+v", je.Error)
	}
	wantCode(t, 12, []string{"range 42 does not exist"}, "range", "setup", "42", "24", "16", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{`"abc"`}, "range", "lock", "abc", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{`"-1"`}, "range", "lock", "-1", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{`"70000"`}, "range", "lock", "70000", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"START"}, "range", "setup", "1", "x", "16", "--password-file", pw, s.dev)

	// Alignment: granularity 16 from LBA 8 (query shows it).
	var q struct {
		Level0 struct {
			Geometry struct {
				Align       bool   `json:"align"`
				Granularity uint64 `json:"alignment_granularity"`
				Lowest      uint64 `json:"lowest_aligned_lba"`
			} `json:"geometry"`
		} `json:"level0"`
	}
	runJSON(t, &q, "query", s.dev)
	if !q.Level0.Geometry.Align || q.Level0.Geometry.Granularity != 16 || q.Level0.Geometry.Lowest != 8 {
		t.Fatalf("query geometry: %+v", q.Level0.Geometry)
	}
	for _, c := range [][2]string{{"16", "16"}, {"24", "20"}} {
		je := failJSON(t, 12, "range", "setup", "1", c[0], c[1], "--password-file", pw, s.dev)
		if !strings.Contains(strings.Join(je.Error.Hints, " "), "multiples of 16 blocks") {
			t.Errorf("unaligned range setup 1 %s %s: %+v", c[0], c[1], je.Error)
		}
	}
	mustRun(t, "range", "setup", "1", "24", "32", "--password-file", pw, s.dev)
	wantCode(t, 12, []string{"would end at"}, "range", "setup", "2", "65528", "64", "--password-file", pw, s.dev)

	// Pyrite: ranges other than the global one are refused before any
	// session; the shadow MBR too.
	p := newSim(t, sim.Config{Profile: sim.Pyrite2})
	ppw := p.setup("pyrite")
	for _, args := range [][]string{
		{"range", "lock", "1"},
		{"range", "setup", "1", "0", "8"},
		{"range", "enable", "2"},
		{"range", "list", "1"},
		{"range", "erase", "1", "--yes"},
	} {
		je := failJSON(t, sedctl.ExitUnsupported, append(append(args, "--password-file", ppw), p.dev)...)
		if !strings.Contains(je.Error.Message, "Pyrite 2") || !strings.Contains(je.Error.Message, "no locking ranges") {
			t.Errorf("%v on Pyrite: %+v", args, je.Error)
		}
	}
	wantCode(t, sedctl.ExitUnsupported, []string{"no shadow MBR"}, "mbr", "enable", "--password-file", ppw, p.dev)
	if rs := p.ranges(ppw); len(rs) != 1 || rs[0].Range != 0 {
		t.Errorf("range list on Pyrite: %+v", rs)
	}
	// Ruby has ranges but no shadow MBR.
	rb := newSim(t, sim.Config{Profile: sim.Ruby})
	rpw := rb.setup("ruby")
	mustRun(t, "range", "setup", "1", "0", "8", "--password-file", rpw, rb.dev)
	wantCode(t, sedctl.ExitUnsupported, []string{"no shadow MBR"}, "mbr", "load", "/dev/null", "--password-file", rpw, rb.dev)
	mustRun(t, "range", "enable", "0", "--password-file", ppw, p.dev)
	mustRun(t, "range", "lock", "0", "--password-file", ppw, p.dev)
	if p.readable(0) {
		t.Error("Pyrite global range locked: block 0 readable")
	}
}

// TestSecretsNeverShown: the password, and the PIN derived from it, appear
// nowhere in what sedctl prints, --trace included; the PIN is redacted in
// the decoded trace.
func TestSecretsNeverShown(t *testing.T) {
	s := newSim(t, sim.Config{})
	const password = "Pa55-w0rd-that-is-secret"
	const newPassword = "N3w-pa55-also-secret"
	pw := secretFile(t, password)
	npw := secretFile(t, newPassword)
	pin := s.pin(hash.SedutilSHA1, password)
	npin := s.pin(hash.SedutilSHA1, newPassword)
	msid := s.d.MSID()
	secrets := map[string]string{
		"password": password, "new password": newPassword,
		"PIN hex": hex.EncodeToString(pin), "PIN HEX": strings.ToUpper(hex.EncodeToString(pin)), "PIN bytes": string(pin),
		"new PIN hex": hex.EncodeToString(npin), "new PIN HEX": strings.ToUpper(hex.EncodeToString(npin)), "new PIN bytes": string(npin),
	}
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, []byte("pba"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(args ...string) {
		t.Helper()
		for _, mode := range [][]string{{"--trace"}, {"--trace", "--json"}} {
			r := run(t, nil, nil, append(args, mode...)...)
			if r.code != 0 {
				t.Fatalf("sedctl %s: %v", strings.Join(args, " "), r)
			}
			for what, sec := range secrets {
				if strings.Contains(r.stdout, sec) || strings.Contains(r.stderr, sec) {
					t.Errorf("sedctl %s %s: the %s appears in the output", strings.Join(args, " "), strings.Join(mode, " "), what)
				}
			}
			if !strings.Contains(r.stderr, "IF-SEND") || !strings.Contains(r.stderr, "IF-RECV") {
				t.Errorf("sedctl %s --trace: no decoded traffic on stderr:\n%s", strings.Join(args, " "), r.stderr)
			}
			if strings.Contains(r.stderr, "StartSession") && !strings.Contains(r.stderr, "[REDACTED 32 bytes]") {
				t.Errorf("sedctl %s --trace: StartSession without a redacted challenge:\n%s", strings.Join(args, " "), r.stderr)
			}
		}
	}
	// setup reads the MSID: it is redacted in the trace too.
	r := run(t, nil, nil, "setup", "--trace", "--password-file", pw, s.dev)
	if r.code != 0 {
		t.Fatalf("setup: %v", r)
	}
	if strings.Contains(r.stderr, string(msid)) || strings.Contains(r.stderr, hex.EncodeToString(msid)) {
		t.Errorf("setup --trace shows the MSID:\n%s", r.stderr)
	}
	for what, sec := range secrets {
		if strings.Contains(r.stdout+r.stderr, sec) {
			t.Errorf("setup --trace: the %s appears in the output", what)
		}
	}
	check("range", "list", "--password-file", pw, s.dev)
	check("range", "lock", "1", "--password-file", pw, s.dev)
	check("user", "enable", "user1", "--password-file", pw, s.dev)
	check("password", "set", "--authority", "user1", "--password-file", pw, "--new-password-file", npw, s.dev)
	check("mbr", "load", img, "--password-file", pw, s.dev)
	check("datastore", "write", img, "--password-file", pw, s.dev)
	check("raw", "get", "locking", "admin1", "C_PIN_User1", "--password-file", pw, s.dev)
	// Errors too: a wrong password's messages name the scheme and serial,
	// never the password.
	r = run(t, nil, nil, "range", "list", "--trace", "--password-file", npw, s.dev)
	if r.code != 1 {
		t.Fatalf("wrong password: %v", r)
	}
	for what, sec := range secrets {
		if strings.Contains(r.stdout+r.stderr, sec) {
			t.Errorf("wrong password --trace: the %s appears in the output", what)
		}
	}
	// sedutil's forms with the password on the command line are refused,
	// and the refusal does not repeat it.
	for _, args := range [][]string{
		{"--initialSetup", password, s.dev},
		{"--setSIDPassword", password, newPassword, s.dev},
		{"--setLockingRange", "1", "LK", password, s.dev},
		{"--setAdmin1Pwd", password, newPassword, s.dev},
		{"--PSIDrevert", password, s.dev},
		{"--loadPBAimage", password, img, s.dev},
	} {
		r := run(t, nil, nil, args...)
		if r.code != sedctl.ExitUsage || !strings.Contains(r.stderr, "never takes passwords on the command line") || !strings.Contains(r.stderr, "--password-file") {
			t.Errorf("sedctl %s: want a refusal of the argv password\n%v", args[0], r)
		}
		if strings.Contains(r.stdout+r.stderr, password) || strings.Contains(r.stdout+r.stderr, newPassword) {
			t.Errorf("sedctl %s: the refusal repeats the password", args[0])
		}
	}
	// No password source and no terminal: a usage error, nothing read from
	// the environment.
	r = run(t, nil, map[string]string{"SEDCTL_PASSWORD": password, "PASSWORD": password}, "range", "list", s.dev)
	if r.code != sedctl.ExitUsage || !strings.Contains(r.stderr, "not a terminal") {
		t.Errorf("no password source: %v", r)
	}
}

// TestPasswordSources: --password-file rules and --password-fd, one or
// two passwords per descriptor.
func TestPasswordSources(t *testing.T) {
	s := newSim(t, sim.Config{})
	pw := s.setup("from a file")

	// Group- or world-readable files are refused.
	loose := filepath.Join(t.TempDir(), "loose")
	if err := os.WriteFile(loose, []byte("from a file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantCode(t, sedctl.ExitNoInput, []string{"accessible by group or others", "chmod 600"}, "range", "list", "--password-file", loose, s.dev)
	// CRLF and no trailing newline are both fine.
	for _, content := range []string{"from a file\r\n", "from a file", "from a file\nsecond line ignored\n"} {
		f := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "range", "list", "--password-file", f, s.dev)
	}
	wantCode(t, sedctl.ExitUsage, []string{"not both"}, "range", "list", "--password-file", pw, "--password-fd", "0", s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"not a file descriptor"}, "range", "list", "--password-fd", "x", s.dev)
	wantCode(t, sedctl.ExitNoInput, []string{"--password-fd 97"}, "range", "list", "--password-fd", "97", s.dev)

	// --password-fd: the fd is read one line; with the new password on the
	// same descriptor, its first two lines.
	fdRun := func(content string, args ...string) result {
		t.Helper()
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		go func() { wr.WriteString(content); wr.Close() }()
		for i, a := range args {
			if a == "FD" {
				args[i] = itoa(int(rd.Fd()))
			}
		}
		return run(t, nil, nil, args...)
	}
	if r := fdRun("from a file\n", "range", "list", "--password-fd", "FD", s.dev); r.code != 0 {
		t.Fatalf("--password-fd: %v", r)
	}
	if r := fdRun("from a file\nnew one\n", "password", "set", "--authority", "admin1", "--password-fd", "FD", "--new-password-fd", "FD", s.dev); r.code != 0 {
		t.Fatalf("two passwords on one fd: %v", r)
	}
	mustRun(t, "range", "list", "--password-file", secretFile(t, "new one"), s.dev)
	if r := fdRun("new one\n", "password", "set", "--authority", "admin1", "--password-fd", "FD", "--new-password-fd", "FD", s.dev); r.code != sedctl.ExitNoInput {
		t.Errorf("second password missing on the fd: %v", r)
	}
	// An empty new password is refused.
	if r := fdRun("new one\n\n", "password", "set", "--authority", "admin1", "--password-fd", "FD", "--new-password-fd", "FD", s.dev); r.code != sedctl.ExitData || !strings.Contains(r.stderr, "empty") {
		t.Errorf("empty new password: %v", r)
	}
	mustRun(t, "range", "list", "--password-file", secretFile(t, "new one"), s.dev)
}

// TestUsage: the command line's own errors.
func TestUsage(t *testing.T) {
	s := newSim(t, sim.Config{})
	pw := secretFile(t, "x")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{nil, "no command"},
		{[]string{"frobnicate", s.dev}, "unknown command"},
		{[]string{"range", s.dev}, "unknown command 'sedctl range"},
		{[]string{"range"}, "needs a subcommand"},
		{[]string{"range", "lock", "1"}, "usage: sedctl range lock N DEV"},
		{[]string{"msid", "--bogus", s.dev}, "unknown option --bogus"},
		{[]string{"msid", "--yes", s.dev}, "does not apply"},
		{[]string{"msid", "-x", s.dev}, "unknown option"},
		{[]string{"range", "list", "--hash", "md5", "--password-file", pw, s.dev}, "--hash md5"},
		{[]string{"range", "list", "--password-file"}, "needs a value"},
		{[]string{"--initialSetup", "--setMBRDone", s.dev}, "two sedutil commands"},
		{[]string{"--eraseLockingRange", "1", s.dev}, "Enterprise"},
		{[]string{"password", "set", "--password-file", pw, s.dev}, "--authority"},
		{[]string{"password", "set", "--authority", "psid", "--password-file", pw, s.dev}, "no password"},
		{[]string{"msid", "--via", "kernel", s.dev}, "does not apply to a sedsim socket"},
		{[]string{"msid", "--via", "smoke", "/dev/null"}, "--via"},
		{[]string{"msid", "/dev/null"}, "neither a drive"},
	} {
		want := sedctl.ExitUsage
		if c.msg == "Enterprise" {
			want = sedctl.ExitUnsupported
		}
		wantCode(t, want, []string{c.msg}, c.args...)
	}
	wantCode(t, sedctl.ExitIO, []string{"sedsim serve"}, "msid", "sim:"+filepath.Join(t.TempDir(), "nothing.sock"))
	wantCode(t, sedctl.ExitIO, []string{"no such file"}, "msid", filepath.Join(t.TempDir(), "nothing"))
	// A device path that does not exist is an I/O error, not a crash.
	if _, err := os.Stat("/dev/nvme0"); err != nil {
		wantCode(t, sedctl.ExitIO, nil, "msid", "/dev/nvme0")
	}
	// --json reports usage errors as JSON as well.
	je := failJSON(t, sedctl.ExitUsage, "range", "lock", "abc", s.dev)
	if !strings.Contains(je.Error.Message, "abc") {
		t.Errorf("usage error JSON: %+v", je)
	}
	// Options go anywhere, --name=value works, names ignore case, and "--"
	// ends them.
	mustRun(t, "MSID", s.dev)
	mustRun(t, "msid", "--JSON", s.dev)
	r := mustRun(t, "--json=true", "msid", "--", s.dev)
	var m msidOut
	decode(t, r, &m)
	// sedutil's -v...-vvvvv are accepted (use --trace), -n is its no-hash.
	mustRun(t, "-vvvv", "msid", s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"-n"}, "range", "list", "-n", "--hash", "sha1", "--password-file", pw, s.dev)
}

// An empty --socket, --config, --run-dir or --key-file is refused: it used
// to mean the engine's default, so that a script with an unset variable
// used the system's daemon socket, configuration or /etc/sedctl/keys.
func TestResumeEmptyPathOptions(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"resume", "status", "--socket", ""},
		{"resume", "status", "--config", ""},
		{"resume", "status", "--run-dir", ""},
		{"resume", "daemon", "--socket", "", "--config", "-"},
		{"resume", "notify", "post", "--socket", ""},
		{"resume", "disable", "--socket", "", "sim:" + dir + "/x.sock"},
		{"resume", "enable", "--key-store", "file", "--key-file", "", "--socket", dir + "/r.sock", "--config", dir + "/c", "--run-dir", dir, "sim:" + dir + "/x.sock"},
		{"resume", "install", "--root", ""},
	} {
		wantCode(t, 64, []string{"empty value"}, args...)
	}
}

// resume enable of a range the drive does not have exits 64 and arms
// nothing (it used to arm it, and every resume then failed).
func TestResumeEnableRangeThatDoesNotExist(t *testing.T) {
	s := newSim(t, sim.Config{Ranges: 2})
	pw := secretFile(t, "resume range pw")
	mustRun(t, "setup", "--password-file", pw, s.dev)
	dir := t.TempDir()
	wantCode(t, 64, []string{"range 3 does not exist", "ranges 0..2"}, "resume", "enable", "--range", "3", "--password-file", pw,
		"--socket", dir+"/r.sock", "--config", dir+"/resume.conf", "--run-dir", dir, s.dev)
	if _, err := os.Stat(dir + "/resume.conf"); err == nil {
		t.Error("configuration written")
	}
}
