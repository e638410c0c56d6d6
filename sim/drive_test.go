package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	simwire "github.com/shiftlock/shiftlock/sim/wire"
	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/token"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

func TestDiscoveryProfiles(t *testing.T) {
	for _, tc := range []struct {
		profile  Profile
		ssc      discovery.SSC
		geometry bool
		mbr      bool
		encrypt  bool
		sum      bool
	}{
		{Opal2, discovery.SSCOpalV2, true, true, true, true},
		{Opal1, discovery.SSCOpalV1, false, true, true, false},
		{Pyrite2, discovery.SSCPyriteV2, true, false, false, false},
		{Ruby, discovery.SSCRuby, true, false, true, false},
	} {
		t.Run(string(tc.profile), func(t *testing.T) {
			d, _ := newTestDrive(t, Config{Profile: tc.profile, BlockSize: 4096, Blocks: 1 << 12})
			h := newHost(t, d)
			disc := h.discovery()
			if got := disc.SSC(); got != tc.ssc {
				t.Errorf("SSC = %v; want %v", got, tc.ssc)
			}
			if id, _ := disc.BaseComID(); id != 0x1004 {
				t.Errorf("base ComID = %#x; want 0x1004", id)
			}
			if tp := disc.TPer; tp == nil || !tp.Sync || tp.Async || tp.BufferMgmt {
				t.Errorf("TPer feature = %+v; want Sync only, no BufferMgmt", tp)
			}
			l := disc.Locking
			if l == nil || !l.LockingSupported || l.LockingEnabled || l.Locked || l.MediaEncryption != tc.encrypt {
				t.Errorf("Locking feature = %+v", l)
			}
			if tc.profile != Opal1 && l.MBRShadowingNotSupported == tc.mbr {
				t.Errorf("MBRShadowingNotSupported = %v; want %v", l.MBRShadowingNotSupported, !tc.mbr)
			}
			if (disc.Geometry != nil) != tc.geometry {
				t.Errorf("Geometry present = %v; want %v", disc.Geometry != nil, tc.geometry)
			}
			if g := disc.Geometry; g != nil && (g.LogicalBlockSize != 4096 || g.AlignmentGranularity != 1 || g.Align) {
				t.Errorf("Geometry = %+v", g)
			}
			if (disc.SingleUserMode != nil) != tc.sum {
				t.Errorf("SUM present = %v; want %v", disc.SingleUserMode != nil, tc.sum)
			}
			if tc.profile == Opal2 {
				if v := disc.OpalV2; v.NumAdmins != 4 || v.NumUsers != 9 || v.InitialSIDPIN != discovery.PINIsMSID {
					t.Errorf("Opal 2 feature = %+v", v)
				}
				if disc.BlockSID == nil || disc.BlockSID.SIDValueState || disc.DataStore == nil || disc.DataStore.MaxTotalSize != 10<<20 {
					t.Errorf("Block SID %+v, DataStore %+v", disc.BlockSID, disc.DataStore)
				}
			}
			// A 512-byte allocation (some hosts) still parses, possibly cut.
			buf := make([]byte, 512)
			n, err := h.tr.IFRecv(context.Background(), 1, 1, buf)
			if err != nil || n > 512 {
				t.Fatalf("IF-RECV 512: %d, %v", n, err)
			}
		})
	}
}

func TestProtocolZeroAndComIDManagement(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	ctx := context.Background()
	tr := d.Transport()
	buf := make([]byte, 512)
	n, err := tr.IFRecv(ctx, 0, 0, buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 2}; !bytes.Equal(buf[:n], want) {
		t.Errorf("protocol list = % x; want % x", buf[:n], want)
	}
	// GET_COMID.
	n, err = tr.IFRecv(ctx, 2, 0, buf)
	if err != nil || n != 4 || binary.BigEndian.Uint16(buf) != 0x1004 {
		t.Errorf("GET_COMID = % x, %v", buf[:n], err)
	}
	// VERIFY_COMID_VALID.
	req := []byte{0x10, 0x04, 0, 0, 0, 0, 0, 1}
	if err := tr.IFSend(ctx, 2, 0x1004, req); err != nil {
		t.Fatal(err)
	}
	n, _ = tr.IFRecv(ctx, 2, 0x1004, buf)
	if n != 16 || binary.BigEndian.Uint32(buf[4:]) != 1 || binary.BigEndian.Uint16(buf[10:]) != 4 || binary.BigEndian.Uint32(buf[12:]) != 2 {
		t.Errorf("VERIFY_COMID_VALID answer = % x", buf[:n])
	}
	// Unsupported protocol and ComID: INVALID_FIELD at the interface.
	if err := tr.IFSend(ctx, 1, 0x2000, make([]byte, 512)); !errors.Is(err, transport.ErrInvalidField) {
		t.Errorf("IF-SEND to ComID 0x2000: %v; want ErrInvalidField", err)
	}
	if _, err := tr.IFRecv(ctx, 0xEE, 0, buf); !errors.Is(err, transport.ErrInvalidField) {
		t.Errorf("IF-RECV protocol 0xEE: %v; want ErrInvalidField", err)
	}
	// Nothing queued: an empty ComPacket.
	n, _ = tr.IFRecv(ctx, 1, 0x1004, buf)
	if n != 20 || !bytes.Equal(buf[:20], []byte{0, 0, 0, 0, 0x10, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("empty response = % x", buf[:n])
	}
}

func TestProperties(t *testing.T) {
	d, _ := newTestDrive(t, Config{MaxSessions: 3})
	h := newHost(t, d)
	sedutil := method.PropertyList{
		{Name: method.PropMaxComPacketSize, Value: 2048}, {Name: method.PropMaxPacketSize, Value: 2028},
		{Name: method.PropMaxIndTokenSize, Value: 1992}, {Name: method.PropMaxPackets, Value: 1},
		{Name: method.PropMaxSubpackets, Value: 1}, {Name: method.PropMaxMethods, Value: 1},
		{Name: method.PropAsynchronous, Value: 1}, {Name: "VendorThing", Value: 7},
	}
	tper, echo := h.properties(sedutil)
	for name, want := range map[string]uint64{
		method.PropMaxComPacketSize: 65536, method.PropMaxPacketSize: 65516, method.PropMaxIndTokenSize: 65480,
		method.PropMaxSessions: 3, method.PropMaxAuthentications: 2, method.PropMaxMethods: 1,
	} {
		if got, ok := tper.Get(name); !ok || got != want {
			t.Errorf("TPer %s = %d, %v; want %d", name, got, ok, want)
		}
	}
	if got, _ := echo.Get(method.PropMaxComPacketSize); got != 2048 {
		t.Errorf("echoed MaxComPacketSize = %d; want 2048", got)
	}
	if got, ok := echo.Get(method.PropAsynchronous); !ok || got != 0 {
		t.Errorf("echoed Asynchronous = %d, %v; want 0 (not supported)", got, ok)
	}
	if _, ok := echo.Get("VendorThing"); ok {
		t.Error("unknown host property echoed")
	}

	// The host's MaxComPacketSize is enforced on responses: a Get of the
	// DataStore that does not fit 2048 bytes overflows.
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	wantStatus(t, "Get 4000 DataStore bytes", s.do(method.NewGet(method.DataStore, method.Rows(0, 3999))), method.StatusResponseOverflow)
	if err := s.do(method.NewGet(method.DataStore, method.Rows(0, 1900))); err != nil {
		t.Errorf("Get 1901 DataStore bytes: %v", err)
	}
	s.end()

	d.SetQuirks(0, true)
	r := h.result(0, 0, method.NewProperties(sedutil))
	if tp, echo, err := method.ParsePropertiesResult(r); err != nil || echo != nil || len(tp) == 0 {
		t.Errorf("ShortProperties: %v, host echo %v, %d TPer properties", err, echo, len(tp))
	}
}

func TestOwnershipAndPINs(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	h := newHost(t, d)
	msid := h.msid()
	if !bytes.Equal(msid, d.MSID()) || len(msid) != 32 {
		t.Fatalf("MSID %q; drive says %q", msid, d.MSID())
	}
	// SID's PIN is the MSID from the factory; the PIN columns of SID are
	// never readable.
	s := h.mustStart(method.AdminSP, method.SID, msid, true)
	row, err := s.get(method.CPINSID, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := row.Lookup(3); ok {
		t.Errorf("C_PIN_SID.PIN readable: %v", row)
	}
	if v, _ := row.Lookup(5); !v.Equal(u(5)) {
		t.Errorf("C_PIN_SID TryLimit = %v; want 5", v)
	}
	s.mustSet(method.CPINSID, named(3, token.Bytes([]byte("new SID"))))
	// PINs longer than 32 bytes are refused.
	wantStatus(t, "Set 33-byte PIN", s.set(method.CPINSID, named(3, token.Bytes(make([]byte, 33)))), method.StatusInvalidParameter)
	s.end()
	if !h.discovery().BlockSID.SIDValueState {
		t.Error("Block SID feature: SIDValueState false after the SID PIN changed")
	}
	_, err = h.start(method.AdminSP, method.SID, msid, false)
	wantStatus(t, "SID with the old MSID", err, method.StatusNotAuthorized)
	s = h.mustStart(method.AdminSP, method.SID, []byte("new SID"), false)
	// A read-only session cannot Set.
	wantStatus(t, "Set in a read-only session", s.set(method.CPINSID, named(3, token.Bytes([]byte("x")))), method.StatusNotAuthorized)
	s.end()
	// Anybody cannot read C_PIN_SID at all, nor set anything.
	s = h.mustStart(method.AdminSP, method.UID{}, nil, true)
	_, err = s.get(method.CPINSID, 0, 7)
	wantStatus(t, "Anybody Get C_PIN_SID", err, method.StatusNotAuthorized)
	wantStatus(t, "Anybody Set C_PIN_SID", s.set(method.CPINSID, named(3, token.Bytes(nil))), method.StatusNotAuthorized)
	wantStatus(t, "Anybody Activate", s.do(method.NewCall(method.LockingSP, method.Activate)), method.StatusNotAuthorized)
	// Random and Authenticate on ThisSP.
	r := s.must(method.NewRandom(32))
	if rb, err := r.Bytes(); err != nil || len(rb) != 32 {
		t.Errorf("Random(32) = %x, %v", rb, err)
	}
	wantStatus(t, "Random(33)", s.do(method.NewRandom(33)), method.StatusInvalidParameter)
	if ok, err := s.must(method.NewAuthenticate(method.SID, []byte("wrong"))).Bool(); err != nil || ok {
		t.Errorf("Authenticate SID with a wrong PIN = %v, %v; want false", ok, err)
	}
	if ok, err := s.must(method.NewAuthenticate(method.SID, []byte("new SID"))).Bool(); err != nil || !ok {
		t.Errorf("Authenticate SID = %v, %v; want true", ok, err)
	}
	s.mustSet(method.CPINSID, named(3, token.Bytes([]byte("third"))))
	s.end()
	// The Locking SP is not active yet.
	_, err = h.start(method.LockingSP, method.Admin(1), []byte("third"), true)
	wantStatus(t, "StartSession to the inactive Locking SP", err, method.StatusInvalidParameter)
	// Unknown SP and authority.
	_, err = h.start(method.UID{0, 0, 2, 5, 0, 0, 0, 9}, method.UID{}, nil, false)
	wantStatus(t, "StartSession to no SP", err, method.StatusInvalidParameter)
	_, err = h.start(method.AdminSP, method.User(1), nil, false)
	wantStatus(t, "StartSession as a Locking SP user on the Admin SP", err, method.StatusInvalidParameter)
}

func TestLockoutUntilPowerCycle(t *testing.T) {
	d, _ := newTestDrive(t, Config{TryLimit: 3})
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	for i := range 3 {
		_, err := h.start(method.LockingSP, method.Admin(1), []byte("bad"), true)
		wantStatus(t, "wrong Admin1 PIN", err, method.StatusNotAuthorized)
		_ = i
	}
	_, err := h.start(method.LockingSP, method.Admin(1), []byte("sid"), true)
	wantStatus(t, "right PIN after TryLimit wrong ones", err, method.StatusAuthorityLockedOut)
	// Other authorities are not affected.
	h.mustStart(method.AdminSP, method.SID, []byte("sid"), false).end()
	// Authenticate counts too, and reports the lockout as a status.
	s := h.mustStart(method.LockingSP, method.UID{}, nil, false)
	wantStatus(t, "Authenticate a locked-out Admin1", s.do(method.NewAuthenticate(method.Admin(1), []byte("sid"))), method.StatusAuthorityLockedOut)
	s.end()
	// The lockout survives a restart of sedsim only as a power cycle does:
	// not at all.
	d.PowerCycle()
	s = h.admin1([]byte("sid"))
	if v := s.column(method.CPINAdmin(1), 6); !v.Equal(u(0)) {
		t.Errorf("Tries after a successful login = %v; want 0", v)
	}
	s.end()
	// Disabled authorities cannot authenticate.
	_, err = h.start(method.LockingSP, method.User(1), nil, false)
	wantStatus(t, "disabled User1", err, method.StatusNotAuthorized)
}

func TestSPBusyAndStackReset(t *testing.T) {
	d, _ := newTestDrive(t, Config{MaxSessions: 2})
	h := newHost(t, d)
	msid := h.msid()
	w := h.mustStart(method.AdminSP, method.SID, msid, true)
	_, err := h.start(method.AdminSP, method.SID, msid, true)
	wantStatus(t, "second write session", err, method.StatusSPBusy)
	_, err = h.start(method.AdminSP, method.UID{}, nil, false)
	wantStatus(t, "read session beside a write session", err, method.StatusSPBusy)
	w.end()
	r1 := h.mustStart(method.AdminSP, method.UID{}, nil, false)
	r2 := h.mustStart(method.AdminSP, method.UID{}, nil, false)
	_, err = h.start(method.AdminSP, method.UID{}, nil, false)
	wantStatus(t, "third session with MaxSessions 2", err, method.StatusNoSessionsAvailable)
	_, err = h.start(method.AdminSP, method.SID, msid, true)
	wantStatus(t, "write session beside read sessions", err, method.StatusSPBusy)
	r1.end()
	_ = r2 // left open: a crashed host

	// STACK_RESET drops every session on the ComID.
	ctx := context.Background()
	if err := h.tr.IFSend(ctx, 2, 0x1004, []byte{0x10, 0x04, 0, 0, 0, 0, 0, 2}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := h.tr.IFRecv(ctx, 2, 0x1004, buf)
	if n != 16 || binary.BigEndian.Uint32(buf[4:]) != 2 || binary.BigEndian.Uint32(buf[12:]) != 0 {
		t.Errorf("STACK_RESET answer = % x", buf[:n])
	}
	w = h.mustStart(method.AdminSP, method.SID, msid, true)
	// The aborted session is gone: its packets get an empty response.
	if out := h.exchange(r2.tsn, r2.hsn, method.EndSession()); out != nil {
		t.Errorf("EndOfSession of a reset session answered % x", out)
	}
	w.end()
}

func TestSessionTimeout(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	h := newHost(t, d)
	now := d.now()
	d.now = func() time.Time { return now }
	p := method.StartSessionParams{HostSessionID: 9, SPID: method.AdminSP, SessionTimeout: 1000}
	hsn, tsn, err := method.ParseSyncSession(h.result(0, 0, method.NewStartSession(p)))
	if err != nil {
		t.Fatal(err)
	}
	p.SessionTimeout = 10 // below MinSessionTimeout
	_, _, err = method.ParseSyncSession(h.result(0, 0, method.NewStartSession(p)))
	wantStatus(t, "SessionTimeout 10 ms", err, method.StatusInvalidParameter)
	now = now.Add(1500 * time.Millisecond)
	if out := h.exchange(tsn, hsn, method.EndSession()); out != nil {
		t.Errorf("timed-out session answered % x", out)
	}
}

func TestLockingRangesAndIO(t *testing.T) {
	d, _ := newTestDrive(t, Config{Blocks: 1 << 16})
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	if disc := h.discovery(); !disc.LockingEnabled() || disc.Locked() {
		t.Fatalf("after Activate: Locking %+v", disc.Locking)
	}
	s := h.admin1([]byte("sid"))
	info := s.must(method.NewGet(method.LockingInfo, method.Columns(0, 10)))
	if v, _ := info.Column(4); !v.Equal(u(8)) {
		t.Errorf("LockingInfo.MaxRanges = %v; want 8", v)
	}
	// Range 1: blocks 1024..2047, locking enabled, unlocked.
	s.mustSet(method.LockingRange(1), named(3, u(1024)), named(4, u(1024)), named(5, b(true)), named(6, b(true)))
	row, _ := s.get(method.LockingRange(1), 3, 10)
	want := token.List(named(3, u(1024)), named(4, u(1024)), named(5, b(true)), named(6, b(true)),
		named(7, b(false)), named(8, b(false)), named(9, token.List(u(0))), named(10, method.KAES256(1).Value()))
	if !row.Equal(want) {
		t.Errorf("Locking_Range1 = %v;\nwant %v", row, want)
	}
	data := bytes.Repeat([]byte("range one data.."), 8*512/16) // 8 blocks
	if err := d.Write(1020, data); err != nil {                // spans global and range 1
		t.Fatalf("write across ranges: %v", err)
	}
	// Lock range 1 for reading and writing.
	s.mustSet(method.LockingRange(1), named(7, b(true)), named(8, b(true)))
	buf := make([]byte, 512)
	if err := d.Read(1024, buf); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("read of a locked range: %v; want ErrAccessDenied", err)
	}
	if err := d.Write(2047, buf); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("write to a locked range: %v; want ErrAccessDenied", err)
	}
	if err := d.Read(1020, make([]byte, 8*512)); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("read spanning into a locked range: %v; want ErrAccessDenied", err)
	}
	if err := d.Read(2048, buf); err != nil {
		t.Errorf("read of the global range: %v", err)
	}
	if !h.discovery().Locked() {
		t.Error("Level 0 Locked bit clear with a locked range")
	}
	// Read-only: unlock reading only.
	s.mustSet(method.LockingRange(1), named(7, b(false)))
	got := make([]byte, len(data))
	if err := d.Read(1020, got); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read back after read-unlock: %v, equal %v", err, bytes.Equal(got, data))
	}
	if err := d.Write(1024, buf); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("write to a write-locked range: %v", err)
	}
	s.mustSet(method.LockingRange(1), named(8, b(false)))
	if err := d.Write(1024, data[:512]); err != nil {
		t.Errorf("write after unlock: %v", err)
	}

	// Alignment (granularity 8, lowest aligned 0) and overlaps.
	for _, tc := range []struct {
		start, length uint64
		want          method.MethodStatus
	}{
		{1, 8, method.StatusInvalidParameter},
		{8, 7, method.StatusInvalidParameter},
		{0, 9, method.StatusInvalidParameter},
		{2000, 16, method.StatusInvalidParameter}, // overlaps range 1
		{1 << 16, 8, method.StatusInvalidParameter},
		{(1 << 16) - 8, 16, method.StatusInvalidParameter},
		{2048, 8, method.StatusSuccess},
		{0, 0, method.StatusSuccess},
		{5, 0, method.StatusSuccess}, // empty ranges are always fine
	} {
		err := s.set(method.LockingRange(2), named(3, u(tc.start)), named(4, u(tc.length)))
		wantStatus(t, "range 2 "+token.List(u(tc.start), u(tc.length)).String(), err, tc.want)
	}
	wantStatus(t, "Set the global range's start", s.set(method.GlobalRange, named(3, u(8))), method.StatusInvalidParameter)
	wantStatus(t, "Set RLE to 2", s.set(method.LockingRange(1), named(5, u(2))), method.StatusInvalidParameter)
	wantStatus(t, "Set LockOnReset Hardware", s.set(method.LockingRange(1), named(9, token.List(u(1)))), method.StatusInvalidParameter)
	wantStatus(t, "Set range 9 of 8", s.set(method.LockingRange(9), named(7, b(true))), method.StatusInvalidParameter)
	// Programmatic reset is a valid LockOnReset entry on Opal 2.
	s.mustSet(method.LockingRange(1), named(9, token.List(u(0), u(3))))

	// Power cycle: LockOnReset locks range 1 again; the global range has
	// locking disabled, so it stays readable.
	s.end()
	d.PowerCycle()
	if err := d.Read(1024, buf); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("read after power cycle: %v; want ErrAccessDenied", err)
	}
	if err := d.Read(0, buf); err != nil {
		t.Errorf("read of the global range after power cycle: %v", err)
	}
	s = h.admin1([]byte("sid"))
	s.mustSet(method.LockingRange(1), named(7, b(false)), named(8, b(false)))
	if err := d.Read(1020, got); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read after unlock: %v, data intact %v", err, bytes.Equal(got, data))
	}
	s.end()
}
