package sedctl

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/token"
	"github.com/shiftlock/shiftlock/tcg/transport"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

// Exit codes.
//
// sedctl keeps sedutil-cli's convention that a failed TCG method exits with
// the drive's status code, so scripts written for sedutil keep their checks,
// and puts its own failures above the highest TCG status (0x3F), at the
// sysexits.h values, so the two ranges never meet:
//
//	0        success
//	1..63    the drive refused: the TCG method status, as sedutil-cli exits
//	         (1 NOT_AUTHORIZED, 3 SP_BUSY, 12 INVALID_PARAMETER,
//	         18 AUTHORITY_LOCKED_OUT, 63 FAIL, ...)
//	64       usage: unknown command or option, wrong arguments, no password
//	         source (stdin is not a terminal), a password on the command line
//	65       bad input data, refused before anything was sent: new passwords
//	         that do not match, an image larger than the table, a bad hex PIN
//	66       an input file cannot be read, or a password file is readable by
//	         group or others
//	69       unsupported: not a self-encrypting drive, or the drive's profile
//	         lacks the feature (ranges on Pyrite, the shadow MBR on Ruby),
//	         or the transport is not available
//	70       internal error
//	74       I/O error talking to the device (open, IF-SEND/IF-RECV, socket)
//	76       the drive answered something malformed or unexpected
//	77       refused for safety: the drive is already owned or set up, a
//	         destructive command was not confirmed
//	130      interrupted (SIGINT/SIGTERM)
const (
	ExitOK          = 0
	ExitUsage       = 64
	ExitData        = 65
	ExitNoInput     = 66
	ExitUnsupported = 69
	ExitSoftware    = 70
	ExitIO          = 74
	ExitProtocol    = 76
	ExitRefused     = 77
	ExitInterrupted = 130
)

// codeError gives err an exit code and, optionally, advice for people.
type codeError struct {
	code int
	err  error
	hint string
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

func withCode(code int, err error, hint string) error {
	return &codeError{code: code, err: err, hint: hint}
}

// hinted adds advice to an error without changing its exit code.
type hinted struct {
	err  error
	hint string
}

func (e *hinted) Error() string { return e.err.Error() }
func (e *hinted) Unwrap() error { return e.err }

func withHint(err error, hint string) error {
	if err == nil || hint == "" {
		return err
	}
	return &hinted{err: err, hint: hint}
}

// usageError is a command line sedctl does not accept.
func usageError(err error) error { return withCode(ExitUsage, err, "") }

// ExitCode returns the process exit code for err (see the table above).
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	if errors.Is(err, opal.ErrNoRanges) || errors.Is(err, session.ErrNoSSC) || errors.Is(err, transport.ErrNotSupported) {
		return ExitUnsupported
	}
	if errors.Is(err, opal.ErrOwned) || errors.Is(err, opal.ErrActive) || errors.Is(err, opal.ErrSIDBlocked) {
		// A method status, if there is one, says more (sedutil exits
		// with it); the refusal otherwise.
		var st method.MethodStatus
		if errors.As(err, &st) && st != method.StatusSuccess {
			return int(st)
		}
		return ExitRefused
	}
	var st method.MethodStatus
	if errors.As(err, &st) && st != method.StatusSuccess && st <= 0x3F {
		return int(st)
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	if errors.Is(err, session.ErrMalformed) || errors.Is(err, opal.ErrUnexpected) || errors.Is(err, opal.ErrNotReadable) ||
		errors.Is(err, method.ErrMalformed) || errors.Is(err, opalwire.ErrProtocol) || errors.Is(err, discovery.ErrTruncated) ||
		errors.Is(err, session.ErrNoResponse) || errors.Is(err, session.ErrTooLarge) || errors.Is(err, session.ErrSessionEnded) {
		return ExitProtocol
	}
	var de *token.DecodeError
	var pe *discovery.ParseError
	if errors.As(err, &de) || errors.As(err, &pe) {
		return ExitProtocol
	}
	var ne net.Error
	var pathErr *os.PathError
	var errno syscall.Errno
	var ws opalwire.Status
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transport.ErrClosed) || errors.Is(err, transport.ErrInvalidField) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne) || errors.As(err, &pathErr) || errors.As(err, &errno) || errors.As(err, &ws) {
		return ExitIO
	}
	return ExitSoftware
}

// hints returns the advice attached anywhere in err's chain, outermost
// first, then the method status's own hint.
func hints(err error) []string {
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	var walk func(error)
	walk = func(e error) {
		for e != nil {
			switch x := e.(type) {
			case *codeError:
				add(x.hint)
			case *hinted:
				add(x.hint)
			case *triesError:
				add(x.hint)
			}
			if m, ok := e.(interface{ Unwrap() []error }); ok {
				for _, c := range m.Unwrap() {
					walk(c)
				}
				return
			}
			e = errors.Unwrap(e)
		}
	}
	walk(err)
	var st method.MethodStatus
	if errors.As(err, &st) {
		switch st {
		case method.StatusNotAuthorized, method.StatusAuthorityLockedOut, method.StatusSPBusy:
			// explained by authError / busy hints where sedctl knows more
			if len(out) == 0 {
				add(st.Hint())
			}
		default:
			add(st.Hint())
		}
	}
	return out
}
