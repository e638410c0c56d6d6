package sim

import (
	"fmt"
	"slices"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// An invocation is one method call in a session.
type invocation struct {
	s     *session
	c     method.Call
	abort bool // the drive aborts the session after answering
}

// notAuthorized and friends are the usual failures.
func notAuthorized(format string, args ...any) error {
	return statusf(method.StatusNotAuthorized, format, args...)
}

func statusf(st method.MethodStatus, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), st)
}

// invoke runs a method call and returns its result list. Errors wrap a
// method.MethodStatus; anything else is a drive failure.
func (d *Drive) invoke(x *invocation) ([]token.Value, error) {
	c := x.c
	switch c.Method {
	case method.Get:
		return d.get(x)
	case method.Set:
		return nil, d.set(x)
	case method.Next:
		return d.next(x)
	case method.Authenticate:
		return d.authenticateMethod(x)
	case method.Random:
		return d.random(x)
	case method.GenKey:
		return nil, d.genKey(x)
	case method.Activate:
		return nil, d.activate(x)
	case method.Revert:
		return nil, d.revert(x)
	case method.RevertSP:
		return nil, d.revertSP(x)
	case method.Erase:
		return nil, d.erase(x)
	}
	// No ACL grants any other method on any object (GetACL, CreateRow,
	// Reactivate, the Enterprise methods...).
	return nil, notAuthorized("%v: method not supported", c)
}

// needWrite fails for a read-only session.
func needWrite(x *invocation) error {
	if !x.s.write {
		return notAuthorized("%v needs a read-write session", x.c)
	}
	return nil
}

// isThisSP reports whether u names the session's SP.
func isThisSP(x *invocation, u method.UID) bool { return u == method.ThisSP || u == x.s.sp }

func (d *Drive) get(x *invocation) ([]token.Value, error) {
	cb, err := method.ParseGet(x.c)
	if err != nil {
		return nil, err
	}
	sp, u := x.s.sp, x.c.Invoking
	if t, ok := d.byteTable(sp, u); ok {
		return d.getBytes(x, t, cb)
	}
	r, ok := d.row(sp, u)
	if !ok {
		return nil, invalidf("Get: %v is not an object of %v", u, sp)
	}
	if !cb.Table.IsZero() || !cb.StartRow.IsZero() || !cb.EndRow.IsZero() {
		return nil, invalidf("Get on object %v takes only startColumn and endColumn", u)
	}
	first, last := uint64(0), r.maxCol
	if !cb.StartColumn.IsZero() {
		if first, err = uintOf(cb.StartColumn); err != nil {
			return nil, err
		}
	}
	if !cb.EndColumn.IsZero() {
		if last, err = uintOf(cb.EndColumn); err != nil {
			return nil, err
		}
	}
	if first > last || first > r.maxCol {
		return nil, invalidf("Get %v: columns %d..%d (the object has 0..%d)", u, first, last, r.maxCol)
	}
	last = min(last, r.maxCol)
	cols, ok := d.granted(x.s, r.get)
	if !ok {
		return nil, notAuthorized("Get %v: no ACE grants it to this session", u)
	}
	out := []token.Value{}
	for c := first; c <= last; c++ {
		if v, ok := r.values[c]; ok && cols.has(c) {
			out = append(out, token.Named(c, v))
		}
	}
	return []token.Value{token.List(out...)}, nil
}

func (d *Drive) getBytes(x *invocation, t int, cb method.CellBlock) ([]token.Value, error) {
	size := d.st.tableSize(t)
	if !cb.StartColumn.IsZero() || !cb.EndColumn.IsZero() || !cb.Table.IsZero() {
		return nil, invalidf("Get on a byte table takes only startRow and endRow")
	}
	first, last := uint64(0), size-1
	var err error
	if !cb.StartRow.IsZero() {
		if first, err = uintOf(cb.StartRow); err != nil {
			return nil, err
		}
	}
	if !cb.EndRow.IsZero() {
		if last, err = uintOf(cb.EndRow); err != nil {
			return nil, err
		}
	}
	if size == 0 || first > last || last >= size {
		return nil, invalidf("Get bytes %d..%d of a table of %d bytes", first, last, size)
	}
	gs := d.grantsOf(x.s.sp, aceDataStoreGetAll)
	if t == tableMBR {
		gs = d.anybody(x.s.sp)
	}
	if _, ok := d.granted(x.s, gs); !ok {
		return nil, notAuthorized("Get %v: no ACE grants it to this session", x.c.Invoking)
	}
	n := last - first + 1
	if n > uint64(d.responseLimit()) {
		return nil, statusf(method.StatusResponseOverflow, "Get of %d bytes does not fit a response", n)
	}
	buf := make([]byte, n)
	if err := d.tableRead(t, first, buf); err != nil {
		return nil, err
	}
	return []token.Value{token.Bytes(buf)}, nil
}

func (d *Drive) set(x *invocation) error {
	where, values, err := method.ParseSet(x.c)
	if err != nil {
		return err
	}
	sp, u := x.s.sp, x.c.Invoking
	if t, ok := d.byteTable(sp, u); ok {
		return d.setBytes(x, t, where, values)
	}
	r, ok := d.row(sp, u)
	if !ok {
		return invalidf("Set: %v is not an object of %v", u, sp)
	}
	if !where.IsZero() {
		return invalidf("Set on object %v takes no Where", u)
	}
	if values.IsZero() {
		return invalidf("Set %v without Values", u)
	}
	items, err := values.AsList()
	if err != nil {
		return invalidf("Set %v Values: %v", u, err)
	}
	if err := needWrite(x); err != nil {
		return err
	}
	vals := map[uint64]token.Value{}
	for _, it := range items {
		name, v, ok := it.NameValue()
		if !ok {
			return invalidf("Set %v: value %v is not a named column", u, it.Kind())
		}
		c, err := uintOf(name)
		if err != nil {
			return err
		}
		if _, dup := vals[c]; dup {
			return invalidf("Set %v: column %d given twice", u, c)
		}
		if !r.settable.has(c) {
			return invalidf("Set %v: column %d cannot be set", u, c)
		}
		vals[c] = v
	}
	if len(vals) == 0 {
		return nil
	}
	cols, _ := d.granted(x.s, r.set)
	for c := range vals {
		if !cols.has(c) {
			return notAuthorized("Set %v column %d: no ACE grants it to this session", u, c)
		}
	}
	return r.apply(vals)
}

func (d *Drive) setBytes(x *invocation, t int, where, values token.Value) error {
	size := d.st.tableSize(t)
	off := uint64(0)
	var err error
	if !where.IsZero() {
		if off, err = uintOf(where); err != nil {
			return err
		}
	}
	data, err := values.AsBytes()
	if values.IsZero() || err != nil {
		return invalidf("Set on a byte table needs Values as bytes")
	}
	if off > size || uint64(len(data)) > size-off {
		return invalidf("Set of %d bytes at %d runs past the table's %d bytes", len(data), off, size)
	}
	if err := needWrite(x); err != nil {
		return err
	}
	gs := d.grantsOf(x.s.sp, aceDataStoreSetAll)
	if t == tableMBR {
		gs = d.grantsOf(x.s.sp, aceAdmin)
	}
	if _, ok := d.granted(x.s, gs); !ok {
		return notAuthorized("Set %v: no ACE grants it to this session", x.c.Invoking)
	}
	return d.tableWrite(t, off, data)
}

func (d *Drive) next(x *invocation) ([]token.Value, error) {
	t, ok := d.tableByUID(x.s.sp, x.c.Invoking)
	if !ok || t.byteTab >= 0 {
		return nil, invalidf("Next: %v is not an object table of %v", x.c.Invoking, x.s.sp)
	}
	var where method.UID
	count := uint64(0)
	for _, a := range x.c.Args {
		name, v, ok := a.NameValue()
		if !ok {
			return nil, invalidf("Next parameter %v is not named", a.Kind())
		}
		n, err := uintOf(name)
		if err != nil {
			return nil, err
		}
		switch n {
		case method.ParamNextWhere:
			if where, err = method.UIDFromValue(v); err != nil {
				return nil, invalidf("Next Where: %v", err)
			}
		case method.ParamNextCount:
			if count, err = uintOf(v); err != nil {
				return nil, err
			}
		default:
			return nil, invalidf("Next parameter %d unknown", n)
		}
	}
	rows := t.rows()
	start := 0
	if !where.IsZero() {
		start = -1
		for i, r := range rows {
			if r == where {
				start = i + 1
			}
		}
		if start < 0 {
			return nil, invalidf("Next Where: %v is not a row of %v", where, t.name)
		}
	}
	rows = rows[start:]
	if count != 0 && count < uint64(len(rows)) {
		rows = rows[:count]
	}
	out := make([]token.Value, len(rows))
	for i, r := range rows {
		out[i] = r.Value()
	}
	return []token.Value{token.List(out...)}, nil
}

func (d *Drive) authenticateMethod(x *invocation) ([]token.Value, error) {
	if !isThisSP(x, x.c.Invoking) {
		return nil, invalidf("Authenticate is invoked on ThisSP, not %v", x.c.Invoking)
	}
	a, proof, err := method.ParseAuthenticate(x.c)
	if err != nil {
		return nil, err
	}
	if _, _, ok := d.authority(x.s.sp, a); !ok {
		return nil, invalidf("Authenticate: %v is not an authority of %v", a, x.s.sp)
	}
	if a == method.Anybody {
		return []token.Value{token.Bool(true)}, nil
	}
	again := slices.Contains(x.s.auths, a)
	if !again && len(x.s.auths) >= d.st.Config.MaxAuthentications {
		return nil, statusf(method.StatusFail, "Authenticate: the session already has MaxAuthentications (%d) authorities", d.st.Config.MaxAuthentications)
	}
	err = d.authenticate(x.s.sp, a, proof)
	switch st, _ := methodStatus(err); {
	case err == nil:
		if !again {
			x.s.auths = append(x.s.auths, a)
		}
		return []token.Value{token.Bool(true)}, nil
	case st == method.StatusNotAuthorized:
		return []token.Value{token.Bool(false)}, nil
	}
	return nil, err
}

func (d *Drive) random(x *invocation) ([]token.Value, error) {
	if !isThisSP(x, x.c.Invoking) {
		return nil, invalidf("Random is invoked on ThisSP, not %v", x.c.Invoking)
	}
	req := x.c.Required()
	if len(req) != 1 || len(x.c.Args) != 1 {
		return nil, invalidf("Random takes one parameter, Count")
	}
	n, err := uintOf(req[0])
	if err != nil {
		return nil, err
	}
	if n > 32 {
		return nil, invalidf("Random: Count %d is over 32", n)
	}
	return []token.Value{token.Bytes(randomBytes(int(n)))}, nil
}

func (d *Drive) genKey(x *invocation) error {
	u := x.c.Invoking
	if x.s.sp != method.LockingSP || u.Table() != method.KAES256Table || !d.st.Config.Profile.encrypts() {
		return invalidf("GenKey: %v is not a media key of this SP", u)
	}
	if _, ok := d.row(x.s.sp, u); !ok {
		return invalidf("GenKey: no media key %v", u)
	}
	if len(x.c.Required()) != 0 {
		return invalidf("GenKey takes no required parameters")
	}
	n := keyIndex(u)
	if _, ok := d.granted(x.s, d.grantsOf(x.s.sp, method.ACEKAES256GenKey(uint32(n)))); !ok {
		return notAuthorized("GenKey %v: no ACE grants it to this session", u)
	}
	if err := needWrite(x); err != nil {
		return err
	}
	d.rekey(n)
	d.log.Info("GenKey: new media key (the range's data is crypto-erased)", "range", n)
	return nil
}

func (d *Drive) activate(x *invocation) error {
	if x.s.sp != method.AdminSP || x.c.Invoking != method.LockingSP {
		return invalidf("Activate: only the Locking SP object, from an Admin SP session")
	}
	if _, ok := d.granted(x.s, d.grantsOf(method.AdminSP, aceSPSID)); !ok {
		return notAuthorized("Activate: SID only")
	}
	if err := needWrite(x); err != nil {
		return err
	}
	if len(x.c.Required()) != 0 {
		return invalidf("Activate takes no required parameters")
	}
	cfg := &d.st.Config
	var sum []int
	policy := false
	var admin1 []byte
	for _, a := range x.c.Args {
		name, v, ok := a.NameValue()
		if !ok {
			return invalidf("Activate parameter %v is not named", a.Kind())
		}
		n, err := uintOf(name)
		if err != nil {
			return err
		}
		if !cfg.Profile.hasSUM() {
			return invalidf("Activate parameter %d: %s has no Single User Mode", n, cfg.Profile)
		}
		switch n {
		case method.ParamSingleUserModeSelectionList:
			if sum, err = d.sumSelection(v); err != nil {
				return err
			}
		case method.ParamRangeStartRangeLengthPolicy:
			p, err := uintOf(v)
			if err != nil || p > 1 {
				return invalidf("RangeStartRangeLengthPolicy %v", v)
			}
			policy = p == 1
		case method.ParamAdmin1PIN:
			if admin1, err = v.AsBytes(); err != nil || len(admin1) > cfg.MaxPINLength {
				return invalidf("Admin1PIN: want at most %d bytes", cfg.MaxPINLength)
			}
		default:
			return invalidf("Activate parameter %d unknown", n)
		}
	}
	if d.st.active() {
		return nil // Activate of a Manufactured SP has no effect
	}
	verifier := d.st.Admin.SID.Verifier
	if admin1 != nil {
		verifier = d.st.pinVerifier(admin1)
	}
	d.st.resetLockingSP(true, verifier)
	l := &d.st.Locking
	l.SUMPolicy = policy
	for _, i := range sum {
		l.Ranges[i].SUM = true
		owner := method.User(uint32(i + 1))
		l.Users[i].Enabled = true
		ownerOnly := anyOf(owner)
		for _, u := range []method.UID{
			method.ACELockingRangeSetRdLocked(uint32(i)), method.ACELockingRangeSetWrLocked(uint32(i)),
			method.ACEKAES256GenKey(uint32(i)), method.ACELockingRangeGetRangeStartToActiveKey(uint32(i)),
			aceCPINUserSetPIN(uint32(i + 1)),
		} {
			if a, ok := d.aceRow(method.LockingSP, u); ok {
				a.Expr = ownerOnly
			}
		}
	}
	d.dirty = true
	if err := d.loadKeys(); err != nil {
		return err
	}
	d.log.Info("Locking SP activated", "single_user_mode_ranges", sum)
	return nil
}

// sumSelection parses a SingleUserModeSelectionList: Locking objects, or
// the Locking table meaning all of them.
func (d *Drive) sumSelection(v token.Value) ([]int, error) {
	items := []token.Value{v}
	if v.Kind() == token.KindList {
		items = v.Items()
	}
	var out []int
	seen := map[int]bool{}
	for _, it := range items {
		u, err := method.UIDFromValue(it)
		if err != nil {
			return nil, invalidf("SingleUserModeSelectionList: %v", err)
		}
		var idx []int
		switch {
		case u == method.LockingTable:
			for i := 0; i <= d.st.Config.Ranges; i++ {
				idx = append(idx, i)
			}
		case u.Table() == method.LockingTable:
			i := rangeIndex(u)
			if i < 0 || i > d.st.Config.Ranges {
				return nil, invalidf("SingleUserModeSelectionList: no range %v", u)
			}
			idx = []int{i}
		default:
			return nil, invalidf("SingleUserModeSelectionList: %v is not a locking range", u)
		}
		for _, i := range idx {
			if i+1 > d.st.Config.Users {
				return nil, invalidf("Single User Mode for range %d needs User%d; the drive has %d users", i, i+1, d.st.Config.Users)
			}
			if !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
	}
	return out, nil
}

func (d *Drive) revert(x *invocation) error {
	u := x.c.Invoking
	if x.s.sp != method.AdminSP || u != method.AdminSP && u != method.LockingSP {
		return invalidf("Revert: only the Admin SP or the Locking SP object, from an Admin SP session")
	}
	gs := d.grantsOf(method.AdminSP, aceSPSID)
	if u == method.AdminSP {
		gs = d.grantsOf(method.AdminSP, aceSPSID, aceSPPSID)
	}
	if _, ok := d.granted(x.s, gs); !ok {
		return notAuthorized("Revert %v: not for this authority", u)
	}
	if err := needWrite(x); err != nil {
		return err
	}
	if len(x.c.Args) != 0 {
		return invalidf("Revert takes no parameters")
	}
	if u == method.LockingSP {
		if !d.st.active() {
			return nil
		}
		d.st.resetLockingSP(false, nil)
		d.st.newRangeKeys(false)
		d.endSessions(method.LockingSP)
	} else {
		d.st.factoryReset()
		for tsn := range d.sessions {
			if tsn != x.s.tsn {
				delete(d.sessions, tsn)
			}
		}
		x.abort = true
	}
	d.dirty = true
	if err := d.afterErase(); err != nil {
		return err
	}
	d.log.Info("Revert: SP returned to its factory state; user data erased", "sp", u.String())
	return nil
}

// afterErase puts the new keys in use after a revert and, on Pyrite,
// erases the media (no keys to replace).
func (d *Drive) afterErase() error {
	if err := d.loadKeys(); err != nil {
		return err
	}
	if !d.st.Config.Profile.encrypts() {
		return d.eraseMedia()
	}
	return nil
}

func (d *Drive) revertSP(x *invocation) error {
	if x.s.sp != method.LockingSP || !isThisSP(x, x.c.Invoking) {
		return invalidf("RevertSP is invoked on ThisSP in a Locking SP session")
	}
	if _, ok := d.granted(x.s, d.grantsOf(method.LockingSP, aceAdmin)); !ok {
		return notAuthorized("RevertSP: Admins only")
	}
	if err := needWrite(x); err != nil {
		return err
	}
	keep := false
	for _, a := range x.c.Args {
		name, v, ok := a.NameValue()
		n, err := uintOf(name)
		if !ok || err != nil || n != method.ParamKeepGlobalRangeKey {
			return invalidf("RevertSP parameter %v unknown", a)
		}
		if keep, err = boolOf(v); err != nil {
			return err
		}
	}
	if g := d.st.Locking.Ranges[0]; keep && (g.ReadLockEnabled && g.ReadLocked || g.WriteLockEnabled && g.WriteLocked) {
		return statusf(method.StatusFail, "RevertSP KeepGlobalRangeKey: the global range is locked")
	}
	d.st.resetLockingSP(false, nil)
	d.st.newRangeKeys(keep)
	d.endSessions(method.LockingSP)
	x.abort = true
	d.dirty = true
	if keep {
		if err := d.loadKeys(); err != nil {
			return err
		}
	} else if err := d.afterErase(); err != nil {
		return err
	}
	d.log.Info("RevertSP: Locking SP returned to Manufactured-Inactive", "keep_global_range_key", keep)
	return nil
}

func (d *Drive) erase(x *invocation) error {
	u := x.c.Invoking
	if x.s.sp != method.LockingSP || u.Table() != method.LockingTable {
		return invalidf("Erase: %v is not a locking range", u)
	}
	if _, ok := d.row(x.s.sp, u); !ok {
		return invalidf("Erase: no locking range %v", u)
	}
	n := rangeIndex(u)
	if !d.st.Locking.Ranges[n].SUM {
		return notAuthorized("Erase: range %d is not in Single User Mode", n)
	}
	if _, ok := d.granted(x.s, []grant{{expr: anyOf(method.User(uint32(n + 1))), cols: allColumns}}); !ok {
		return notAuthorized("Erase: only the range's owner, User%d", n+1)
	}
	if err := needWrite(x); err != nil {
		return err
	}
	if len(x.c.Args) != 0 {
		return invalidf("Erase takes no parameters")
	}
	d.rekey(n)
	d.log.Info("Erase: range crypto-erased", "range", n)
	return nil
}
