package resume

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/sim"
	simwire "github.com/shiftlock/shiftlock/sim/wire"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/transport"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

const (
	sidPassword    = "sid-password"
	adminPassword  = "admin1-password"
	user1Password  = "user1-password"
	blockSize      = 512
	rangeBlocks    = 2048 // 1 MiB per range
	testCtxTimeout = 2 * time.Minute
)

// shortDir is a temporary directory with a short path (Unix socket paths
// are limited to 108 bytes), removed in cleanup.
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testCtxTimeout)
	t.Cleanup(cancel)
	return ctx
}

// simOpen opens "sim:PATH" over opalwire, as the CLI does.
func simOpen(ctx context.Context, device string) (transport.Transport, error) {
	p, ok := strings.CutPrefix(device, "sim:")
	if !ok {
		return nil, errors.New("test opener: want sim:PATH")
	}
	return opalwire.Dial(ctx, p)
}

// testDrive is a sedsim drive served over a real Unix socket.
type testDrive struct {
	t      testing.TB
	d      *sim.Drive
	spec   string
	serial []byte
	scheme *hash.Scheme
	ctx    context.Context
}

// pinFor derives a password's PIN for this drive.
func (td *testDrive) pinFor(pw string) hash.PIN {
	td.t.Helper()
	p, err := td.scheme.Derive([]byte(pw), td.serial)
	if err != nil {
		td.t.Fatal(err)
	}
	return p
}

func (td *testDrive) admin1() opal.Auth {
	return opal.Auth{Authority: method.Admin(1), PIN: td.pinFor(adminPassword)}
}

// newTestDrive creates a drive, owned and activated (Admin1's PIN derived
// from adminPassword with scheme), with ranges 1..nranges set up and
// lock-enabled, served on a socket under dir.
func newTestDrive(t testing.TB, dir, name string, cfg sim.Config, scheme *hash.Scheme, nranges int) *testDrive {
	t.Helper()
	if cfg.Blocks == 0 {
		cfg.Blocks = 1 << 16
	}
	if cfg.MBRSize == 0 {
		cfg.MBRSize = 1 << 20
	}
	if cfg.DataStoreSize == 0 {
		cfg.DataStoreSize = 1 << 16
	}
	d, _, err := sim.Create(filepath.Join(dir, name), cfg)
	if err != nil {
		t.Fatalf("sim.Create: %v", err)
	}
	sock := filepath.Join(dir, name+".sock")
	l, err := simwire.Listen(sock)
	if err != nil {
		d.Close()
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- simwire.Serve(ctx, l, d, nil) }()
	t.Cleanup(func() {
		cancel()
		<-done
		d.Close()
	})
	id := d.Info()
	td := &testDrive{t: t, d: d, spec: "sim:" + sock, serial: id.Serial[:], scheme: scheme, ctx: testCtx(t)}
	c := session.NewClient(d.Transport(), nil)
	sid := td.pinFor(sidPassword)
	td.must("TakeOwnership", opal.TakeOwnership(td.ctx, c, sid))
	td.must("Activate", opal.Activate(td.ctx, c, sid, nil))
	a1 := td.admin1()
	td.must("SetPIN Admin1", opal.SetPIN(td.ctx, c, opal.Auth{Authority: method.Admin(1), PIN: sid}, method.Admin(1), a1.PIN))
	// Admin2 reads Admin1's Tries: a session as Admin1 would reset them.
	td.must("enable Admin2", opal.SetAuthorityEnabled(td.ctx, c, a1, method.Admin(2), true))
	td.must("SetPIN Admin2", opal.SetPIN(td.ctx, c, a1, method.Admin(2), td.pinFor("admin2")))
	for n := 1; n <= nranges; n++ {
		td.must("SetupRange", opal.SetupRange(td.ctx, c, a1, uint32(n), uint64(n)*rangeBlocks, rangeBlocks))
		td.must("SetLockEnabled", opal.SetLockEnabled(td.ctx, c, a1, uint32(n), true, true))
	}
	return td
}

func (td *testDrive) must(what string, err error) {
	td.t.Helper()
	if err != nil {
		td.t.Fatalf("%s: %v", what, err)
	}
}

func (td *testDrive) client() *session.Client { return session.NewClient(td.d.Transport(), nil) }

// readable reports whether the first block of range n can be read.
func (td *testDrive) readable(n uint32) bool {
	buf := make([]byte, blockSize)
	err := td.d.Read(uint64(n)*rangeBlocks, buf)
	if err != nil && !errors.Is(err, simwire.ErrAccessDenied) {
		td.t.Fatalf("read range %d: %v", n, err)
	}
	return err == nil
}

func (td *testDrive) wantReadable(n uint32, want bool) {
	td.t.Helper()
	if got := td.readable(n); got != want {
		td.t.Fatalf("%s range %d readable = %v; want %v", td.spec, n, got, want)
	}
}

// enableShadowMBR turns the shadow MBR on (Done, so the media shows until
// the next power cycle).
func (td *testDrive) enableShadowMBR() {
	on := true
	td.must("SetMBRControl", opal.SetMBRControl(td.ctx, td.client(), td.admin1(),
		opal.MBRSettings{Enable: &on, Done: &on, DoneOnReset: []opal.ResetType{opal.PowerCycle}}))
}

func (td *testDrive) mbrDone() bool {
	td.t.Helper()
	d, err := td.client().Discover(td.ctx)
	td.must("Discover", err)
	return d.MBRDone()
}

// tries returns a's TryLimit and Tries, read as Admin2 (a session as a
// itself would reset them).
func (td *testDrive) tries(a method.UID) (uint64, uint64) {
	td.t.Helper()
	limit, tries, err := opal.Tries(td.ctx, td.client(), method.LockingSP, opal.Auth{Authority: method.Admin(2), PIN: td.pinFor("admin2")}, a)
	td.must("Tries", err)
	return limit, tries
}

// logBuffer collects the daemon's log.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeClock is an injected suspended-time clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Suspended() (int64, error) { return c.ns.Load(), nil }
func (c *fakeClock) suspend(d time.Duration)   { c.ns.Add(d.Nanoseconds()) }

// testDaemon is a running daemon on a socket.
type testDaemon struct {
	d      *Daemon
	socket string
	log    *logBuffer
	stop   func()
}

// startDaemon runs a daemon until the test ends (or stop). Unless set,
// self-detection is off, the configuration is none and debounce is 1 ns.
func startDaemon(t testing.TB, dir string, opts DaemonOptions) *testDaemon {
	t.Helper()
	if opts.Socket == "" {
		opts.Socket = filepath.Join(dir, "resume.sock")
	}
	if opts.Open == nil {
		opts.Open = simOpen
	}
	if opts.Config == "" {
		opts.Config = "-"
	}
	if opts.DetectInterval == 0 {
		opts.DetectInterval = -1
	}
	if opts.Debounce == 0 {
		opts.Debounce = time.Nanosecond
	}
	if opts.AllowUID == 0 {
		opts.AllowUID = uint32(os.Getuid())
	}
	lb := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	d, err := NewDaemon(opts)
	if err != nil {
		t.Fatalf("NewDaemon: %v", err)
	}
	l, err := ListenSocket(opts.Socket)
	if err != nil {
		d.Close()
		t.Fatalf("ListenSocket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, l) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
			d.Close()
		})
	}
	t.Cleanup(stop)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon ended at once: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("daemon not ready")
	}
	return &testDaemon{d: d, socket: opts.Socket, log: lb, stop: stop}
}

// enable runs Enable for td on the daemon path with the admin password
// from a file.
func enable(t testing.TB, td *testDrive, dir string, td2 *testDaemon, o EnableOptions) string {
	t.Helper()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(adminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Device = td.spec
	o.Open = simOpen
	o.Hash = td.scheme
	if o.Password.Prompt == nil && o.Password.File == "" && o.Password.Credential == "" {
		o.Password = PasswordSource{File: pwFile, FileOwner: -1}
	}
	if o.Socket == "" && td2 != nil {
		o.Socket = td2.socket
	}
	if o.Config == "" {
		o.Config = filepath.Join(dir, "resume.conf")
	}
	if o.RunDir == "" {
		o.RunDir = filepath.Join(dir, "run")
	}
	var out bytes.Buffer
	if err := Enable(td.ctx, o, &out); err != nil {
		t.Fatalf("Enable: %v\n%s", err, out.String())
	}
	return out.String()
}

func notify(t testing.TB, ctx context.Context, socket string) *RunReport {
	t.Helper()
	resp, err := call(ctx, socket, Request{Op: OpNotify, Event: EventPost})
	if resp == nil || resp.Run == nil {
		t.Fatalf("notify post: %v", err)
	}
	if (err == nil) != resp.Run.OK() {
		t.Fatalf("notify post: error %v with run %+v", err, resp.Run)
	}
	return resp.Run
}

type contextT = context.Context

func simConfig() sim.Config { return sim.Config{} }
