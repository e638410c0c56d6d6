package sedioctl

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// TestStructLayouts pins every struct to PROTOCOL.md 3.3 (sizes and field
// offsets measured against include/uapi/linux/sed-opal.h with offsetof).
func TestStructLayouts(t *testing.T) {
	var (
		k   Key
		si  SessionInfo
		lu  LockUnlock
		lrs UserLRSetup
		act LRAct
		pw  NewPW
		mbr MBRData
		mbd MBRDoneArg
		sh  ShadowMBR
		rw  ReadWriteTable
		st  Status
		ls  LRStatus
		geo Geometry
		dis DiscoveryArg
		rv  RevertLSP
		rea LRReact
		sum SUMRanges
	)
	// C pads opal_geometry to its 8-byte alignment: 32 bytes; i386
	// aligns __u64 to 4 in structs, in C as in Go: 28.
	geometrySize := uintptr(32)
	if unsafe.Sizeof(uintptr(0)) == 4 {
		geometrySize = 28
	}
	sizes := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"opal_key", unsafe.Sizeof(k), 264},
		{"opal_session_info", unsafe.Sizeof(si), 272},
		{"opal_lock_unlock", unsafe.Sizeof(lu), 280},
		{"opal_user_lr_setup", unsafe.Sizeof(lrs), 296},
		{"opal_lr_act", unsafe.Sizeof(act), 280},
		{"opal_new_pw", unsafe.Sizeof(pw), 544},
		{"opal_mbr_data", unsafe.Sizeof(mbr), 272},
		{"opal_mbr_done", unsafe.Sizeof(mbd), 272},
		{"opal_shadow_mbr", unsafe.Sizeof(sh), 288},
		{"opal_read_write_table", unsafe.Sizeof(rw), 312},
		{"opal_status", unsafe.Sizeof(st), 8},
		{"opal_lr_status", unsafe.Sizeof(ls), 304},
		{"opal_geometry", unsafe.Sizeof(geo), geometrySize},
		{"opal_discovery", unsafe.Sizeof(dis), 16},
		{"opal_revert_lsp", unsafe.Sizeof(rv), 272},
		{"opal_lr_react", unsafe.Sizeof(rea), 544},
		{"opal_sum_ranges", unsafe.Sizeof(sum), 280},
	}
	for _, s := range sizes {
		if s.got != s.want {
			t.Errorf("sizeof(%s) = %d; want %d", s.name, s.got, s.want)
		}
	}
	offsets := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"opal_key.lr", unsafe.Offsetof(k.LR), 0},
		{"opal_key.key_len", unsafe.Offsetof(k.KeyLen), 1},
		{"opal_key.key_type", unsafe.Offsetof(k.KeyType), 2},
		{"opal_key.key", unsafe.Offsetof(k.Key), 8},
		{"opal_session_info.sum", unsafe.Offsetof(si.SUM), 0},
		{"opal_session_info.who", unsafe.Offsetof(si.Who), 4},
		{"opal_session_info.opal_key", unsafe.Offsetof(si.Key), 8},
		{"opal_lock_unlock.session", unsafe.Offsetof(lu.Session), 0},
		{"opal_lock_unlock.l_state", unsafe.Offsetof(lu.LState), 272},
		{"opal_lock_unlock.flags", unsafe.Offsetof(lu.Flags), 276},
		{"opal_user_lr_setup.range_start", unsafe.Offsetof(lrs.RangeStart), 0},
		{"opal_user_lr_setup.range_length", unsafe.Offsetof(lrs.RangeLength), 8},
		{"opal_user_lr_setup.RLE", unsafe.Offsetof(lrs.RLE), 16},
		{"opal_user_lr_setup.WLE", unsafe.Offsetof(lrs.WLE), 20},
		{"opal_user_lr_setup.session", unsafe.Offsetof(lrs.Session), 24},
		{"opal_lr_act.key", unsafe.Offsetof(act.Key), 0},
		{"opal_lr_act.sum", unsafe.Offsetof(act.SUM), 264},
		{"opal_lr_act.num_lrs", unsafe.Offsetof(act.NumLRs), 268},
		{"opal_lr_act.lr", unsafe.Offsetof(act.LR), 269},
		{"opal_new_pw.session", unsafe.Offsetof(pw.Session), 0},
		{"opal_new_pw.new_user_pw", unsafe.Offsetof(pw.NewUserPW), 272},
		{"opal_mbr_data.enable_disable", unsafe.Offsetof(mbr.EnableDisable), 264},
		{"opal_mbr_done.done_flag", unsafe.Offsetof(mbd.DoneFlag), 264},
		{"opal_shadow_mbr.data", unsafe.Offsetof(sh.Data), 264},
		{"opal_shadow_mbr.offset", unsafe.Offsetof(sh.Offset), 272},
		{"opal_shadow_mbr.size", unsafe.Offsetof(sh.Size), 280},
		{"opal_read_write_table.data", unsafe.Offsetof(rw.Data), 264},
		{"opal_read_write_table.table_uid", unsafe.Offsetof(rw.TableUID), 272},
		{"opal_read_write_table.offset", unsafe.Offsetof(rw.Offset), 280},
		{"opal_read_write_table.size", unsafe.Offsetof(rw.Size), 288},
		{"opal_read_write_table.flags", unsafe.Offsetof(rw.Flags), 296},
		{"opal_read_write_table.priv", unsafe.Offsetof(rw.Priv), 304},
		{"opal_status.flags", unsafe.Offsetof(st.Flags), 0},
		{"opal_status.reserved", unsafe.Offsetof(st.Reserved), 4},
		{"opal_lr_status.range_start", unsafe.Offsetof(ls.RangeStart), 272},
		{"opal_lr_status.range_length", unsafe.Offsetof(ls.RangeLength), 280},
		{"opal_lr_status.RLE", unsafe.Offsetof(ls.RLE), 288},
		{"opal_lr_status.WLE", unsafe.Offsetof(ls.WLE), 292},
		{"opal_lr_status.l_state", unsafe.Offsetof(ls.LState), 296},
		{"opal_geometry.align", unsafe.Offsetof(geo.Align), 0},
		{"opal_geometry.logical_block_size", unsafe.Offsetof(geo.LogicalBlockSize), 4},
		{"opal_geometry.alignment_granularity", unsafe.Offsetof(geo.AlignmentGranularity), 8},
		{"opal_geometry.lowest_aligned_lba", unsafe.Offsetof(geo.LowestAlignedLBA), 16},
		{"opal_discovery.data", unsafe.Offsetof(dis.Data), 0},
		{"opal_discovery.size", unsafe.Offsetof(dis.Size), 8},
		{"opal_revert_lsp.options", unsafe.Offsetof(rv.Options), 264},
		{"opal_lr_react.new_admin_key", unsafe.Offsetof(rea.NewAdminKey), 264},
		{"opal_lr_react.num_lrs", unsafe.Offsetof(rea.NumLRs), 528},
		{"opal_lr_react.lr", unsafe.Offsetof(rea.LR), 529},
		{"opal_lr_react.range_policy", unsafe.Offsetof(rea.RangePolicy), 538},
		{"opal_lr_react.entire_table", unsafe.Offsetof(rea.EntireTable), 539},
		{"opal_sum_ranges.num_lrs", unsafe.Offsetof(sum.NumLRs), 264},
		{"opal_sum_ranges.lr", unsafe.Offsetof(sum.LR), 265},
		{"opal_sum_ranges.range_policy", unsafe.Offsetof(sum.RangePolicy), 274},
	}
	for _, o := range offsets {
		if o.got != o.want {
			t.Errorf("offsetof(%s) = %d; want %d", o.name, o.got, o.want)
		}
	}
}

// memOf returns the memory of *p.
func memOf[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

func testKey(lr uint8) Key {
	k, _ := NewKey(lr, bytes.Repeat([]byte{0xA0 + lr}, 32))
	k.KeyType = KeyType(lr & 1)
	return k
}

func session(who User, lr uint8) SessionInfo {
	return SessionInfo{SUM: 0x01020304, Who: who, Key: testKey(lr)}
}

// TestMarshalMatchesMemory checks each explicit encoding against the
// struct's memory, the bytes the kernel reads, with every field set to a
// distinct value so that a misplaced field shows.
func TestMarshalMatchesMemory(t *testing.T) {
	check := func(name string, m encoding.BinaryMarshaler, mem []byte) {
		t.Helper()
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(b, mem) {
			t.Errorf("%s: MarshalBinary (%d bytes) differs from memory (%d bytes)\n got % x\nwant % x", name, len(b), len(mem), b, mem)
		}
	}
	k := testKey(3)
	check("opal_key", &k, memOf(&k))
	si := session(User1+4, 2)
	check("opal_session_info", &si, memOf(&si))
	lu := LockUnlock{Session: session(Admin1, 1), LState: ReadWrite, Flags: SaveForLock}
	check("opal_lock_unlock", &lu, memOf(&lu))
	lrs := UserLRSetup{RangeStart: 0x1122334455667788, RangeLength: 0x99AABBCCDDEEFF00, RLE: 1, WLE: 0x10000, Session: session(2, 5)}
	check("opal_user_lr_setup", &lrs, memOf(&lrs))
	act := LRAct{Key: testKey(0), SUM: 1, NumLRs: 3, LR: [MaxLRs]uint8{1, 2, 3, 4, 5, 6, 7, 8, 9}}
	check("opal_lr_act", &act, memOf(&act))
	pw := NewPW{Session: session(Admin1, 0), NewUserPW: session(3, 7)}
	check("opal_new_pw", &pw, memOf(&pw))
	mbr := MBRData{Key: testKey(1), EnableDisable: MBRDisable}
	check("opal_mbr_data", &mbr, memOf(&mbr))
	mbd := MBRDoneArg{Key: testKey(2), DoneFlag: MBRIsDone}
	check("opal_mbr_done", &mbd, memOf(&mbd))
	sh := ShadowMBR{Key: testKey(3), Data: 0xDEADBEEF00112233, Offset: 4096, Size: 0x123456}
	check("opal_shadow_mbr", &sh, memOf(&sh))
	rw := ReadWriteTable{Key: testKey(4), Data: 1, TableUID: [8]byte{0, 0, 0x10, 0x01, 0, 0, 0, 0}, Offset: 2, Size: 3, Flags: TableWrite, Priv: 5}
	check("opal_read_write_table", &rw, memOf(&rw))
	st := Status{Flags: FlSupported | FlMBRDone, Reserved: 7}
	check("opal_status", &st, memOf(&st))
	ls := LRStatus{Session: session(1, 1), RangeStart: 8, RangeLength: 9, RLE: 1, WLE: 2, LState: Locked}
	check("opal_lr_status", &ls, memOf(&ls))
	geo := Geometry{Align: 1, LogicalBlockSize: 4096, AlignmentGranularity: 8, LowestAlignedLBA: 0x77}
	check("opal_geometry", &geo, memOf(&geo))
	dis := DiscoveryArg{Data: 0x1000, Size: 2048}
	check("opal_discovery", &dis, memOf(&dis))
	rv := RevertLSP{Key: testKey(0), Options: Preserve}
	check("opal_revert_lsp", &rv, memOf(&rv))
	rea := LRReact{Key: testKey(0), NewAdminKey: testKey(5), NumLRs: 2, LR: [MaxLRs]uint8{1, 2}, RangePolicy: 1, EntireTable: 1}
	check("opal_lr_react", &rea, memOf(&rea))
	sum := SUMRanges{Key: testKey(6), NumLRs: 9, LR: [MaxLRs]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8}, RangePolicy: 1}
	check("opal_sum_ranges", &sum, memOf(&sum))

	// Spot-check absolute offsets in the bytes (not only the mirror).
	b, _ := lu.MarshalBinary()
	if b[8] != 1 || b[9] != 32 || b[16] != 0xA1 || ne.Uint32(b[272:]) != uint32(ReadWrite) || ne.Uint16(b[276:]) != SaveForLock {
		t.Errorf("opal_lock_unlock bytes: lr %d key_len %d key[0] %x l_state %d flags %d", b[8], b[9], b[16], ne.Uint32(b[272:]), ne.Uint16(b[276:]))
	}
}

func TestUnmarshal(t *testing.T) {
	var st Status
	if err := st.UnmarshalBinary([]byte{0x25, 0, 0, 0, 0, 0, 0, 0}); err != nil || st.Flags != FlSupported|FlLockingEnabled|FlMBRDone {
		t.Errorf("Status.UnmarshalBinary = %+v, %v", st, err)
	}
	if !st.Has(FlSupported|FlMBRDone) || st.Has(FlLocked) {
		t.Errorf("Status.Has wrong for flags 0x%x", st.Flags)
	}
	want := Geometry{Align: 1, LogicalBlockSize: 512, AlignmentGranularity: 8, LowestAlignedLBA: 0}
	b, _ := want.MarshalBinary()
	var g Geometry
	if err := g.UnmarshalBinary(b); err != nil || g != want {
		t.Errorf("Geometry round trip = %+v, %v; want %+v", g, err, want)
	}
	ls := LRStatus{RangeStart: 2048, RangeLength: 4096, RLE: 1, WLE: 1, LState: ReadOnly}
	b, _ = ls.MarshalBinary()
	var ls2 LRStatus
	if err := ls2.UnmarshalBinary(b); err != nil || ls2 != ls {
		t.Errorf("LRStatus round trip = %+v, %v; want %+v", ls2, err, ls)
	}
	sum := SUMRanges{NumLRs: 2, LR: [MaxLRs]uint8{1, 2}, RangePolicy: 1}
	b, _ = sum.MarshalBinary()
	var sum2 SUMRanges
	if err := sum2.UnmarshalBinary(b); err != nil || sum2 != sum {
		t.Errorf("SUMRanges round trip = %+v, %v", sum2, err)
	}
	for _, u := range []encoding.BinaryUnmarshaler{&st, &g, &ls2, &sum2} {
		if err := u.UnmarshalBinary(make([]byte, 7)); err == nil {
			t.Errorf("%T.UnmarshalBinary(7 bytes) = nil error", u)
		}
	}
}

func TestKey(t *testing.T) {
	secret := []byte("correct horse battery staple")
	k, err := NewKey(2, secret)
	if err != nil || k.LR != 2 || k.KeyLen != uint8(len(secret)) || k.KeyType != KeyIncluded || !bytes.Equal(k.Key[:len(secret)], secret) {
		t.Fatalf("NewKey = %+v, %v", k, err)
	}
	lu := LockUnlock{Session: SessionInfo{Key: k}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, lu); strings.Contains(s, "horse") || strings.Contains(s, "99 111 114") {
			t.Errorf("Sprintf(%s) leaks the key: %s", verb, s)
		}
	}
	if _, err := NewKey(0, make([]byte, KeyMax)); err != nil {
		t.Errorf("NewKey(256 bytes) = %v", err)
	}
	if _, err := NewKey(0, make([]byte, KeyMax+1)); !errors.Is(err, ErrKeyTooLong) {
		t.Errorf("NewKey(257 bytes) = %v; want ErrKeyTooLong", err)
	}
	k.Wipe()
	if k.KeyLen != 0 || k.Key != [KeyMax]byte{} {
		t.Errorf("Wipe left %+v", k)
	}
	if kr := KeyringKey(1); kr.KeyType != KeyKeyring || kr.LR != 1 || kr.KeyLen != 0 {
		t.Errorf("KeyringKey = %+v", kr)
	}
	if _, err := UserN(0); err == nil {
		t.Errorf("UserN(0) = nil error")
	}
	if u, err := UserN(9); err != nil || u != 9 {
		t.Errorf("UserN(9) = %d, %v", u, err)
	}
	if Locked.String() != "LK" || LockState(3).String() != "LockState(3)" {
		t.Errorf("LockState.String: %v %v", Locked, LockState(3))
	}
}
