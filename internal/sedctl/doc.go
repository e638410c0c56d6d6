// Package sedctl is the sedctl command: it manages TCG Opal, Pyrite and
// Ruby self-encrypting drives, and sedsim's, through tcg/opal over the
// transport the device argument names (device.go has the one switch
// point). cmd/sedctl only sets up signals and calls Main.
//
// The command line follows sedutil-cli: the device comes last, sedutil's
// command names are accepted (case-insensitively) with its argument order,
// less the passwords (sedutil.go). Passwords come from the terminal, a file
// or a file descriptor, never argv or the environment (password.go). Every
// command prints an aligned table or, with --json, an object with stable
// snake_case fields; --trace decodes the traffic to stderr with PINs
// redacted.
//
// Exit codes (exit.go): 0 success; 1..63 the TCG method status the drive
// answered, as sedutil-cli exits (1 NOT_AUTHORIZED, 3 SP_BUSY,
// 12 INVALID_PARAMETER, 18 AUTHORITY_LOCKED_OUT); 64 usage; 65 bad input
// data; 66 unreadable input file or unsafe password file; 69 unsupported
// by the drive or this build; 70 internal; 74 I/O with the device; 76
// malformed answer from the drive; 77 refused for safety (owned drive,
// unconfirmed erase); 130 interrupted.
package sedctl
