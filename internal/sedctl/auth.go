package sedctl

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
)

// parseAuthority reads an authority name: sid, psid, anybody, adminN (the
// Locking SP's), userN, adminsp-adminN, or anything method.ParseUID takes
// (a UID in hex, "User3").
func parseAuthority(s string) (method.UID, error) {
	l := strings.ToLower(s)
	num := func(prefix string) (uint32, bool) {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok || rest == "" {
			return 0, false
		}
		n, err := strconv.ParseUint(rest, 10, 16)
		return uint32(n), err == nil && n >= 1
	}
	switch l {
	case "sid":
		return method.SID, nil
	case "psid":
		return method.PSID, nil
	case "anybody", "none":
		return method.UID{}, nil
	}
	if n, ok := num("adminsp-admin"); ok {
		return method.AdminSPAdmin(n), nil
	}
	if n, ok := num("admin"); ok {
		return method.Admin(n), nil
	}
	if n, ok := num("user"); ok {
		return method.User(n), nil
	}
	u, err := method.ParseUID(s)
	if err != nil {
		return method.UID{}, usageError(fmt.Errorf("authority %q: want sid, admin1..4, userN, anybody or a UID in hex", s))
	}
	if u == method.Anybody {
		return method.UID{}, nil
	}
	return u, nil
}

func authName(u method.UID) string { return opal.Auth{Authority: u}.String() }

// spOf is the SP an authority belongs to.
func spOf(u method.UID) method.UID {
	_, lo := u.Halves()
	if u == method.SID || u == method.PSID || (lo > 0x200 && lo < 0x300) {
		return method.AdminSP
	}
	return method.LockingSP
}

// authorityOpt returns --as, or def when it is not given.
func (e *env) authorityOpt(def method.UID) (method.UID, error) {
	if !e.opts.has("as") {
		return def, nil
	}
	return parseAuthority(e.opts.get("as"))
}

// login returns the Auth for who: the password read and hashed, or
// Anybody.
func (e *env) login(d *device, who method.UID) (opal.Auth, error) {
	if who.IsZero() {
		return opal.Anybody, nil
	}
	var pin hash.PIN
	var err error
	if who == method.PSID {
		pin, err = e.rawSecret("PSID (printed on the drive's label)")
	} else {
		pin, err = e.password(d, authName(who))
	}
	if err != nil {
		return opal.Auth{}, err
	}
	e.closers = append(e.closers, pin.Wipe)
	return opal.Auth{Authority: who, PIN: pin}, nil
}

// loginAs reads --as (default def) and logs in. --as must name an
// authority of def's SP (or anybody): SID, say, cannot open a Locking SP
// session, and trying would only earn an INVALID_PARAMETER.
func (e *env) loginAs(d *device, def method.UID) (opal.Auth, error) {
	who, err := e.authorityOpt(def)
	if err != nil {
		return opal.Auth{}, err
	}
	if !who.IsZero() && spOf(who) != spOf(def) {
		sp, want := "the Locking SP", "admin1..4 or userN"
		if spOf(def) == method.AdminSP {
			sp, want = "the Admin SP", "sid"
		}
		return opal.Auth{}, usageError(fmt.Errorf("--as %s: 'sedctl %s' works in %s, where %s does not exist; use %s", e.opts.get("as"), e.cmd.path, sp, authName(who), want))
	}
	return e.login(d, who)
}

// startFailed reports whether err is a failed StartSession, as opposed to
// a method refused inside a session. tcg/session has no error type for
// it; its messages name the step ("start session on LockingSP as Admin1").
func startFailed(err error) bool {
	return strings.Contains(err.Error(), "start session on ")
}

// explain adds to a drive's refusal what it means for a person: which
// password was wrong, the tries left when the drive tells, what a lockout
// is and how to end it, how to clear a busy SP.
func (e *env) explain(d *device, a opal.Auth, err error) error {
	if err == nil {
		return nil
	}
	name := authName(a.Authority)
	switch {
	case errors.Is(err, method.StatusAuthorityLockedOut):
		zero := uint64(0)
		return &triesError{authority: name, left: &zero, hinted: hinted{err: err, hint: fmt.Sprintf("%s is locked out after too many wrong passwords (AUTHORITY_LOCKED_OUT): the drive now refuses every password for %s, the right one too, "+
			"until it is power-cycled. Power-cycle the drive (a sedsim drive: sedctl reset --power-cycle %s), then try once more with the right password", name, name, d.spec)}}
	case errors.Is(err, method.StatusNotAuthorized) && !a.Authority.IsZero() && (startFailed(err) || d.k != nil):
		msg := fmt.Sprintf("the drive refused the password for %s (NOT_AUTHORIZED): it is wrong, or %s is disabled", name, name)
		if d.k != nil {
			// The kernel reports the status, not the step that failed.
			msg = fmt.Sprintf("the drive refused the operation as %s (NOT_AUTHORIZED): the password is wrong, %s is disabled, or it may not do this (the kernel does not say which step failed)", name, name)
		}
		var left *uint64
		switch n, ok := e.triesLeft(d, a.Authority); {
		case ok:
			left = &n
			msg += fmt.Sprintf(". %d %s left before the drive locks %s out (AUTHORITY_LOCKED_OUT) until its next power cycle", n, plural(n, "try", "tries"), name)
		case a.Authority != method.PSID:
			reader := "Admin1"
			if spOf(a.Authority) == method.AdminSP {
				reader = "SID"
			}
			msg += fmt.Sprintf(". The drive does not tell an anonymous host how many tries are left ('sedctl user list' shows them to %s); "+
				"after too many the drive locks %s out (AUTHORITY_LOCKED_OUT) until its next power cycle", reader, name)
		}
		msg += ". sedctl never retries: every wrong password counts toward the drive's try limit"
		if a.Authority != method.PSID {
			salt := ""
			if e.scheme.UsesSerial() {
				if id, err := d.identity(e.ctx); err == nil {
					salt = fmt.Sprintf(" salted with the serial %q", string(id.Serial[:]))
				}
			}
			msg += fmt.Sprintf(". The password was hashed with --hash %s%s; a drive set up by another tool may need another scheme (sedctl hash --list)", e.scheme.Name(), salt)
		}
		return &triesError{hinted: hinted{err: err, hint: msg}, authority: name, left: left}
	case errors.Is(err, method.StatusNotAuthorized) && !a.Authority.IsZero():
		return withHint(err, fmt.Sprintf("%s logged in, but may not do this (NOT_AUTHORIZED): the drive's access control does not grant it to %s", name, name))
	case errors.Is(err, method.StatusSPBusy):
		return withHint(err, fmt.Sprintf("another session holds the SP (SP_BUSY): another program is using the drive, or one died in the middle of a session. "+
			"If nothing else is using it, 'sedctl reset %s' (STACK_RESET) ends the stale session", d.spec))
	}
	return err
}

// triesLeft asks the drive, anonymously (no try spent), how many tries who
// has left. Opal lets only admins read them, so most drives do not say.
func (e *env) triesLeft(d *device, who method.UID) (uint64, bool) {
	if who == method.PSID || d.c == nil {
		return 0, false
	}
	limit, tries, err := opal.Tries(e.ctx, d.c, spOf(who), opal.Anybody, who)
	if err != nil || limit == 0 || tries > limit {
		return 0, false
	}
	return limit - tries, true
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// triesError is a refused password, with the tries the drive has left for
// the authority when it said (--json reports them).
type triesError struct {
	hinted
	authority string
	left      *uint64
}

func (e *triesError) Unwrap() error { return &e.hinted }

// maxRanges reads LockingInfo's MaxRanges, anonymously (no try spent) and
// then as a; ok is false when the drive tells neither.
func (e *env) maxRanges(d *device, a opal.Auth) (uint32, bool) {
	if d.c == nil {
		return 0, false // --via kernel: no ioctl reads LockingInfo
	}
	for _, who := range []opal.Auth{opal.Anybody, a} {
		r, err := opal.Get(e.ctx, d.c, method.LockingSP, who, method.LockingInfo, method.Columns(opal.ColLockingInfoMaxRanges, opal.ColLockingInfoMaxRanges))
		if err != nil {
			continue
		}
		if n := uintCol(r, opal.ColLockingInfoMaxRanges); n != nil && *n <= 0xFFFF {
			return uint32(*n), true
		}
	}
	return 0, false
}

// explainRange is explain for a command on range n: a range the drive
// does not have is named as such.
func (e *env) explainRange(d *device, a opal.Auth, n uint32, err error) error {
	if n > 0 && errors.Is(err, method.StatusInvalidParameter) {
		if max, ok := e.maxRanges(d, a); ok && n > max {
			return withHint(err, fmt.Sprintf("range %d does not exist: this drive has ranges 1..%d besides the global range 0 ('sedctl range list %s')", n, max, d.spec))
		}
	}
	return e.explain(d, a, err)
}
