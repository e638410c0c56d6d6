package sim

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"

	simwire "github.com/shiftlock/shiftlock/sim/wire"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/token"
	"github.com/shiftlock/shiftlock/tcg/transport"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

func TestPyrite(t *testing.T) {
	d, _ := newTestDrive(t, Config{Profile: Pyrite2})
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	if v := s.column(method.LockingInfo, 4); !v.Equal(u(0)) {
		t.Errorf("MaxRanges = %v; want 0", v)
	}
	if v := s.column(method.LockingInfo, 3); !v.Equal(u(0)) {
		t.Errorf("EncryptSupport = %v; want 0", v)
	}
	wantStatus(t, "GenKey on Pyrite", s.do(method.NewCall(method.KAES256(0), method.GenKey)), method.StatusInvalidParameter)
	wantStatus(t, "Set range 1 on Pyrite", s.set(method.LockingRange(1), named(7, b(true))), method.StatusInvalidParameter)
	wantStatus(t, "MBRControl on Pyrite", s.set(method.MBRControl, named(1, b(true))), method.StatusInvalidParameter)
	row, _ := s.get(method.GlobalRange, 0, 10)
	if _, ok := row.Lookup(10); ok {
		t.Errorf("Pyrite global range has an ActiveKey: %v", row)
	}
	data := bytes.Repeat([]byte("pyrite"), 512)
	if err := d.Write(0, data[:3072]); err != nil {
		t.Fatal(err)
	}
	s.mustSet(method.GlobalRange, named(5, b(true)), named(7, b(true)))
	if err := d.Read(0, make([]byte, 512)); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("locked Pyrite read: %v", err)
	}
	s.mustSet(method.GlobalRange, named(7, b(false)))
	// RevertSP without keep erases the data (block erase: zeros).
	s.must(method.NewRevertSP(false))
	got := make([]byte, 3072)
	if err := d.Read(0, got); err != nil || !bytes.Equal(got, make([]byte, 3072)) {
		t.Errorf("after Pyrite RevertSP: %v, zeros %v", err, bytes.Equal(got, make([]byte, 3072)))
	}
	if h.discovery().DataRemoval.Mechanisms != 1<<1 {
		t.Errorf("Pyrite data removal mechanisms = %v; want block erase", h.discovery().DataRemoval.Mechanisms)
	}
}

func TestRubyAndOpal1(t *testing.T) {
	d, _ := newTestDrive(t, Config{Profile: Ruby})
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	wantStatus(t, "MBR on Ruby", s.do(method.NewSetBytes(method.MBR, 0, []byte("x"))), method.StatusInvalidParameter)
	s.mustSet(method.LockingRange(1), named(3, u(8)), named(4, u(8)))
	s.end()

	d, _ = newTestDrive(t, Config{Profile: Opal1})
	h = newHost(t, d)
	h.takeOwnership([]byte("sid"))
	s = h.admin1([]byte("sid"))
	wantStatus(t, "LockOnReset Programmatic on Opal 1", s.set(method.LockingRange(1), named(9, token.List(u(0), u(3)))), method.StatusInvalidParameter)
	s.mustSet(method.MBRControl, named(1, b(true)), named(2, b(true)))
	s.end()
	a := h.mustStart(method.AdminSP, method.SID, []byte("sid"), true)
	wantStatus(t, "Activate with SUM on Opal 1", a.do(method.NewCall(method.LockingSP, method.Activate,
		token.Named(method.ParamSingleUserModeSelectionList, token.List(method.LockingRange(1).Value())))), method.StatusInvalidParameter)
	a.end()
	if err := d.Transport().IFSend(context.Background(), 2, 5, make([]byte, 512)); !errors.Is(err, transport.ErrInvalidField) {
		t.Errorf("Block SID on Opal 1: %v; want ErrInvalidField", err)
	}
}

func TestBlockSIDAndTPerReset(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	ctx := context.Background()
	if err := h.tr.IFSend(ctx, 2, 5, make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	if bs := h.discovery().BlockSID; !bs.SIDBlocked || bs.HardwareReset {
		t.Errorf("Block SID feature = %+v", bs)
	}
	_, err := h.start(method.AdminSP, method.SID, []byte("sid"), true)
	wantStatus(t, "SID while blocked", err, method.StatusAuthorityLockedOut)
	// Locking SP admins are not affected.
	s := h.admin1([]byte("sid"))
	s.mustSet(method.LockingRange(1), named(3, u(0)), named(4, u(8)), named(5, b(true)), named(6, b(true)), named(9, token.List(u(3))))
	s.end()
	d.PowerCycle()
	if h.discovery().BlockSID.SIDBlocked {
		t.Error("Block SID survived a power cycle")
	}
	// TPer reset is refused until TPerInfo.ProgrammaticResetEnable.
	if err := h.tr.IFSend(ctx, 2, 4, make([]byte, 512)); !errors.Is(err, transport.ErrInvalidField) {
		t.Errorf("TPer reset while disabled: %v", err)
	}
	a := h.mustStart(method.AdminSP, method.SID, []byte("sid"), true)
	a.mustSet(method.TPerInfo, named(8, b(true)))
	a.end()
	if err := d.Read(0, make([]byte, 512)); err != nil {
		t.Fatalf("range 1 before TPer reset: %v", err)
	}
	open := h.mustStart(method.AdminSP, method.UID{}, nil, false)
	if err := h.tr.IFSend(ctx, 2, 4, make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	// Programmatic reset: range 1 (LockOnReset {Programmatic}) locks,
	// sessions are gone.
	if err := d.Read(0, make([]byte, 512)); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("range 1 after TPer reset: %v", err)
	}
	if out := h.exchange(open.tsn, open.hsn, method.EndSession()); out != nil {
		t.Errorf("session survived the TPer reset: % x", out)
	}
}

func TestSingleUserMode(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	h := newHost(t, d)
	msid := h.msid()
	a := h.mustStart(method.AdminSP, method.SID, msid, true)
	a.must(method.NewCall(method.LockingSP, method.Activate,
		token.Named(method.ParamSingleUserModeSelectionList, token.List(method.LockingRange(1).Value())),
		token.Named(method.ParamAdmin1PIN, token.Bytes([]byte("admin")))))
	a.end()
	sum := h.discovery().SingleUserMode
	if !sum.Any || sum.All || sum.Policy || sum.NumLockingObjects != 9 {
		t.Errorf("SUM feature = %+v", sum)
	}
	// The owner of range 1 is User2, enabled with an empty PIN.
	us := h.mustStart(method.LockingSP, method.User(2), nil, true)
	us.mustSet(method.LockingRange(1), named(3, u(64)), named(4, u(64)), named(5, b(true)), named(6, b(true)), named(7, b(true)), named(8, b(true)))
	us.mustSet(method.CPINUser(2), named(3, token.Bytes([]byte("mine"))))
	us.must(method.NewCall(method.LockingRange(1), method.Erase))
	us.end()
	s := h.admin1([]byte("admin"))
	wantStatus(t, "Admin1 unlocks a SUM range", s.set(method.LockingRange(1), named(7, b(false))), method.StatusNotAuthorized)
	wantStatus(t, "Admin1 sets the SUM user's PIN", s.set(method.CPINUser(2), named(3, token.Bytes(nil))), method.StatusNotAuthorized)
	wantStatus(t, "Admin1 erases a SUM range", s.do(method.NewCall(method.LockingRange(1), method.Erase)), method.StatusNotAuthorized)
	s.mustSet(method.LockingRange(2), named(3, u(256)), named(4, u(8)))
	if v := s.column(method.LockingInfo, 0x3C); !v.Equal(token.List(method.LockingRange(1).Value())) {
		t.Errorf("LockingInfo SUM ranges = %v", v)
	}
	s.end()
	if err := d.Read(64, make([]byte, 512)); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("SUM range read: %v", err)
	}
}

// TestOpalwire serves the drive over a socket: sessions through one
// connection, block I/O and INFO from several at once.
func TestOpalwire(t *testing.T) {
	d, _ := newTestDrive(t, Config{Serial: "SERIAL42"})
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- simwire.Serve(ctx, l, d, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c, err := opalwire.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id, err := c.Identify(ctx)
	if err != nil || id.SerialString() != "SERIAL42" || id.Serial[19] != ' ' || id.BlockSize != 512 {
		t.Fatalf("Identify = %+v, %v", id, err)
	}
	h := &host{t: t, tr: c, alloc: 2048}
	h.comID = 0x1004
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	s.mustSet(method.LockingRange(1), named(3, u(0)), named(4, u(8)), named(5, b(true)), named(6, b(true)), named(7, b(true)), named(8, b(true)))
	s.end()
	if err := c.ReadBlocks(ctx, 0, 1, make([]byte, 512)); !errors.Is(err, opalwire.ErrAccessDenied) {
		t.Errorf("READ of a locked range over opalwire: %v", err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := opalwire.Dial(ctx, sock)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			data := bytes.Repeat([]byte{byte(i + 1)}, 512*64)
			lba := uint64(1024 + i*64)
			for range 20 {
				if err := c.WriteBlocks(ctx, lba, data); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, len(data))
				if err := c.ReadBlocks(ctx, lba, 64, got); err != nil || !bytes.Equal(got, data) {
					t.Errorf("conn %d: read back %v", i, err)
					return
				}
				if _, err := c.Identify(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNoCredentialsInLog runs credential-bearing calls, well-formed and
// not, with debug logging on, and looks for the PINs in the log.
func TestNoCredentialsInLog(t *testing.T) {
	d, psid := newTestDrive(t, Config{TryLimit: 100})
	var log bytes.Buffer
	d.SetLogger(slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h := newHost(t, d)
	secret := []byte("PIN-LEAK-CHECK")
	h.takeOwnership(secret)
	h.start(method.LockingSP, method.Admin(1), []byte("PIN-LEAK-WRONG"), true)
	s := h.admin1(secret)
	s.call(method.NewAuthenticate(method.User(1), []byte("PIN-LEAK-AUTH")))
	s.call(method.NewCall(method.ThisSP, method.Authenticate, method.Admin(1).Value(), token.Named(5, token.Bytes([]byte("PIN-LEAK-PARAM")))))
	s.call(method.NewSet(method.CPINUser(1), named(3, token.List(token.Bytes([]byte("PIN-LEAK-SET"))))))
	s.end()
	h.result(0, 0, method.NewCall(method.SMUID, method.StartSession, u(1), method.AdminSP.Value(), u(1),
		token.Named(0, token.List(token.Bytes([]byte("PIN-LEAK-START")))), token.Named(3, method.SID.Value())))
	h.start(method.AdminSP, method.PSID, []byte(psid[:16]+"PIN-LEAK-PSID"), false)
	if !bytes.Contains(log.Bytes(), []byte("details withheld")) || !bytes.Contains(log.Bytes(), []byte("wrong PIN")) {
		t.Fatalf("log lacks the refusals:\n%s", log.String())
	}
	for _, l := range [][]byte{[]byte("PIN-LEAK"), []byte(base64.StdEncoding.EncodeToString([]byte("PIN-LEAK-CHECK"))[:12]), []byte(psid)} {
		if bytes.Contains(log.Bytes(), l) {
			t.Errorf("log holds %q:\n%s", l, log.String())
		}
	}
}
