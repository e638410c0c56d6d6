package sedctl

import (
	"fmt"
	"io"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
)

// Single User Mode (Opal Feature Set: SUM, PROTOCOL.md 1.15): a range
// activated in SUM belongs to one user, User<range+1>, who alone may lock,
// unlock, set up and erase it; admins lose those rights. The user's
// password is empty after activation until the user sets one ('sum
// password'; press Enter at the prompt for the current one).

// parseSUMRanges reads "all" or a comma-separated list of ranges.
func parseSUMRanges(s string) (*opal.ActivateOptions, error) {
	o := &opal.ActivateOptions{}
	if strings.EqualFold(s, "all") {
		o.SingleUserAll = true
		return o, nil
	}
	for _, p := range strings.Split(s, ",") {
		n, err := parseRange(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		o.SingleUser = append(o.SingleUser, n)
	}
	return o, nil
}

func cmdSUMActivate(e *env, args []string) error {
	o, err := parseSUMRanges(args[0])
	if err != nil {
		return err
	}
	o.AdminsSetRanges = e.opts.bool("admins-set-ranges")
	d, err := e.openDevice(args[1])
	if err != nil {
		return err
	}
	l0, err := d.level0(e.ctx)
	if err != nil {
		return err
	}
	if l0.SingleUserMode == nil {
		return withCode(ExitUnsupported, fmt.Errorf("%s (%v) does not support Single User Mode", d.spec, l0.SSC()), "")
	}
	return activate(e, d, o)
}

// cmdSUMErase erases a SUM range with the Erase method, as its owner.
func cmdSUMErase(e *env, args []string) error {
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
	if err := e.confirm(d, fmt.Sprintf("This erases Single User Mode range %d: everything stored in it becomes unreadable.", n)); err != nil {
		return err
	}
	a, err := e.loginAs(d, sumOwner(n))
	if err != nil {
		return err
	}
	if err := opal.EraseRange(e.ctx, d.c, a, n); err != nil {
		return e.explainRange(d, a, n, err)
	}
	return e.done(d, "sum erase", u32(n), fmt.Sprintf("range %d erased", n))
}

// cmdSUMPassword lets a range's owner set its own password.
func cmdSUMPassword(e *env, args []string) error {
	n, err := parseRange(args[0])
	if err != nil {
		return err
	}
	d, err := e.openDevice(args[1])
	if err != nil {
		return err
	}
	owner := sumOwner(n)
	a, err := e.loginAs(d, owner)
	if err != nil {
		return err
	}
	src, err := e.newSource()
	if err != nil {
		return err
	}
	pin, err := e.newPassword(d, authName(owner), src)
	if err != nil {
		return err
	}
	defer pin.Wipe()
	if err := opal.SetPIN(e.ctx, d.c, a, owner, pin); err != nil {
		return e.explainRange(d, a, n, err)
	}
	return e.done(d, "sum password", u32(n), fmt.Sprintf("the password of %s (owner of range %d) is set", authName(owner), n))
}

// cmdSUMSetupDrive is sedutil --setup_SUM: take ownership (the SID
// password from --password-file/--password-fd or the prompt), activate
// with range N in Single User Mode, then as its owner (empty password):
// start and length, a new key, locking enabled, and the owner's password
// (from --new-password-file/--new-password-fd or the prompt). The range is
// left unlocked.
func cmdSUMSetupDrive(e *env, args []string) error {
	n, err := parseRange(args[0])
	if err != nil {
		return err
	}
	start, err := parseUint("START", args[1], 64)
	if err != nil {
		return err
	}
	length, err := parseUint("LENGTH", args[2], 64)
	if err != nil {
		return err
	}
	d, err := e.openDevice(args[3])
	if err != nil {
		return err
	}
	if err := d.requireRanges(e.ctx, n); err != nil {
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
	owner := sumOwner(n)
	nsrc, err := e.newSource()
	if err != nil {
		return err
	}
	upin, err := e.newPassword(d, authName(owner), nsrc)
	if err != nil {
		return err
	}
	defer upin.Wipe()
	if err := opal.TakeOwnership(e.ctx, d.c, sid); err != nil {
		return ownedError(d, err)
	}
	if err := opal.Activate(e.ctx, d.c, sid, &opal.ActivateOptions{SingleUser: []uint32{n}}); err != nil {
		return e.explain(d, opal.Auth{Authority: method.SID, PIN: sid}, err)
	}
	a := opal.Auth{Authority: owner, PIN: hash.PIN{}}
	if n > 0 {
		if err := opal.SetupRange(e.ctx, d.c, a, n, start, length); err != nil {
			return e.explain(d, a, alignmentHint(e, d, n, start, length, err))
		}
		if err := opal.GenKey(e.ctx, d.c, a, n); err != nil {
			return e.explainRange(d, a, n, err)
		}
	}
	if err := opal.SetLockEnabled(e.ctx, d.c, a, n, true, true); err != nil {
		return e.explainRange(d, a, n, err)
	}
	if err := opal.SetPIN(e.ctx, d.c, a, owner, upin); err != nil {
		return e.explainRange(d, a, n, err)
	}
	steps := []string{
		"took ownership: the SID password is set",
		fmt.Sprintf("activated the Locking SP with range %d in Single User Mode, owned by %s", n, authName(owner)),
		fmt.Sprintf("range %d: blocks %d..%d, new key, locking enabled, unlocked", n, start, start+length-1),
		fmt.Sprintf("%s's password is set", authName(owner)),
	}
	return e.emit(struct {
		Device string   `json:"device"`
		Range  uint32   `json:"range"`
		Owner  string   `json:"owner"`
		Steps  []string `json:"steps"`
	}{d.spec, n, authName(owner), steps}, func(w io.Writer) error {
		for _, s := range steps {
			fmt.Fprintf(w, "%s: %s\n", d.spec, s)
		}
		return nil
	})
}
