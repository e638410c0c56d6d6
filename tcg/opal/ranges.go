package opal

import (
	"context"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// Range is a locking range as the Locking table holds it (columns 3 to 10;
// PROTOCOL.md 1.9). Start and Length are in logical blocks.
type Range struct {
	N                uint32 // 0 = global range
	Start            uint64
	Length           uint64
	ReadLockEnabled  bool
	WriteLockEnabled bool
	ReadLocked       bool
	WriteLocked      bool
	LockOnReset      []ResetType
	ActiveKey        method.UID // the K_AES object holding the range's key
}

// ReadLockedNow reports whether reads of the range are refused now
// (ReadLockEnabled and ReadLocked).
func (r Range) ReadLockedNow() bool { return r.ReadLockEnabled && r.ReadLocked }

// WriteLockedNow reports whether writes to the range are refused now.
func (r Range) WriteLockedNow() bool { return r.WriteLockEnabled && r.WriteLocked }

func rangeName(n uint32) string {
	if n == 0 {
		return "global range"
	}
	return fmt.Sprintf("range %d", n)
}

// wrapRange adds the step and, for a non-global range on a drive that
// Level 0 says is Pyrite, ErrNoRanges.
func wrapRange(c *session.Client, what string, n uint32, err error) error {
	if err == nil {
		return nil
	}
	if n != 0 {
		if d := c.Level0(); d != nil && noRanges(d) {
			return fmt.Errorf("%s %s: %w: %w", what, rangeName(n), ErrNoRanges, err)
		}
	}
	return fmt.Errorf("%s %s: %w", what, rangeName(n), err)
}

func noRanges(d *discovery.Discovery) bool {
	switch d.SSC() {
	case discovery.SSCPyriteV1, discovery.SSCPyriteV2:
		return true
	}
	return false
}

func getRange(ctx context.Context, s *session.Session, n uint32) (Range, error) {
	r, err := s.Get(ctx, method.LockingRange(n), method.Columns(ColRangeStart, ColActiveKey))
	if err != nil {
		return Range{}, err
	}
	rg := Range{N: n}
	for _, f := range []struct {
		col uint64
		dst *uint64
	}{{ColRangeStart, &rg.Start}, {ColRangeLength, &rg.Length}} {
		if *f.dst, err = uintColumn(r, f.col); err != nil {
			return Range{}, err
		}
	}
	for _, f := range []struct {
		col uint64
		dst *bool
	}{{ColReadLockEnabled, &rg.ReadLockEnabled}, {ColWriteLockEnabled, &rg.WriteLockEnabled}, {ColReadLocked, &rg.ReadLocked}, {ColWriteLocked, &rg.WriteLocked}} {
		if *f.dst, err = boolColumn(r, f.col); err != nil {
			return Range{}, err
		}
	}
	if v, ok := r.Column(ColLockOnReset); ok {
		if rg.LockOnReset, err = parseResetList(v); err != nil {
			return Range{}, fmt.Errorf("%w: LockOnReset: %v", ErrUnexpected, err)
		}
	}
	if v, ok := r.Column(ColActiveKey); ok {
		if rg.ActiveKey, err = method.UIDFromValue(v); err != nil {
			return Range{}, fmt.Errorf("%w: ActiveKey: %v", ErrUnexpected, err)
		}
	}
	return rg, nil
}

// GetRange reads range n as a (read-only session).
func GetRange(ctx context.Context, c *session.Client, a Auth, n uint32) (Range, error) {
	var rg Range
	err := withSession(ctx, c, method.LockingSP, a, false, func(s *session.Session) error {
		var err error
		rg, err = getRange(ctx, s, n)
		return err
	})
	return rg, wrapRange(c, "read", n, err)
}

// ListRanges reads the global range and every range up to LockingInfo's
// MaxRanges, in one read-only session as a (sedutil --listLockingRanges).
func ListRanges(ctx context.Context, c *session.Client, a Auth) ([]Range, error) {
	var out []Range
	err := withSession(ctx, c, method.LockingSP, a, false, func(s *session.Session) error {
		r, err := s.Get(ctx, method.LockingInfo, method.Columns(ColLockingInfoMaxRanges, ColLockingInfoMaxRanges))
		if err != nil {
			return err
		}
		maxRanges, err := uintColumn(r, ColLockingInfoMaxRanges)
		if err != nil {
			return err
		}
		if maxRanges > 1024 {
			return fmt.Errorf("%w: LockingInfo says %d ranges", ErrUnexpected, maxRanges)
		}
		for n := range uint32(maxRanges) + 1 {
			rg, err := getRange(ctx, s, n)
			if err != nil {
				return fmt.Errorf("%s: %w", rangeName(n), err)
			}
			out = append(out, rg)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list ranges: %w", err)
	}
	return out, nil
}

// RangeSettings are the columns of a Locking object that SetRange sets;
// nil fields are left as they are.
type RangeSettings struct {
	Start            *uint64
	Length           *uint64
	ReadLockEnabled  *bool
	WriteLockEnabled *bool
	ReadLocked       *bool
	WriteLocked      *bool
	LockOnReset      []ResetType // nil: unchanged; empty: no reset locks
}

func (rs RangeSettings) columns() []token.Value {
	var cols []token.Value
	for _, f := range []struct {
		col uint64
		v   *uint64
	}{{ColRangeStart, rs.Start}, {ColRangeLength, rs.Length}} {
		if f.v != nil {
			cols = append(cols, token.Named(f.col, token.Uint(*f.v)))
		}
	}
	for _, f := range []struct {
		col uint64
		v   *bool
	}{{ColReadLockEnabled, rs.ReadLockEnabled}, {ColWriteLockEnabled, rs.WriteLockEnabled}, {ColReadLocked, rs.ReadLocked}, {ColWriteLocked, rs.WriteLocked}} {
		if f.v != nil {
			cols = append(cols, token.Named(f.col, token.Bool(*f.v)))
		}
	}
	if rs.LockOnReset != nil {
		cols = append(cols, token.Named(ColLockOnReset, resetList(rs.LockOnReset)))
	}
	return cols
}

func ptr[T any](v T) *T { return &v }

// SetRange sets the columns rs names on range n, in one Set call as a.
func SetRange(ctx context.Context, c *session.Client, a Auth, n uint32, rs RangeSettings) error {
	cols := rs.columns()
	if len(cols) == 0 {
		return nil
	}
	err := withSession(ctx, c, method.LockingSP, a, true, func(s *session.Session) error {
		return s.Set(ctx, method.LockingRange(n), cols...)
	})
	return wrapRange(c, "configure", n, err)
}

// SetupRange sets range n's start and length (in logical blocks) and
// leaves it unlocked with locking disabled, in one Set call, as sedutil
// --setupLockingRange does before it rekeys (use GenKey for that). The
// drive checks the alignment (PROTOCOL.md 1.14) and overlaps and answers
// INVALID_PARAMETER when they are wrong.
func SetupRange(ctx context.Context, c *session.Client, a Auth, n uint32, start, length uint64) error {
	f := ptr(false)
	return SetRange(ctx, c, a, n, RangeSettings{
		Start: &start, Length: &length,
		ReadLockEnabled: f, WriteLockEnabled: f, ReadLocked: f, WriteLocked: f,
	})
}

// LockState is the state sedutil --setLockingRange sets.
type LockState uint8

// Lock states.
const (
	ReadWrite LockState = iota // RW: ReadLocked = WriteLocked = false
	ReadOnly                   // RO: WriteLocked only
	Locked                     // LK: both
)

func (l LockState) String() string {
	switch l {
	case ReadWrite:
		return "RW"
	case ReadOnly:
		return "RO"
	case Locked:
		return "LK"
	}
	return fmt.Sprintf("LockState(%d)", uint8(l))
}

func (l LockState) settings() RangeSettings {
	return RangeSettings{ReadLocked: ptr(l == Locked), WriteLocked: ptr(l != ReadWrite)}
}

// SetLockState locks or unlocks range n (ReadLocked / WriteLocked) as a.
// Users may do this for ranges an admin granted them (AddUserToRange).
func SetLockState(ctx context.Context, c *session.Client, a Auth, n uint32, l LockState) error {
	if l > Locked {
		return fmt.Errorf("set %s: unknown lock state %d", rangeName(n), l)
	}
	err := withSession(ctx, c, method.LockingSP, a, true, func(s *session.Session) error {
		return s.Set(ctx, method.LockingRange(n), l.settings().columns()...)
	})
	return wrapRange(c, "set "+l.String()+" on", n, err)
}

// SetLockEnabled enables or disables read and write locking of range n
// (ReadLockEnabled / WriteLockEnabled): sedutil --enableLockingRange is
// (true, true), --disableLockingRange (false, false), --readonlyLockingRange
// (false, true).
func SetLockEnabled(ctx context.Context, c *session.Client, a Auth, n uint32, read, write bool) error {
	return SetRange(ctx, c, a, n, RangeSettings{ReadLockEnabled: &read, WriteLockEnabled: &write})
}

// SetLockOnReset sets the resets that lock range n (LockOnReset; the
// default is PowerCycle). An empty list means the range never locks by
// itself.
func SetLockOnReset(ctx context.Context, c *session.Client, a Auth, n uint32, resets []ResetType) error {
	if resets == nil {
		resets = []ResetType{}
	}
	return SetRange(ctx, c, a, n, RangeSettings{LockOnReset: resets})
}

// GenKey gives range n a new media key (GenKey on its ActiveKey object,
// read first): every byte in the range becomes unreadable noise. This is
// the crypto-erase of sedutil --rekeyLockingRange.
func GenKey(ctx context.Context, c *session.Client, a Auth, n uint32) error {
	err := withSession(ctx, c, method.LockingSP, a, true, func(s *session.Session) error {
		r, err := s.Get(ctx, method.LockingRange(n), method.Columns(ColActiveKey, ColActiveKey))
		if err != nil {
			return err
		}
		v, ok := r.Column(ColActiveKey)
		if !ok {
			return fmt.Errorf("%w: ActiveKey", ErrNotReadable)
		}
		key, err := method.UIDFromValue(v)
		if err != nil {
			return fmt.Errorf("%w: ActiveKey: %v", ErrUnexpected, err)
		}
		_, err = s.Call(ctx, method.NewCall(key, method.GenKey))
		return err
	})
	return wrapRange(c, "generate a new key for", n, err)
}

// EraseRange erases range n with the Erase method (Single User Mode
// ranges, by their owner; sedutil --eraseLockingRange_SUM).
func EraseRange(ctx context.Context, c *session.Client, a Auth, n uint32) error {
	err := withSession(ctx, c, method.LockingSP, a, true, func(s *session.Session) error {
		_, err := s.Call(ctx, method.NewCall(method.LockingRange(n), method.Erase))
		return err
	})
	return wrapRange(c, "erase", n, err)
}

// UnlockOptions tune Unlock.
type UnlockOptions struct {
	// KeepShadowMBR leaves the shadow MBR showing: without it, Unlock
	// sets MBRControl Done when Level 0 says the shadow is active, so the
	// real LBA 0.. becomes visible (needs an authority with that right:
	// admins by default).
	KeepShadowMBR bool
	// SkipDiscovery trusts the Client's last Level 0 discovery (or, with
	// none, assumes no shadow MBR) instead of reading it again; it saves
	// one IF-RECV but can miss a shadow MBR that a power cycle re-armed.
	SkipDiscovery bool
}

// UnlockResult says what Unlock did.
type UnlockResult struct {
	// SetMBRDone: the shadow MBR was showing and Unlock set Done.
	SetMBRDone bool
	// Exchanges counts the IF-SENDs of the unlock (StartSession, the Set
	// ComPackets, EndOfSession, and Properties if this was the Client's
	// first session); Receives counts every IF-RECV, Level 0 and polls
	// included.
	Exchanges int
	Receives  int
}

// Unlock is the unlock-on-resume path: one session as a to the Locking SP
// that sets ReadLocked = WriteLocked = false on every range in ranges (0 =
// global), and MBRControl Done = true if the shadow MBR is showing, using
// as few exchanges as the drive allows (see the package documentation). It
// stops at the first failure; a range the authority may not unlock gives
// NOT_AUTHORIZED naming that range.
func Unlock(ctx context.Context, c *session.Client, a Auth, ranges []uint32, opts *UnlockOptions) (res UnlockResult, err error) {
	var o UnlockOptions
	if opts != nil {
		o = *opts
	}
	before := c.Stats()
	defer func() {
		after := c.Stats()
		res.Exchanges = after.Sends - before.Sends
		res.Receives = after.Receives - before.Receives
	}()
	d := c.Level0()
	if !o.SkipDiscovery {
		var err error
		if d, err = c.Discover(ctx); err != nil {
			return res, fmt.Errorf("unlock: %w", err)
		}
	}
	calls := make([]method.Call, 0, len(ranges)+1)
	unlocked := ReadWrite.settings().columns()
	for _, n := range ranges {
		calls = append(calls, method.NewSet(method.LockingRange(n), unlocked...))
	}
	if !o.KeepShadowMBR && d != nil && d.MBRShadowActive() {
		calls = append(calls, method.NewSet(method.MBRControl, token.Named(ColMBRDone, token.Bool(true))))
		res.SetMBRDone = true
	}
	if len(calls) == 0 {
		return res, nil
	}
	err = withSession(ctx, c, method.LockingSP, a, true, func(s *session.Session) error {
		rs, err := s.Calls(ctx, calls...)
		if err != nil && len(rs) < len(ranges) {
			return wrapRange(c, "unlock", ranges[len(rs)], err)
		}
		return err
	})
	if err != nil {
		res.SetMBRDone = false
		return res, fmt.Errorf("unlock: %w", err)
	}
	return res, nil
}
