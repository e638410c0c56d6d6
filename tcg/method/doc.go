// Package method is the TCG Storage method layer (TCG Core Specification
// 2.01, sections 3.2.4 and 5; Opal SSC 2.0x): typed UIDs for the objects,
// tables and methods an Opal host or TPer names, method calls and their
// results as token streams, the method status codes as errors, and the
// Session Manager methods (Properties, StartSession, SyncSession,
// CloseSession).
//
// Both sides are covered, so a host (sedctl) and a TPer emulator (sedsim)
// can share it:
//
//	host:  NewStartSession(...).Encode()  ->  ParseResult  ->  ParseSyncSession
//	TPer:  ParseCall  ->  ParseStartSession  ->  SyncSessionResult(...).Encode()
//
// A call travels as
//
//	Call <InvokingUID> <MethodUID> [ params ] EndOfData [ 0 0 0 ]
//
// and its result as "[ results ] EndOfData [ status 0 0 ]"; Session Manager
// results repeat the Call header (PROTOCOL.md 1.5). [ParseResult] is strict
// about the status list being last and tolerant where real drives differ: a
// missing Call header, a missing result list, trailing EndOfSession tokens.
//
// Status codes are [MethodStatus] values, usable with errors.Is:
//
//	if errors.Is(err, method.StatusNotAuthorized) { ... }
//
// Helpers that parse a call's parameters for a TPer (ParseStartSession,
// ParseGet, ...) return errors wrapping [StatusInvalidParameter], so an
// emulator can answer with that status.
//
// UIDs, method UIDs and status codes are those of shared/opal/PROTOCOL.md
// sections 1.5 to 1.10. The package is pure: no I/O, no logging, standard
// library only.
package method
