package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/sim"
	simwire "github.com/shiftlock/shiftlock/sim/wire"
)

// TestBinary builds sedctl and runs it as a user would, against a sedsim
// drive served on a Unix socket by this test: passwords from a file and
// from an inherited descriptor, JSON output, exit codes.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sedctl")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	d, _, err := sim.Create(filepath.Join(dir, "drive"), sim.Config{Blocks: 1 << 16, MBRSize: 1 << 20, DataStoreSize: 64 << 10, TryLimit: 5})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sedsim.sock")
	l, err := simwire.Listen(sock)
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- simwire.Serve(ctx, l, d, nil) }()
	t.Cleanup(func() {
		cancel()
		<-served
		d.Close()
	})
	dev := "sim:" + sock

	type result struct {
		code           int
		stdout, stderr string
	}
	sedctl := func(extra []*os.File, stdin string, args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		cmd.ExtraFiles = extra
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run sedctl: %v", err)
		}
		return result{code, out.String(), errb.String()}
	}

	pwFile := filepath.Join(dir, "sid.pw")
	if err := os.WriteFile(pwFile, []byte("binary password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := sedctl(nil, "", "setup", "--json", "--password-file", pwFile, dev)
	if r.code != 0 {
		t.Fatalf("setup: %+v", r)
	}
	var setup struct {
		Owned     bool `json:"owned"`
		Activated bool `json:"activated"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &setup); err != nil || !setup.Owned || !setup.Activated {
		t.Fatalf("setup --json: %v %+v\n%s", err, setup, r.stdout)
	}

	// --password-fd 3: the child inherits the read end of a pipe as fd 3.
	withFD := func(content string, args ...string) result {
		t.Helper()
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		go func() { wr.WriteString(content); wr.Close() }()
		return sedctl([]*os.File{rd}, "", args...)
	}
	if r := withFD("binary password\n", "range", "setup", "1", "0", "64", "--password-fd", "3", dev); r.code != 0 {
		t.Fatalf("range setup --password-fd 3: %+v", r)
	}
	if r := withFD("binary password\n", "range", "enable", "1", "--password-fd", "3", dev); r.code != 0 {
		t.Fatalf("range enable: %+v", r)
	}
	if r := withFD("binary password\n", "--setLockingRange", "1", "LK", "--password-fd", "3", dev); r.code != 0 {
		t.Fatalf("--setLockingRange: %+v", r)
	}
	r = withFD("binary password\n", "range", "list", "1", "--json", "--password-fd", "3", dev)
	var list struct {
		Ranges []struct {
			Range      uint32 `json:"range"`
			ReadLocked bool   `json:"read_locked"`
			Length     uint64 `json:"length"`
		} `json:"ranges"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list.Ranges) != 1 || !list.Ranges[0].ReadLocked || list.Ranges[0].Length != 64 {
		t.Fatalf("range list 1: %+v %+v", r, list)
	}
	buf := make([]byte, 512)
	if d.Read(0, buf) == nil {
		t.Error("range 1 locked through the binary: block 0 readable")
	}

	// A wrong password: exit 1 (NOT_AUTHORIZED, as sedutil-cli), JSON
	// error on stdout, and the password nowhere.
	r = withFD("not the password\n", "range", "unlock", "1", "--json", "--password-fd", "3", dev)
	if r.code != 1 || !strings.Contains(r.stderr, "NOT_AUTHORIZED") || strings.Contains(r.stdout+r.stderr, "not the password") {
		t.Errorf("wrong password: %+v", r)
	}
	var je struct {
		Error struct {
			Status   string `json:"status"`
			ExitCode int    `json:"exit_code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &je); err != nil || je.Error.Status != "NOT_AUTHORIZED" || je.Error.ExitCode != 1 {
		t.Errorf("wrong password JSON: %v %+v", err, je)
	}
	// A password on the command line: usage error 64, nothing sent.
	if r := sedctl(nil, "", "--setLockingRange", "1", "RW", "binary password", dev); r.code != 64 || !strings.Contains(r.stderr, "--password-fd") {
		t.Errorf("argv password: %+v", r)
	}
	// No terminal and no password source: 64.
	if r := sedctl(nil, "binary password\n", "range", "unlock", "1", dev); r.code != 64 || !strings.Contains(r.stderr, "not a terminal") {
		t.Errorf("password on piped stdin: %+v", r)
	}
	if r := withFD("binary password\n", "range", "unlock", "1", "--password-fd", "3", dev); r.code != 0 {
		t.Fatalf("range unlock: %+v", r)
	}
	if d.Read(0, buf) != nil {
		t.Error("range 1 unlocked through the binary: block 0 refused")
	}
	// Two passwords on one descriptor: current, then new.
	if r := withFD("binary password\nnew password\n", "password", "set", "--authority", "admin1", "--password-fd", "3", "--new-password-fd", "3", dev); r.code != 0 {
		t.Fatalf("password set from fd 3: %+v", r)
	}
	if r := withFD("new password\n", "range", "list", "--password-fd", "3", dev); r.code != 0 || !strings.Contains(r.stdout, "RANGE") {
		t.Errorf("range list with the new password: %+v", r)
	}
	if r := sedctl(nil, "", "frobnicate"); r.code != 64 {
		t.Errorf("unknown command: %+v", r)
	}
	if r := sedctl(nil, "", "--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "sedctl ") {
		t.Errorf("--version: %+v", r)
	}
}
