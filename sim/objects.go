package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// The tables and objects of the two SPs as Get, Set and Next see them
// (column numbers: PROTOCOL.md 1.9).

// A row is one object: its column values, who may read and write which
// columns, and how a Set is applied.
type row struct {
	values   map[uint64]token.Value
	maxCol   uint64
	get      []grant
	set      []grant
	settable colSet
	// apply checks every value and only then changes the state; an error
	// wraps a method status.
	apply func(vals map[uint64]token.Value) error
}

// Table kinds (Table table column 4).
const (
	kindObject = 1
	kindByte   = 2
)

// tableInfo describes one table of an SP.
type tableInfo struct {
	uid     method.UID
	name    string
	byteTab int // tableMBR or tableDataStore for byte tables, else -1
	numCols uint64
	rows    func() []method.UID
}

func uidOf(hi, lo uint32) method.UID {
	var u method.UID
	binary.BigEndian.PutUint32(u[:4], hi)
	binary.BigEndian.PutUint32(u[4:], lo)
	return u
}

var (
	tperInfoTable  = uidOf(0x00000201, 0)
	mbrControlTab  = uidOf(0x00000803, 0)
	cpinPSID       = uidOf(0x0000000B, 0x0001FF01)
	keyModeMediaEn = uint64(23) // K_AES Mode: media encryption (Core symmetric_mode_media) [S]
)

// tables returns the tables of sp, in UID order.
func (d *Drive) tables(sp method.UID) []tableInfo {
	p := d.st.Config.Profile
	one := func(u method.UID) func() []method.UID { return func() []method.UID { return []method.UID{u} } }
	t := []tableInfo{
		{uid: method.TableTable, name: "Table", byteTab: -1, numCols: 15, rows: func() []method.UID { return d.tableRows(sp) }},
		{uid: method.ACETable, name: "ACE", byteTab: -1, numCols: 5, rows: func() []method.UID {
			var l []method.UID
			for _, a := range d.aces(sp) {
				l = append(l, a.UID)
			}
			return l
		}},
		{uid: method.AuthorityTable, name: "Authority", byteTab: -1, numCols: 11, rows: func() []method.UID { return d.authorityRows(sp) }},
		{uid: method.CPINTable, name: "C_PIN", byteTab: -1, numCols: 8, rows: func() []method.UID { return d.cpinRows(sp) }},
	}
	if sp == method.AdminSP {
		return append(t,
			tableInfo{uid: tperInfoTable, name: "TPerInfo", byteTab: -1, numCols: 9, rows: one(method.TPerInfo)},
			tableInfo{uid: method.SPTable, name: "SP", byteTab: -1, numCols: 8, rows: func() []method.UID { return []method.UID{method.AdminSP, method.LockingSP} }},
		)
	}
	t = append(t,
		tableInfo{uid: method.LockingInfoTable, name: "LockingInfo", byteTab: -1, numCols: 11, rows: one(method.LockingInfo)},
		tableInfo{uid: method.LockingTable, name: "Locking", byteTab: -1, numCols: 11, rows: func() []method.UID {
			l := make([]method.UID, d.st.Config.Ranges+1)
			for i := range l {
				l[i] = method.LockingRange(uint32(i))
			}
			return l
		}},
	)
	if p.hasMBR() {
		t = append(t,
			tableInfo{uid: mbrControlTab, name: "MBRControl", byteTab: -1, numCols: 4, rows: one(method.MBRControl)},
			tableInfo{uid: method.MBR, name: "MBR", byteTab: tableMBR},
		)
	}
	if p.encrypts() {
		t = append(t, tableInfo{uid: method.KAES256Table, name: "K_AES_256", byteTab: -1, numCols: 5, rows: func() []method.UID {
			l := make([]method.UID, d.st.Config.Ranges+1)
			for i := range l {
				l[i] = method.KAES256(uint32(i))
			}
			return l
		}})
	}
	return append(t, tableInfo{uid: method.DataStore, name: "DataStore", byteTab: tableDataStore})
}

func (d *Drive) tableByUID(sp, u method.UID) (tableInfo, bool) {
	for _, t := range d.tables(sp) {
		if t.uid == u {
			return t, true
		}
	}
	return tableInfo{}, false
}

func (d *Drive) tableRows(sp method.UID) []method.UID {
	var l []method.UID
	for _, t := range d.tables(sp) {
		l = append(l, method.TableRow(t.uid))
	}
	return l
}

func (d *Drive) authorityRows(sp method.UID) []method.UID {
	if sp == method.AdminSP {
		return []method.UID{method.Anybody, method.Admins, method.Makers, method.SID, method.AdminSPAdmin(1), method.PSID}
	}
	l := []method.UID{method.Anybody, method.Admins}
	for n := range d.st.Config.Admins {
		l = append(l, method.Admin(uint32(n+1)))
	}
	l = append(l, method.Users)
	for n := range d.st.Config.Users {
		l = append(l, method.User(uint32(n+1)))
	}
	return l
}

func (d *Drive) cpinRows(sp method.UID) []method.UID {
	if sp == method.AdminSP {
		return []method.UID{method.CPINSID, method.CPINAdminSPAdmin(1), method.CPINMSID, cpinPSID}
	}
	var l []method.UID
	for n := range d.st.Config.Admins {
		l = append(l, method.CPINAdmin(uint32(n+1)))
	}
	for n := range d.st.Config.Users {
		l = append(l, method.CPINUser(uint32(n+1)))
	}
	return l
}

// row returns object u of sp, or false if sp has no such object (byte
// tables included: see byteTable).
func (d *Drive) row(sp, u method.UID) (*row, bool) {
	t, ok := d.tableByUID(sp, u.Table())
	if !ok || t.byteTab >= 0 {
		return nil, false
	}
	found := false
	for _, r := range t.rows() {
		if r == u {
			found = true
			break
		}
	}
	if !found {
		return nil, false
	}
	switch u.Table() {
	case method.TableTable:
		return d.tableTableRow(sp, u), true
	case method.ACETable:
		return d.aceObject(sp, u), true
	case method.AuthorityTable:
		return d.authorityObject(sp, u), true
	case method.CPINTable:
		return d.cpinObject(sp, u), true
	case tperInfoTable:
		return d.tperInfoObject(), true
	case method.SPTable:
		return d.spObject(u), true
	case method.LockingInfoTable:
		return d.lockingInfoObject(), true
	case method.LockingTable:
		return d.lockingObject(u), true
	case mbrControlTab:
		return d.mbrControlObject(), true
	case method.KAES256Table:
		return d.keyObject(u), true
	}
	return nil, false
}

// byteTable returns the byte table u of sp.
func (d *Drive) byteTable(sp, u method.UID) (int, bool) {
	t, ok := d.tableByUID(sp, u)
	if !ok || t.byteTab < 0 {
		return 0, false
	}
	return t.byteTab, true
}

// anybody is the grant of ACE_Anybody.
func (d *Drive) anybody(sp method.UID) []grant {
	return []grant{{expr: anyOf(method.Anybody), cols: allColumns}}
}

func (d *Drive) tableTableRow(sp, u method.UID) *row {
	var t tableInfo
	for _, x := range d.tables(sp) {
		if method.TableRow(x.uid) == u {
			t = x
		}
	}
	v := map[uint64]token.Value{0: u.Value(), 1: token.Text(t.name)}
	if t.byteTab >= 0 {
		v[4] = token.Uint(kindByte)
		v[7] = token.Uint(d.st.tableSize(t.byteTab))
		v[13] = token.Uint(1) // MandatoryWriteGranularity
		v[14] = token.Uint(1) // RecommendedAccessGranularity
	} else {
		v[4] = token.Uint(kindObject)
		v[6] = token.Uint(t.numCols)
		v[7] = token.Uint(uint64(len(t.rows())))
	}
	return &row{values: v, maxCol: 14, get: d.anybody(sp)}
}

func (d *Drive) aceObject(sp, u method.UID) *row {
	a, _ := d.aceRow(sp, u)
	cols := make([]token.Value, len(a.Columns))
	for i, c := range a.Columns {
		cols[i] = token.Uint(c)
	}
	r := &row{
		values: map[uint64]token.Value{0: u.Value(), 3: method.BooleanExpr(a.Expr...), 4: token.List(cols...)},
		maxCol: 4,
	}
	if sp == method.AdminSP {
		r.get = d.grantsOf(sp, aceAdminSPAdmin)
		return r
	}
	r.get = d.grantsOf(sp, aceACEGetAll)
	if u != aceAnybody && u != aceAdmin {
		r.set = d.grantsOf(sp, aceACESetBooleanExpr)
		r.settable = columns(3)
		r.apply = func(vals map[uint64]token.Value) error {
			terms, err := method.ParseBooleanExpr(vals[3])
			if err != nil {
				return err
			}
			for _, t := range terms {
				if t.IsOp {
					continue
				}
				if t.Authority == method.Admins || t.Authority == method.Users {
					continue
				}
				if _, _, ok := d.authority(sp, t.Authority); !ok {
					return invalidf("BooleanExpr names %v, not an authority of the Locking SP", t.Authority)
				}
			}
			if _, err := method.EvalBooleanExpr(terms, func(method.UID) bool { return false }); err != nil {
				return err
			}
			a.Expr = terms
			d.dirty = true
			return nil
		}
	}
	return r
}

func (d *Drive) authorityObject(sp, u method.UID) *row {
	names := map[method.UID]string{
		method.Anybody: "Anybody", method.Admins: "Admins", method.Makers: "Makers", method.Users: "Users",
		method.SID: "SID", method.PSID: "PSID",
	}
	name := names[u]
	isClass := u == method.Admins || u == method.Users || u == method.Makers
	var class method.UID
	var cpin method.UID
	enabled := true
	au, _, _ := d.authority(sp, u)
	switch {
	case sp == method.AdminSP && u == method.AdminSPAdmin(1):
		name, class, cpin = "Admin1", method.Admins, method.CPINAdminSPAdmin(1)
	case u == method.SID:
		cpin = method.CPINSID
	case u == method.PSID:
		cpin = cpinPSID
	}
	if n, ok := adminNumber(u); ok && sp == method.LockingSP {
		name, class, cpin = fmt.Sprintf("Admin%d", n), method.Admins, method.CPINAdmin(uint32(n))
	}
	if n, ok := userNumber(u); ok {
		name, class, cpin = fmt.Sprintf("User%d", n), method.Users, method.CPINUser(uint32(n))
	}
	if au != nil {
		enabled = au.Enabled
	}
	op := uint64(0) // None
	if !cpin.IsZero() {
		op = 1 // Password
	}
	v := map[uint64]token.Value{
		0: u.Value(), 1: token.Text(name), 2: token.Text(""), 3: token.Bool(isClass),
		5: token.Bool(enabled), 6: token.Uint(0), 7: token.Uint(0), 8: token.Bool(false), 9: token.Uint(op),
	}
	if !class.IsZero() {
		v[4] = class.Value()
	}
	if !cpin.IsZero() {
		v[10] = cpin.Value()
	}
	r := &row{values: v, maxCol: 10}
	if sp == method.AdminSP {
		r.get = d.anybody(sp)
	} else {
		r.get = d.grantsOf(sp, aceAnybodyGetCommonName, aceAuthorityGetAll)
	}
	if au != nil {
		if sp == method.AdminSP {
			r.set = d.grantsOf(sp, aceAdminSPAuthSetEnabled)
		} else {
			r.set = d.grantsOf(sp, aceAuthoritySetEnabled)
		}
		r.settable = columns(5)
		r.apply = func(vals map[uint64]token.Value) error {
			b, err := boolOf(vals[5])
			if err != nil {
				return err
			}
			au.Enabled = b
			d.dirty = true
			return nil
		}
	}
	return r
}

func (d *Drive) cpinObject(sp, u method.UID) *row {
	var cred *credential
	var name string
	var get, set []grant
	switch {
	case sp == method.AdminSP && u == method.CPINMSID:
		name = "C_PIN_MSID"
		get = d.grantsOf(sp, aceCPINMSIDGetPIN, aceCPINSIDGetNoPIN)
	case sp == method.AdminSP && u == method.CPINSID:
		name, cred = "C_PIN_SID", &d.st.Admin.SID
		get, set = d.grantsOf(sp, aceCPINSIDGetNoPIN), d.grantsOf(sp, aceCPINSIDSetPIN)
	case sp == method.AdminSP && u == method.CPINAdminSPAdmin(1):
		name, cred = "C_PIN_Admin1", &d.st.Admin.Admin1.PIN
		get, set = d.grantsOf(sp, aceCPINSIDGetNoPIN), d.grantsOf(sp, aceCPINAdminSPSetPIN)
	case sp == method.AdminSP && u == cpinPSID:
		name, cred = "C_PIN_PSID", &d.st.Admin.PSID
		get = d.grantsOf(sp, aceCPINSIDGetNoPIN)
	default:
		_, lo := u.Halves()
		if n := lo - 0x00010000; lo > 0x00010000 && int(n) <= len(d.st.Locking.Admins) {
			name, cred = fmt.Sprintf("C_PIN_Admin%d", n), &d.st.Locking.Admins[n-1].PIN
			set = d.grantsOf(sp, aceCPINAdminsSetPIN)
		} else {
			n := lo - 0x00030000
			name, cred = fmt.Sprintf("C_PIN_User%d", n), &d.st.Locking.Users[n-1].PIN
			set = d.grantsOf(sp, aceCPINUserSetPIN(n))
		}
		get = d.grantsOf(sp, aceCPINAdminsGetAllNoPIN)
	}
	v := map[uint64]token.Value{0: u.Value(), 1: token.Text(name), 2: token.Text("")}
	if cred == nil {
		// MSID: the only PIN anybody may read; no TryLimit.
		v[3] = token.Bytes(append([]byte(nil), d.st.Admin.MSID...))
		v[5], v[6], v[7] = token.Uint(0), token.Uint(0), token.Bool(false)
	} else {
		v[5], v[6], v[7] = token.Uint(uint64(cred.TryLimit)), token.Uint(uint64(cred.Tries)), token.Bool(cred.Persistence)
	}
	r := &row{values: v, maxCol: 7, get: get}
	if cred != nil && set != nil {
		r.set = set
		r.settable = columns(3)
		r.apply = func(vals map[uint64]token.Value) error {
			pin, err := vals[3].AsBytes()
			if err != nil {
				return invalidf("PIN: %v", err)
			}
			if len(pin) > d.st.Config.MaxPINLength {
				return invalidf("PIN of %d bytes; this drive takes at most %d", len(pin), d.st.Config.MaxPINLength)
			}
			cred.Verifier = d.st.pinVerifier(pin)
			d.dirty = true
			return nil
		}
	}
	return r
}

func (d *Drive) tperInfoObject() *row {
	cfg := &d.st.Config
	g := sha256.Sum256(append([]byte("sedsim GUDID "), d.st.Salt...))
	ssc := map[Profile]string{Opal2: "Opal 2.02", Opal1: "Opal 1.00", Pyrite2: "Pyrite 2.01", Ruby: "Ruby 1.00"}[cfg.Profile]
	v := map[uint64]token.Value{
		0: method.TPerInfo.Value(), 1: token.Uint(0), 2: token.Bytes(g[:12]), 3: token.Uint(1),
		4: token.Uint(1), 5: token.Uint(1), 6: token.Uint(0), 7: token.List(token.Text(ssc)),
	}
	r := &row{values: v, maxCol: 7, get: d.anybody(method.AdminSP)}
	if cfg.Profile.opal2Family() {
		v[8] = token.Bool(d.st.Admin.ProgrammaticResetEnable)
		r.maxCol = 8
		r.set = d.grantsOf(method.AdminSP, aceTPerInfoSetPReset)
		r.settable = columns(8)
		r.apply = func(vals map[uint64]token.Value) error {
			b, err := boolOf(vals[8])
			if err != nil {
				return err
			}
			d.st.Admin.ProgrammaticResetEnable = b
			d.dirty = true
			return nil
		}
	}
	return r
}

func (d *Drive) spObject(u method.UID) *row {
	name, life := "Admin", uint64(lifeManufactured)
	if u == method.LockingSP {
		name, life = "Locking", uint64(d.st.Locking.LifeCycle)
	}
	v := map[uint64]token.Value{0: u.Value(), 1: token.Text(name), 5: token.Uint(0), 6: token.Uint(life), 7: token.Bool(false)}
	return &row{values: v, maxCol: 7, get: d.anybody(method.AdminSP)}
}

func (d *Drive) lockingInfoObject() *row {
	cfg := &d.st.Config
	v := map[uint64]token.Value{
		0: method.LockingInfo.Value(), 1: token.Text(""), 2: token.Uint(1),
		3: token.Uint(boolUint(cfg.Profile.encrypts())), // EncryptSupport: media encryption
		4: token.Uint(uint64(cfg.Ranges)), 5: token.Uint(0), 6: token.Uint(0),
		7: token.Bool(cfg.alignmentRequired()), 8: token.Uint(uint64(cfg.BlockSize)),
		9: token.Uint(cfg.AlignmentGranularity), 10: token.Uint(cfg.LowestAlignedLBA),
	}
	maxCol := uint64(10)
	if cfg.Profile.hasSUM() {
		// Single User Mode columns (SUM feature set; numbers [S]).
		var sum []token.Value
		all := true
		for i, r := range d.st.Locking.Ranges {
			if r.SUM {
				sum = append(sum, method.LockingRange(uint32(i)).Value())
			} else {
				all = false
			}
		}
		if all && d.st.active() {
			sum = []token.Value{method.LockingTable.Value()}
		}
		v[0x3C] = token.List(sum...)
		v[0x3D] = token.Uint(boolUint(d.st.Locking.SUMPolicy))
		maxCol = 0x3D
	}
	return &row{values: v, maxCol: maxCol, get: d.anybody(method.LockingSP)}
}

func boolUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// rangeIndex returns n for Locking range object u.
func rangeIndex(u method.UID) int {
	if u == method.GlobalRange {
		return 0
	}
	_, lo := u.Halves()
	return int(lo - 0x00030000)
}

func resetList(l []uint8) token.Value {
	items := make([]token.Value, len(l))
	for i, k := range l {
		items[i] = token.Uint(uint64(k))
	}
	return token.List(items...)
}

func (d *Drive) lockingObject(u method.UID) *row {
	n := rangeIndex(u)
	l := &d.st.Locking
	r := &l.Ranges[n]
	name := "Locking_GlobalRange"
	if n > 0 {
		name = fmt.Sprintf("Locking_Range%d", n)
	}
	v := map[uint64]token.Value{
		0: u.Value(), 1: token.Text(name), 2: token.Text(""),
		3: token.Uint(r.Start), 4: token.Uint(r.Length),
		5: token.Bool(r.ReadLockEnabled), 6: token.Bool(r.WriteLockEnabled),
		7: token.Bool(r.ReadLocked), 8: token.Bool(r.WriteLocked),
		9: resetList(r.LockOnReset),
	}
	if d.st.Config.Profile.encrypts() {
		v[10] = method.KAES256(uint32(n)).Value()
	}
	row := &row{values: v, maxCol: 10}
	sp := method.LockingSP
	row.get = d.grantsOf(sp, aceAnybodyGetCommonName, method.ACELockingRangeGetRangeStartToActiveKey(uint32(n)))
	row.set = d.grantsOf(sp, method.ACELockingRangeSetRdLocked(uint32(n)), method.ACELockingRangeSetWrLocked(uint32(n)))
	switch {
	case r.SUM:
		// Single User Mode: the owner has the range; start and length
		// belong to the admins if RangeStartRangeLengthPolicy says so.
		owner := anyOf(method.User(uint32(n + 1)))
		row.set = append(row.set, grant{expr: owner, cols: columns(5, 6, 9)})
		startLen := grant{expr: owner, cols: columns(3, 4)}
		if l.SUMPolicy {
			startLen.expr = anyOf(method.Admins)
		}
		if n > 0 {
			row.set = append(row.set, startLen)
		}
	case n == 0:
		row.set = append(row.set, d.grantsOf(sp, aceLockingGlobalAdmins)...)
	default:
		row.set = append(row.set, d.grantsOf(sp, aceLockingAdminsStartLOR)...)
	}
	row.settable = columnRange(5, 9)
	if n > 0 {
		row.settable |= columns(3, 4)
	}
	row.apply = func(vals map[uint64]token.Value) error {
		nr := *r
		var err error
		set := func(c uint64, dst *bool) {
			if v, ok := vals[c]; ok && err == nil {
				*dst, err = boolOf(v)
			}
		}
		set(5, &nr.ReadLockEnabled)
		set(6, &nr.WriteLockEnabled)
		set(7, &nr.ReadLocked)
		set(8, &nr.WriteLocked)
		if err != nil {
			return err
		}
		if v, ok := vals[9]; ok {
			if nr.LockOnReset, err = d.resetTypes(v); err != nil {
				return err
			}
		}
		for c, dst := range map[uint64]*uint64{3: &nr.Start, 4: &nr.Length} {
			if v, ok := vals[c]; ok {
				if *dst, err = uintOf(v); err != nil {
					return err
				}
			}
		}
		if nr.Start != r.Start || nr.Length != r.Length {
			if err := d.checkRange(n, nr.Start, nr.Length); err != nil {
				return err
			}
		}
		*r = nr
		d.dirty = true
		return nil
	}
	return row
}

// checkRange checks a new start and length of range n: inside the
// capacity, aligned (PROTOCOL.md 1.14), not overlapping another range.
func (d *Drive) checkRange(n int, start, length uint64) error {
	cfg := &d.st.Config
	if start > cfg.Blocks || length > cfg.Blocks-start {
		return invalidf("range %d..%d lies beyond the last block (%d)", start, start+length, cfg.Blocks)
	}
	if length == 0 {
		return nil // an empty range is always fine
	}
	if cfg.alignmentRequired() {
		g, low := cfg.AlignmentGranularity, cfg.LowestAlignedLBA
		if start != 0 && start%g != low {
			return invalidf("RangeStart %d is not aligned: want RangeStart mod %d = %d", start, g, low)
		}
		if start == 0 && length%g != low || start != 0 && length%g != 0 {
			return invalidf("RangeLength %d is not aligned to the granularity %d (lowest aligned LBA %d)", length, g, low)
		}
	}
	for i, o := range d.st.Locking.Ranges {
		if i == 0 || i == n || o.Length == 0 {
			continue
		}
		if start < o.Start+o.Length && o.Start < start+length {
			return invalidf("range %d..%d overlaps Locking_Range%d (%d..%d)", start, start+length, i, o.Start, o.Start+o.Length)
		}
	}
	return nil
}

// resetTypes parses a LockOnReset or DoneOnReset list.
func (d *Drive) resetTypes(v token.Value) ([]uint8, error) {
	items, err := v.AsList()
	if err != nil {
		return nil, invalidf("reset type list: %v", err)
	}
	out := []uint8{}
	for _, it := range items {
		k, err := uintOf(it)
		if err != nil {
			return nil, err
		}
		switch {
		case k == resetPowerCycle:
		case k == resetProgrammatic && d.st.Config.Profile.opal2Family():
		default:
			return nil, invalidf("reset type %d not supported (PowerCycle 0%s)", k, map[bool]string{true: ", Programmatic 3", false: ""}[d.st.Config.Profile.opal2Family()])
		}
		if !containsReset(out, uint8(k)) {
			out = append(out, uint8(k))
		}
	}
	return out, nil
}

func (d *Drive) mbrControlObject() *row {
	m := &d.st.Locking.MBR
	v := map[uint64]token.Value{0: method.MBRControl.Value(), 1: token.Bool(m.Enable), 2: token.Bool(m.Done), 3: resetList(m.DoneOnReset)}
	sp := method.LockingSP
	return &row{
		values: v, maxCol: 3,
		get:      d.anybody(sp),
		set:      d.grantsOf(sp, aceMBRControlAdminsSet, aceMBRControlDoneToDOR),
		settable: columns(1, 2, 3),
		apply: func(vals map[uint64]token.Value) error {
			nm := *m
			var err error
			if v, ok := vals[1]; ok {
				if nm.Enable, err = boolOf(v); err != nil {
					return err
				}
			}
			if v, ok := vals[2]; ok {
				if nm.Done, err = boolOf(v); err != nil {
					return err
				}
			}
			if v, ok := vals[3]; ok {
				if nm.DoneOnReset, err = d.resetTypes(v); err != nil {
					return err
				}
			}
			*m = nm
			d.dirty = true
			return nil
		},
	}
}

func (d *Drive) keyObject(u method.UID) *row {
	_, lo := u.Halves()
	name := "K_AES_256_GlobalRange_Key"
	if lo != 1 {
		name = fmt.Sprintf("K_AES_256_Range%d_Key", lo-0x00030000)
	}
	v := map[uint64]token.Value{0: u.Value(), 1: token.Text(name), 2: token.Text(""), 4: token.Uint(keyModeMediaEn)}
	return &row{values: v, maxCol: 4, get: d.grantsOf(method.LockingSP, aceKAESMode)}
}

// keyIndex returns the range of K_AES_256 object u.
func keyIndex(u method.UID) int {
	_, lo := u.Halves()
	if lo == 1 {
		return 0
	}
	return int(lo - 0x00030000)
}

// Value checks.

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), method.StatusInvalidParameter)
}

func boolOf(v token.Value) (bool, error) {
	if v.Kind() != token.KindUint && v.Kind() != token.KindInt {
		return false, invalidf("%v is not a boolean", v.Kind())
	}
	u, err := v.AsUint()
	if err != nil || u > 1 {
		return false, invalidf("boolean %v is not 0 or 1", v)
	}
	return u == 1, nil
}

func uintOf(v token.Value) (uint64, error) {
	if v.Kind() != token.KindUint && v.Kind() != token.KindInt {
		return 0, invalidf("%v is not an integer", v.Kind())
	}
	u, err := v.AsUint()
	if err != nil {
		return 0, invalidf("%v", err)
	}
	return u, nil
}
