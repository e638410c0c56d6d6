package opal

import (
	"context"
	"errors"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// TakeOwnership sets the SID PIN of a drive that has no owner yet: it reads
// the MSID anonymously and opens an Admin SP session as SID with it, as the
// kernel and sedutil do (PROTOCOL.md 1.11). When Level 0 reports Block SID
// state, a drive whose SID PIN is already not the MSID is refused with
// ErrOwned before any try is spent.
func TakeOwnership(ctx context.Context, c *session.Client, newSID hash.PIN) error {
	d, err := c.Discover(ctx)
	if err != nil {
		return fmt.Errorf("take ownership: %w", err)
	}
	if b := d.BlockSID; b != nil {
		if b.SIDValueState {
			return fmt.Errorf("take ownership: %w", ErrOwned)
		}
		if b.SIDBlocked {
			return fmt.Errorf("take ownership: %w", ErrSIDBlocked)
		}
	}
	msid, err := MSID(ctx, c)
	if err != nil {
		return fmt.Errorf("take ownership: %w", err)
	}
	defer msid.Wipe()
	err = withSession(ctx, c, method.AdminSP, Auth{method.SID, msid}, true, func(s *session.Session) error {
		return s.Set(ctx, method.CPINSID, token.Named(ColCPINPIN, token.Bytes(newSID)))
	})
	if errors.Is(err, method.StatusNotAuthorized) {
		return fmt.Errorf("take ownership: %w: %w", ErrOwned, err)
	}
	if err != nil {
		return fmt.Errorf("take ownership: %w", err)
	}
	return nil
}

// SetPIN sets the PIN of authority target (SID, an Admin SP admin, a
// Locking SP admin or user), in a session as a to the target's SP. Admins
// may set any PIN of their SP; a user may set its own.
func SetPIN(ctx context.Context, c *session.Client, a Auth, target method.UID, pin hash.PIN) error {
	row, err := cpinRow(target)
	if err != nil {
		return fmt.Errorf("set PIN: %w", err)
	}
	err = withSession(ctx, c, spOf(target), a, true, func(s *session.Session) error {
		return s.Set(ctx, row, token.Named(ColCPINPIN, token.Bytes(pin)))
	})
	if err != nil {
		return fmt.Errorf("set PIN of %s as %s: %w", authName(target), a, err)
	}
	return nil
}

func authName(u method.UID) string { return Auth{Authority: u}.String() }

// LockingSPState returns the Locking SP's life cycle state, read
// anonymously from the Admin SP's SP table.
func LockingSPState(ctx context.Context, c *session.Client) (LifeCycle, error) {
	var lc LifeCycle
	err := withSession(ctx, c, method.AdminSP, Anybody, false, func(s *session.Session) error {
		var err error
		lc, err = lifeCycle(ctx, s)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read Locking SP state: %w", err)
	}
	return lc, nil
}

func lifeCycle(ctx context.Context, s *session.Session) (LifeCycle, error) {
	r, err := s.Get(ctx, method.LockingSP, method.Columns(ColSPLifeCycle, ColSPLifeCycle))
	if err != nil {
		return 0, err
	}
	u, err := uintColumn(r, ColSPLifeCycle)
	return LifeCycle(u), err
}

// ActivateOptions are the Single User Mode parameters of Activate
// (PROTOCOL.md 1.15). The zero value activates without SUM.
type ActivateOptions struct {
	// SingleUser lists the ranges to put in Single User Mode (0 = the
	// global range); each is then owned by user n+1.
	SingleUser []uint32
	// SingleUserAll puts every range in Single User Mode (the Locking
	// table UID as the list).
	SingleUserAll bool
	// AdminsSetRanges sets RangeStartRangeLengthPolicy to 1: admins, not
	// the range owners, set the start and length of SUM ranges.
	AdminsSetRanges bool
	// Admin1PIN, if set, becomes the Locking SP's Admin1 PIN.
	Admin1PIN hash.PIN
}

// Activate activates the Locking SP as SID (PROTOCOL.md 1.11): it checks
// that the Locking SP is Manufactured-Inactive (ErrActive if it is already
// active) and calls Activate with the Single User Mode options, if any.
// Afterwards Admin1's PIN is the SID PIN (unless opts.Admin1PIN), ranges are
// unlocked with locking disabled, and the shadow MBR is off.
func Activate(ctx context.Context, c *session.Client, sid hash.PIN, opts *ActivateOptions) error {
	var o ActivateOptions
	if opts != nil {
		o = *opts
	}
	call := method.NewCall(method.LockingSP, method.Activate)
	switch {
	case o.SingleUserAll:
		call.Args = append(call.Args, token.Named(method.ParamSingleUserModeSelectionList, method.LockingTable.Value()))
	case len(o.SingleUser) > 0:
		items := make([]token.Value, len(o.SingleUser))
		for i, n := range o.SingleUser {
			items[i] = method.LockingRange(n).Value()
		}
		call.Args = append(call.Args, token.Named(method.ParamSingleUserModeSelectionList, token.List(items...)))
	}
	if o.AdminsSetRanges {
		call.Args = append(call.Args, token.Named(method.ParamRangeStartRangeLengthPolicy, token.Uint(1)))
	}
	if o.Admin1PIN != nil {
		call.Args = append(call.Args, token.Named(method.ParamAdmin1PIN, token.Bytes(o.Admin1PIN)))
	}
	err := withSession(ctx, c, method.AdminSP, Auth{method.SID, sid}, true, func(s *session.Session) error {
		lc, err := lifeCycle(ctx, s)
		if err != nil {
			return err
		}
		switch lc {
		case ManufacturedInactive:
		case Manufactured:
			return ErrActive
		default:
			return fmt.Errorf("%w: Locking SP is %v", ErrUnexpected, lc)
		}
		_, err = s.Call(ctx, call)
		return err
	})
	if err != nil {
		return fmt.Errorf("activate Locking SP: %w", err)
	}
	return nil
}

// Revert returns the whole drive to its factory state (Revert on the Admin
// SP, PROTOCOL.md 1.11), authenticating as a: SID with its PIN, or PSID
// with the PSID from the label. Every range's key is regenerated, so all
// data is lost. The drive aborts the session; no EndOfSession follows.
func Revert(ctx context.Context, c *session.Client, a Auth) error {
	err := withSession(ctx, c, method.AdminSP, a, true, func(s *session.Session) error {
		_, err := s.Call(ctx, method.NewCall(method.AdminSP, method.Revert))
		return err
	})
	if err != nil {
		return fmt.Errorf("revert drive as %s: %w", a, err)
	}
	return nil
}

// RevertLockingSP reverts only the Locking SP (Revert invoked on the
// LockingSP object from an Admin SP session as SID); its data is erased.
func RevertLockingSP(ctx context.Context, c *session.Client, sid hash.PIN) error {
	err := withSession(ctx, c, method.AdminSP, Auth{method.SID, sid}, true, func(s *session.Session) error {
		_, err := s.Call(ctx, method.NewCall(method.LockingSP, method.Revert))
		return err
	})
	if err != nil {
		return fmt.Errorf("revert Locking SP: %w", err)
	}
	return nil
}

// RevertSP reverts the Locking SP from inside (RevertSP as a Locking SP
// admin): the Locking SP becomes Manufactured-Inactive and, unless
// keepGlobalRangeKey, the global range's data is erased (sedutil
// --revertNoErase keeps it). The drive aborts the session.
func RevertSP(ctx context.Context, c *session.Client, a Auth, keepGlobalRangeKey bool) error {
	err := withSession(ctx, c, method.LockingSP, a, true, func(s *session.Session) error {
		_, err := s.Call(ctx, method.NewRevertSP(keepGlobalRangeKey))
		return err
	})
	if err != nil {
		return fmt.Errorf("revert Locking SP (RevertSP): %w", err)
	}
	return nil
}
