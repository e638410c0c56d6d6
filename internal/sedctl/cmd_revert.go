package sedctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// confirmWord is what a person types to let a destructive command run.
const confirmWord = "ERASE"

// confirm asks for confirmWord on the terminal that is stdin, unless --yes.
// Without a terminal it refuses: scripts say --yes.
func (e *env) confirm(d *device, what string) error {
	if e.opts.bool("yes") {
		return nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return withCode(ExitRefused, fmt.Errorf("%s needs confirmation, and stdin is not a terminal to ask on; nothing was done", e.cmd.path),
			"add --yes to run it without asking")
	}
	drive := d.spec
	if id, err := d.identity(e.ctx); err == nil {
		drive = fmt.Sprintf("%s (model %q, serial %q)", d.spec, id.Model, id.SerialString())
	}
	fmt.Fprintf(e.stderr, "%s\nDrive: %s\nType %s to continue: ", what, drive, confirmWord)
	line, err := readLine(f, 256)
	if err != nil {
		return withCode(ExitRefused, fmt.Errorf("no confirmation: %w; nothing was done", err), "")
	}
	if strings.TrimSpace(line) != confirmWord {
		return withCode(ExitRefused, errors.New("not confirmed; nothing was done"), "")
	}
	return nil
}

// readLine reads a line a byte at a time (nothing beyond it is consumed).
func readLine(f *os.File, max int) (string, error) {
	var b []byte
	var c [1]byte
	for len(b) < max {
		n, err := f.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				return string(b), nil
			}
			b = append(b, c[0])
			continue
		}
		if err != nil {
			if len(b) > 0 {
				return string(b), nil
			}
			return "", err
		}
	}
	return string(b), nil
}

// cmdRevert: --tper is sedutil --revertTPer (Admin SP Revert as SID: the
// drive's factory state, every range erased); --locking-sp is sedutil
// --revertLockingSP (RevertSP as Admin1, erasing) or, with --keep-data,
// --revertNoErase (the global range's key and data kept). --locking-sp
// --as sid reverts the Locking SP from the Admin SP instead.
func cmdRevert(e *env, args []string) error {
	tper, lsp := e.opts.bool("tper"), e.opts.bool("locking-sp")
	if tper == lsp {
		return usageError(errors.New("revert needs --tper (the whole drive) or --locking-sp (the Locking SP only)"))
	}
	if tper && e.opts.bool("keep-data") {
		return usageError(errors.New("--keep-data applies to --locking-sp only: a TPer revert always erases"))
	}
	d, err := e.openDevice(args[0])
	if err != nil {
		return err
	}
	def := method.SID
	what := "This reverts the whole drive to its factory state: every locking range's key is replaced, so ALL DATA IS ERASED, and every password is reset."
	if lsp {
		def = method.Admin(1)
		what = "This reverts the Locking SP: locking is switched off, ranges and users are reset, and the data in every range is erased."
		if e.opts.bool("keep-data") {
			what = "This reverts the Locking SP: locking is switched off, ranges and users are reset and the data of ranges 1..n is erased; the global range's data is kept."
		}
	}
	who, err := e.authorityOpt(def)
	if err != nil {
		return err
	}
	if lsp && who == method.SID && e.opts.bool("keep-data") {
		return usageError(errors.New("--keep-data needs RevertSP, as a Locking SP admin (--as admin1), not SID"))
	}
	if err := e.confirm(d, what); err != nil {
		return err
	}
	a, err := e.login(d, who)
	if err != nil {
		return err
	}
	switch {
	case tper:
		err = opal.Revert(e.ctx, d.c, a)
	case who == method.SID:
		err = opal.RevertLockingSP(e.ctx, d.c, a.PIN)
	default:
		err = opal.RevertSP(e.ctx, d.c, a, e.opts.bool("keep-data"))
	}
	if err != nil {
		return e.explain(d, a, err)
	}
	return e.revertDone(d, tper)
}

// revertDone reports a finished revert, on either path.
func (e *env) revertDone(d *device, tper bool) error {
	if tper {
		return e.done(d, "revert tper", nil, "reverted to the factory state: the SID password is the MSID again, all data is erased")
	}
	detail := "Locking SP reverted: locking is off, its data erased"
	if e.opts.bool("keep-data") {
		detail = "Locking SP reverted: locking is off, the global range's data kept"
	}
	return e.done(d, "revert locking-sp", nil, detail)
}

// cmdPSIDRevert is sedutil --PSIDrevert: Revert as the PSID from the
// drive's label, which is sent as it is (never hashed).
func cmdPSIDRevert(e *env, args []string) error {
	d, err := e.openDevice(args[0])
	if err != nil {
		return err
	}
	if err := e.confirm(d, "This reverts the whole drive to its factory state with the PSID: ALL DATA IS ERASED and every password is reset."); err != nil {
		return err
	}
	a, err := e.login(d, method.PSID)
	if err != nil {
		return err
	}
	if err := opal.Revert(e.ctx, d.c, a); err != nil {
		if errors.Is(err, method.StatusNotAuthorized) {
			return withHint(err, "the drive refused the PSID: check it against the label (32 characters, no spaces; it is sent as typed, never hashed)")
		}
		return e.explain(d, a, err)
	}
	return e.done(d, "psid-revert", nil, "reverted to the factory state with the PSID: all data is erased")
}

// cmdReset: STACK_RESET on the session ComID (default; ends every session,
// the cure for SP_BUSY left by a dead host), --tper the programmatic TPer
// reset (ranges with LockOnReset Programmatic lock), --power-cycle a power
// cycle of a sedsim drive.
func cmdReset(e *env, args []string) error {
	n := 0
	for _, o := range []string{"stack", "tper", "power-cycle"} {
		if e.opts.bool(o) {
			n++
		}
	}
	if n > 1 {
		return usageError(errors.New("give one of --stack, --tper, --power-cycle"))
	}
	d, err := e.openDevice(args[0])
	if err != nil {
		return err
	}
	switch {
	case e.opts.bool("power-cycle"):
		pc, ok := d.t.(interface{ Reset(context.Context) error })
		if !ok {
			return withCode(ExitUnsupported, fmt.Errorf("%s: sedctl can power-cycle only sedsim drives; cut the power of a real one", d.spec), "")
		}
		if err := pc.Reset(e.ctx); err != nil {
			return fmt.Errorf("power-cycle %s: %w", d.spec, err)
		}
		return e.done(d, "reset power-cycle", nil, "power-cycled: sessions ended, ranges with LockOnReset locked, lockouts cleared")
	case e.opts.bool("tper"):
		if err := d.c.TPerReset(e.ctx); err != nil {
			if errors.Is(err, transport.ErrInvalidField) {
				err = withCode(ExitUnsupported, err, "")
			}
			return withHint(fmt.Errorf("TPer reset of %s: %w", d.spec, err), fmt.Sprintf("drives take a TPer reset only when TPerInfo's ProgrammaticResetEnable (column 8) is set, which SID may do: sedctl raw set admin sid TPerInfo 8=true %s", d.spec))
		}
		return e.done(d, "reset tper", nil, "TPer reset: every session ended")
	}
	if err := d.c.StackReset(e.ctx); err != nil {
		return fmt.Errorf("stack reset of %s: %w", d.spec, err)
	}
	return e.done(d, "reset stack", nil, "ComID reset (STACK_RESET): every session on it ended")
}
