package sedctl

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/shiftlock/shiftlock/tcg/hash"
)

// Passwords come from one of three places, never from argv or the
// environment (DESIGN.md, "Passwords, keys, secrets"):
//
//   - a no-echo prompt on the terminal that is stdin (asked twice for a
//     new password);
//   - --password-file FILE: the first line, without its "\n" or "\r\n".
//     FILE must not be readable or writable by group or others (chmod
//     600), as ssh insists for private keys; pipes such as bash's
//     <(command) are fine;
//   - --password-fd N: the first line read from file descriptor N, which
//     sedctl leaves open. When the current and the new password come from
//     the same descriptor, they are its first two lines.
//
// Buffers holding a password are wiped once the PIN is derived; the PIN is
// wiped after use.

const (
	maxPasswordFile = 64 << 10 // bytes read from a --password-file
	maxPasswordLine = 4096     // bytes read from a --password-fd line
)

// secretSource says where one password comes from.
type secretSource struct {
	file string
	fd   int // -1: none
}

func (e *env) currentSource() (secretSource, error) {
	return e.source("password-file", "password-fd")
}

func (e *env) newSource() (secretSource, error) {
	return e.source("new-password-file", "new-password-fd")
}

func (e *env) source(fileOpt, fdOpt string) (secretSource, error) {
	s := secretSource{fd: -1}
	if e.opts.has(fileOpt) && e.opts.has(fdOpt) {
		return s, usageError(fmt.Errorf("give --%s or --%s, not both", fileOpt, fdOpt))
	}
	s.file = e.opts.get(fileOpt)
	if e.opts.has(fdOpt) {
		fd, err := parseFD("--"+fdOpt, e.opts.get(fdOpt))
		if err != nil {
			return s, err
		}
		s.fd = fd
	}
	return s, nil
}

// readSecret returns a password from src, or from the prompt when src names
// none; confirm asks twice at the prompt. The caller wipes the result.
func (e *env) readSecret(src secretSource, prompt string, confirm bool) ([]byte, error) {
	switch {
	case src.file != "":
		return readPasswordFile(src.file)
	case src.fd >= 0:
		return e.readFDLine(src.fd)
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, usageError(fmt.Errorf("%s needed, but stdin is not a terminal, so sedctl cannot prompt for it: "+
			"use --password-file FILE or --password-fd N (passwords are never taken from the command line or the environment)", prompt))
	}
	pw, err := e.prompt(f, prompt+": ")
	if err != nil {
		return nil, err
	}
	if !confirm {
		return pw, nil
	}
	again, err := e.prompt(f, "Repeat "+lowerFirst(prompt)+": ")
	if err != nil {
		clear(pw)
		return nil, err
	}
	defer clear(again)
	if subtle.ConstantTimeCompare(pw, again) != 1 {
		clear(pw)
		return nil, withCode(ExitData, errors.New("the two passwords differ; nothing was changed"), "")
	}
	return pw, nil
}

func lowerFirst(s string) string {
	if s != "" && s[0] >= 'A' && s[0] <= 'Z' {
		return string(s[0]+'a'-'A') + s[1:]
	}
	return s
}

func (e *env) prompt(f *os.File, prompt string) ([]byte, error) {
	fmt.Fprint(e.stderr, prompt)
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, withCode(ExitNoInput, fmt.Errorf("read password from the terminal: %w", err), "")
	}
	return pw, nil
}

// readPasswordFile returns the first line of path.
func readPasswordFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, withCode(ExitNoInput, fmt.Errorf("password file: %w", err), "")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, withCode(ExitNoInput, fmt.Errorf("password file: %w", err), "")
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && fi.Mode().IsRegular() {
		return nil, withCode(ExitNoInput, fmt.Errorf("password file %s is accessible by group or others (mode %04o)", path, perm),
			fmt.Sprintf("restrict it to its owner: chmod 600 %s", path))
	}
	buf := make([]byte, maxPasswordFile+1)
	n, err := io.ReadFull(f, buf)
	defer clear(buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, withCode(ExitNoInput, fmt.Errorf("password file %s: %w", path, err), "")
	}
	if n > maxPasswordFile {
		return nil, withCode(ExitData, fmt.Errorf("password file %s is over %d bytes: not a password file", path, maxPasswordFile), "")
	}
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	return bytes.Clone(line), nil
}

// readFDLine reads one line from file descriptor fd, a byte at a time so
// that nothing beyond the line is consumed (the next line may be the next
// password) and no buffer outside this function holds the password.
func (e *env) readFDLine(fd int) ([]byte, error) {
	f, ok := e.fds[fd]
	if !ok {
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, withCode(ExitNoInput, fmt.Errorf("--password-fd %d: %w", fd, os.NewSyscallError("fcntl", err)),
				"the descriptor must be open for reading when sedctl starts, e.g. 3< file or 3<<< \"$pw\"")
		}
		f = os.NewFile(uintptr(nfd), fmt.Sprintf("fd %d", fd))
		e.fds[fd] = f
		e.closers = append(e.closers, func() { f.Close() })
	}
	line := make([]byte, 0, 64)
	var b [1]byte
	for {
		n, err := f.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) >= maxPasswordLine {
				clear(line)
				return nil, withCode(ExitData, fmt.Errorf("password from fd %d is over %d bytes", fd, maxPasswordLine), "")
			}
			if len(line) == cap(line) {
				grown := make([]byte, len(line), 2*cap(line))
				copy(grown, line)
				clear(line)
				line = grown
			}
			line = append(line, b[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return nil, withCode(ExitNoInput, fmt.Errorf("password fd %d: nothing (more) to read", fd),
					"an empty password is an empty line; two passwords from one descriptor are its first two lines")
			}
			break
		}
		if err != nil {
			clear(line)
			return nil, withCode(ExitNoInput, fmt.Errorf("read password from fd %d: %w", fd, err), "")
		}
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}

// derive turns a password into the PIN for d with the --hash scheme,
// wiping the password.
func (e *env) derive(d *device, password []byte) (hash.PIN, error) {
	defer clear(password)
	var serial []byte
	if e.scheme.UsesSerial() {
		id, err := d.identity(e.ctx)
		if err != nil {
			return nil, err
		}
		serial = id.Serial[:]
	}
	pin, err := e.scheme.Derive(password, serial)
	if err != nil {
		return nil, withCode(ExitData, fmt.Errorf("hash the password with %s: %w", e.scheme.Name(), err), "")
	}
	return pin, nil
}

// password reads the password of who and derives its PIN.
func (e *env) password(d *device, who string) (hash.PIN, error) {
	src, err := e.currentSource()
	if err != nil {
		return nil, err
	}
	pw, err := e.readSecret(src, who+" password", false)
	if err != nil {
		return nil, err
	}
	return e.derive(d, pw)
}

// newPassword reads a new password for who (twice at the prompt) and
// derives its PIN. An empty new password is refused.
func (e *env) newPassword(d *device, who string, src secretSource) (hash.PIN, error) {
	pw, err := e.readSecret(src, "New "+who+" password", true)
	if err != nil {
		return nil, err
	}
	if len(pw) == 0 {
		return nil, withCode(ExitData, fmt.Errorf("the new %s password is empty; refusing to set an empty password", who), "")
	}
	return e.derive(d, pw)
}

// rawSecret reads a credential that is never hashed (the PSID).
func (e *env) rawSecret(what string) (hash.PIN, error) {
	src, err := e.currentSource()
	if err != nil {
		return nil, err
	}
	pw, err := e.readSecret(src, what, false)
	if err != nil {
		return nil, err
	}
	return hash.PIN(pw), nil
}
