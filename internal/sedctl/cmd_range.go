package sedctl

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
)

// parseRange reads a locking range number: 0 (or "global") is the global
// range.
func parseRange(s string) (uint32, error) {
	if strings.EqualFold(s, "global") {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, usageError(fmt.Errorf("locking range %q: want a number, 0 being the global range", s))
	}
	return uint32(n), nil
}

// parseLockState reads sedutil's RW, RO and LK (any case).
func parseLockState(s string) (opal.LockState, error) {
	switch strings.ToUpper(s) {
	case "RW":
		return opal.ReadWrite, nil
	case "RO":
		return opal.ReadOnly, nil
	case "LK":
		return opal.Locked, nil
	}
	return 0, usageError(fmt.Errorf("lock state %q: want RW (unlocked), RO (read-only) or LK (locked)", s))
}

// rangeCmd opens the device (the last argument), checks that range n can
// exist, and logs in as --as or def.
func rangeCmd(e *env, n uint32, spec string, def method.UID) (*device, opal.Auth, error) {
	d, err := e.openDevice(spec)
	if err != nil {
		return nil, opal.Auth{}, err
	}
	if err := d.requireRanges(e.ctx, n); err != nil {
		return nil, opal.Auth{}, err
	}
	a, err := e.loginAs(d, def)
	return d, a, err
}

type rangeJSON struct {
	Range            uint32   `json:"range"`
	Start            uint64   `json:"start"`
	Length           uint64   `json:"length"`
	ReadLockEnabled  bool     `json:"read_lock_enabled"`
	WriteLockEnabled bool     `json:"write_lock_enabled"`
	ReadLocked       bool     `json:"read_locked"`
	WriteLocked      bool     `json:"write_locked"`
	LockOnReset      []string `json:"lock_on_reset"`
	ActiveKey        string   `json:"active_key,omitempty"`
	// Readable is false for a range the authority may not read (a Single
	// User Mode range, to anyone but its owner); the other fields are
	// then zero.
	Readable bool `json:"readable"`
}

func rangeOf(r opal.Range) rangeJSON {
	j := rangeJSON{Range: r.N, Start: r.Start, Length: r.Length, ReadLockEnabled: r.ReadLockEnabled, WriteLockEnabled: r.WriteLockEnabled,
		ReadLocked: r.ReadLocked, WriteLocked: r.WriteLocked, LockOnReset: []string{}, Readable: true}
	for _, t := range r.LockOnReset {
		j.LockOnReset = append(j.LockOnReset, snake(t.String()))
	}
	if !r.ActiveKey.IsZero() {
		j.ActiveKey = r.ActiveKey.Hex()
	}
	return j
}

// snake turns "PowerCycle" into "power_cycle".
func snake(s string) string {
	var b strings.Builder
	for i, c := range s {
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		if c == ' ' {
			c = '_'
		}
		b.WriteRune(c)
	}
	return b.String()
}

func lockWord(r rangeJSON) string {
	rl, wl := r.ReadLockEnabled && r.ReadLocked, r.WriteLockEnabled && r.WriteLocked
	switch {
	case rl && wl:
		return "locked"
	case wl:
		return "read-only"
	case rl:
		return "write-only"
	}
	return "unlocked"
}

func cmdRangeList(e *env, args []string) error {
	var one *uint32
	if len(args) == 2 {
		n, err := parseRange(args[0])
		if err != nil {
			return err
		}
		one = &n
	}
	n := uint32(0)
	if one != nil {
		n = *one
	}
	d, a, err := rangeCmd(e, n, args[len(args)-1], method.Admin(1))
	if err != nil {
		return err
	}
	var out []rangeJSON
	if one != nil {
		r, err := opal.GetRange(e.ctx, d.c, a, *one)
		if err != nil {
			return e.explainRange(d, a, n, err)
		}
		out = []rangeJSON{rangeOf(r)}
	} else if out, err = listRanges(e, d, a); err != nil {
		return e.explainRange(d, a, n, err)
	}
	return e.emit(struct {
		Device string      `json:"device"`
		Ranges []rangeJSON `json:"ranges"`
	}{d.spec, out}, func(w io.Writer) error {
		t := newTable("RANGE", "START", "LENGTH", "READ LOCK", "WRITE LOCK", "STATE", "LOCK ON RESET")
		for _, r := range out {
			name := fmt.Sprint(r.Range)
			if r.Range == 0 {
				name = "0 (global)"
			}
			if !r.Readable {
				t.add(name, "?", "?", "?", "?", "not readable as "+authName(a.Authority), "?")
				continue
			}
			t.add(name, r.Start, r.Length, enabledWord(r.ReadLockEnabled, r.ReadLocked), enabledWord(r.WriteLockEnabled, r.WriteLocked),
				lockWord(r), strings.Join(r.LockOnReset, ","))
		}
		return t.write(w)
	})
}

// listRanges reads every range in one session; when the authority may not
// read some of them (Single User Mode ranges belong to their owners), it
// reads them one by one and marks those it cannot.
func listRanges(e *env, d *device, a opal.Auth) ([]rangeJSON, error) {
	rs, err := opal.ListRanges(e.ctx, d.c, a)
	if err == nil {
		out := make([]rangeJSON, 0, len(rs))
		for _, r := range rs {
			out = append(out, rangeOf(r))
		}
		return out, nil
	}
	if !errors.Is(err, opal.ErrNotReadable) && (!errors.Is(err, method.StatusNotAuthorized) || startFailed(err)) {
		return nil, err
	}
	max, ok := e.maxRanges(d, a)
	if !ok {
		return nil, err
	}
	var out []rangeJSON
	for n := range max + 1 {
		r, err := opal.GetRange(e.ctx, d.c, a, n)
		switch {
		case err == nil:
			out = append(out, rangeOf(r))
		case errors.Is(err, opal.ErrNotReadable) || (errors.Is(err, method.StatusNotAuthorized) && !startFailed(err)):
			out = append(out, rangeJSON{Range: n, LockOnReset: []string{}})
		default:
			return nil, err
		}
	}
	return out, nil
}

func enabledWord(enabled, locked bool) string {
	switch {
	case !enabled:
		return "disabled"
	case locked:
		return "locked"
	}
	return "unlocked"
}

// rangeSetupArgs reads range setup's N START LENGTH; range 0 has no start
// or length.
func rangeSetupArgs(args []string) (n uint32, start, length uint64, err error) {
	if n, err = parseRange(args[0]); err != nil {
		return 0, 0, 0, err
	}
	if n == 0 {
		return 0, 0, 0, usageError(errors.New("the global range (0) covers what the other ranges do not: it has no start or length to set"))
	}
	if start, err = parseUint("START", args[1], 64); err != nil {
		return 0, 0, 0, err
	}
	if length, err = parseUint("LENGTH", args[2], 64); err != nil {
		return 0, 0, 0, err
	}
	return n, start, length, nil
}

// cmdRangeSetup is sedutil --setupLockingRange: start and length (in
// logical blocks), locking disabled and unlocked, then a new key, which
// erases whatever the blocks held. Range 0 (global) has no start or length.
func cmdRangeSetup(def func(n uint32) method.UID) func(e *env, args []string) error {
	return func(e *env, args []string) error {
		n, start, length, err := rangeSetupArgs(args)
		if err != nil {
			return err
		}
		d, a, err := rangeCmd(e, n, args[3], def(n))
		if err != nil {
			return err
		}
		if err := opal.SetupRange(e.ctx, d.c, a, n, start, length); err != nil {
			return e.explainRange(d, a, n, alignmentHint(e, d, n, start, length, err))
		}
		if err := opal.GenKey(e.ctx, d.c, a, n); err != nil && !errors.Is(err, opal.ErrNotReadable) {
			return e.explainRange(d, a, n, err)
		}
		return e.done(d, "range setup", u32(n), fmt.Sprintf("range %d: blocks %d..%d (%d blocks), new key, locking disabled", n, start, start+length-1, length))
	}
}

// alignmentHint explains an INVALID_PARAMETER answer to a range setup with
// the drive's Geometry (PROTOCOL.md 1.14) and capacity.
func alignmentHint(e *env, d *device, n uint32, start, length uint64, err error) error {
	if !errors.Is(err, method.StatusInvalidParameter) {
		return err
	}
	var why []string
	if l0 := d.c.Level0(); l0 != nil && l0.Geometry != nil && l0.Geometry.Align && l0.Geometry.AlignmentGranularity > 1 {
		g, low := l0.Geometry.AlignmentGranularity, l0.Geometry.LowestAlignedLBA
		if start%g != low%g || length%g != 0 {
			why = append(why, fmt.Sprintf("this drive needs range start and length in multiples of %d blocks (alignment granularity), starting at LBA %d plus a multiple of it; start %d and length %d are not",
				g, low, start, length))
		}
	}
	if id, err := d.identity(e.ctx); err == nil && id.Blocks > 0 && start+length > id.Blocks {
		why = append(why, fmt.Sprintf("the drive has %d blocks; the range would end at %d", id.Blocks, start+length))
	}
	if len(why) == 0 {
		why = append(why, "the drive refused the range: ranges may not overlap each other, must be aligned to the drive's Geometry ('sedctl query') and must lie within the drive")
	}
	return withHint(err, strings.Join(why, "; "))
}

func cmdRangeLockEnabled(read, write bool, action string) func(e *env, args []string) error {
	return func(e *env, args []string) error {
		n, err := parseRange(args[0])
		if err != nil {
			return err
		}
		d, a, err := rangeCmd(e, n, args[1], method.Admin(1))
		if err != nil {
			return err
		}
		if err := opal.SetLockEnabled(e.ctx, d.c, a, n, read, write); err != nil {
			return e.explainRange(d, a, n, err)
		}
		return e.done(d, "range "+action, u32(n), fmt.Sprintf("range %d: read locking %s, write locking %s", n, onOff(read), onOff(write)))
	}
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// cmdRangeSet sets RW/RO/LK; fixed is the state for lock and unlock,
// which take it from their name instead of an argument. def is who logs
// in without --as.
func cmdRangeSet(fixed *opal.LockState, def func(n uint32) method.UID) func(e *env, args []string) error {
	return func(e *env, args []string) error {
		n, err := parseRange(args[0])
		if err != nil {
			return err
		}
		st := opal.ReadWrite
		if fixed != nil {
			st = *fixed
		} else if st, err = parseLockState(args[1]); err != nil {
			return err
		}
		d, a, err := rangeCmd(e, n, args[len(args)-1], def(n))
		if err != nil {
			return err
		}
		if err := opal.SetLockState(e.ctx, d.c, a, n, st); err != nil {
			return e.explainRange(d, a, n, err)
		}
		word := map[opal.LockState]string{opal.ReadWrite: "unlocked (RW)", opal.ReadOnly: "read-only (RO)", opal.Locked: "locked (LK)"}[st]
		detail := fmt.Sprintf("range %d %s", n, word)
		if r, err := opal.GetRange(e.ctx, d.c, a, n); err == nil {
			if st == opal.Locked && !r.ReadLockEnabled && !r.WriteLockEnabled {
				detail += fmt.Sprintf("; note: locking is disabled on this range, so it stays readable and writable until 'sedctl range enable %d %s'", n, d.spec)
			}
		}
		return e.done(d, "range set", u32(n), detail)
	}
}

func admin1(uint32) method.UID { return method.Admin(1) }

// sumOwner is the user that owns a Single User Mode range: User<n+1>.
func sumOwner(n uint32) method.UID { return method.User(n + 1) }

// cmdRangeErase gives range n a new key (sedutil --rekeyLockingRange):
// its data becomes noise.
func cmdRangeErase(e *env, args []string) error {
	n, err := parseRange(args[0])
	if err != nil {
		return err
	}
	d, err := e.openDevice(args[1])
	if err != nil {
		return err
	}
	if err := d.requireRanges(e.ctx, n); err != nil {
		return err
	}
	if err := e.confirm(d, fmt.Sprintf("This gives range %d a new key: everything stored in it becomes unreadable.", n)); err != nil {
		return err
	}
	a, err := e.loginAs(d, method.Admin(1))
	if err != nil {
		return err
	}
	if err := opal.GenKey(e.ctx, d.c, a, n); err != nil {
		return e.explainRange(d, a, n, err)
	}
	return e.done(d, "range erase", u32(n), fmt.Sprintf("range %d has a new key: its data is erased", n))
}

func cmdRangeAddUser(e *env, args []string) error {
	n, err := parseRange(args[0])
	if err != nil {
		return err
	}
	user, err := parseUser(args[1])
	if err != nil {
		return err
	}
	_, lo := user.Halves()
	if lo <= 0x30000 {
		return usageError(fmt.Errorf("%s is not a user; admins may lock every range already", args[1]))
	}
	d, a, err := rangeCmd(e, n, args[2], method.Admin(1))
	if err != nil {
		return err
	}
	if err := opal.AddUserToRange(e.ctx, d.c, a, lo-0x30000, n); err != nil {
		return e.explainRange(d, a, n, err)
	}
	msg := fmt.Sprintf("%s may now lock and unlock range %d", authName(user), n)
	if !userEnabled(e, d, a, user) {
		name := strings.ToLower(authName(user))
		msg += fmt.Sprintf(" once enabled: 'sedctl user enable %s', and give it a password with 'sedctl password set --authority %s'", name, name)
	}
	return e.done(d, "range add-user", u32(n), msg)
}

// userEnabled reports whether the drive says user is enabled; true when it
// does not say (the hint to enable it is then left out rather than wrong).
func userEnabled(e *env, d *device, a opal.Auth, user method.UID) bool {
	r, err := opal.Get(e.ctx, d.c, method.LockingSP, a, user, method.Columns(opal.ColAuthorityEnabled, opal.ColAuthorityEnabled))
	if err != nil {
		return true
	}
	v, ok := r.Column(opal.ColAuthorityEnabled)
	if !ok {
		return true
	}
	b, err := v.AsBool()
	return err != nil || b
}
