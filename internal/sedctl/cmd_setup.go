package sedctl

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
)

// setup is sedutil --initialSetup, minus the shadow MBR unless --mbr:
//
//  1. take ownership: SID's PIN becomes the new password's (read from
//     --password-file/--password-fd or asked twice), authenticating with
//     the MSID;
//  2. activate the Locking SP: Admin1's PIN becomes the SID PIN, as Opal
//     specifies and sedutil relies on;
//  3. the global range: ReadLockEnabled = WriteLockEnabled = false,
//     ReadLocked = WriteLocked = false (nothing locks until 'range
//     enable');
//  4. with --mbr (and always for --initialSetup): MBRControl Done = on, then
//     Enable = on, so the shadow MBR shows after the next power cycle. Off
//     by default because a drive with shadowing enabled and no PBA loaded
//     shows an empty disk at boot.
//
// It refuses, before spending any password try, a drive whose Locking SP
// is already active or whose Level 0 says the SID PIN is no longer the
// MSID, and a drive whose MSID does not open the SID (owned).
func cmdSetup(e *env, args []string) error {
	d, err := e.openDevice(args[0])
	if err != nil {
		return err
	}
	if err := refuseIfOwned(e, d); err != nil {
		return err
	}
	src, err := e.currentSource()
	if err != nil {
		return err
	}
	sid, err := e.newPassword(d, "SID", src)
	if err != nil {
		return err
	}
	defer sid.Wipe()
	var steps []string
	if err := opal.TakeOwnership(e.ctx, d.c, sid); err != nil {
		return ownedError(d, err)
	}
	steps = append(steps, "took ownership: the SID password is set")
	if err := opal.Activate(e.ctx, d.c, sid, nil); err != nil {
		return e.explain(d, opal.Auth{Authority: method.SID, PIN: sid}, err)
	}
	steps = append(steps, "activated the Locking SP: Admin1's password is the SID password")
	admin1 := opal.Auth{Authority: method.Admin(1), PIN: sid}
	f := false
	if err := opal.SetRange(e.ctx, d.c, admin1, 0, opal.RangeSettings{ReadLockEnabled: &f, WriteLockEnabled: &f, ReadLocked: &f, WriteLocked: &f}); err != nil {
		return e.explain(d, admin1, err)
	}
	steps = append(steps, "global range: unlocked, locking disabled (enable it with 'sedctl range enable 0')")
	mbr := false
	if e.opts.bool("mbr") {
		l0, err := d.level0(e.ctx)
		if err != nil {
			return err
		}
		if l0.Locking != nil && !l0.Locking.MBRShadowingNotSupported {
			t := true
			if err := opal.SetMBRControl(e.ctx, d.c, admin1, opal.MBRSettings{Done: &t}); err != nil {
				return e.explain(d, admin1, err)
			}
			if err := opal.SetMBRControl(e.ctx, d.c, admin1, opal.MBRSettings{Enable: &t}); err != nil {
				return e.explain(d, admin1, err)
			}
			mbr = true
			steps = append(steps, "shadow MBR: enabled, done (load a PBA with 'sedctl mbr load')")
		} else {
			steps = append(steps, "shadow MBR: this drive has none; skipped")
		}
	}
	return e.setupDone(d, mbr, steps)
}

// setupDone reports a finished setup, on either path.
func (e *env) setupDone(d *device, mbr bool, steps []string) error {
	out := struct {
		Device     string   `json:"device"`
		Owned      bool     `json:"owned"`
		Activated  bool     `json:"activated"`
		MBREnabled bool     `json:"mbr_enabled"`
		Steps      []string `json:"steps"`
	}{d.spec, true, true, mbr, steps}
	return e.emit(out, func(w io.Writer) error {
		for _, s := range steps {
			fmt.Fprintf(w, "%s: %s\n", d.spec, s)
		}
		return nil
	})
}

// refuseIfOwned stops setup on a drive that is set up or owned, without
// authenticating.
func refuseIfOwned(e *env, d *device) error {
	l0, err := d.level0(e.ctx)
	if err != nil {
		return err
	}
	if l0.SSC() == discovery.SSCNone {
		return fmt.Errorf("%s: %w", d.spec, session.ErrNoSSC)
	}
	if l0.LockingEnabled() {
		return withCode(ExitRefused, fmt.Errorf("%s is already set up: its Locking SP is active; nothing was changed", d.spec),
			fmt.Sprintf("manage it with its passwords ('sedctl range list %s'), or start over with 'sedctl revert --tper %s' (needs the SID password) or 'sedctl psid-revert %s' (erases everything)", d.spec, d.spec, d.spec))
	}
	if l0.BlockSID != nil && l0.BlockSID.SIDValueState {
		return ownedError(d, opal.ErrOwned)
	}
	return nil
}

func ownedError(d *device, err error) error {
	if !errors.Is(err, opal.ErrOwned) {
		return err
	}
	return withCode(ExitRefused, fmt.Errorf("%s already has an owner (its SID password is not the factory MSID); nothing was changed: %w", d.spec, err),
		fmt.Sprintf("if you own it, finish with 'sedctl activate %s' (SID password); to start over: 'sedctl revert --tper %s' or 'sedctl psid-revert %s' (erase everything)", d.spec, d.spec, d.spec))
}

func cmdTakeOwnership(e *env, args []string) error {
	d, err := e.openDevice(args[0])
	if err != nil {
		return err
	}
	src, err := e.currentSource()
	if err != nil {
		return err
	}
	sid, err := e.newPassword(d, "SID", src)
	if err != nil {
		return err
	}
	defer sid.Wipe()
	if err := opal.TakeOwnership(e.ctx, d.c, sid); err != nil {
		return ownedError(d, err)
	}
	return e.done(d, "take-ownership", nil, "took ownership: the SID password is set")
}

func cmdActivate(e *env, args []string) error {
	d, err := e.openDevice(args[0])
	if err != nil {
		return err
	}
	return activate(e, d, nil)
}

func activate(e *env, d *device, opts *opal.ActivateOptions) error {
	a, err := e.login(d, method.SID)
	if err != nil {
		return err
	}
	if err := opal.Activate(e.ctx, d.c, a.PIN, opts); err != nil {
		if errors.Is(err, opal.ErrActive) {
			return withCode(ExitRefused, fmt.Errorf("%s: %w; nothing was changed", d.spec, err), "")
		}
		return e.explain(d, a, err)
	}
	detail := "activated the Locking SP: Admin1's password is the SID password"
	if opts != nil {
		detail += "; Single User Mode ranges belong to their users (User<range+1>), whose passwords are empty until they set them"
	}
	return e.done(d, "activate", nil, detail)
}

// ---- password set

func cmdPasswordSet(e *env, args []string) error {
	d, err := e.openDevice(args[0])
	if err != nil {
		return err
	}
	if !e.opts.has("authority") {
		return usageError(errors.New("password set needs --authority (sid, admin1..4, userN)"))
	}
	target, err := parseAuthority(e.opts.get("authority"))
	if err != nil {
		return err
	}
	if target.IsZero() || target == method.PSID {
		return usageError(fmt.Errorf("%s has no password sedctl can set", e.opts.get("authority")))
	}
	def := method.Admin(1)
	if spOf(target) == method.AdminSP {
		def = method.SID
	}
	a, err := e.loginAs(d, def)
	if err != nil {
		return err
	}
	src, err := e.newSource()
	if err != nil {
		return err
	}
	pin, err := e.newPassword(d, authName(target), src)
	if err != nil {
		return err
	}
	defer pin.Wipe()
	if err := opal.SetPIN(e.ctx, d.c, a, target, pin); err != nil {
		return e.explain(d, a, err)
	}
	return e.done(d, "password set", nil, fmt.Sprintf("the password of %s is set (as %s)", authName(target), authName(a.Authority)))
}

// ---- users

// parseUser reads "userN", "N" or another authority name.
func parseUser(s string) (method.UID, error) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil && n >= 1 {
		return method.User(uint32(n)), nil
	}
	u, err := parseAuthority(s)
	if err != nil {
		return u, err
	}
	if u.IsZero() || spOf(u) != method.LockingSP {
		return u, usageError(fmt.Errorf("%q is not a Locking SP authority (userN, adminN)", s))
	}
	return u, nil
}

func cmdUserEnable(enable bool) func(e *env, args []string) error {
	return func(e *env, args []string) error {
		user, err := parseUser(args[0])
		if err != nil {
			return err
		}
		d, err := e.openDevice(args[1])
		if err != nil {
			return err
		}
		a, err := e.loginAs(d, method.Admin(1))
		if err != nil {
			return err
		}
		if err := opal.SetAuthorityEnabled(e.ctx, d.c, a, user, enable); err != nil {
			return e.explain(d, a, err)
		}
		verb := "enabled"
		if !enable {
			verb = "disabled"
		}
		return e.done(d, "user "+strings.TrimSuffix(verb, "d"), nil, fmt.Sprintf("%s %s", authName(user), verb))
	}
}

type authorityJSON struct {
	Authority string  `json:"authority"`
	UID       string  `json:"uid"`
	Enabled   *bool   `json:"enabled,omitempty"`
	TryLimit  *uint64 `json:"try_limit,omitempty"`
	Tries     *uint64 `json:"tries,omitempty"`
	TriesLeft *uint64 `json:"tries_left,omitempty"`
}

// cmdUserList lists the SP's authorities with their Enabled flag and
// tries, which only admins may read: the Locking SP's as Admin1 (default),
// the Admin SP's (SID) as SID.
func cmdUserList(e *env, args []string) error {
	d, err := e.openDevice(args[0])
	if err != nil {
		return err
	}
	who, err := e.authorityOpt(method.Admin(1))
	if err != nil {
		return err
	}
	a, err := e.login(d, who)
	if err != nil {
		return err
	}
	sp := spOf(a.Authority)
	if a.Authority.IsZero() {
		sp = method.LockingSP
	}
	var list []authorityJSON
	err = func() error {
		s, err := d.c.StartSession(e.ctx, session.Params{SP: sp, Authority: a.Authority, Challenge: a.PIN})
		if err != nil {
			return err
		}
		defer s.Close(e.ctx)
		var auths []method.UID
		if sp == method.AdminSP {
			auths = []method.UID{method.SID}
		} else {
			r, err := s.Call(e.ctx, method.NewNext(method.AuthorityTable, method.UID{}, 0))
			if err != nil {
				return err
			}
			all, err := r.UIDs()
			if err != nil {
				return fmt.Errorf("%w: Next Authority: %v", opal.ErrUnexpected, err)
			}
			for _, u := range all {
				if _, lo := u.Halves(); (lo > 0x10000 && lo < 0x10100) || (lo > 0x30000 && lo < 0x30100) {
					auths = append(auths, u)
				}
			}
		}
		for _, u := range auths {
			aj := authorityJSON{Authority: authName(u), UID: u.Hex()}
			if r, err := s.Get(e.ctx, u, method.Columns(opal.ColAuthorityEnabled, opal.ColAuthorityEnabled)); err == nil {
				if v, ok := r.Column(opal.ColAuthorityEnabled); ok {
					if b, err := v.AsBool(); err == nil {
						aj.Enabled = &b
					}
				}
			}
			if row, err := cpinRow(u); err == nil {
				if r, err := s.Get(e.ctx, row, method.Columns(opal.ColCPINTryLimit, opal.ColCPINTries)); err == nil {
					aj.TryLimit = uintCol(r, opal.ColCPINTryLimit)
					aj.Tries = uintCol(r, opal.ColCPINTries)
					if aj.TryLimit != nil && aj.Tries != nil && *aj.TryLimit > 0 && *aj.Tries <= *aj.TryLimit {
						left := *aj.TryLimit - *aj.Tries
						aj.TriesLeft = &left
					}
				}
			}
			list = append(list, aj)
		}
		return nil
	}()
	if err != nil {
		return e.explain(d, a, fmt.Errorf("list authorities: %w", err))
	}
	return e.emit(struct {
		Device      string          `json:"device"`
		Authorities []authorityJSON `json:"authorities"`
	}{d.spec, list}, func(w io.Writer) error {
		t := newTable("AUTHORITY", "ENABLED", "TRY LIMIT", "FAILED TRIES", "TRIES LEFT")
		for _, x := range list {
			lim := "?"
			if x.TryLimit != nil {
				lim = fmt.Sprint(*x.TryLimit)
				if *x.TryLimit == 0 {
					lim = "unlimited"
				}
			}
			t.add(x.Authority, boolCell(x.Enabled), lim, uintCell(x.Tries), uintCell(x.TriesLeft))
		}
		return t.write(w)
	})
}

func uintCol(r method.Result, col uint64) *uint64 {
	v, ok := r.Column(col)
	if !ok {
		return nil
	}
	u, err := v.AsUint()
	if err != nil {
		return nil
	}
	return &u
}

func boolCell(b *bool) any {
	if b == nil {
		return "?"
	}
	return *b
}

func uintCell(u *uint64) string {
	if u == nil {
		return "-"
	}
	return fmt.Sprint(*u)
}

// cpinRow returns the C_PIN row of an authority.
func cpinRow(a method.UID) (method.UID, error) {
	_, lo := a.Halves()
	switch {
	case a == method.SID:
		return method.CPINSID, nil
	case lo > 0x200 && lo < 0x300:
		return method.CPINAdminSPAdmin(lo - 0x200), nil
	case lo > 0x10000 && lo < 0x10100:
		return method.CPINAdmin(lo - 0x10000), nil
	case lo > 0x30000 && lo < 0x40000:
		return method.CPINUser(lo - 0x30000), nil
	}
	return method.UID{}, fmt.Errorf("%v has no C_PIN row", a)
}
