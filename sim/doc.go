// Package sim is sedsim's drive: a software TPer (TCG Storage Core 2.01,
// Opal SSC 2.02 as shared/opal/PROTOCOL.md section 1 describes it) with
// encrypted media, built on the same codec packages as the host side
// (tcg/token, tcg/packet, tcg/method, tcg/discovery).
//
// A Drive lives in a directory: "state" holds the TPer's secure storage
// (PIN verifiers, media keys, tables, life cycles) as versioned JSON,
// replaced atomically after every committed change; "media" holds the user
// data, each locking range encrypted with its own XTS-AES-256 key
// (sim/media); "tables" holds the MBR and DataStore byte tables, encrypted
// the same way. Create makes a drive, Open powers one on (a power cycle,
// never a factory reset). The Drive serves sim/wire (opalwire) as a
// wire.Device and the host library in process through Transport.
//
// # What the drive does
//
//   - Security protocol 0x00 (the protocol list 00 01 02), 0x01 (Level 0
//     discovery with live Locking flags; ComPackets on the base ComID
//     0x1004) and 0x02 (GET_COMID, VERIFY_COMID_VALID, STACK_RESET, TPer
//     Reset on ComID 4 when TPerInfo.ProgrammaticResetEnable, Block SID
//     on ComID 5).
//   - ComPackets: padding beyond ComPacket.Length ignored; malformed ones,
//     ones over the limits (MaxComPacketSize, MaxPacketSize, one Packet,
//     one SubPacket) or for no open session discarded, so the host reads
//     an empty response. Responses wait in a FIFO (so hosts that
//     interleave send/receive pairs each get their own); IF-RECV with a
//     too-small allocation gets Length 0 with MinTransfer; Config's
//     NotReadyPolls makes the drive answer "not ready" first.
//   - Session Manager: Properties (real, enforced limits; the host's
//     MaxComPacketSize and MaxIndTokenSize bound the responses, overflow
//     gives RESPONSE_OVERFLOW), StartSession/SyncSession (non-zero TSNs,
//     read-only and anonymous sessions, HostChallenge checked against the
//     C_PIN with TryLimit/Tries and AUTHORITY_LOCKED_OUT until a power
//     cycle, SP_BUSY for a read-write session beside any other session to
//     the SP, NO_SESSIONS_AVAILABLE at MaxSessions, SessionTimeout),
//     EndOfSession echoed.
//   - Admin SP: C_PIN (MSID readable by Anybody, SID, Admin1, PSID),
//     Authority, SP (LifeCycleState), TPerInfo, ACE (read-only), Table;
//     Activate (with Single User Mode lists), Revert of the Admin SP (SID or
//     PSID: the whole TPer to its factory state, keys regenerated) or of the
//     Locking SP, Authenticate, Random, Get, Set, Next.
//   - Locking SP: Admin1..n, User1..n (Authority.Enabled), C_PIN,
//     LockingInfo, Locking ranges (alignment per PROTOCOL.md 1.14, overlap
//     and capacity checks, ReadLockEnabled/WriteLockEnabled/ReadLocked/
//     WriteLocked, LockOnReset, ActiveKey), K_AES_256 with GenKey
//     (crypto-erase), MBRControl, the MBR and DataStore byte tables, ACEs
//     whose BooleanExpr Admins may rewrite (to give users ranges),
//     RevertSP (KeepGlobalRangeKey), Erase of Single User Mode ranges.
//     Every method is checked against the ACEs of PROTOCOL.md 1.18; PINs
//     and keys are never readable, the MSID excepted.
//   - Media: Read and Write map each block to its range's key and lock
//     state; locked blocks fail with sim/wire's ErrAccessDenied; while MBR
//     Enable and not Done, LBA 0.. show the MBR table and refuse writes.
//   - Power cycle (PowerCycle, Reset, Open): sessions and responses
//     dropped, LockOnReset and DoneOnReset applied, Tries reset, Block SID
//     cleared.
//
// # Profiles
//
//   - opal2 (default): all of the above; Level 0 with TPer, Locking,
//     Geometry, Opal 2, Single User Mode, DataStore, Block SID and Data
//     Removal Mechanism (crypto erase).
//   - opal1: the Opal 1 descriptor and no Geometry, SUM, DataStore, Block
//     SID or Data Removal descriptors; no TPer Reset; LockOnReset takes
//     PowerCycle only; Activate takes no SUM parameters.
//   - ruby: the Ruby descriptor (laid out like Opal 2); no MBR shadowing
//     (MBRShadowingNotSupported, no MBRControl or MBR table) and no SUM.
//   - pyrite2: the Pyrite 2 descriptor; no media encryption (no K_AES
//     objects, GenKey refused, EncryptSupport 0, the media file holds
//     plaintext, as a Pyrite drive's flash does), only the global range, no
//     MBR shadowing; Revert and RevertSP erase the media by discarding it
//     (block erase; Data Removal Mechanism reports block erase).
//
// # Keys and secrets
//
// The state file plays the part of a drive's secure storage. PINs are kept
// only as HMAC-SHA256 verifiers (salted per drive), so the state file does
// not reveal them; the MSID is kept as it is, since Anybody may read it.
// Media keys are kept unwrapped in the state file (mode 0600): a real drive
// wraps each range's key with a key derived from the PINs allowed to unlock
// it, which sedsim does not do. The media file alone reveals nothing; the
// state and media files together do. The drive logs sessions and refusals
// through SetLogger, never a PIN or a key.
//
// # Not implemented
//
// Transactions (MaxTransactionLimit is 0), sequence numbers, ACK/NAK,
// asynchronous mode, dynamic ComIDs and more than one ComID; trusted
// sessions, certificates, HostExchangeAuthority; CloseSession sent by the
// TPer (an aborted session simply disappears); the Enterprise SSC; methods
// other than Get, Set, Next, Authenticate, Random, GenKey, Activate,
// Revert, RevertSP and Erase (GetACL, AddACE, RemoveACE, CreateRow,
// DeleteRow, CreateTable, Delete, DeleteSP, IssueSP, GetFreeSpace,
// GetFreeRows, GetPackage, SetPackage, Reactivate, clock, log and other
// crypto methods answer NOT_AUTHORIZED); the MethodID, AccessControl,
// SecretProtect, DataRemovalMechanism and K_AES_128 tables; more than one
// DataStore table; Locking columns 11..19 (re-encryption); Authority
// columns beyond 10; C_PIN Persistence and TryLimit are not settable;
// hardware and hot-plug resets (opalwire RESET is a power cycle); Locking
// SP Freeze Lock; Configurable Namespace Locking.
package sim
