package method

import "fmt"

// MethodStatus is the status code that ends every method result (Core
// 5.1.5, PROTOCOL.md 1.10). Every value but StatusSuccess is an error:
//
//	errors.Is(err, method.StatusNotAuthorized)
//
// works through any amount of %w wrapping, and errors.As recovers the code.
type MethodStatus uint8

// Method status codes. The obsolete codes 0x02, 0x0B, 0x0D and 0x0E are
// kept so that they print by name.
const (
	StatusSuccess             MethodStatus = 0x00
	StatusNotAuthorized       MethodStatus = 0x01 // wrong PIN, or the authority lacks the ACL right
	StatusObsolete02          MethodStatus = 0x02
	StatusSPBusy              MethodStatus = 0x03 // the SP already has a conflicting session
	StatusSPFailed            MethodStatus = 0x04
	StatusSPDisabled          MethodStatus = 0x05
	StatusSPFrozen            MethodStatus = 0x06
	StatusNoSessionsAvailable MethodStatus = 0x07
	StatusUniquenessConflict  MethodStatus = 0x08
	StatusInsufficientSpace   MethodStatus = 0x09
	StatusInsufficientRows    MethodStatus = 0x0A
	StatusInvalidFunction     MethodStatus = 0x0B // obsolete
	StatusInvalidParameter    MethodStatus = 0x0C
	StatusInvalidReference    MethodStatus = 0x0D // obsolete
	StatusObsolete0E          MethodStatus = 0x0E
	StatusTPerMalfunction     MethodStatus = 0x0F
	StatusTransactionFailure  MethodStatus = 0x10
	StatusResponseOverflow    MethodStatus = 0x11
	StatusAuthorityLockedOut  MethodStatus = 0x12 // Tries reached TryLimit
	StatusFail                MethodStatus = 0x3F
)

var statusNames = map[MethodStatus]string{
	StatusSuccess:             "SUCCESS",
	StatusNotAuthorized:       "NOT_AUTHORIZED",
	StatusObsolete02:          "OBSOLETE",
	StatusSPBusy:              "SP_BUSY",
	StatusSPFailed:            "SP_FAILED",
	StatusSPDisabled:          "SP_DISABLED",
	StatusSPFrozen:            "SP_FROZEN",
	StatusNoSessionsAvailable: "NO_SESSIONS_AVAILABLE",
	StatusUniquenessConflict:  "UNIQUENESS_CONFLICT",
	StatusInsufficientSpace:   "INSUFFICIENT_SPACE",
	StatusInsufficientRows:    "INSUFFICIENT_ROWS",
	StatusInvalidFunction:     "INVALID_FUNCTION",
	StatusInvalidParameter:    "INVALID_PARAMETER",
	StatusInvalidReference:    "INVALID_REFERENCE",
	StatusObsolete0E:          "OBSOLETE",
	StatusTPerMalfunction:     "TPER_MALFUNCTION",
	StatusTransactionFailure:  "TRANSACTION_FAILURE",
	StatusResponseOverflow:    "RESPONSE_OVERFLOW",
	StatusAuthorityLockedOut:  "AUTHORITY_LOCKED_OUT",
	StatusFail:                "FAIL",
}

// Name returns the code's name as the Core specification and sedutil print
// it ("NOT_AUTHORIZED"), or "UNKNOWN" for a code without one.
func (s MethodStatus) Name() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "UNKNOWN"
}

// Error returns the name and the code, "NOT_AUTHORIZED (0x01)".
func (s MethodStatus) Error() string {
	return fmt.Sprintf("%s (0x%02X)", s.Name(), uint8(s))
}

// Is reports whether target is the same status code, so a MethodStatus
// matches itself through errors.Is however it was wrapped.
func (s MethodStatus) Is(target error) bool {
	t, ok := target.(MethodStatus)
	return ok && t == s
}

// Err returns s as an error, or nil for StatusSuccess.
func (s MethodStatus) Err() error {
	if s == StatusSuccess {
		return nil
	}
	return s
}

// Hint returns advice for a person who got this status from a drive, or ""
// where there is nothing useful to add (PROTOCOL.md 1.6, 1.13, 1.17).
func (s MethodStatus) Hint() string {
	switch s {
	case StatusNotAuthorized:
		return "the password is wrong, or this authority may not do this; each wrong password counts toward the drive's try limit"
	case StatusSPBusy:
		return "another session holds the SP open for writing; wait for it to end, or reset the ComID (stack reset) if its host crashed"
	case StatusNoSessionsAvailable:
		return "the drive has no free session slots; end other sessions, or reset the ComID (stack reset)"
	case StatusAuthorityLockedOut:
		return "too many wrong passwords: the authority is locked out until the drive is power-cycled"
	case StatusSPFrozen:
		return "the SP is frozen; a power cycle or hardware reset lifts it"
	case StatusInvalidParameter:
		return "the drive rejected a parameter (a wrong SP, authority, range or value)"
	}
	return ""
}
