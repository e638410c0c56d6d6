// Package session is the host side of the TCG Storage session layer (TCG
// Core Specification 2.01, sections 3.3 and 5.2) over a [Transport]: Level 0
// discovery, the Session Manager's Properties exchange, StartSession /
// SyncSession, method calls inside a session, EndOfSession, and ComID
// management on security protocol 2.
//
// A [Client] owns one drive's base ComID. It exchanges Properties once (the
// first time a session starts, or when [Client.Properties] is called) and
// falls back to the Core minimums when the drive answers badly. Every
// exchange is one IF-SEND followed by IF-RECV polling, with backoff, until
// the response arrives, growing the receive buffer when the drive asks for
// more (MinTransfer), all bounded by the context and [Options.Timeout].
// Exchanges on one Client are serialised, so sessions may be used from
// several goroutines; each [Session] is for one goroutine at a time.
//
//	c := session.NewClient(t, nil)
//	s, err := c.StartSession(ctx, session.Params{SP: method.LockingSP, Write: true,
//		Authority: method.Admin(1), Challenge: pin})
//	if err != nil { ... }            // no session: nothing to close
//	defer s.Close(ctx)               // EndOfSession, unless the drive ended it
//	err = s.Set(ctx, method.LockingRange(1), token.Named(7, token.Bool(false)))
//
// Method failures are [method.MethodStatus] errors wrapped with the method
// and the object, "Set Locking_Range1: NOT_AUTHORIZED (0x01)", so
// errors.Is(err, method.StatusNotAuthorized) works. Nothing here retries a
// failed authentication: every try counts toward the drive's TryLimit.
//
// The session knows which calls end it: a successful Revert of the session's
// own SP and RevertSP make the drive abort the session, and [Session.Close]
// then sends nothing (PROTOCOL.md 1.6, "Ending a session"). A StartSession
// that fails returns no Session, so there is nothing to end either.
//
// [Options.Trace] sees every IF-SEND and IF-RECV as it crosses the
// transport, credentials included; [TraceDecoder] renders them as decoded
// tokens with the PIN-bearing values redacted, for sedctl --trace.
package session
