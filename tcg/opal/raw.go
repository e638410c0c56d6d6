package opal

import (
	"context"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// Call invokes any method in its own session to sp as a (sedutil
// --rawCmd), read-write if write. The result comes back even when its
// status is a failure (with the error).
func Call(ctx context.Context, c *session.Client, sp method.UID, a Auth, write bool, call method.Call) (method.Result, error) {
	var r method.Result
	err := withSession(ctx, c, sp, a, write, func(s *session.Session) error {
		var err error
		r, err = s.Call(ctx, call)
		return err
	})
	return r, err
}

// Get reads cells cb of object or table obj in sp as a (read-only
// session; sedutil --objDump with all columns).
func Get(ctx context.Context, c *session.Client, sp method.UID, a Auth, obj method.UID, cb method.CellBlock) (method.Result, error) {
	return Call(ctx, c, sp, a, false, method.NewGet(obj, cb))
}

// Set sets columns (token.Named(column, value)) of object obj in sp as a.
func Set(ctx context.Context, c *session.Client, sp method.UID, a Auth, obj method.UID, columns ...token.Value) error {
	_, err := Call(ctx, c, sp, a, true, method.NewSet(obj, columns...))
	return err
}

// Next lists up to count rows (0 = all) of table after row where (zero =
// from the start) in sp as a.
func Next(ctx context.Context, c *session.Client, sp method.UID, a Auth, table, where method.UID, count uint64) ([]method.UID, error) {
	r, err := Call(ctx, c, sp, a, false, method.NewNext(table, where, count))
	if err != nil {
		return nil, err
	}
	uids, err := r.UIDs()
	if err != nil {
		return nil, fmt.Errorf("Next %v: %w: %v", table, ErrUnexpected, err)
	}
	return uids, nil
}
