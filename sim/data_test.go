package sim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	simwire "github.com/shiftlock/shiftlock/sim/wire"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
	"github.com/shiftlock/shiftlock/tcg/token"
)

func TestMBRShadow(t *testing.T) {
	d, _ := newTestDrive(t, Config{MBRSize: 1 << 20})
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	before := bytes.Repeat([]byte{0xAB}, 4096)
	if err := d.Write(0, before); err != nil {
		t.Fatal(err)
	}
	s := h.admin1([]byte("sid"))
	// The MBR table: Rows (Table table column 7) is its size; it reads as
	// zeros until written.
	if v := s.column(method.TableRow(method.MBR), 7); !v.Equal(u(1 << 20)) {
		t.Errorf("MBR table Rows = %v; want %d", v, 1<<20)
	}
	pba := bytes.Repeat([]byte("PBA image! "), 7000) // 77000 bytes: crosses a 64 KiB chunk
	for off := 0; off < len(pba); off += 30000 {
		chunk := pba[off:min(off+30000, len(pba))]
		s.must(method.NewSetBytes(method.MBR, uint64(off), chunk))
	}
	r := s.must(method.NewGet(method.MBR, method.Rows(65530, 65545)))
	if got, _ := r.Bytes(); !bytes.Equal(got, pba[65530:65546]) {
		t.Errorf("MBR bytes 65530..65545 = %q; want %q", got, pba[65530:65546])
	}
	wantStatus(t, "MBR write past its end", s.do(method.NewSetBytes(method.MBR, 1<<20-2, []byte("abc"))), method.StatusInvalidParameter)
	// Enable shadowing, Done false: LBA 0.. show the MBR table.
	s.mustSet(method.MBRControl, named(1, b(true)))
	buf := make([]byte, 4096)
	if err := d.Read(0, buf); err != nil || !bytes.Equal(buf, pba[:4096]) {
		t.Errorf("shadowed read: %v, got %q...", err, buf[:16])
	}
	// Beyond the written part, within the table: zeros.
	if err := d.Read(200, buf[:512]); err != nil || !bytes.Equal(buf[:512], make([]byte, 512)) {
		t.Errorf("shadowed read beyond the image: %v, %x...", err, buf[:8])
	}
	if err := d.Write(0, buf[:512]); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("write to the shadow: %v; want ErrAccessDenied", err)
	}
	if disc := h.discovery(); !disc.MBREnabled() || disc.MBRDone() || !disc.MBRShadowActive() {
		t.Errorf("Locking feature with the shadow shown: %+v", disc.Locking)
	}
	// Done: the media shows again.
	s.mustSet(method.MBRControl, named(2, b(true)))
	if err := d.Read(0, buf); err != nil || !bytes.Equal(buf, before) {
		t.Errorf("read with MBR Done: %v", err)
	}
	s.end()
	// DoneOnReset: a power cycle shows the shadow again.
	d.PowerCycle()
	if err := d.Read(0, buf); err != nil || !bytes.Equal(buf, pba[:4096]) {
		t.Errorf("shadowed read after power cycle: %v", err)
	}
	// Anybody may read the MBR table but not write it.
	a := h.mustStart(method.LockingSP, method.UID{}, nil, true)
	a.must(method.NewGet(method.MBR, method.Rows(0, 9)))
	wantStatus(t, "Anybody writes the MBR", a.do(method.NewSetBytes(method.MBR, 0, []byte("x"))), method.StatusNotAuthorized)
	wantStatus(t, "Anybody sets MBR Done", a.set(method.MBRControl, named(2, b(true))), method.StatusNotAuthorized)
	a.end()
}

func TestDataStore(t *testing.T) {
	d, _ := newTestDrive(t, Config{DataStoreSize: 200 << 10})
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	blob := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 40000)
	for off := 0; off < len(blob); off += 60000 {
		s.must(method.NewSetBytes(method.DataStore, uint64(off), blob[off:min(off+60000, len(blob))]))
	}
	for off := 0; off < len(blob); off += 50000 {
		got, err := s.must(method.NewGet(method.DataStore, method.Rows(uint64(off), uint64(off+49999)))).Bytes()
		if err != nil || !bytes.Equal(got, blob[off:off+50000]) {
			t.Fatalf("DataStore %d..: %v, equal %v", off, err, bytes.Equal(got, blob[off:off+50000]))
		}
	}
	s.end()
	// Anybody may not read the DataStore, until an admin grants it.
	a := h.mustStart(method.LockingSP, method.UID{}, nil, false)
	wantStatus(t, "Anybody reads the DataStore", a.do(method.NewGet(method.DataStore, method.Rows(0, 9))), method.StatusNotAuthorized)
	a.end()
	s = h.admin1([]byte("sid"))
	s.mustSet(method.ACEDataStoreGetAll, named(3, method.AnyOf(method.Admins, method.Anybody)))
	s.end()
	a = h.mustStart(method.LockingSP, method.UID{}, nil, false)
	a.must(method.NewGet(method.DataStore, method.Rows(0, 9)))
	a.end()
}

func TestGenKeyAndNoPlaintext(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	h := newHost(t, d)
	sid := []byte("s3cr3t-SID-PIN")
	h.takeOwnership(sid)
	secret := bytes.Repeat([]byte("TOP SECRET PLAINTEXT 0123456789!"), 4096/32*8) // 32 KiB
	if err := d.Write(4096, secret); err != nil {
		t.Fatal(err)
	}
	media, err := os.ReadFile(filepath.Join(d.Dir(), mediaName))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(media, []byte("TOP SECRET")) {
		t.Error("the media file holds the plaintext")
	}
	for _, name := range []string{stateName, tablesName} {
		b, _ := os.ReadFile(filepath.Join(d.Dir(), name))
		if bytes.Contains(b, []byte("TOP SECRET")) || bytes.Contains(b, sid) {
			t.Errorf("%s holds plaintext", name)
		}
	}
	got := make([]byte, len(secret))
	if err := d.Read(4096, got); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("read back: %v", err)
	}
	s := h.admin1(sid)
	active := s.column(method.GlobalRange, 10)
	key, _ := method.UIDFromValue(active)
	s.must(method.NewCall(key, method.GenKey))
	// A range's GenKey is a crypto-erase of that range only... here the
	// global range: the data is gone.
	if err := d.Read(4096, got); err != nil || bytes.Contains(got, []byte("TOP SECRET")) {
		t.Errorf("after GenKey: %v, plaintext still readable %v", err, bytes.Contains(got, []byte("TOP SECRET")))
	}
	// Users cannot GenKey; K_AES keys are never readable.
	row, err := s.get(key, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := row.Lookup(3); ok {
		t.Errorf("K_AES_256 key column readable: %v", row)
	}
	wantStatus(t, "GenKey on range 9 of 8", s.do(method.NewCall(method.KAES256(9), method.GenKey)), method.StatusInvalidParameter)
	s.end()
}

func TestLargeRangesAbove2TiB(t *testing.T) {
	const tib = 1 << 40 / 512
	d, _ := newTestDrive(t, Config{Blocks: 5 * tib}) // 5 TiB, sparse
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	start, length := uint64(3*tib+8), uint64(tib) // beyond 2^32 blocks
	s.mustSet(method.LockingRange(3), named(3, u(start)), named(4, u(length)), named(5, b(true)), named(6, b(true)))
	if v := s.column(method.LockingRange(3), 3); !v.Equal(u(start)) {
		t.Fatalf("RangeStart = %v; want %d", v, start)
	}
	data := bytes.Repeat([]byte{0x5A}, 512)
	if err := d.Write(start+length-1, data); err != nil {
		t.Fatal(err)
	}
	s.mustSet(method.LockingRange(3), named(7, b(true)))
	if err := d.Read(start+length-1, data); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("read at the end of a locked range above 2 TiB: %v", err)
	}
	if err := d.Read(start+length, data); err != nil {
		t.Errorf("read just past the range: %v", err)
	}
	if err := d.Read(start-1, data); err != nil {
		t.Errorf("read just before the range: %v", err)
	}
	s.end()
}

func TestUsersAndACEs(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	s.mustSet(method.LockingRange(1), named(3, u(0)), named(4, u(4096)), named(5, b(true)), named(6, b(true)), named(7, b(true)), named(8, b(true)))
	s.mustSet(method.LockingRange(2), named(3, u(8192)), named(4, u(4096)), named(5, b(true)), named(6, b(true)), named(7, b(true)), named(8, b(true)))
	s.mustSet(method.User(1), named(5, b(true)))
	s.mustSet(method.CPINUser(1), named(3, token.Bytes([]byte("user one"))))
	// The kernel's grant: User1 alone on range 1's RdLocked/WrLocked ACEs.
	s.mustSet(method.ACELockingRangeSetRdLocked(1), named(3, method.AnyOf(method.User(1))))
	s.mustSet(method.ACELockingRangeSetWrLocked(1), named(3, method.BooleanExpr(
		method.AuthorityTerm(method.User(1)), method.AuthorityTerm(method.User(1)), method.OpTerm(method.Or))))
	wantStatus(t, "ACE naming no authority of the SP", s.set(method.ACELockingRangeSetRdLocked(2), named(3, method.AnyOf(method.SID))), method.StatusInvalidParameter)
	wantStatus(t, "malformed BooleanExpr", s.set(method.ACELockingRangeSetRdLocked(2), named(3, method.BooleanExpr(method.OpTerm(method.Or)))), method.StatusInvalidParameter)
	if v := s.column(method.ACELockingRangeSetRdLocked(1), 3); !v.Equal(method.AnyOf(method.User(1))) {
		t.Errorf("ACE BooleanExpr = %v", v)
	}
	s.end()

	us := h.mustStart(method.LockingSP, method.User(1), []byte("user one"), true)
	us.mustSet(method.LockingRange(1), named(7, b(false)), named(8, b(false)))
	wantStatus(t, "User1 unlocks range 2", us.set(method.LockingRange(2), named(7, b(false))), method.StatusNotAuthorized)
	wantStatus(t, "User1 changes range 1's start", us.set(method.LockingRange(1), named(3, u(8))), method.StatusNotAuthorized)
	wantStatus(t, "User1 sets User2's PIN", us.set(method.CPINUser(2), named(3, token.Bytes(nil))), method.StatusNotAuthorized)
	us.mustSet(method.CPINUser(1), named(3, token.Bytes([]byte("changed"))))
	// Without the Get ACE, User1 sees none of columns 3..10.
	if row, err := us.get(method.LockingRange(1), 3, 10); err != nil || len(row.Items()) != 0 {
		t.Errorf("User1 Get range 1 columns 3..10 = %v, %v; want no columns", row, err)
	}
	// Columns 0..2 are open to Anybody.
	if row, err := us.get(method.LockingRange(1), 0, 2); err != nil || len(row.Items()) != 3 {
		t.Errorf("User1 Get range 1 columns 0..2 = %v, %v", row, err)
	}
	us.end()
	if err := d.Read(0, make([]byte, 512)); err != nil {
		t.Errorf("range 1 after User1 unlocked it: %v", err)
	}
	if err := d.Read(8192, make([]byte, 512)); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("range 2: %v; want ErrAccessDenied", err)
	}
	// Admins lost range 1's RdLocked to User1 (the ACE was replaced).
	s = h.admin1([]byte("sid"))
	wantStatus(t, "Admin1 locks range 1 after the ACE went to User1", s.set(method.LockingRange(1), named(7, b(true))), method.StatusNotAuthorized)
	s.mustSet(method.User(1), named(5, b(false)))
	// Next lists the rows of a table.
	ids, err := s.must(method.NewNext(method.LockingTable, method.UID{}, 0)).UIDs()
	if err != nil || len(ids) != 9 || ids[0] != method.GlobalRange || ids[8] != method.LockingRange(8) {
		t.Errorf("Next Locking = %v, %v", ids, err)
	}
	ids, _ = s.must(method.NewNext(method.LockingTable, method.LockingRange(2), 2)).UIDs()
	if len(ids) != 2 || ids[0] != method.LockingRange(3) {
		t.Errorf("Next Locking after Range2, 2 rows = %v", ids)
	}
	s.end()
	_, err = h.start(method.LockingSP, method.User(1), []byte("changed"), false)
	wantStatus(t, "disabled User1", err, method.StatusNotAuthorized)
}

func TestPersistenceIsPowerCycle(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	dir := d.Dir()
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	s.mustSet(method.GlobalRange, named(5, b(true)), named(6, b(true)))
	s.end()
	data := bytes.Repeat([]byte("persist!"), 64)
	if err := d.Write(100, data); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrInUse) {
		t.Errorf("second Open of an open drive: %v; want ErrInUse", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Read(100, data); !errors.Is(err, ErrClosed) {
		t.Errorf("read of a closed drive: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, stateName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v, %v", fi.Mode(), err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	h = newHost(t, d)
	if disc := h.discovery(); !disc.LockingEnabled() || !disc.Locked() {
		t.Errorf("after restart: %+v; want enabled and locked", disc.Locking)
	}
	if err := d.Read(100, make([]byte, 512)); !errors.Is(err, simwire.ErrAccessDenied) {
		t.Errorf("read after restart: %v; want ErrAccessDenied", err)
	}
	s = h.admin1([]byte("sid"))
	s.mustSet(method.GlobalRange, named(7, b(false)), named(8, b(false)))
	s.end()
	got := make([]byte, len(data))
	if err := d.Read(100, got); err != nil || !bytes.Equal(got, data) {
		t.Errorf("data after restart and unlock: %v, equal %v", err, bytes.Equal(got, data))
	}
}

func TestCreateOpenErrors(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	dir := d.Dir()
	if _, _, err := Create(dir, Config{Blocks: 100}); !errors.Is(err, ErrInUse) {
		t.Errorf("Create over an open drive: %v", err)
	}
	d.Close()
	if _, _, err := Create(dir, Config{Blocks: 100}); !errors.Is(err, ErrExists) {
		t.Errorf("Create over a drive: %v; want ErrExists", err)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no drive state") {
		t.Errorf("Open of an empty directory: %v", err)
	}
	if _, _, err := Create(t.TempDir(), Config{}); err == nil {
		t.Error("Create without a capacity succeeded")
	}
	if _, _, err := Create(t.TempDir(), Config{Blocks: 8, BlockSize: 1024}); err == nil {
		t.Error("Create with 1024-byte blocks succeeded")
	}
	state := filepath.Join(dir, stateName)
	good, _ := os.ReadFile(state)
	for name, content := range map[string][]byte{
		"garbage":   []byte("\x00\x01garbage"),
		"foreign":   []byte(`{"format":"something else","version":1}`),
		"newer":     []byte(`{"format":"sedsim drive state","version":99}`),
		"truncated": good[:len(good)/2],
		"edited":    bytes.Replace(good, []byte(`"ranges":8`), []byte(`"ranges":7`), 1),
	} {
		if err := os.WriteFile(state, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir)
		if !errors.Is(err, errCorrupt) && !(name == "garbage" && err != nil) {
			t.Errorf("%s state: %v; want a clear error", name, err)
		}
		if b, _ := os.ReadFile(state); !bytes.Equal(b, content) {
			t.Errorf("%s state file was changed by Open", name)
		}
	}
	os.WriteFile(state, good, 0o600)
	os.Remove(filepath.Join(dir, mediaName))
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Open without the media file: %v", err)
	}
}

func TestRevertSPAndRevert(t *testing.T) {
	d, psid := newTestDrive(t, Config{})
	h := newHost(t, d)
	data := bytes.Repeat([]byte("KEEPME.."), 64)
	check := func(what string, kept bool) {
		t.Helper()
		got := make([]byte, len(data))
		if err := d.Read(64, got); err != nil {
			t.Fatalf("%s: read: %v", what, err)
		}
		if bytes.Equal(got, data) != kept {
			t.Errorf("%s: data kept = %v; want %v", what, !kept, kept)
		}
	}
	h.takeOwnership([]byte("sid"))
	if err := d.Write(64, data); err != nil {
		t.Fatal(err)
	}
	// RevertSP keeping the global range key: data stays, the Locking SP
	// goes back to Manufactured-Inactive, the session is aborted.
	s := h.admin1([]byte("sid"))
	s.must(method.NewSetBytes(method.DataStore, 0, []byte("old tables")))
	s.must(method.NewSetBytes(method.MBR, 0, []byte("old tables")))
	s.mustSet(method.GlobalRange, named(5, b(true)), named(7, b(true)))
	wantStatus(t, "RevertSP keep with the global range locked", s.do(method.NewRevertSP(true)), method.StatusFail)
	s.mustSet(method.GlobalRange, named(7, b(false)))
	s.must(method.NewRevertSP(true))
	if out := h.exchange(s.tsn, s.hsn, method.EndSession()); out != nil {
		t.Errorf("session still open after RevertSP: % x", out)
	}
	check("RevertSP keep", true)
	if h.discovery().LockingEnabled() {
		t.Error("Locking SP still enabled after RevertSP")
	}
	// Activate again (SID is still "sid"), then RevertSP without keep.
	a := h.mustStart(method.AdminSP, method.SID, []byte("sid"), true)
	a.must(method.NewCall(method.LockingSP, method.Activate))
	a.end()
	check("re-Activate", true)
	s = h.admin1([]byte("sid"))
	for _, table := range []method.UID{method.DataStore, method.MBR} {
		if got, _ := s.must(method.NewGet(table, method.Rows(0, 9))).Bytes(); !bytes.Equal(got, make([]byte, 10)) {
			t.Errorf("%v after RevertSP and Activate = %q; want zeros", table, got)
		}
	}
	s.must(method.NewRevertSP(false))
	check("RevertSP", false)

	// Revert of the Admin SP as SID: SID = MSID again.
	if err := d.Write(64, data); err != nil {
		t.Fatal(err)
	}
	a = h.mustStart(method.AdminSP, method.SID, []byte("sid"), true)
	a.must(method.NewCall(method.AdminSP, method.Revert))
	check("Revert", false)
	h.mustStart(method.AdminSP, method.SID, h.msid(), false).end()

	// PSID revert, after a new owner set everything up.
	h.takeOwnership([]byte("owner"))
	if err := d.Write(64, data); err != nil {
		t.Fatal(err)
	}
	_, err := h.start(method.AdminSP, method.PSID, []byte("not the PSID"), true)
	wantStatus(t, "wrong PSID", err, method.StatusNotAuthorized)
	p := h.mustStart(method.AdminSP, method.PSID, []byte(psid), true)
	wantStatus(t, "PSID sets SID", p.set(method.CPINSID, named(3, token.Bytes([]byte("x")))), method.StatusNotAuthorized)
	wantStatus(t, "PSID reverts the Locking SP", p.do(method.NewCall(method.LockingSP, method.Revert)), method.StatusNotAuthorized)
	p.must(method.NewCall(method.AdminSP, method.Revert))
	check("PSID revert", false)
	if disc := h.discovery(); disc.LockingEnabled() || disc.BlockSID.SIDValueState {
		t.Errorf("after PSID revert: %+v %+v", disc.Locking, disc.BlockSID)
	}
	h.mustStart(method.AdminSP, method.SID, h.msid(), false).end()
}

func TestResponseQueueing(t *testing.T) {
	d, _ := newTestDrive(t, Config{NotReadyPolls: 3})
	h := newHost(t, d)
	ctx := context.Background()
	c, _ := method.NewProperties(nil).Encode()
	cp, _ := packet.Build(0x1004, 0, 0, c)
	if err := h.tr.IFSend(ctx, 1, 0x1004, append(cp, make([]byte, 2048-len(cp))...)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for i := range 3 {
		n, _ := h.tr.IFRecv(ctx, 1, 0x1004, buf)
		r, err := packet.Parse(buf[:n])
		if err != nil || len(r.Packets) != 0 || r.OutstandingData != 1 || r.MinTransfer != 0 {
			t.Fatalf("poll %d: %+v, %v; want not ready", i, r, err)
		}
	}
	// Too small an allocation: MinTransfer says how much is needed.
	n, _ := h.tr.IFRecv(ctx, 1, 0x1004, buf[:64])
	r, _ := packet.Parse(buf[:n])
	if len(r.Packets) != 0 || r.MinTransfer <= 64 || r.OutstandingData == 0 {
		t.Fatalf("small allocation: %+v", r)
	}
	n, _ = h.tr.IFRecv(ctx, 1, 0x1004, buf[:r.MinTransfer])
	r, err := packet.Parse(buf[:n])
	if err != nil || len(r.Packets) != 1 || r.OutstandingData != 0 {
		t.Fatalf("full allocation: %+v, %v", r, err)
	}
	// Several IF-SENDs before IF-RECV (several hosts sharing the drive)
	// are answered in order.
	d.SetQuirks(0, false)
	for _, hsn := range []uint32{7, 8} {
		c, _ := method.NewStartSession(method.StartSessionParams{HostSessionID: hsn, SPID: method.AdminSP}).Encode()
		cp, _ := packet.Build(0x1004, 0, 0, c)
		if err := h.tr.IFSend(ctx, 1, 0x1004, cp); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []uint32{7, 8} {
		n, _ := h.tr.IFRecv(ctx, 1, 0x1004, buf)
		r, _ := packet.Parse(buf[:n])
		_, data, err := r.Payload()
		if err != nil {
			t.Fatal(err)
		}
		res, _ := method.ParseResult(data)
		if hsn, _, err := method.ParseSyncSession(res); err != nil || hsn != want {
			t.Errorf("SyncSession HSN %d, %v; want %d", hsn, err, want)
		}
	}
	// Malformed ComPackets are discarded: the host reads an empty answer.
	if err := h.tr.IFSend(ctx, 1, 0x1004, []byte{0, 0, 0, 0, 0x10, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.tr.IFRecv(ctx, 1, 0x1004, buf); n != 20 {
		t.Errorf("answer to a malformed ComPacket: %d bytes", n)
	}
	// Over MaxComPacketSize: refused at the interface.
	if err := h.tr.IFSend(ctx, 1, 0x1004, make([]byte, 70000)); err == nil {
		t.Error("IF-SEND of 70000 bytes accepted")
	}
	// A token over MaxIndTokenSize is refused by the method layer.
	d2, _ := newTestDrive(t, Config{MaxIndTokenSize: 4096})
	h2 := newHost(t, d2)
	s := h2.mustStart(method.AdminSP, method.UID{}, nil, false)
	wantStatus(t, "Authenticate with a 5000-byte proof", s.do(method.NewAuthenticate(method.SID, make([]byte, 5000))), method.StatusInvalidParameter)
	s.end()
}

// TestCrashAndFailedSave checks that every answered change is on disk
// before the answer (a copy of the directory taken while the drive runs,
// as after kill -9, opens with it), and that a change the drive cannot
// save is undone and reported.
func TestCrashAndFailedSave(t *testing.T) {
	d, _ := newTestDrive(t, Config{})
	h := newHost(t, d)
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	s.mustSet(method.LockingRange(1), named(3, u(64)), named(4, u(64)), named(5, b(true)))
	s.must(method.NewSetBytes(method.DataStore, 70000, []byte("committed")))

	crash := t.TempDir()
	for _, name := range []string{stateName, mediaName, tablesName} {
		b, err := os.ReadFile(filepath.Join(d.Dir(), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crash, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Open(crash)
	if err != nil {
		t.Fatal(err)
	}
	ch := newHost(t, c)
	cs := ch.admin1([]byte("sid"))
	if v := cs.column(method.LockingRange(1), 3); !v.Equal(u(64)) {
		t.Errorf("range 1 start after the crash = %v; want 64", v)
	}
	if got, _ := cs.must(method.NewGet(method.DataStore, method.Rows(70000, 70008))).Bytes(); string(got) != "committed" {
		t.Errorf("DataStore after the crash = %q", got)
	}
	cs.end()
	c.Close()

	// Make the state file impossible to replace: a directory in its way.
	state := filepath.Join(d.Dir(), stateName)
	if err := os.Rename(state, state+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(state, "blocker"), 0o700); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "Set while the state cannot be saved", s.set(method.LockingRange(1), named(7, b(true))), method.StatusTPerMalfunction)
	if v := s.column(method.LockingRange(1), 7); !v.Equal(b(false)) {
		t.Errorf("ReadLocked after the failed save = %v; want the old value", v)
	}
	os.RemoveAll(state)
	os.Rename(state+".away", state)
	s.mustSet(method.LockingRange(1), named(7, b(true)))
	s.end()
}
