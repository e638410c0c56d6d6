package opal

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// testDrive is a sedsim drive in t.TempDir() with a Client on it.
type testDrive struct {
	t    *testing.T
	d    *sim.Drive
	c    *session.Client
	psid hash.PIN
	ctx  context.Context
}

var (
	sidPIN    = hash.PIN(bytes.Repeat([]byte{0x51}, 32))
	admin1PIN = hash.PIN(bytes.Repeat([]byte{0xA1}, 32))
	user1PIN  = hash.PIN(bytes.Repeat([]byte{0x01}, 32))
	wrongPIN  = hash.PIN(bytes.Repeat([]byte{0xEE}, 32))
)

func newTestDrive(t *testing.T, cfg sim.Config) *testDrive {
	t.Helper()
	if cfg.Blocks == 0 {
		cfg.Blocks = 1 << 21 // 1 GiB of 512-byte blocks
	}
	if cfg.MBRSize == 0 && (cfg.Profile == "" || cfg.Profile == sim.Opal2 || cfg.Profile == sim.Opal1) {
		cfg.MBRSize = 1 << 20
	}
	if cfg.DataStoreSize == 0 {
		cfg.DataStoreSize = 1 << 20
	}
	d, psid, err := sim.Create(t.TempDir(), cfg)
	if err != nil {
		t.Fatalf("sim.Create: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return &testDrive{t: t, d: d, c: session.NewClient(d.Transport(), nil), psid: hash.PIN(psid), ctx: ctx}
}

// client returns another Client on the same drive, as another process
// would have.
func (td *testDrive) client(opts *session.Options) *session.Client {
	return session.NewClient(td.d.Transport(), opts)
}

// owned takes ownership and activates the Locking SP: SID = sidPIN,
// Admin1 = admin1PIN.
func (td *testDrive) owned() {
	td.t.Helper()
	if err := TakeOwnership(td.ctx, td.c, sidPIN); err != nil {
		td.t.Fatalf("TakeOwnership: %v", err)
	}
	if err := Activate(td.ctx, td.c, sidPIN, nil); err != nil {
		td.t.Fatalf("Activate: %v", err)
	}
	if err := SetPIN(td.ctx, td.c, Auth{method.Admin(1), sidPIN}, method.Admin(1), admin1PIN); err != nil {
		td.t.Fatalf("SetPIN Admin1: %v", err)
	}
}

func admin1() Auth { return Auth{method.Admin(1), admin1PIN} }

// must fails the test on err.
func (td *testDrive) must(what string, err error) {
	td.t.Helper()
	if err != nil {
		td.t.Fatalf("%s: %v", what, err)
	}
}

// wantStatus checks that err carries st.
func wantStatus(t *testing.T, what string, err error, st method.MethodStatus) {
	t.Helper()
	if !errors.Is(err, st) {
		t.Fatalf("%s = %v; want %v", what, err, st)
	}
}

// blockSize is the test drives' logical block size.
const blockSize = 512

func (td *testDrive) write(lba uint64, data []byte) error { return td.d.Write(lba, data) }

func (td *testDrive) read(lba uint64, n int) ([]byte, error) {
	buf := make([]byte, n)
	err := td.d.Read(lba, buf)
	return buf, err
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>9)
	}
	return b
}

func TestQueryAndMSID(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	info, err := Query(td.ctx, td.c)
	td.must("Query", err)
	if info.Level0.OpalV2 == nil || info.Level0.LockingEnabled() {
		t.Errorf("Level 0 = %+v", info.Level0)
	}
	if info.Properties.Fallback != nil || info.Properties.TPer.MaxComPacketSize < 2048 {
		t.Errorf("Properties = %+v", info.Properties)
	}
	msid, err := MSID(td.ctx, td.c)
	td.must("MSID", err)
	if !bytes.Equal(msid, td.d.MSID()) {
		t.Errorf("MSID = %x; want %x", []byte(msid), td.d.MSID())
	}
	st, err := LockingSPState(td.ctx, td.c)
	if err != nil || st != ManufacturedInactive {
		t.Errorf("LockingSPState = %v, %v; want Manufactured-Inactive", st, err)
	}
}

func TestOwnershipAndActivation(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.must("TakeOwnership", TakeOwnership(td.ctx, td.c, sidPIN))
	if err := TakeOwnership(td.ctx, td.c, wrongPIN); !errors.Is(err, ErrOwned) {
		t.Errorf("second TakeOwnership = %v; want ErrOwned", err)
	}
	// The SID PIN is the new one, not the MSID.
	msid, _ := MSID(td.ctx, td.c)
	err := Activate(td.ctx, td.c, msid, nil)
	wantStatus(t, "Activate with the MSID", err, method.StatusNotAuthorized)

	td.must("Activate", Activate(td.ctx, td.c, sidPIN, nil))
	if err := Activate(td.ctx, td.c, sidPIN, nil); !errors.Is(err, ErrActive) {
		t.Errorf("second Activate = %v; want ErrActive", err)
	}
	if st, err := LockingSPState(td.ctx, td.c); err != nil || st != Manufactured {
		t.Errorf("LockingSPState = %v, %v; want Manufactured", st, err)
	}
	d, err := td.c.Discover(td.ctx)
	td.must("Discover", err)
	if !d.LockingEnabled() {
		t.Error("Level 0 does not say locking is enabled after Activate")
	}
	// Admin1's PIN is SID's after activation.
	_, err = GetRange(td.ctx, td.c, Auth{method.Admin(1), sidPIN}, 0)
	td.must("GetRange as Admin1 with the SID PIN", err)
	td.must("SetSIDPIN", SetPIN(td.ctx, td.c, Auth{method.SID, sidPIN}, method.SID, wrongPIN))
	_, err = Random(td.ctx, td.c, method.AdminSP, Auth{method.SID, wrongPIN}, 8)
	td.must("session with the new SID PIN", err)
}

func TestRanges(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.owned()
	a := admin1()
	td.must("SetupRange", SetupRange(td.ctx, td.c, a, 1, 2048, 4096))
	rg, err := GetRange(td.ctx, td.c, a, 1)
	td.must("GetRange", err)
	if rg.Start != 2048 || rg.Length != 4096 || rg.ReadLockEnabled || rg.ReadLocked || rg.ActiveKey.IsZero() {
		t.Errorf("range 1 = %+v", rg)
	}
	if len(rg.LockOnReset) != 1 || rg.LockOnReset[0] != PowerCycle {
		t.Errorf("LockOnReset = %v; want [PowerCycle]", rg.LockOnReset)
	}
	data := pattern(8*blockSize, 3)
	td.must("write range 1", td.write(2048, data))

	td.must("SetLockEnabled", SetLockEnabled(td.ctx, td.c, a, 1, true, true))
	td.must("lock", SetLockState(td.ctx, td.c, a, 1, Locked))
	if _, err := td.read(2048, blockSize); err == nil {
		t.Error("read of a locked range succeeded")
	}
	if _, err := td.read(0, blockSize); err != nil {
		t.Errorf("read outside the locked range: %v", err)
	}
	td.must("read-only", SetLockState(td.ctx, td.c, a, 1, ReadOnly))
	if got, err := td.read(2048, len(data)); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read of a read-only range: %v", err)
	}
	if err := td.write(2048, data[:blockSize]); err == nil {
		t.Error("write to a read-only range succeeded")
	}
	td.must("unlock", SetLockState(td.ctx, td.c, a, 1, ReadWrite))
	td.must("write after unlock", td.write(2048, data[:blockSize]))

	// Disabled locking: Locked has no effect.
	td.must("lock", SetLockState(td.ctx, td.c, a, 1, Locked))
	td.must("disable", SetLockEnabled(td.ctx, td.c, a, 1, false, false))
	if _, err := td.read(2048, blockSize); err != nil {
		t.Errorf("read with locking disabled: %v", err)
	}

	rs, err := ListRanges(td.ctx, td.c, a)
	td.must("ListRanges", err)
	if len(rs) != 9 || rs[1].Start != 2048 || !rs[1].ReadLocked || rs[1].ReadLockedNow() {
		t.Errorf("ListRanges = %d ranges, range 1 %+v", len(rs), rs[1])
	}
}

func TestRangeErrors(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.owned()
	a := admin1()
	for _, tc := range []struct {
		name          string
		start, length uint64
	}{
		{"unaligned start", 2049, 4096},
		{"unaligned length", 2048, 4095},
		{"past the end", 1 << 21, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := SetupRange(td.ctx, td.c, a, 1, tc.start, tc.length)
			wantStatus(t, "SetupRange", err, method.StatusInvalidParameter)
			if !strings.Contains(err.Error(), "configure range 1: Set Locking_Range1: INVALID_PARAMETER") {
				t.Errorf("error %q does not name the step", err)
			}
		})
	}
	td.must("SetupRange 1", SetupRange(td.ctx, td.c, a, 1, 0, 8192))
	err := SetupRange(td.ctx, td.c, a, 2, 4096, 8192)
	wantStatus(t, "overlapping SetupRange", err, method.StatusInvalidParameter)
	err = SetupRange(td.ctx, td.c, a, 99, 0, 8)
	if err == nil {
		t.Error("SetupRange of range 99 succeeded")
	}
}

func TestRangeAbove2TiB(t *testing.T) {
	td := newTestDrive(t, sim.Config{Blocks: 3 << 32}) // 6 TiB, sparse
	td.owned()
	a := admin1()
	start := uint64(1)<<32 + 8 // past 2 TiB: needs more than 4 bytes
	length := uint64(1)<<32 + 64
	td.must("SetupRange", SetupRange(td.ctx, td.c, a, 3, start, length))
	rg, err := GetRange(td.ctx, td.c, a, 3)
	td.must("GetRange", err)
	if rg.Start != start || rg.Length != length {
		t.Fatalf("range 3 = start %d length %d; want %d %d", rg.Start, rg.Length, start, length)
	}
	data := pattern(blockSize, 9)
	td.must("write", td.write(start+length-1, data))
	td.must("enable", SetLockEnabled(td.ctx, td.c, a, 3, true, true))
	td.must("lock", SetLockState(td.ctx, td.c, a, 3, Locked))
	if _, err := td.read(start+length-1, blockSize); err == nil {
		t.Error("read of the last block of a locked range above 2 TiB succeeded")
	}
	if _, err := td.read(start-1, blockSize); err != nil {
		t.Errorf("read of the block before the range: %v", err)
	}
}

func TestWrongPINAndLockout(t *testing.T) {
	td := newTestDrive(t, sim.Config{TryLimit: 3})
	td.owned()
	bad := Auth{method.Admin(1), wrongPIN}
	for i := range 3 {
		_, err := GetRange(td.ctx, td.c, bad, 0)
		wantStatus(t, "GetRange with a wrong PIN", err, method.StatusNotAuthorized)
		t.Logf("try %d: %v", i+1, err)
	}
	_, err := GetRange(td.ctx, td.c, bad, 0)
	wantStatus(t, "GetRange after 3 wrong PINs", err, method.StatusAuthorityLockedOut)
	_, err = GetRange(td.ctx, td.c, admin1(), 0)
	wantStatus(t, "GetRange with the right PIN while locked out", err, method.StatusAuthorityLockedOut)
	// Other authorities are not affected.
	_, err = Random(td.ctx, td.c, method.AdminSP, Auth{method.SID, sidPIN}, 4)
	td.must("SID session while Admin1 is locked out", err)

	td.d.PowerCycle()
	td.c.Renegotiate()
	_, err = GetRange(td.ctx, td.c, admin1(), 0)
	td.must("GetRange after a power cycle", err)
}

func TestTries(t *testing.T) {
	td := newTestDrive(t, sim.Config{TryLimit: 5})
	td.owned()
	_, err := GetRange(td.ctx, td.c, Auth{method.Admin(1), wrongPIN}, 0)
	wantStatus(t, "GetRange", err, method.StatusNotAuthorized)
	// Whether the tries left can be told depends on the drive letting
	// Anybody read C_PIN TryLimit/Tries; report what happened.
	limit, tries, terr := Tries(td.ctx, td.c, method.LockingSP, admin1(), method.Admin(1))
	td.must("Tries as Admin1", terr)
	if limit != 5 || tries != 0 { // the successful session reset Tries
		t.Errorf("Tries = %d of %d; want 0 of 5", tries, limit)
	}
	t.Logf("error after a wrong PIN: %v", err)
}

func TestSPBusyAndStackReset(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.owned()
	// Another host opens a write session and dies without closing it.
	dead := td.client(nil)
	s, err := dead.StartSession(td.ctx, session.Params{SP: method.LockingSP, Write: true, Authority: method.Admin(1), Challenge: admin1PIN})
	td.must("StartSession", err)
	_ = s

	err = SetLockState(td.ctx, td.c, admin1(), 0, ReadWrite)
	wantStatus(t, "second write session", err, method.StatusSPBusy)
	// Read sessions conflict with a write session too (on sedsim).
	_, err = GetRange(td.ctx, td.c, admin1(), 0)
	if err != nil {
		t.Logf("read session beside a write session: %v", err)
	}
	st, err := td.c.VerifyComID(td.ctx, 0)
	if err != nil || !st.Valid() {
		t.Errorf("VerifyComID = %v, %v", st, err)
	}
	td.must("StackReset", td.c.StackReset(td.ctx))
	td.must("write session after STACK_RESET", SetLockState(td.ctx, td.c, admin1(), 0, ReadWrite))
	id, ext, err := td.c.GetComID(td.ctx)
	if err != nil || id != 0x1004 || ext != 0 {
		t.Errorf("GetComID = %#x, %#x, %v", id, ext, err)
	}
}

func TestUsers(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.owned()
	a := admin1()
	u1 := Auth{method.User(1), user1PIN}
	td.must("SetupRange", SetupRange(td.ctx, td.c, a, 1, 0, 8192))
	td.must("enable locking", SetLockEnabled(td.ctx, td.c, a, 1, true, true))
	td.must("SetPIN User1", SetPIN(td.ctx, td.c, a, method.User(1), user1PIN))

	// Disabled: the user cannot authenticate.
	_, err := Unlock(td.ctx, td.c, u1, []uint32{1}, nil)
	wantStatus(t, "Unlock as a disabled user", err, method.StatusNotAuthorized)
	td.must("EnableUser", EnableUser(td.ctx, td.c, a, 1, true))

	// Enabled but without rights on the range.
	err = SetLockState(td.ctx, td.c, u1, 1, Locked)
	wantStatus(t, "lock as User1 before AddUserToRange", err, method.StatusNotAuthorized)
	if !strings.Contains(err.Error(), "Set Locking_Range1: NOT_AUTHORIZED (0x01)") {
		t.Errorf("error %q does not name the call", err)
	}

	td.must("AddUserToRange", AddUserToRange(td.ctx, td.c, a, 1, 1))
	td.must("AddUserToRange again", AddUserToRange(td.ctx, td.c, a, 1, 1))
	td.must("lock as User1", SetLockState(td.ctx, td.c, u1, 1, Locked))
	if _, err := td.read(0, blockSize); err == nil {
		t.Error("read of a range User1 locked succeeded")
	}
	_, err = Unlock(td.ctx, td.c, u1, []uint32{1}, nil)
	td.must("Unlock as User1", err)
	// Admin1 keeps its rights.
	td.must("lock as Admin1", SetLockState(td.ctx, td.c, a, 1, Locked))
	td.must("unlock as Admin1", SetLockState(td.ctx, td.c, a, 1, ReadWrite))

	// What a user still may not do.
	err = SetLockState(td.ctx, td.c, u1, 2, Locked)
	wantStatus(t, "lock range 2 as User1", err, method.StatusNotAuthorized)
	err = SetupRange(td.ctx, td.c, u1, 1, 0, 16384)
	wantStatus(t, "SetupRange as User1", err, method.StatusNotAuthorized)
	err = GenKey(td.ctx, td.c, u1, 1)
	if !errors.Is(err, method.StatusNotAuthorized) && !errors.Is(err, ErrNotReadable) {
		t.Errorf("GenKey as User1 = %v; want NOT_AUTHORIZED or ErrNotReadable", err)
	}
	_, err = Call(td.ctx, td.c, method.LockingSP, u1, true, method.NewCall(method.KAES256(1), method.GenKey))
	wantStatus(t, "GenKey on K_AES_256_Range1 as User1", err, method.StatusNotAuthorized)
	_, err = GetRange(td.ctx, td.c, u1, 2)
	if !errors.Is(err, ErrNotReadable) && !errors.Is(err, method.StatusNotAuthorized) {
		t.Errorf("GetRange 2 as User1 = %v; want ErrNotReadable or NOT_AUTHORIZED", err)
	}
	err = SetPIN(td.ctx, td.c, u1, method.User(2), wrongPIN)
	wantStatus(t, "SetPIN of User2 as User1", err, method.StatusNotAuthorized)
	err = SetMBRControl(td.ctx, td.c, u1, MBRSettings{Done: ptr(true)})
	wantStatus(t, "MBR Done as User1", err, method.StatusNotAuthorized)
	// A user sets its own PIN.
	newPIN := hash.PIN(bytes.Repeat([]byte{0x02}, 32))
	td.must("SetPIN of User1 as User1", SetPIN(td.ctx, td.c, u1, method.User(1), newPIN))
	_, err = Unlock(td.ctx, td.c, Auth{method.User(1), newPIN}, []uint32{1}, nil)
	td.must("Unlock with User1's new PIN", err)
	td.must("disable User1", EnableUser(td.ctx, td.c, a, 1, false))
	_, err = Unlock(td.ctx, td.c, Auth{method.User(1), newPIN}, []uint32{1}, nil)
	wantStatus(t, "Unlock as a disabled user", err, method.StatusNotAuthorized)
}

func TestGenKeyErases(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.owned()
	a := admin1()
	td.must("SetupRange", SetupRange(td.ctx, td.c, a, 2, 8192, 8192))
	data := pattern(4*blockSize, 5)
	td.must("write", td.write(8192, data))
	outside := pattern(blockSize, 77)
	td.must("write outside", td.write(100, outside))
	before, _ := GetRange(td.ctx, td.c, a, 2)
	td.must("GenKey", GenKey(td.ctx, td.c, a, 2))
	got, err := td.read(8192, len(data))
	td.must("read after GenKey", err)
	if bytes.Equal(got, data) {
		t.Error("data survived GenKey")
	}
	if got, _ := td.read(100, blockSize); !bytes.Equal(got, outside) {
		t.Error("GenKey of range 2 changed data outside it")
	}
	after, _ := GetRange(td.ctx, td.c, a, 2)
	if after.ActiveKey != before.ActiveKey {
		t.Logf("ActiveKey changed from %v to %v", before.ActiveKey, after.ActiveKey)
	}
}

func TestMBRShadow(t *testing.T) {
	td := newTestDrive(t, sim.Config{MBRSize: 1 << 20})
	td.owned()
	a := admin1()
	size, err := TableSize(td.ctx, td.c, a, method.MBR)
	td.must("TableSize", err)
	if size != 1<<20 {
		t.Errorf("MBR size %d", size)
	}
	pba := pattern(200000, 11) // several ComPackets
	var progress []int
	td.must("WriteMBR", WriteMBR(td.ctx, td.c, a, 0, pba, func(n int) { progress = append(progress, n) }))
	if len(progress) < 3 || progress[len(progress)-1] != len(pba) {
		t.Errorf("progress %v", progress)
	}
	back := make([]byte, len(pba))
	td.must("ReadMBR", ReadMBR(td.ctx, td.c, a, 0, back))
	if !bytes.Equal(back, pba) {
		t.Fatal("MBR read back differs")
	}
	disk := pattern(8*blockSize, 99)
	td.must("write LBA 0", td.write(0, disk))

	td.must("enable shadow", SetMBRControl(td.ctx, td.c, a, MBRSettings{Enable: ptr(true), Done: ptr(false)}))
	st, err := GetMBRControl(td.ctx, td.c, a)
	td.must("GetMBRControl", err)
	if !st.Enable || st.Done || len(st.DoneOnReset) != 1 || st.DoneOnReset[0] != PowerCycle {
		t.Errorf("MBRControl = %+v", st)
	}
	got, err := td.read(0, 8*blockSize)
	td.must("read LBA 0 with the shadow on", err)
	if !bytes.Equal(got, pba[:8*blockSize]) {
		t.Error("LBA 0 does not show the shadow MBR")
	}
	if err := td.write(0, disk[:blockSize]); err == nil {
		t.Error("write to the shadow MBR succeeded")
	}
	td.must("Done", SetMBRControl(td.ctx, td.c, a, MBRSettings{Done: ptr(true)}))
	if got, _ := td.read(0, 8*blockSize); !bytes.Equal(got, disk) {
		t.Error("LBA 0 does not show the media after Done")
	}
	// A power cycle shows the shadow again; Unlock hides it.
	td.d.PowerCycle()
	if got, _ := td.read(0, blockSize); !bytes.Equal(got, pba[:blockSize]) {
		t.Error("the shadow is not back after a power cycle")
	}
	res, err := Unlock(td.ctx, td.c, a, []uint32{0}, nil)
	td.must("Unlock", err)
	if !res.SetMBRDone {
		t.Error("Unlock did not set MBR Done")
	}
	if got, _ := td.read(0, 8*blockSize); !bytes.Equal(got, disk) {
		t.Error("LBA 0 does not show the media after Unlock")
	}
	// Bounds.
	err = WriteMBR(td.ctx, td.c, a, 1<<20-4, make([]byte, 8), nil)
	if err == nil {
		t.Error("write past the end of the MBR table succeeded")
	}
}

func TestDataStore(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.owned()
	a := admin1()
	data := pattern(300000, 21)
	td.must("WriteDataStore", WriteDataStore(td.ctx, td.c, a, 1, 4096, data, nil))
	back := make([]byte, len(data))
	td.must("ReadDataStore", ReadDataStore(td.ctx, td.c, a, 1, 4096, back))
	if !bytes.Equal(back, data) {
		t.Fatal("DataStore read back differs")
	}
	// Users have no DataStore rights by default.
	td.must("SetPIN User1", SetPIN(td.ctx, td.c, a, method.User(1), user1PIN))
	td.must("EnableUser", EnableUser(td.ctx, td.c, a, 1, true))
	err := ReadDataStore(td.ctx, td.c, Auth{method.User(1), user1PIN}, 1, 0, back[:16])
	wantStatus(t, "ReadDataStore as User1", err, method.StatusNotAuthorized)
}

func TestChunksRespectSmallLimits(t *testing.T) {
	td := newTestDrive(t, sim.Config{MaxComPacketSize: 2048, MaxPacketSize: 2028, MaxIndTokenSize: 1992})
	td.owned()
	a := admin1()
	data := pattern(20000, 33)
	td.must("WriteMBR", WriteMBR(td.ctx, td.c, a, 12345, data, nil))
	back := make([]byte, len(data))
	td.must("ReadMBR", ReadMBR(td.ctx, td.c, a, 12345, back))
	if !bytes.Equal(back, data) {
		t.Fatal("MBR read back differs")
	}
	l := td.c.Limits()
	if n := writeChunk(l, method.MBR, 1<<20); n < 1900 || n > 1988 {
		t.Errorf("write chunk %d for 2048-byte ComPackets", n)
	}
}

func TestRevert(t *testing.T) {
	t.Run("SID", func(t *testing.T) {
		td := newTestDrive(t, sim.Config{})
		td.owned()
		td.must("SetupRange", SetupRange(td.ctx, td.c, admin1(), 1, 0, 8192))
		data := pattern(blockSize, 1)
		td.must("write", td.write(0, data))
		err := Revert(td.ctx, td.c, Auth{method.SID, wrongPIN})
		wantStatus(t, "Revert with a wrong SID PIN", err, method.StatusNotAuthorized)
		before := td.c.Stats()
		td.must("Revert", Revert(td.ctx, td.c, Auth{method.SID, sidPIN}))
		if d := td.c.Stats().Sends - before.Sends; d != 2 {
			t.Errorf("Revert took %d IF-SENDs; want 2 (StartSession, Revert; no EndOfSession)", d)
		}
		checkFactory(t, td)
		if got, _ := td.read(0, blockSize); bytes.Equal(got, data) {
			t.Error("data survived Revert")
		}
	})
	t.Run("PSID", func(t *testing.T) {
		td := newTestDrive(t, sim.Config{})
		td.owned()
		err := Revert(td.ctx, td.c, Auth{method.PSID, wrongPIN})
		wantStatus(t, "Revert with a wrong PSID", err, method.StatusNotAuthorized)
		td.must("PSID Revert", Revert(td.ctx, td.c, Auth{method.PSID, td.psid}))
		checkFactory(t, td)
	})
	t.Run("LockingSP", func(t *testing.T) {
		td := newTestDrive(t, sim.Config{})
		td.owned()
		td.must("RevertLockingSP", RevertLockingSP(td.ctx, td.c, sidPIN))
		if st, err := LockingSPState(td.ctx, td.c); err != nil || st != ManufacturedInactive {
			t.Errorf("LockingSPState = %v, %v", st, err)
		}
		// SID keeps its PIN.
		_, err := Random(td.ctx, td.c, method.AdminSP, Auth{method.SID, sidPIN}, 4)
		td.must("SID session", err)
	})
}

func checkFactory(t *testing.T, td *testDrive) {
	t.Helper()
	if st, err := LockingSPState(td.ctx, td.c); err != nil || st != ManufacturedInactive {
		t.Errorf("LockingSPState after Revert = %v, %v", st, err)
	}
	// SID = MSID again: ownership can be taken anew.
	td.must("TakeOwnership after Revert", TakeOwnership(td.ctx, td.c, sidPIN))
}

func TestRevertSP(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(map[bool]string{true: "keep", false: "erase"}[keep], func(t *testing.T) {
			td := newTestDrive(t, sim.Config{})
			td.owned()
			data := pattern(blockSize, 2)
			td.must("write", td.write(10, data))
			before := td.c.Stats()
			td.must("RevertSP", RevertSP(td.ctx, td.c, admin1(), keep))
			if d := td.c.Stats().Sends - before.Sends; d != 2 {
				t.Errorf("RevertSP took %d IF-SENDs; want 2 (no EndOfSession)", d)
			}
			if st, err := LockingSPState(td.ctx, td.c); err != nil || st != ManufacturedInactive {
				t.Errorf("LockingSPState = %v, %v", st, err)
			}
			got, err := td.read(10, blockSize)
			td.must("read", err)
			if bytes.Equal(got, data) != keep {
				t.Errorf("data kept = %v; want %v", bytes.Equal(got, data), keep)
			}
		})
	}
	t.Run("keep while locked", func(t *testing.T) {
		td := newTestDrive(t, sim.Config{})
		td.owned()
		td.must("enable", SetLockEnabled(td.ctx, td.c, admin1(), 0, true, true))
		td.must("lock", SetLockState(td.ctx, td.c, admin1(), 0, Locked))
		err := RevertSP(td.ctx, td.c, admin1(), true)
		if err == nil {
			t.Fatal("RevertSP keeping the key of a locked global range succeeded")
		}
		t.Logf("RevertSP keep while locked: %v", err)
		// The session survived the failure and was closed: the SP is free.
		td.must("unlock", SetLockState(td.ctx, td.c, admin1(), 0, ReadWrite))
	})
}

func TestRandomAndRaw(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	r1, err := Random(td.ctx, td.c, method.AdminSP, Anybody, 48)
	td.must("Random", err)
	r2, _ := Random(td.ctx, td.c, method.AdminSP, Anybody, 48)
	if len(r1) != 48 || bytes.Equal(r1, r2) {
		t.Errorf("Random = %x, %x", r1, r2)
	}
	td.owned()
	a := admin1()
	uids, err := Next(td.ctx, td.c, method.LockingSP, a, method.LockingTable, method.UID{}, 0)
	td.must("Next", err)
	if len(uids) != 9 || uids[0] != method.GlobalRange || uids[1] != method.LockingRange(1) {
		t.Errorf("Next Locking = %v", uids)
	}
	uids, err = Next(td.ctx, td.c, method.LockingSP, a, method.LockingTable, method.LockingRange(7), 0)
	td.must("Next after Range7", err)
	if len(uids) != 1 || uids[0] != method.LockingRange(8) {
		t.Errorf("Next after Range7 = %v", uids)
	}
	td.must("raw Set", Set(td.ctx, td.c, method.LockingSP, a, method.LockingRange(4), token.Named(ColRangeStart, token.Uint(16)), token.Named(ColRangeLength, token.Uint(16))))
	r, err := Get(td.ctx, td.c, method.LockingSP, a, method.LockingRange(4), method.CellBlock{})
	td.must("raw Get all columns", err)
	if v, ok := r.Column(ColRangeStart); !ok || v.String() != "16" {
		t.Errorf("Get Range4 = %v", r.Values)
	}
	// PINs are never readable, except MSID's.
	_, err = Get(td.ctx, td.c, method.LockingSP, a, method.CPINAdmin(1), method.Columns(ColCPINPIN, ColCPINPIN))
	if err == nil {
		r, _ := Get(td.ctx, td.c, method.LockingSP, a, method.CPINAdmin(1), method.Columns(ColCPINPIN, ColCPINPIN))
		if _, ok := r.Column(ColCPINPIN); ok {
			t.Error("Admin1's PIN is readable")
		}
	}
	_, err = Call(td.ctx, td.c, method.LockingSP, a, false, method.NewCall(method.LockingRange(1), method.MethodID{0, 0, 0, 6, 0, 0, 0xAB, 0xCD}))
	if err == nil {
		t.Error("an unknown method succeeded")
	}
}

func TestPyriteHasNoRanges(t *testing.T) {
	td := newTestDrive(t, sim.Config{Profile: sim.Pyrite2})
	td.owned()
	err := SetupRange(td.ctx, td.c, admin1(), 1, 0, 8)
	if !errors.Is(err, ErrNoRanges) {
		t.Errorf("SetupRange on Pyrite = %v; want ErrNoRanges", err)
	}
	// The global range works.
	td.must("enable global", SetLockEnabled(td.ctx, td.c, admin1(), 0, true, true))
	td.must("lock global", SetLockState(td.ctx, td.c, admin1(), 0, Locked))
	if _, err := td.read(0, blockSize); err == nil {
		t.Error("read of a locked Pyrite drive succeeded")
	}
	_, err = Unlock(td.ctx, td.c, admin1(), []uint32{0}, nil)
	td.must("Unlock", err)
	err = GenKey(td.ctx, td.c, admin1(), 0)
	if err == nil {
		t.Error("GenKey on Pyrite succeeded")
	}
	err = SetMBRControl(td.ctx, td.c, admin1(), MBRSettings{Enable: ptr(true)})
	if err == nil {
		t.Error("MBR shadow enabled on Pyrite")
	}
}

func TestLockOnReset(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.owned()
	a := admin1()
	td.must("SetupRange", SetupRange(td.ctx, td.c, a, 1, 0, 8192))
	td.must("SetupRange", SetupRange(td.ctx, td.c, a, 2, 8192, 8192))
	for _, n := range []uint32{1, 2} {
		td.must("enable", SetLockEnabled(td.ctx, td.c, a, n, true, true))
	}
	td.must("no LockOnReset on range 2", SetLockOnReset(td.ctx, td.c, a, 2, nil))
	td.d.PowerCycle()
	if _, err := td.read(0, blockSize); err == nil {
		t.Error("range 1 did not lock on power cycle")
	}
	if _, err := td.read(8192, blockSize); err != nil {
		t.Errorf("range 2 locked on power cycle: %v", err)
	}
	rg, err := GetRange(td.ctx, td.c, a, 2)
	td.must("GetRange", err)
	if len(rg.LockOnReset) != 0 {
		t.Errorf("LockOnReset = %v", rg.LockOnReset)
	}
}

func TestSingleUserMode(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.must("TakeOwnership", TakeOwnership(td.ctx, td.c, sidPIN))
	td.must("Activate SUM", Activate(td.ctx, td.c, sidPIN, &ActivateOptions{SingleUser: []uint32{1}, Admin1PIN: admin1PIN}))
	d, err := td.c.Discover(td.ctx)
	td.must("Discover", err)
	if d.SingleUserMode == nil || !d.SingleUserMode.Any {
		t.Errorf("Level 0 SUM = %+v", d.SingleUserMode)
	}
	// Admin1 got the PIN given in Activate.
	_, err = GetRange(td.ctx, td.c, admin1(), 0)
	td.must("GetRange as Admin1", err)
	// Range 1 belongs to User2; Admin1 may no longer lock it.
	err = SetLockState(td.ctx, td.c, admin1(), 1, Locked)
	wantStatus(t, "lock a SUM range as Admin1", err, method.StatusNotAuthorized)
	// The owner, User2, starts with an empty PIN (PROTOCOL.md 1.15 [S]).
	u2 := Auth{method.User(2), hash.PIN{}}
	if err := SetLockState(td.ctx, td.c, u2, 1, Locked); err != nil {
		t.Logf("lock range 1 as User2 with an empty PIN: %v", err)
	} else {
		td.must("unlock as User2", SetLockState(td.ctx, td.c, u2, 1, ReadWrite))
		td.must("User2 sets its PIN", SetPIN(td.ctx, td.c, u2, method.User(2), user1PIN))
		td.must("EraseRange as User2", EraseRange(td.ctx, td.c, Auth{method.User(2), user1PIN}, 1))
	}
}

func TestDifficultDrive(t *testing.T) {
	td := newTestDrive(t, sim.Config{NotReadyPolls: 3, ShortProperties: true})
	td.owned()
	p := td.c.Limits()
	if p.Fallback != nil || p.Host != session.CoreMinimums {
		t.Errorf("limits with a short Properties answer: %+v", p)
	}
	data := pattern(5000, 4)
	td.must("WriteMBR", WriteMBR(td.ctx, td.c, admin1(), 0, data, nil))
	back := make([]byte, len(data))
	td.must("ReadMBR", ReadMBR(td.ctx, td.c, admin1(), 0, back))
	if !bytes.Equal(back, data) {
		t.Error("MBR differs")
	}
}

func TestTraceOnSim(t *testing.T) {
	var out bytes.Buffer
	var dec session.TraceDecoder
	td := newTestDrive(t, sim.Config{})
	td.c = td.client(&session.Options{Trace: dec.Hook(&out)})
	td.owned()
	td.must("SetPIN User1", SetPIN(td.ctx, td.c, admin1(), method.User(1), user1PIN))
	text := out.String()
	for name, pin := range map[string]hash.PIN{"SID": sidPIN, "Admin1": admin1PIN, "User1": user1PIN, "MSID": td.d.MSID()} {
		for _, form := range []string{string(pin), bytesHex(pin), strings.ToUpper(bytesHex(pin))} {
			if strings.Contains(text, form) {
				t.Errorf("the decoded trace shows the %s PIN", name)
			}
		}
	}
	if n := strings.Count(text, "[REDACTED"); n < 6 {
		t.Errorf("%d redactions in the trace:\n%s", n, text)
	}
}

func bytesHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestUnlockExchanges(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.owned()
	a := admin1()
	td.must("SetupRange", SetupRange(td.ctx, td.c, a, 1, 0, 8192))
	for _, n := range []uint32{0, 1} {
		td.must("enable", SetLockEnabled(td.ctx, td.c, a, n, true, true))
	}
	for _, tc := range []struct {
		name   string
		ranges []uint32
		shadow bool
		want   int
	}{
		{"one range", []uint32{1}, false, 3},
		{"two ranges", []uint32{0, 1}, false, 4},
		{"one range and the shadow MBR", []uint32{1}, true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td.must("MBR", SetMBRControl(td.ctx, td.c, a, MBRSettings{Enable: ptr(tc.shadow), Done: ptr(true)}))
			td.d.PowerCycle()
			c := td.client(nil) // a resume daemon's Client, Properties already done
			if _, err := c.Properties(td.ctx); err != nil {
				t.Fatal(err)
			}
			res, err := Unlock(td.ctx, c, a, tc.ranges, nil)
			td.must("Unlock", err)
			if res.Exchanges != tc.want || res.SetMBRDone != tc.shadow {
				t.Errorf("Unlock = %+v; want %d exchanges, MBR Done set %v", res, tc.want, tc.shadow)
			}
			// Level 0 and one IF-RECV per exchange: no polling needed.
			if res.Receives != tc.want+1 {
				t.Errorf("%d IF-RECVs; want %d", res.Receives, tc.want+1)
			}
			for _, n := range tc.ranges {
				rg, _ := GetRange(td.ctx, c, a, n)
				if rg.ReadLocked || rg.WriteLocked {
					t.Errorf("range %d still locked: %+v", n, rg)
				}
			}
		})
	}
}

// BenchmarkUnlock measures open-session + unlock + close of one range on a
// Client that has done discovery and Properties, as the resume daemon
// does, and reports the exchanges (IF-SENDs) and IF-RECVs per unlock.
func BenchmarkUnlock(b *testing.B) {
	for _, bc := range []struct {
		name   string
		ranges []uint32
		shadow bool
	}{
		{"range", []uint32{1}, false},
		{"range+shadowMBR", []uint32{1}, true},
		{"2ranges+shadowMBR", []uint32{0, 1}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d, _, err := sim.Create(b.TempDir(), sim.Config{Blocks: 1 << 21, MBRSize: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ctx := context.Background()
			c := session.NewClient(d.Transport(), nil)
			if err := TakeOwnership(ctx, c, sidPIN); err != nil {
				b.Fatal(err)
			}
			if err := Activate(ctx, c, sidPIN, nil); err != nil {
				b.Fatal(err)
			}
			a := Auth{method.Admin(1), sidPIN}
			for _, n := range bc.ranges {
				if err := SetLockEnabled(ctx, c, a, n, true, true); err != nil {
					b.Fatal(err)
				}
			}
			if err := SetMBRControl(ctx, c, a, MBRSettings{Enable: ptr(bc.shadow)}); err != nil {
				b.Fatal(err)
			}
			var sends, recvs int
			var traced int
			c = session.NewClient(d.Transport(), &session.Options{Trace: func(string, uint8, uint16, []byte) { traced++ }})
			if _, err := c.Properties(ctx); err != nil {
				b.Fatal(err)
			}
			traced = 0
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				d.PowerCycle()
				b.StartTimer()
				res, err := Unlock(ctx, c, a, bc.ranges, nil)
				if err != nil {
					b.Fatal(err)
				}
				sends += res.Exchanges
				recvs += res.Receives
			}
			b.ReportMetric(float64(sends)/float64(b.N), "exchanges/op")
			b.ReportMetric(float64(recvs)/float64(b.N), "recvs/op")
			b.ReportMetric(float64(traced)/float64(b.N), "transfers/op")
		})
	}
}

func TestProfiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sim.Config
	}{
		{"opal1", sim.Config{Profile: sim.Opal1}},
		{"ruby", sim.Config{Profile: sim.Ruby}},
		{"opal2 4096-byte blocks ComID 0x07FE", sim.Config{Profile: sim.Opal2, BlockSize: 4096, Blocks: 1 << 18, BaseComID: 0x07FE}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td := newTestDrive(t, tc.cfg)
			td.owned()
			if want := tc.cfg.BaseComID; want != 0 {
				if id, err := td.c.ComID(td.ctx); err != nil || id != want {
					t.Errorf("ComID = %#x, %v; want %#x", id, err, want)
				}
			}
			a := admin1()
			bs := int(td.d.Config().BlockSize)
			td.must("SetupRange", SetupRange(td.ctx, td.c, a, 1, 0, 64))
			td.must("enable", SetLockEnabled(td.ctx, td.c, a, 1, true, true))
			td.must("lock", SetLockState(td.ctx, td.c, a, 1, Locked))
			buf := make([]byte, bs)
			if err := td.d.Read(0, buf); err == nil {
				t.Error("read of a locked range succeeded")
			}
			td.d.PowerCycle()
			_, err := Unlock(td.ctx, td.c, a, []uint32{1}, nil)
			td.must("Unlock", err)
			td.must("read after Unlock", td.d.Read(0, buf))
		})
	}
}

func TestBlockSID(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	// Firmware blocks SID before the OS runs (IF-SEND protocol 2, ComID 5).
	td.must("Block SID", td.d.Transport().IFSend(td.ctx, 2, 0x0005, make([]byte, 512)))
	err := TakeOwnership(td.ctx, td.c, sidPIN)
	if !errors.Is(err, ErrSIDBlocked) {
		t.Fatalf("TakeOwnership with SID blocked = %v; want ErrSIDBlocked", err)
	}
	td.d.PowerCycle()
	td.must("TakeOwnership after a power cycle", TakeOwnership(td.ctx, td.c, sidPIN))
	// Once owned, Level 0 says so and no try is spent.
	if err := TakeOwnership(td.ctx, td.c, sidPIN); !errors.Is(err, ErrOwned) {
		t.Errorf("TakeOwnership of an owned drive = %v; want ErrOwned", err)
	}
}

func TestSessionLimits(t *testing.T) {
	td := newTestDrive(t, sim.Config{MaxSessions: 2})
	var open []*session.Session
	for range 2 {
		s, err := td.c.StartSession(td.ctx, session.Params{SP: method.AdminSP})
		td.must("StartSession", err)
		open = append(open, s)
	}
	_, err := td.c.StartSession(td.ctx, session.Params{SP: method.AdminSP})
	wantStatus(t, "third session", err, method.StatusNoSessionsAvailable)
	for _, s := range open {
		td.must("Close", s.Close(td.ctx))
	}
	_, err = MSID(td.ctx, td.c)
	td.must("MSID after closing", err)
}

func TestSessionTimeout(t *testing.T) {
	td := newTestDrive(t, sim.Config{MinSessionTimeout: 50})
	c := td.client(&session.Options{EmptyGrace: 100 * time.Millisecond})
	s, err := c.StartSession(td.ctx, session.Params{SP: method.AdminSP, Timeout: 50 * time.Millisecond})
	td.must("StartSession", err)
	time.Sleep(150 * time.Millisecond)
	_, err = s.Call(td.ctx, method.NewRandom(4))
	if err == nil {
		t.Fatal("call in a timed-out session succeeded")
	}
	t.Logf("call after the session timed out: %v", err)
	s.Close(td.ctx)
	_, err = Random(td.ctx, c, method.AdminSP, Anybody, 4)
	td.must("Random in a new session", err)
}

func TestConcurrentSessions(t *testing.T) {
	td := newTestDrive(t, sim.Config{MaxSessions: 8, MaxReadSessions: 8})
	td.owned()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for g := range 4 {
		wg.Go(func() {
			for range 10 {
				if g%2 == 0 {
					_, err := Random(td.ctx, td.c, method.AdminSP, Anybody, 8)
					errs <- err
				} else {
					_, err := MSID(td.ctx, td.c)
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestAuthenticateInSession(t *testing.T) {
	td := newTestDrive(t, sim.Config{TryLimit: 5})
	td.owned()
	a := admin1()
	td.must("SetPIN User1", SetPIN(td.ctx, td.c, a, method.User(1), user1PIN))
	td.must("EnableUser", EnableUser(td.ctx, td.c, a, 1, true))
	s, err := td.c.StartSession(td.ctx, session.Params{SP: method.LockingSP, Write: true})
	td.must("anonymous write session", err)
	defer s.Close(td.ctx)
	err = s.Set(td.ctx, method.LockingRange(0), token.Named(ColReadLocked, token.Bool(false)))
	wantStatus(t, "Set as Anybody", err, method.StatusNotAuthorized)
	err = s.Authenticate(td.ctx, method.Admin(1), wrongPIN)
	wantStatus(t, "Authenticate with a wrong PIN", err, method.StatusNotAuthorized)
	td.must("Authenticate Admin1", s.Authenticate(td.ctx, method.Admin(1), admin1PIN))
	td.must("Set as Admin1", s.Set(td.ctx, method.LockingRange(0), token.Named(ColReadLocked, token.Bool(false))))
}

func TestTPerReset(t *testing.T) {
	td := newTestDrive(t, sim.Config{})
	td.owned()
	a := admin1()
	td.must("enable", SetLockEnabled(td.ctx, td.c, a, 0, true, true))
	td.must("LockOnReset", SetLockOnReset(td.ctx, td.c, a, 0, []ResetType{PowerCycle, Programmatic}))
	if err := td.c.TPerReset(td.ctx); err == nil {
		t.Error("TPer reset accepted while ProgrammaticResetEnable is False")
	}
	td.must("ProgrammaticResetEnable", Set(td.ctx, td.c, method.AdminSP, Auth{method.SID, sidPIN}, method.TPerInfo, token.Named(8, token.Bool(true))))
	td.must("TPerReset", td.c.TPerReset(td.ctx))
	if _, err := td.read(0, blockSize); err == nil {
		t.Error("the global range did not lock on a programmatic reset")
	}
	_, err := Unlock(td.ctx, td.c, a, []uint32{0}, nil)
	td.must("Unlock", err)
}
