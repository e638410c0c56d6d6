package sedctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/internal/sedctl"
	"github.com/shiftlock/shiftlock/sim"
	simwire "github.com/shiftlock/shiftlock/sim/wire"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/session"
)

// testSim is a sedsim drive served on a socket in t.TempDir().
type testSim struct {
	t    *testing.T
	d    *sim.Drive
	psid string
	sock string
	dev  string // "sim:" + sock
	dir  string
}

// newSim creates a small drive (32 MiB, 1 MiB MBR, 64 KiB DataStore, try
// limit 3 unless cfg says otherwise) and serves it.
func newSim(t *testing.T, cfg sim.Config) *testSim {
	t.Helper()
	if cfg.Blocks == 0 {
		cfg.Blocks = 1 << 16
	}
	if cfg.MBRSize == 0 && (cfg.Profile == "" || cfg.Profile == sim.Opal2 || cfg.Profile == sim.Opal1) {
		cfg.MBRSize = 1 << 20
	}
	if cfg.DataStoreSize == 0 {
		cfg.DataStoreSize = 64 << 10
	}
	if cfg.TryLimit == 0 {
		cfg.TryLimit = 3
	}
	dir := t.TempDir()
	d, psid, err := sim.Create(filepath.Join(dir, "drive"), cfg)
	if err != nil {
		t.Fatalf("sim.Create: %v", err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := simwire.Listen(sock)
	if err != nil {
		d.Close()
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- simwire.Serve(ctx, l, d, nil) }()
	t.Cleanup(func() {
		cancel()
		<-done
		d.Close()
	})
	return &testSim{t: t, d: d, psid: psid, sock: sock, dev: "sim:" + sock, dir: dir}
}

// client is a library Client on the drive, in process.
func (s *testSim) client() *session.Client { return session.NewClient(s.d.Transport(), nil) }

// pin derives password's PIN for this drive with scheme.
func (s *testSim) pin(scheme *hash.Scheme, password string) hash.PIN {
	s.t.Helper()
	id := s.d.Info()
	p, err := scheme.Derive([]byte(password), id.Serial[:])
	if err != nil {
		s.t.Fatalf("Derive: %v", err)
	}
	return p
}

// secretFile writes content (plus a newline) to a mode 0600 file.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + itoa(r.code) + "\nstdout: " + r.stdout + "\nstderr: " + r.stderr
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// run runs sedctl in process with stdin and returns what it did.
func run(t *testing.T, stdin io.Reader, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := sedctl.Main(ctx, args, sedctl.IO{Stdin: stdin, Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
	return result{code, out.String(), errb.String()}
}

// sedctl runs a command that must succeed.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := run(t, nil, nil, args...)
	if r.code != 0 {
		t.Fatalf("sedctl %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// wantCode runs a command that must fail with code, and whose stderr must
// hold every one of msgs.
func wantCode(t *testing.T, code int, msgs []string, args ...string) result {
	t.Helper()
	r := run(t, nil, nil, args...)
	if r.code != code {
		t.Fatalf("sedctl %s: exit %d; want %d\n%v", strings.Join(args, " "), r.code, code, r)
	}
	for _, m := range msgs {
		if !strings.Contains(r.stderr, m) {
			t.Errorf("sedctl %s: stderr lacks %q:\n%s", strings.Join(args, " "), m, r.stderr)
		}
	}
	return r
}

// decode parses JSON output into v.
func decode(t *testing.T, r result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, r.stdout)
	}
}

// setupDrive runs 'sedctl setup' with password pw and returns the password
// file.
func (s *testSim) setup(pw string) string {
	s.t.Helper()
	f := secretFile(s.t, pw)
	mustRun(s.t, "setup", "--password-file", f, s.dev)
	return f
}

// runJSON runs a command with --json that must succeed, checks that stderr
// is empty and decodes stdout into v (a pointer).
func runJSON(t *testing.T, v any, args ...string) result {
	t.Helper()
	r := run(t, nil, nil, append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("sedctl %s --json: %v", strings.Join(args, " "), r)
	}
	if r.stderr != "" {
		t.Errorf("sedctl %s --json: stderr not empty: %s", strings.Join(args, " "), r.stderr)
	}
	decode(t, r, v)
	return r
}

// jsonError is the object sedctl prints on stdout for a failure with --json.
type jsonError struct {
	Error struct {
		Message    string   `json:"message"`
		ExitCode   int      `json:"exit_code"`
		Status     string   `json:"status"`
		StatusCode int      `json:"status_code"`
		Hints      []string `json:"hints"`
		Authority  string   `json:"authority"`
		TriesLeft  *uint64  `json:"tries_left"`
	} `json:"error"`
}

// failJSON runs a command with --json that must fail with code and
// returns its decoded error object.
func failJSON(t *testing.T, code int, args ...string) jsonError {
	t.Helper()
	r := run(t, nil, nil, append(args, "--json")...)
	if r.code != code {
		t.Fatalf("sedctl %s --json: exit %d; want %d\n%v", strings.Join(args, " "), r.code, code, r)
	}
	var je jsonError
	decode(t, r, &je)
	if je.Error.ExitCode != code || je.Error.Message == "" {
		t.Errorf("sedctl %s --json: error object %+v; want exit_code %d and a message", strings.Join(args, " "), je.Error, code)
	}
	return je
}

// done is the object every command that changes the drive prints.
type done struct {
	Device string  `json:"device"`
	Action string  `json:"action"`
	Range  *uint32 `json:"range"`
	Detail string  `json:"detail"`
}

// rangeJSON is one range of 'range list --json'.
type rangeJSON struct {
	Range            uint32   `json:"range"`
	Start            uint64   `json:"start"`
	Length           uint64   `json:"length"`
	ReadLockEnabled  bool     `json:"read_lock_enabled"`
	WriteLockEnabled bool     `json:"write_lock_enabled"`
	ReadLocked       bool     `json:"read_locked"`
	WriteLocked      bool     `json:"write_locked"`
	LockOnReset      []string `json:"lock_on_reset"`
	Readable         bool     `json:"readable"`
}

// ranges runs 'range list --json' with the password in pwFile.
func (s *testSim) ranges(pwFile string, extra ...string) []rangeJSON {
	s.t.Helper()
	var out struct {
		Device string      `json:"device"`
		Ranges []rangeJSON `json:"ranges"`
	}
	runJSON(s.t, &out, append(append([]string{"range", "list", "--password-file", pwFile}, extra...), s.dev)...)
	if out.Device != s.dev {
		s.t.Errorf("range list: device %q; want %q", out.Device, s.dev)
	}
	return out.Ranges
}

// readable reports whether the drive lets the host read block lba.
func (s *testSim) readable(lba uint64) bool {
	buf := make([]byte, s.d.Info().BlockSize)
	return s.d.Read(lba, buf) == nil
}

// block returns block lba, failing the test if it cannot be read.
func (s *testSim) block(lba uint64) []byte {
	s.t.Helper()
	buf := make([]byte, s.d.Info().BlockSize)
	if err := s.d.Read(lba, buf); err != nil {
		s.t.Fatalf("read block %d: %v", lba, err)
	}
	return buf
}
