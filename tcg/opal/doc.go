// Package opal implements the TCG Opal SSC operations a host tool performs,
// on top of tcg/session: taking ownership, activating the Locking SP
// (Single User Mode included), locking ranges, users and their rights, media
// key generation (crypto-erase), the shadow MBR and DataStore byte tables,
// Revert and RevertSP, Random, and raw Get/Set/Next for anything else.
//
// Every operation opens the session(s) it needs on the given
// [session.Client] and ends them before it returns, so one Client serves any
// number of operations and exchanges Properties only once. Credentials are
// [hash.PIN]s, already derived by the caller (MSID and PSID as they are,
// passwords through tcg/hash); this package never logs or formats them. No
// operation retries a failed authentication: each wrong PIN counts toward
// the authority's TryLimit, and the drive locks the authority out when it is
// reached (until a power cycle).
//
// Ranges are numbered as the Linux kernel numbers them: 0 is the global
// range, n >= 1 is Locking_RangeN. Errors from the drive wrap
// [method.MethodStatus], so errors.Is(err, method.StatusNotAuthorized)
// works, and name the step that failed.
//
// # Exchanges
//
// An exchange is one IF-SEND and the IF-RECV(s) that fetch its answer.
// [Unlock] is the path for unlock-on-resume and costs, after Level 0
// discovery (one IF-RECV) and the Client's one-time Properties exchange:
// StartSession, one exchange per ComPacket of Set calls, EndOfSession. The
// Set calls (one per range, plus MBRControl Done when the shadow MBR is
// showing) share a ComPacket when the drive's MaxMethods allows it, so the
// whole unlock is 3 exchanges on such a drive; on a drive that takes one
// method per ComPacket (MaxMethods = 1, the Core minimum and what most
// drives report) it is 2 + calls + 1: 3 for one range without a shadow MBR,
// 4 with one.
package opal
