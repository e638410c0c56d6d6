package opal

import (
	"context"
	"errors"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// SetAuthorityEnabled enables or disables authority (Authority column 5,
// Enabled) as a, in the authority's SP. A disabled authority cannot
// authenticate.
func SetAuthorityEnabled(ctx context.Context, c *session.Client, a Auth, authority method.UID, enabled bool) error {
	err := withSession(ctx, c, spOf(authority), a, true, func(s *session.Session) error {
		return s.Set(ctx, authority, token.Named(ColAuthorityEnabled, token.Bool(enabled)))
	})
	if err != nil {
		verb := "enable"
		if !enabled {
			verb = "disable"
		}
		return fmt.Errorf("%s %s: %w", verb, authName(authority), err)
	}
	return nil
}

// EnableUser enables (or disables) the Locking SP's User n (sedutil
// --enableuser).
func EnableUser(ctx context.Context, c *session.Client, a Auth, user uint32, enabled bool) error {
	return SetAuthorityEnabled(ctx, c, a, method.User(user), enabled)
}

// AddUserToRange lets User user lock and unlock range n: it adds the user
// to the BooleanExpr of the range's ACE_Locking_RangeN_Set_RdLocked and
// _Set_WrLocked ACEs, keeping whoever was there ("<old> UserN OR"), as
// ladar's sedutil --addUserToLockingACEs and the kernel's
// IOC_OPAL_ADD_USR_TO_LR do. Where the drive does not let a read the ACE,
// the expression becomes "Admin1 OR UserN", what newer kernels write.
func AddUserToRange(ctx context.Context, c *session.Client, a Auth, user, n uint32) error {
	u := method.User(user)
	err := withSession(ctx, c, method.LockingSP, a, true, func(s *session.Session) error {
		for _, ace := range []method.UID{method.ACELockingRangeSetRdLocked(n), method.ACELockingRangeSetWrLocked(n)} {
			expr, err := grantExpr(ctx, s, ace, u)
			if err != nil {
				return err
			}
			if expr.IsZero() {
				continue // already there
			}
			if err := s.Set(ctx, ace, token.Named(ColACEBooleanExpr, expr)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrapRange(c, fmt.Sprintf("add %s to", authName(u)), n, err)
	}
	return nil
}

// grantExpr returns the BooleanExpr that adds u to ace, or the zero Value
// if u is already in it.
func grantExpr(ctx context.Context, s *session.Session, ace, u method.UID) (token.Value, error) {
	r, err := s.Get(ctx, ace, method.Columns(ColACEBooleanExpr, ColACEBooleanExpr))
	if errors.Is(err, method.StatusNotAuthorized) {
		return method.AnyOf(method.Admin(1), u), nil
	}
	if err != nil {
		return token.Value{}, err
	}
	v, err := column(r, ColACEBooleanExpr)
	if err != nil {
		return token.Value{}, err
	}
	terms, err := method.ParseBooleanExpr(v)
	if err != nil {
		return token.Value{}, fmt.Errorf("%w: %v BooleanExpr: %v", ErrUnexpected, ace, err)
	}
	for _, t := range terms {
		if !t.IsOp && t.Authority == u {
			return token.Value{}, nil
		}
	}
	if len(terms) == 0 {
		return method.BooleanExpr(method.AuthorityTerm(u)), nil
	}
	terms = append(terms, method.AuthorityTerm(u), method.OpTerm(method.Or))
	return method.BooleanExpr(terms...), nil
}
