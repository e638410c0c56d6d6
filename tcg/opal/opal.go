package opal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// Auth is an authority and its PIN: who a session authenticates as. The
// zero Auth is Anybody (no authentication).
type Auth struct {
	Authority method.UID
	PIN       hash.PIN
}

// Anybody is the unauthenticated authority.
var Anybody = Auth{}

// String names the authority, never the PIN.
func (a Auth) String() string {
	if a.Authority.IsZero() {
		return "Anybody"
	}
	if n := a.Authority.Name(); n != "" {
		return n
	}
	return a.Authority.Hex()
}

// GoString is String, so %#v does not show the PIN either.
func (a Auth) GoString() string { return a.String() }

// Column numbers (PROTOCOL.md 1.9).
const (
	ColCPINPIN      = 3 // C_PIN
	ColCPINTryLimit = 5
	ColCPINTries    = 6

	ColRangeStart       = 3 // Locking
	ColRangeLength      = 4
	ColReadLockEnabled  = 5
	ColWriteLockEnabled = 6
	ColReadLocked       = 7
	ColWriteLocked      = 8
	ColLockOnReset      = 9
	ColActiveKey        = 10

	ColLockingInfoMaxRanges = 4 // LockingInfo

	ColMBREnable      = 1 // MBRControl
	ColMBRDone        = 2
	ColMBRDoneOnReset = 3

	ColAuthorityEnabled = 5 // Authority

	ColSPLifeCycle = 6 // SP table

	ColACEBooleanExpr = 3 // ACE

	ColTableRows = 7 // Table table: the size of a byte table
)

// LifeCycle is an SP's LifeCycleState (SP table column 6; PROTOCOL.md
// 1.11).
type LifeCycle uint64

// Life cycle states of the Locking SP.
const (
	ManufacturedInactive LifeCycle = 8 // not activated
	Manufactured         LifeCycle = 9 // activated
)

func (l LifeCycle) String() string {
	switch l {
	case ManufacturedInactive:
		return "Manufactured-Inactive"
	case Manufactured:
		return "Manufactured"
	case 10:
		return "Manufactured-Disabled"
	case 11:
		return "Manufactured-Frozen"
	case 12:
		return "Manufactured-Disabled-Frozen"
	case 13:
		return "Manufactured-Failed"
	}
	if l <= 4 {
		return fmt.Sprintf("Issued (%d)", uint64(l))
	}
	return fmt.Sprintf("state %d", uint64(l))
}

// ResetType is a kind of reset named by LockOnReset and DoneOnReset
// (PROTOCOL.md 1.9).
type ResetType uint8

// Reset types.
const (
	PowerCycle   ResetType = 0
	Hardware     ResetType = 1
	HotPlug      ResetType = 2
	Programmatic ResetType = 3
)

func (r ResetType) String() string {
	switch r {
	case PowerCycle:
		return "PowerCycle"
	case Hardware:
		return "Hardware"
	case HotPlug:
		return "HotPlug"
	case Programmatic:
		return "Programmatic"
	}
	return fmt.Sprintf("reset %d", uint8(r))
}

func resetList(rs []ResetType) token.Value {
	items := make([]token.Value, len(rs))
	for i, r := range rs {
		items[i] = token.Uint(uint64(r))
	}
	return token.List(items...)
}

func parseResetList(v token.Value) ([]ResetType, error) {
	items, err := v.AsList()
	if err != nil {
		return nil, err
	}
	out := make([]ResetType, 0, len(items))
	for _, it := range items {
		u, err := it.AsUint()
		if err != nil || u > 0xFF {
			return nil, fmt.Errorf("reset type %v", it)
		}
		out = append(out, ResetType(u))
	}
	return out, nil
}

// Errors of this package; drive failures are method.MethodStatus errors.
var (
	// ErrOwned: the drive already has an owner (the SID PIN is not the
	// MSID), so ownership cannot be taken with the MSID.
	ErrOwned = errors.New("the drive already has an owner (its SID PIN is not the MSID)")
	// ErrSIDBlocked: Block SID is set; SID cannot authenticate until
	// the next power cycle.
	ErrSIDBlocked = errors.New("SID authentication is blocked until the next power cycle (Block SID)")
	// ErrActive: the Locking SP is already activated.
	ErrActive = errors.New("the Locking SP is already activated")
	// ErrInactive: the Locking SP is not activated.
	ErrInactive = errors.New("the Locking SP is not activated")
	// ErrNoRanges: the drive has no locking ranges beyond the global one
	// (Pyrite SSC).
	ErrNoRanges = errors.New("the drive has no locking ranges other than the global range (Pyrite)")
	// ErrNotReadable: a Get succeeded but left out a column the
	// operation needs: drives do that for columns the session's
	// authority may not read.
	ErrNotReadable = errors.New("the drive did not return the column; the authority may not read it")
	// ErrUnexpected: the drive's answer lacks what the operation needs.
	ErrUnexpected = errors.New("unexpected answer from the drive")
)

// closeTimeout bounds the EndOfSession of a session whose operation was
// cancelled, so that the session does not stay open on the drive.
const closeTimeout = 5 * time.Second

// withSession starts a session, runs fn in it and ends it. A failed start
// returns its error; fn's error takes precedence over the close error.
func withSession(ctx context.Context, c *session.Client, sp method.UID, a Auth, write bool, fn func(s *session.Session) error) (err error) {
	s, err := start(ctx, c, sp, a, write)
	if err != nil {
		return err
	}
	defer func() {
		cctx := ctx
		if ctx.Err() != nil {
			var cancel context.CancelFunc
			cctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
			defer cancel()
		}
		if cerr := s.Close(cctx); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return fn(s)
}

// start opens a session as a. A nil PIN with an authority is sent as an
// empty PIN.
func start(ctx context.Context, c *session.Client, sp method.UID, a Auth, write bool) (*session.Session, error) {
	p := session.Params{SP: sp, Write: write}
	if !a.Authority.IsZero() {
		p.Authority = a.Authority
		p.Challenge = a.PIN
		if p.Challenge == nil {
			p.Challenge = hash.PIN{}
		}
	}
	return c.StartSession(ctx, p)
}

// Tries returns the TryLimit (0 = unlimited) and the failed tries so far of
// authority's PIN in sp (C_PIN columns 5 and 6), read as reader. Opal lets
// only the SP's admins (and SID in the Admin SP) read them, so a failed
// authentication cannot tell the tries left by itself: the drive's answer is
// just NOT_AUTHORIZED, then AUTHORITY_LOCKED_OUT.
func Tries(ctx context.Context, c *session.Client, sp method.UID, reader Auth, authority method.UID) (limit, tries uint64, err error) {
	row, err := cpinRow(authority)
	if err != nil {
		return 0, 0, err
	}
	err = withSession(ctx, c, sp, reader, false, func(s *session.Session) error {
		r, err := s.Get(ctx, row, method.Columns(ColCPINTryLimit, ColCPINTries))
		if err != nil {
			return err
		}
		if limit, err = uintColumn(r, ColCPINTryLimit); err != nil {
			return err
		}
		tries, err = uintColumn(r, ColCPINTries)
		return err
	})
	return limit, tries, err
}

// cpinRow returns the C_PIN row of authority.
func cpinRow(a method.UID) (method.UID, error) {
	hi, lo := a.Halves()
	if hi != 0x00000009 {
		return method.UID{}, fmt.Errorf("%v is not an authority", a)
	}
	switch {
	case a == method.SID:
		return method.CPINSID, nil
	case a == method.PSID:
		return method.UID{}, fmt.Errorf("the PSID has no C_PIN the host may use")
	case lo > 0x00000200 && lo < 0x00000300:
		return method.CPINAdminSPAdmin(lo - 0x200), nil
	case lo > 0x00010000 && lo < 0x00010100:
		return method.CPINAdmin(lo - 0x10000), nil
	case lo > 0x00030000 && lo < 0x00040000:
		return method.CPINUser(lo - 0x30000), nil
	}
	return method.UID{}, fmt.Errorf("no C_PIN row known for authority %v", a)
}

// spOf returns the SP that authority a belongs to: the Admin SP for SID,
// PSID and the Admin SP's admins, the Locking SP otherwise.
func spOf(a method.UID) method.UID {
	_, lo := a.Halves()
	if a == method.SID || a == method.PSID || (lo > 0x200 && lo < 0x300) {
		return method.AdminSP
	}
	return method.LockingSP
}

func column(r method.Result, col uint64) (token.Value, error) {
	v, ok := r.Column(col)
	if !ok {
		if _, err := r.Row(); err == nil {
			return token.Value{}, fmt.Errorf("column %d: %w", col, ErrNotReadable)
		}
		return token.Value{}, fmt.Errorf("%w: Get result %v is not a column list", ErrUnexpected, r.Values)
	}
	return v, nil
}

func uintColumn(r method.Result, col uint64) (uint64, error) {
	v, err := column(r, col)
	if err != nil {
		return 0, err
	}
	u, err := v.AsUint()
	if err != nil {
		return 0, fmt.Errorf("%w: column %d: %v", ErrUnexpected, col, err)
	}
	return u, nil
}

func boolColumn(r method.Result, col uint64) (bool, error) {
	v, err := column(r, col)
	if err != nil {
		return false, err
	}
	b, err := v.AsBool()
	if err != nil {
		return false, fmt.Errorf("%w: column %d: %v", ErrUnexpected, col, err)
	}
	return b, nil
}

// Info is what a drive says about itself without authentication.
type Info struct {
	Level0     *discovery.Discovery
	Properties *session.Properties
}

// Query reads Level 0 discovery and exchanges Properties (sedutil
// --query).
func Query(ctx context.Context, c *session.Client) (*Info, error) {
	d, err := c.Discover(ctx)
	if err != nil {
		return nil, err
	}
	p, err := c.Properties(ctx)
	if err != nil {
		return nil, err
	}
	return &Info{Level0: d, Properties: p}, nil
}

// MSID reads the MSID (C_PIN_MSID.PIN) in an anonymous read-only Admin SP
// session: the drive's factory PIN, printed by sedutil
// --printDefaultPassword.
func MSID(ctx context.Context, c *session.Client) (hash.PIN, error) {
	var pin hash.PIN
	err := withSession(ctx, c, method.AdminSP, Anybody, false, func(s *session.Session) error {
		r, err := s.Get(ctx, method.CPINMSID, method.Columns(ColCPINPIN, ColCPINPIN))
		if err != nil {
			return err
		}
		v, err := column(r, ColCPINPIN)
		if err != nil {
			return err
		}
		b, err := v.AsBytes()
		if err != nil {
			return fmt.Errorf("%w: MSID: %v", ErrUnexpected, err)
		}
		pin = hash.PIN(append([]byte(nil), b...))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read MSID: %w", err)
	}
	return pin, nil
}

// Random returns n random bytes from the drive's generator (Random on
// ThisSP, at most 32 bytes per call in Opal), in one session to sp as a.
func Random(ctx context.Context, c *session.Client, sp method.UID, a Auth, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	err := withSession(ctx, c, sp, a, false, func(s *session.Session) error {
		for len(out) < n {
			k := min(n-len(out), 32)
			r, err := s.Call(ctx, method.NewRandom(uint64(k)))
			if err != nil {
				return err
			}
			b, err := r.Bytes()
			if err != nil {
				return fmt.Errorf("%w: Random: %v", ErrUnexpected, err)
			}
			if len(b) != k {
				return fmt.Errorf("%w: Random returned %d bytes for %d", ErrUnexpected, len(b), k)
			}
			out = append(out, b...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return out, nil
}
