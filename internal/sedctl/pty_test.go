//go:build linux

package sedctl_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/sedctl"
	"github.com/shiftlock/shiftlock/sim"
)

// terminal is a pseudo-terminal sedctl runs on (stdin and stderr), driven
// like a person at a keyboard: wait for a prompt, type a line.
type terminal struct {
	t      *testing.T
	master *os.File
	slave  *os.File

	mu  sync.Mutex
	out bytes.Buffer // everything sedctl wrote to the terminal
}

func newTerminal(t *testing.T) *terminal {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty: %v", err)
	}
	term := &terminal{t: t, master: m, slave: s}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		s.Close()
		m.Close()
		<-done
	})
	return term
}

func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// expect waits until the terminal shows want n times in all, then types
// line (plus Enter).
func (term *terminal) expect(want string, n int, line string) {
	term.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(term.output(), want) < n {
		if time.Now().After(deadline) {
			term.t.Fatalf("terminal never showed %q (%d times); it shows:\n%s", want, n, term.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := term.master.WriteString(line + "\n"); err != nil {
		term.t.Fatal(err)
	}
}

// start runs sedctl on the terminal; wait returns its result, the stderr
// part being the terminal's output.
func (term *terminal) start(args ...string) (wait func() result) {
	var out bytes.Buffer
	ch := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ch <- sedctl.Main(ctx, args, sedctl.IO{Stdin: term.slave, Stdout: &out, Stderr: term.slave})
	}()
	return func() result {
		code := <-ch
		time.Sleep(20 * time.Millisecond) // let the reader drain the terminal
		return result{code: code, stdout: out.String(), stderr: term.output()}
	}
}

// TestTerminal: passwords typed at a no-echo prompt (twice when setting
// one), the typed confirmation of destructive commands, and the progress
// bar of mbr load.
func TestTerminal(t *testing.T) {
	s := newSim(t, sim.Config{})
	const password = "typed-secret-42"

	// Two different passwords: refused, nothing changed.
	term := newTerminal(t)
	wait := term.start("setup", s.dev)
	term.expect("New SID password: ", 1, password)
	term.expect("Repeat new SID password: ", 1, password+"x")
	if r := wait(); r.code != sedctl.ExitData || !strings.Contains(r.stderr, "differ") {
		t.Fatalf("mismatched passwords: %v", r)
	}
	var q struct {
		LockingSPState string `json:"locking_sp_state"`
	}
	runJSON(t, &q, "query", s.dev)
	if q.LockingSPState != "Manufactured-Inactive" {
		t.Fatalf("mismatched passwords changed the drive: %s", q.LockingSPState)
	}

	// The same twice: set, and never echoed.
	term = newTerminal(t)
	wait = term.start("setup", s.dev)
	term.expect("New SID password: ", 1, password)
	term.expect("Repeat new SID password: ", 1, password)
	r := wait()
	if r.code != 0 {
		t.Fatalf("setup at the terminal: %v", r)
	}
	if strings.Contains(r.stderr, password) || strings.Contains(r.stdout, password) {
		t.Errorf("the typed password was echoed:\n%s", r.stderr)
	}
	pw := secretFile(t, password)
	mustRun(t, "range", "list", "--password-file", pw, s.dev)

	// The current password is asked once.
	term = newTerminal(t)
	wait = term.start("range", "lock", "1", s.dev)
	term.expect("Admin1 password: ", 1, password)
	if r := wait(); r.code != 0 || strings.Contains(r.stderr, "Repeat") || strings.Contains(r.stderr, password) {
		t.Errorf("range lock at the terminal: %v", r)
	}

	// Destructive commands ask for ERASE: anything else leaves the drive.
	data := bytes.Repeat([]byte("x"), 512)
	if err := s.d.Write(0, data); err != nil {
		t.Fatal(err)
	}
	term = newTerminal(t)
	wait = term.start("revert", "--tper", "--password-file", pw, s.dev)
	term.expect("Type ERASE to continue: ", 1, "yes")
	if r := wait(); r.code != sedctl.ExitRefused || !strings.Contains(r.stderr, "not confirmed") || !strings.Contains(r.stderr, "ALL DATA IS ERASED") {
		t.Errorf("revert answered 'yes': %v", r)
	}
	if !bytes.Equal(s.block(0), data) {
		t.Fatal("an unconfirmed revert erased the data")
	}
	term = newTerminal(t)
	wait = term.start("revert", "--tper", s.dev)
	term.expect("Type ERASE to continue: ", 1, "ERASE")
	term.expect("SID password: ", 1, password)
	if r := wait(); r.code != 0 {
		t.Fatalf("confirmed revert: %v", r)
	}
	if bytes.Equal(s.block(0), data) {
		t.Error("confirmed revert kept the data")
	}

	// The progress bar shows on a terminal, and not with --json.
	mustRun(t, "setup", "--password-file", pw, s.dev)
	img := filepath.Join(t.TempDir(), "pba.img")
	if err := os.WriteFile(img, bytes.Repeat([]byte{0x55}, 512<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	term = newTerminal(t)
	wait = term.start("mbr", "load", img, "--password-file", pw, s.dev)
	r = wait()
	if r.code != 0 || !strings.Contains(r.stderr, "\r") || !strings.Contains(r.stderr, "100%") || !strings.Contains(r.stderr, "[####") {
		t.Errorf("mbr load on a terminal: no progress bar: %q", r.stderr)
	}
	term = newTerminal(t)
	wait = term.start("mbr", "load", img, "--json", "--password-file", pw, s.dev)
	if r := wait(); r.code != 0 || strings.Contains(r.stderr, "%") {
		t.Errorf("mbr load --json on a terminal: %q", r.stderr)
	}
}
