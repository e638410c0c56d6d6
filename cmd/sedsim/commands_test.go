package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"512", 512, true}, {"4096B", 4096, true},
		{"1K", 1 << 10, true}, {"1k", 1 << 10, true}, {"64M", 64 << 20, true}, {"64MiB", 64 << 20, true},
		{"1G", 1 << 30, true}, {"2gib", 2 << 30, true}, {"3T", 3 << 40, true},
		{"16777215T", 16777215 << 40, true}, {"16777216T", 0, false},
		{"18446744073709551615", 1<<64 - 1, true}, {"18446744073709551616", 0, false},
		{"", 0, false}, {"M", 0, false}, {"-1M", 0, false}, {"1.5G", 0, false}, {"1MB", 0, false},
		{"1 M", 0, false}, {"1P", 0, false}, {"0x10", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[uint64]string{
		1 << 30: "1 GiB", 3 << 20: "3 MiB", 1536 << 10: "1536 KiB", 1000: "1000 bytes", 5<<20 + 1: "5.0 MiB", 2 << 40: "2 TiB",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q; want %q", n, got, want)
		}
	}
}

// runCmd runs sedsim in process and returns its exit status and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	code = exitCode(run(ctx, args, &out, &errb), &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	st := filepath.Join(dir, "d")
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, "unknown command"},
		{[]string{"create", "--size", "1M"}, "--state DIR is required"},
		{[]string{"create", "--state", st}, "--size SIZE is required"},
		{[]string{"create", "--state", st, "--size", "lots"}, "want a whole number"},
		{[]string{"create", "--state", st, "--size", "1000"}, "not a whole, non-zero number of 512-byte blocks"},
		{[]string{"create", "--state", st, "--size", "1M", "--block-size", "4096"}, ""},
		{[]string{"create", "--state", st, "--size", "6K", "--block-size", "4096"}, "4096-byte blocks"},
		{[]string{"create", "--state", st, "--size", "1M", "--block-size", "1024"}, "want 512 or 4096"},
		{[]string{"create", "--state", st, "--size", "1M", "--profile", "opal3"}, "unknown drive profile"},
		{[]string{"create", "--state", st, "--size", "1M", "--ranges", "0"}, "want 1..64"},
		{[]string{"create", "--state", st, "--size", "1M", "--ranges", "65"}, "want 1..64"},
		{[]string{"create", "--state", st, "--size", "1M", "--profile", "pyrite2", "--ranges", "2"}, "only the global range"},
		{[]string{"create", "--state", st, "--size", "1M", "--profile", "ruby", "--mbr-size", "1M"}, "no shadow MBR"},
		{[]string{"create", "--state", st, "--size", "1M", "--mbr-size", "2G"}, "want 1 byte to 1G"},
		{[]string{"create", "--state", st, "--size", "1M", "--users", "0"}, "want 1..256"},
		{[]string{"create", "--state", st, "--size", "1M", "--serial", strings.Repeat("S", 21)}, "longer than 20"},
		{[]string{"create", "--state", st, "--size", "1M", "--model", "caf\u00e9"}, "printable ASCII"},
		{[]string{"create", "--state", st, "--size", "1M", "extra"}, `unexpected argument "extra"`},
		{[]string{"create", "--nope"}, "not defined"},
		{[]string{"serve", "--state", st}, "--socket PATH are required"},
		{[]string{"serve", "--state", st, "--socket", "s", "--log-level", "loud"}, "want debug, info"},
		{[]string{"power-cycle"}, "exactly one of"},
		{[]string{"power-cycle", "--state", st, "--socket", "s"}, "exactly one of"},
		{[]string{"info"}, "exactly one of"},
	}
	for _, tt := range tests {
		code, _, stderr := runCmd(t, tt.args...)
		if tt.want == "" {
			continue // a valid line that sets up no case; see below
		}
		if code != 2 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "sedsim help") {
			t.Errorf("sedsim %q = exit %d, %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(st, "state")); err != nil {
		t.Fatalf("the one valid create made no drive: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("usage errors left files behind: %v", ents)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, _ := runCmd(t, args...)
		if code != 0 || !strings.Contains(out, "sedsim create --state DIR --size SIZE") {
			t.Errorf("sedsim %q = %d, %q", args, code, out)
		}
	}
	for _, c := range commands() {
		for _, args := range [][]string{{"help", c.name}, {c.name, "--help"}, {c.name, "-h"}} {
			code, out, _ := runCmd(t, args...)
			if code != 0 || !strings.HasPrefix(out, "Usage: sedsim "+c.name) || !strings.Contains(out, "Example") {
				t.Errorf("sedsim %q = %d, %q; want its usage with examples", args, code, out)
			}
		}
	}
}

func TestCreateInfoPowerCycle(t *testing.T) {
	dir := t.TempDir()
	st := filepath.Join(dir, "d1")
	code, out, stderr := runCmd(t, "create", "--state", st, "--size", "8M", "--serial", "SER1", "--try-limit", "3", "--ranges", "2")
	if code != 0 {
		t.Fatalf("create = %d, %s", code, stderr)
	}
	var psid string
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "PSID: "); ok {
			psid = p
		}
	}
	if len(psid) != 32 || !strings.Contains(out, "Keep the PSID") {
		t.Fatalf("create printed %q; want the PSID and a line saying to keep it", out)
	}

	// Again: refused, and the drive is untouched.
	before, _ := os.ReadFile(filepath.Join(st, "state"))
	code, _, stderr = runCmd(t, "create", "--state", st, "--size", "8M")
	if code != 1 || !strings.Contains(stderr, "already holds a sedsim drive") {
		t.Errorf("create over a drive = %d, %q; want 1 and a refusal", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(st, "state")); !bytes.Equal(before, after) {
		t.Errorf("a refused create changed the state file")
	}
	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "x"), nil, 0o600)
	if code, _, stderr = runCmd(t, "create", "--state", other, "--size", "8M"); code != 1 || !strings.Contains(stderr, "not empty") {
		t.Errorf("create in a non-empty directory = %d, %q", code, stderr)
	}

	// The PSID is the drive's: it reverts it.
	d, err := sim.Open(st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c := session.NewClient(d.Transport(), nil)
	sid := hash.PIN("sid-password-0123456789abcdef012")
	if err := opal.TakeOwnership(ctx, c, sid); err != nil {
		t.Fatal(err)
	}
	if err := opal.Activate(ctx, c, sid, nil); err != nil {
		t.Fatal(err)
	}
	a := opal.Auth{Authority: method.Admin(1), PIN: sid}
	if err := opal.SetupRange(ctx, c, a, 1, 1024, 2048); err != nil {
		t.Fatal(err)
	}
	if err := opal.SetLockEnabled(ctx, c, a, 1, true, true); err != nil {
		t.Fatal(err)
	}
	d.Close()

	info := func() infoOut {
		t.Helper()
		code, out, stderr := runCmd(t, "info", "--state", st, "--json")
		if code != 0 {
			t.Fatalf("info = %d, %s", code, stderr)
		}
		var o infoOut
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Fatalf("info --json: %v\n%s", err, out)
		}
		return o
	}
	o := info()
	if o.Serial != "SER1" || o.Blocks != 16384 || o.Capacity != 8<<20 || *o.TryLimit != 3 || !*o.Owned || o.LockingSP != "Manufactured" || len(o.Ranges) != 3 {
		t.Fatalf("info = %+v", o)
	}
	if r := o.Ranges[1]; r.Start != 1024 || r.Length != 2048 || r.State != "unlocked" || o.Locked {
		t.Errorf("range 1 before a power cycle = %+v, locked %v", r, o.Locked)
	}
	if code, out, stderr := runCmd(t, "power-cycle", "--state", st); code != 0 || !strings.Contains(out, "power-cycled") {
		t.Fatalf("power-cycle = %d, %q, %q", code, out, stderr)
	}
	o = info()
	if r := o.Ranges[1]; r.State != "locked" || !o.Locked || o.Ranges[0].State != "unlocked (locking disabled)" {
		t.Errorf("after a power cycle: ranges %+v, locked %v; want range 1 locked", o.Ranges, o.Locked)
	}
	code, text, _ := runCmd(t, "info", "--state", st)
	if code != 0 || !strings.Contains(text, "1           1024   2048    locked") || !strings.Contains(text, "(1 more ranges unused") {
		t.Errorf("info text:\n%s", text)
	}

	// The PSID reverts it.
	d, err = sim.Open(st)
	if err != nil {
		t.Fatal(err)
	}
	c = session.NewClient(d.Transport(), nil)
	if err := opal.Revert(ctx, c, opal.Auth{Authority: method.PSID, PIN: hash.PIN(psid)}); err != nil {
		t.Errorf("Revert with the printed PSID: %v", err)
	}
	d.Close()
	if o := info(); *o.Owned || o.LockingSP != "Manufactured-Inactive" {
		t.Errorf("after a PSID revert: %+v", o)
	}
}

func TestCreatePSIDFile(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "psid")
	code, out, stderr := runCmd(t, "create", "--state", filepath.Join(dir, "d"), "--size", "1M", "--psid-file", pf)
	if code != 0 {
		t.Fatalf("create = %d, %s", code, stderr)
	}
	b, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	psid := strings.TrimSpace(string(b))
	if len(psid) != 32 || strings.Contains(out, psid) || !strings.Contains(out, pf) {
		t.Errorf("PSID file %q, stdout %q: want the PSID in the file only", b, out)
	}
	if fi, _ := os.Stat(pf); fi.Mode().Perm() != 0o600 {
		t.Errorf("PSID file mode %v; want 0600", fi.Mode())
	}
	// An existing PSID file is not overwritten, and no drive is made.
	code, _, stderr = runCmd(t, "create", "--state", filepath.Join(dir, "d2"), "--size", "1M", "--psid-file", pf)
	if code != 1 || !strings.Contains(stderr, "will not overwrite") {
		t.Errorf("create with an existing PSID file = %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "d2")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused create made %s: %v", filepath.Join(dir, "d2"), err)
	}
}

func TestRuntimeErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	corrupt := filepath.Join(dir, "corrupt")
	os.Mkdir(corrupt, 0o700)
	os.WriteFile(filepath.Join(corrupt, "state"), []byte(`{"format":"something else"}`), 0o600)
	sock := filepath.Join(dir, "nobody.sock")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"info", "--state", missing}, "create one first"},
		{[]string{"serve", "--state", missing, "--socket", sock}, "create one first"},
		{[]string{"power-cycle", "--state", missing}, "create one first"},
		{[]string{"info", "--state", corrupt}, "not a valid sedsim drive state"},
		{[]string{"serve", "--state", corrupt, "--socket", sock}, "choose another --state"},
		{[]string{"info", "--socket", sock}, "no sedsim answers on"},
		{[]string{"power-cycle", "--socket", sock}, "sedsim serve --state DIR --socket"},
	}
	for _, tt := range tests {
		code, _, stderr := runCmd(t, tt.args...)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("sedsim %q = %d, %q; want exit 1 and %q", tt.args, code, stderr, tt.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(corrupt, "state")); string(b) != `{"format":"something else"}` {
		t.Errorf("the corrupt state file was changed: %q", b)
	}
}

// TestServe runs serve in process: the socket exists once "ready" is
// printed, a host reaches the drive through it, and cancelling stops it
// cleanly with the socket removed.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	st, sock := filepath.Join(dir, "d"), filepath.Join(dir, "sock")
	if code, _, stderr := runCmd(t, "create", "--state", st, "--size", "4M"); code != 0 {
		t.Fatal(stderr)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"serve", "--state", st, "--socket", sock, "--log-level", "warn"}, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	line := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(pr)
		line <- string(b)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket 30s after serve started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _, stderr := runCmd(t, "serve", "--state", st, "--socket", filepath.Join(dir, "s2")); code != 1 || !strings.Contains(stderr, "in use by another process") {
		t.Errorf("a second serve of the drive = %d, %q", code, stderr)
	}
	wc, err := opalwire.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	id, err := wc.Identify(ctx)
	wc.Close()
	if err != nil || id.Blocks != 8192 {
		t.Fatalf("Identify = %+v, %v", id, err)
	}
	code, out, stderr := runCmd(t, "info", "--socket", sock, "--json")
	var o infoOut
	if code != 0 || json.Unmarshal([]byte(out), &o) != nil || o.Profile != "opal2" || o.LockingSP != "Manufactured-Inactive" || o.Capacity != 4<<20 {
		t.Errorf("info --socket = %d, %s, %s", code, out, stderr)
	}
	if code, _, stderr := runCmd(t, "power-cycle", "--socket", sock); code != 0 {
		t.Errorf("power-cycle --socket = %d, %s", code, stderr)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after cancel; want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve still running 30s after cancel")
	}
	if l := <-line; !strings.HasPrefix(l, "ready: ") || !strings.Contains(l, sock) {
		t.Errorf("serve printed %q; want a ready line naming the socket", l)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after serve stopped: %v", err)
	}
}
