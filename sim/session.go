package sim

import (
	"errors"
	"slices"
	"time"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// A session is an open session to an SP (Core 5.2).
type session struct {
	tsn, hsn uint32
	sp       method.UID // method.AdminSP or method.LockingSP
	write    bool
	auths    []method.UID // authenticated authorities, Anybody aside
	timeout  time.Duration
	idle     time.Time // last activity
}

// has reports whether authority a is authenticated in s, class authorities
// meaning any of their members (the "has" of method.EvalBooleanExpr).
func (s *session) has(a method.UID) bool {
	switch a {
	case method.Anybody:
		return true
	case method.Admins:
		for _, x := range s.auths {
			if isAdmin(s.sp, x) {
				return true
			}
		}
		return false
	case method.Users:
		for _, x := range s.auths {
			if _, ok := userNumber(x); ok && s.sp == method.LockingSP {
				return true
			}
		}
		return false
	}
	return slices.Contains(s.auths, a)
}

func isAdmin(sp, a method.UID) bool {
	if sp == method.AdminSP {
		return a == method.AdminSPAdmin(1)
	}
	_, ok := adminNumber(a)
	return ok
}

// adminNumber returns n for the Locking SP's Admin n authority.
func adminNumber(a method.UID) (int, bool) {
	hi, lo := a.Halves()
	if hi != 0x00000009 || lo <= 0x00010000 || lo > 0x00010000+maxAdmins {
		return 0, false
	}
	return int(lo - 0x00010000), true
}

// userNumber returns n for User n.
func userNumber(a method.UID) (int, bool) {
	hi, lo := a.Halves()
	if hi != 0x00000009 || lo <= 0x00030000 || lo > 0x00030000+maxUsers {
		return 0, false
	}
	return int(lo - 0x00030000), true
}

// authority resolves an authority of an SP to its state: nil for Anybody
// (no credential). ok is false for an authority the SP does not have or
// that cannot authenticate (a class).
func (d *Drive) authority(sp, a method.UID) (au *authState, cred *credential, ok bool) {
	st := d.st
	if a == method.Anybody {
		return nil, nil, true
	}
	if sp == method.AdminSP {
		switch a {
		case method.SID:
			return nil, &st.Admin.SID, true
		case method.PSID:
			return nil, &st.Admin.PSID, true
		case method.AdminSPAdmin(1):
			return &st.Admin.Admin1, &st.Admin.Admin1.PIN, true
		}
		return nil, nil, false
	}
	if n, ok := adminNumber(a); ok && n <= len(st.Locking.Admins) {
		au := &st.Locking.Admins[n-1]
		return au, &au.PIN, true
	}
	if n, ok := userNumber(a); ok && n <= len(st.Locking.Users) {
		au := &st.Locking.Users[n-1]
		return au, &au.PIN, true
	}
	return nil, nil, false
}

// authenticate checks proof for authority a of sp (StartSession,
// Authenticate): NOT_AUTHORIZED for a wrong PIN (counted toward TryLimit)
// or a disabled authority, AUTHORITY_LOCKED_OUT once Tries reached
// TryLimit (until a power cycle) or for SID while Block SID is in force.
func (d *Drive) authenticate(sp, a method.UID, proof []byte) error {
	au, cred, ok := d.authority(sp, a)
	if !ok {
		return method.StatusInvalidParameter
	}
	if cred == nil {
		return nil // Anybody
	}
	if au != nil && !au.Enabled {
		d.log.Info("authentication refused: authority disabled", "authority", a.String())
		return method.StatusNotAuthorized
	}
	if a == method.SID && d.sidBlocked {
		d.log.Info("authentication refused: SID blocked until the next power cycle (Block SID)")
		return method.StatusAuthorityLockedOut
	}
	if cred.TryLimit != 0 && cred.Tries >= cred.TryLimit {
		d.log.Info("authentication refused: locked out after too many wrong PINs", "authority", a.String(), "tries", cred.Tries)
		return method.StatusAuthorityLockedOut
	}
	if !d.st.pinMatches(cred, proof) {
		if cred.Tries < ^uint32(0) {
			cred.Tries++
			d.dirty = true
		}
		d.log.Info("authentication failed: wrong PIN", "authority", a.String(), "tries", cred.Tries, "try_limit", cred.TryLimit)
		return method.StatusNotAuthorized
	}
	if cred.Tries != 0 {
		cred.Tries = 0
		d.dirty = true
	}
	return nil
}

// startSession answers StartSession with SyncSession (PROTOCOL.md 1.6).
func (d *Drive) startSession(c method.Call) method.Result {
	p, err := method.ParseStartSession(c)
	if err != nil {
		d.log.Info("StartSession refused: malformed parameters", "err", loggable(&c, err))
		return method.FailedSessionResult(method.StatusInvalidParameter)
	}
	tsn, st := d.openSession(p)
	if err := d.commit(); err != nil { // Tries changed
		d.log.Error("saving the drive state", "err", err)
		delete(d.sessions, tsn)
		tsn, st = 0, method.StatusTPerMalfunction
	}
	if tsn == 0 {
		return method.FailedSessionResult(st)
	}
	return method.SyncSessionResult(p.HostSessionID, tsn)
}

// methodStatus returns the method status err wraps, or TPER_MALFUNCTION
// and false for an error that is not a method status (a drive failure).
func methodStatus(err error) (method.MethodStatus, bool) {
	var st method.MethodStatus
	if errors.As(err, &st) {
		return st, true
	}
	return method.StatusTPerMalfunction, false
}

// openSession opens the session StartSession asks for and returns its TSN,
// or 0 and the status of the refusal.
func (d *Drive) openSession(p method.StartSessionParams) (uint32, method.MethodStatus) {
	fail := func(st method.MethodStatus, why string) (uint32, method.MethodStatus) {
		d.log.Info("StartSession refused", "sp", p.SPID.String(), "authority", p.HostSigningAuthority.String(), "write", p.Write, "status", st.Error(), "why", why)
		return 0, st
	}
	switch p.SPID {
	case method.AdminSP:
	case method.LockingSP:
		if !d.st.active() {
			return fail(method.StatusInvalidParameter, "the Locking SP is not activated (Manufactured-Inactive)")
		}
	default:
		return fail(method.StatusInvalidParameter, "no such SP")
	}
	if !p.HostExchangeAuthority.IsZero() {
		return fail(method.StatusInvalidParameter, "HostExchangeAuthority not supported")
	}
	auth := p.HostSigningAuthority
	if auth.IsZero() {
		auth = method.Anybody
	}
	if _, _, ok := d.authority(p.SPID, auth); !ok {
		return fail(method.StatusInvalidParameter, "no such authority in the SP")
	}
	cfg := &d.st.Config
	timeout := time.Duration(cfg.DefSessionTimeout) * time.Millisecond
	if p.SessionTimeout != 0 {
		if p.SessionTimeout < cfg.MinSessionTimeout || p.SessionTimeout > cfg.MaxSessionTimeout {
			return fail(method.StatusInvalidParameter, "SessionTimeout out of range")
		}
		timeout = time.Duration(p.SessionTimeout) * time.Millisecond
	}
	reads := 0
	for _, s := range d.sessions {
		if !s.write {
			reads++
		}
		if s.sp == p.SPID && (s.write || p.Write) {
			return fail(method.StatusSPBusy, "the SP has a conflicting session (one read-write session excludes every other)")
		}
	}
	if len(d.sessions) >= cfg.MaxSessions || !p.Write && reads >= cfg.MaxReadSessions {
		return fail(method.StatusNoSessionsAvailable, "MaxSessions reached")
	}
	if err := d.authenticate(p.SPID, auth, p.HostChallenge); err != nil {
		st, _ := methodStatus(err)
		return fail(st, "authentication")
	}
	tsn := d.nextTSN
	for {
		tsn++
		if _, used := d.sessions[tsn]; tsn != 0 && !used {
			break
		}
	}
	d.nextTSN = tsn
	s := &session{tsn: tsn, hsn: p.HostSessionID, sp: p.SPID, write: p.Write, timeout: timeout, idle: d.now()}
	if auth != method.Anybody {
		s.auths = []method.UID{auth}
	}
	d.sessions[tsn] = s
	d.log.Info("session started", "tsn", tsn, "hsn", p.HostSessionID, "sp", p.SPID.String(), "authority", auth.String(), "write", p.Write)
	return tsn, method.StatusSuccess
}

// expireSessions ends the sessions idle longer than their timeout.
func (d *Drive) expireSessions() {
	now := d.now()
	for tsn, s := range d.sessions {
		if s.timeout > 0 && now.Sub(s.idle) > s.timeout {
			delete(d.sessions, tsn)
			d.log.Info("session timed out", "tsn", tsn, "sp", s.sp.String())
		}
	}
}

// endSessions ends every session to sp (a revert of the SP).
func (d *Drive) endSessions(sp method.UID) {
	for tsn, s := range d.sessions {
		if s.sp == sp {
			delete(d.sessions, tsn)
		}
	}
}

// sessionPacket handles the payload of a Packet in session s.
func (d *Drive) sessionPacket(s *session, payload []byte) {
	s.idle = d.now()
	c, err := method.ParseCall(payload)
	if errors.Is(err, method.ErrEndOfSession) {
		delete(d.sessions, s.tsn)
		d.log.Info("session ended", "tsn", s.tsn)
		d.queue(s.tsn, s.hsn, method.EndSession())
		return
	}
	if err != nil {
		d.log.Info("malformed method call", "tsn", s.tsn, "err", loggable(nil, err))
		d.respond(s.tsn, s.hsn, method.Result{Status: method.StatusInvalidParameter})
		return
	}
	if m := maxAtom(c.Args); m > int(d.st.Config.MaxIndTokenSize) {
		d.log.Info("method call with a token over MaxIndTokenSize", "tsn", s.tsn, "call", c.String(), "size", m)
		d.respond(s.tsn, s.hsn, method.Result{Status: method.StatusInvalidParameter})
		return
	}
	x := &invocation{s: s, c: c}
	vals, err := d.invoke(x)
	if err == nil {
		if cerr := d.commit(); cerr != nil {
			d.log.Error("saving the drive state failed; the change is undone", "call", c.String(), "err", cerr)
			err = method.StatusTPerMalfunction
			x.abort = false
		}
	} else if d.dirty {
		// A failed method changes nothing. (Handlers check everything
		// before they change the state; this is a safety net.)
		d.rollback()
	}
	r := method.Result{Values: vals}
	if err != nil {
		st, known := methodStatus(err)
		if !known {
			d.log.Error("method failed", "call", c.String(), "err", loggable(&c, err))
		} else {
			d.log.Debug("method refused", "call", c.String(), "status", st.Error(), "err", loggable(&c, err))
		}
		r = method.Result{Status: st}
	}
	d.respond(s.tsn, s.hsn, r)
	if x.abort {
		// Revert or RevertSP of the session's own SP: the TPer aborts the
		// session after answering; the host sends no EndOfSession.
		delete(d.sessions, s.tsn)
		d.log.Info("session aborted by the drive after a revert", "tsn", s.tsn)
	}
}

// loggable returns err's text for the log, unless it may quote a
// credential: errors about a call that can carry one (StartSession,
// Authenticate, Activate, Set of a C_PIN), or about a call that did not
// parse, may include a piece of the value at fault.
func loggable(c *method.Call, err error) string {
	var de *token.DecodeError
	switch {
	case c == nil && errors.As(err, &de):
		return err.Error() // offsets and header bytes only
	case c == nil:
		return "malformed call (details withheld: it may carry a credential)"
	case c.Method == method.StartSession, c.Method == method.Authenticate, c.Method == method.Activate,
		c.Method == method.Set && c.Invoking.Table() == method.CPINTable:
		if st, ok := methodStatus(err); ok {
			return st.Error() + " (details withheld: the call carries a credential)"
		}
		return "details withheld: the call carries a credential"
	}
	return err.Error()
}
