package sim

import (
	"encoding/binary"
	"slices"

	"github.com/shiftlock/shiftlock/tcg/method"
)

// Access control (Core 5.1.3, Opal 2 section 4.3.1; PROTOCOL.md 1.18).
//
// Every method on every object is checked against a list of grants: an
// authority expression (the BooleanExpr of an ACE) and the columns it
// opens. A Get returns the columns of the grants the session satisfies; a
// Set needs every column it writes covered; other methods need any grant.
// The Locking SP's grants are ACE rows the host can read and, where Opal
// lets it, rewrite (Set ACE.BooleanExpr); the Admin SP's are fixed.

// colSet is a set of column numbers 0..63.
type colSet uint64

const allColumns = ^colSet(0)

func columns(cs ...uint64) colSet {
	var s colSet
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

func columnRange(first, last uint64) colSet {
	var s colSet
	for c := first; c <= last; c++ {
		s |= 1 << c
	}
	return s
}

func (s colSet) has(c uint64) bool { return c < 64 && s&(1<<c) != 0 }

func setOf(l []uint64) colSet {
	if len(l) == 0 {
		return allColumns
	}
	return columns(l...)
}

// A grant is one ACE as it applies to a method on an object.
type grant struct {
	expr []method.ACETerm
	cols colSet
}

func anyOf(as ...method.UID) []method.ACETerm {
	var t []method.ACETerm
	for i, a := range as {
		t = append(t, method.AuthorityTerm(a))
		if i > 0 {
			t = append(t, method.OpTerm(method.Or))
		}
	}
	return t
}

func aceUID(lo uint32) method.UID {
	var u method.UID
	binary.BigEndian.PutUint32(u[:4], 0x00000008)
	binary.BigEndian.PutUint32(u[4:], lo)
	return u
}

// Locking SP ACE rows (Opal 2 Table "Locking SP ACE table preconfiguration";
// the UIDs PROTOCOL.md 1.7 marks [V] are marked so here, the rest are
// [S]).
var (
	aceAnybody               = aceUID(0x00000001) // [S]
	aceAdmin                 = aceUID(0x00000002) // [S]
	aceAnybodyGetCommonName  = aceUID(0x00000003)
	aceACEGetAll             = aceUID(0x00038000)
	aceACESetBooleanExpr     = aceUID(0x00038001)
	aceAuthorityGetAll       = aceUID(0x00039000)
	aceAuthoritySetEnabled   = aceUID(0x00039001)
	aceCPINAdminsGetAllNoPIN = aceUID(0x0003A000)
	aceCPINAdminsSetPIN      = aceUID(0x0003A001)
	aceKAESMode              = aceUID(0x0003BFFF)
	aceLockingGlobalAdmins   = aceUID(0x0003F000) // Set RLE, WLE, LockOnReset of the global range
	aceLockingAdminsStartLOR = aceUID(0x0003F001) // Set RangeStart..LockOnReset of ranges 1..n
	aceMBRControlAdminsSet   = aceUID(0x0003F800)
	aceMBRControlDoneToDOR   = method.ACEMBRControlSetDoneToDOR // [V]
	aceDataStoreGetAll       = method.ACEDataStoreGetAll        // [V]
	aceDataStoreSetAll       = method.ACEDataStoreSetAll        // [V]
)

func aceCPINUserSetPIN(n uint32) method.UID { return aceUID(0x0003A800 + n) }

// Admin SP grants (fixed; Opal 2 "Admin SP ACE table", [S] UIDs).
var (
	aceAdminSPAnybody        = aceUID(0x00000001)
	aceAdminSPAdmin          = aceUID(0x00000002)
	aceCPINSIDGetNoPIN       = aceUID(0x00008C02)
	aceCPINSIDSetPIN         = aceUID(0x00008C03)
	aceCPINMSIDGetPIN        = aceUID(0x00008C04)
	aceCPINAdminSPSetPIN     = aceUID(0x00008C05)
	aceTPerInfoSetPReset     = aceUID(0x00030001)
	aceSPSID                 = aceUID(0x00030002)
	aceAdminSPAuthSetEnabled = aceUID(0x00030003)
	aceSPPSID                = aceUID(0x000100E1)
)

// adminSPACEs returns the Admin SP's fixed ACEs.
func adminSPACEs() []aceState {
	sidOrAdmins := anyOf(method.SID, method.Admins)
	return sortACEs([]aceState{
		{UID: aceAdminSPAnybody, Expr: anyOf(method.Anybody)},
		{UID: aceAdminSPAdmin, Expr: sidOrAdmins},
		{UID: aceCPINSIDGetNoPIN, Expr: sidOrAdmins, Columns: []uint64{0, 1, 2, 4, 5, 6, 7}},
		{UID: aceCPINSIDSetPIN, Expr: anyOf(method.SID), Columns: []uint64{3}},
		{UID: aceCPINMSIDGetPIN, Expr: anyOf(method.Anybody), Columns: []uint64{0, 1, 2, 3}},
		{UID: aceCPINAdminSPSetPIN, Expr: sidOrAdmins, Columns: []uint64{3}},
		{UID: aceTPerInfoSetPReset, Expr: anyOf(method.SID), Columns: []uint64{8}},
		{UID: aceSPSID, Expr: anyOf(method.SID)},
		{UID: aceAdminSPAuthSetEnabled, Expr: sidOrAdmins, Columns: []uint64{5}},
		{UID: aceSPPSID, Expr: anyOf(method.PSID)},
	})
}

func sortACEs(aces []aceState) []aceState {
	slices.SortFunc(aces, func(a, b aceState) int { return slices.Compare(a.UID[:], b.UID[:]) })
	return aces
}

// defaultACEs returns the Locking SP's ACE rows as Activate leaves them:
// everything for the Admins, each user its own PIN.
func defaultACEs(cfg *Config) []aceState {
	admins := anyOf(method.Admins)
	aces := []aceState{
		{UID: aceAnybody, Expr: anyOf(method.Anybody)},
		{UID: aceAdmin, Expr: admins},
		{UID: aceAnybodyGetCommonName, Expr: anyOf(method.Anybody), Columns: []uint64{0, 1, 2}},
		{UID: aceACEGetAll, Expr: admins},
		{UID: aceACESetBooleanExpr, Expr: admins, Columns: []uint64{3}},
		{UID: aceAuthorityGetAll, Expr: admins},
		{UID: aceAuthoritySetEnabled, Expr: admins, Columns: []uint64{5}},
		{UID: aceCPINAdminsGetAllNoPIN, Expr: admins, Columns: []uint64{0, 1, 2, 4, 5, 6, 7}},
		{UID: aceCPINAdminsSetPIN, Expr: admins, Columns: []uint64{3}},
	}
	for n := 1; n <= cfg.Users; n++ {
		aces = append(aces, aceState{UID: aceCPINUserSetPIN(uint32(n)), Expr: anyOf(method.Admins, method.User(uint32(n))), Columns: []uint64{3}})
	}
	if cfg.Profile.encrypts() {
		for n := 0; n <= cfg.Ranges; n++ {
			aces = append(aces, aceState{UID: method.ACEKAES256GenKey(uint32(n)), Expr: admins})
		}
		aces = append(aces, aceState{UID: aceKAESMode, Expr: anyOf(method.Anybody), Columns: []uint64{0, 1, 2, 4}})
	}
	getCols := []uint64{3, 4, 5, 6, 7, 8, 9, 10}
	for n := 0; n <= cfg.Ranges; n++ {
		aces = append(aces, aceState{UID: method.ACELockingRangeGetRangeStartToActiveKey(uint32(n)), Expr: admins, Columns: getCols})
	}
	for n := 0; n <= cfg.Ranges; n++ {
		aces = append(aces, aceState{UID: method.ACELockingRangeSetRdLocked(uint32(n)), Expr: admins, Columns: []uint64{7}})
	}
	for n := 0; n <= cfg.Ranges; n++ {
		aces = append(aces, aceState{UID: method.ACELockingRangeSetWrLocked(uint32(n)), Expr: admins, Columns: []uint64{8}})
	}
	aces = append(aces,
		aceState{UID: aceLockingGlobalAdmins, Expr: admins, Columns: []uint64{5, 6, 9}},
		aceState{UID: aceLockingAdminsStartLOR, Expr: admins, Columns: []uint64{3, 4, 5, 6, 9}},
	)
	if cfg.Profile.hasMBR() {
		aces = append(aces,
			aceState{UID: aceMBRControlAdminsSet, Expr: admins, Columns: []uint64{1, 2, 3}},
			aceState{UID: aceMBRControlDoneToDOR, Expr: admins, Columns: []uint64{2, 3}},
		)
	}
	aces = append(aces,
		aceState{UID: aceDataStoreGetAll, Expr: admins},
		aceState{UID: aceDataStoreSetAll, Expr: admins},
	)
	return sortACEs(aces)
}

// aceRow returns the ACE u of the session's SP.
func (d *Drive) aceRow(sp method.UID, u method.UID) (*aceState, bool) {
	aces := d.aces(sp)
	i, ok := slices.BinarySearchFunc(aces, u, func(a aceState, u method.UID) int { return slices.Compare(a.UID[:], u[:]) })
	if !ok {
		return nil, false
	}
	return &aces[i], true
}

func (d *Drive) aces(sp method.UID) []aceState {
	if sp == method.AdminSP {
		return d.adminACEs
	}
	return d.st.Locking.ACEs
}

// grantsOf returns the grants of the named ACEs of sp; unknown ones are
// skipped.
func (d *Drive) grantsOf(sp method.UID, uids ...method.UID) []grant {
	g := make([]grant, 0, len(uids))
	for _, u := range uids {
		if a, ok := d.aceRow(sp, u); ok {
			g = append(g, grant{expr: a.Expr, cols: setOf(a.Columns)})
		}
	}
	return g
}

// granted returns the union of the columns of the grants s satisfies, and
// whether it satisfies any.
func (d *Drive) granted(s *session, gs []grant) (colSet, bool) {
	var cols colSet
	ok := false
	for _, g := range gs {
		if yes, err := method.EvalBooleanExpr(g.expr, s.has); err == nil && yes {
			cols |= g.cols
			ok = true
		}
	}
	return cols, ok
}
