package resume

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/tcg/hash"
)

// Key storage: where the derived PIN lives between boots.
const (
	// StoragePrompt keeps nothing: the password is asked at each boot
	// (sedctl resume enable), and a restarted daemon cannot re-arm.
	StoragePrompt = "prompt"
	// StorageFile keeps the derived PIN, in hex, in a root-only file.
	StorageFile = "file"
	// StorageCredential keeps the derived PIN in a systemd encrypted
	// credential (systemd-creds encrypt; ImportCredential= in the units).
	StorageCredential = "credential"
)

const maxSecretFile = 64 << 10

// ReadKeyFile reads a derived PIN, in hex, from a key file that must be a
// regular file owned by uid owner and readable by nobody else (mode 0600 or
// 0400). It is opened without following symlinks and checked through the
// open descriptor.
func ReadKeyFile(path string, owner uint32) (hash.PIN, error) {
	// O_NONBLOCK: a FIFO put in its place must not hang the daemon at
	// start (checkPrivate then refuses it).
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("key file %s is a symbolic link; give the file itself", path)
		}
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	if err := checkPrivate(f, path, "key file", owner); err != nil {
		return nil, err
	}
	b, err := readAllBounded(f, path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return parseHexKey(b, path)
}

// checkPrivate refuses a file that is not regular, not owned by owner, or
// open to group or others.
func checkPrivate(f *os.File, path, what string, owner uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("%s %s: %w", what, path, os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if st.Uid != owner {
		return fmt.Errorf("%s %s belongs to uid %d; it must belong to uid %d (root): chown 0:0 %s", what, path, st.Uid, owner, path)
	}
	if m := st.Mode & 0o777; m&0o077 != 0 {
		return fmt.Errorf("%s %s has mode %04o: it must be readable by its owner only: chmod 0400 %s", what, path, m, path)
	}
	return nil
}

// regularFile refuses anything but a regular file (a FIFO, a device).
func regularFile(f *os.File, what string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", what)
	}
	return nil
}

func readAllBounded(f *os.File, path string) ([]byte, error) {
	b := make([]byte, 0, 1024)
	buf := make([]byte, 1024)
	defer clear(buf)
	for {
		n, err := f.Read(buf)
		if len(b)+n > maxSecretFile {
			clear(b)
			return nil, fmt.Errorf("%s is over %d bytes", path, maxSecretFile)
		}
		if n > 0 {
			if len(b)+n > cap(b) {
				nb := make([]byte, len(b), 2*(len(b)+n))
				copy(nb, b)
				clear(b)
				b = nb
			}
			b = append(b, buf[:n]...)
		}
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			clear(b)
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// parseHexKey decodes a hex key, surrounding whitespace ignored.
func parseHexKey(b []byte, path string) (hash.PIN, error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || len(t)%2 != 0 {
		return nil, fmt.Errorf("%s does not hold a key in hex", path)
	}
	pin := make(hash.PIN, len(t)/2)
	if _, err := hex.Decode(pin, t); err != nil {
		pin.Wipe()
		return nil, fmt.Errorf("%s does not hold a key in hex", path)
	}
	if len(pin) > slotSize {
		pin.Wipe()
		return nil, fmt.Errorf("%s holds a key of %d bytes, at most %d", path, len(pin), slotSize)
	}
	return pin, nil
}

// WriteKeyFile stores pin, in hex, in path: a new file of mode 0400 written
// beside it and renamed over it, in a directory created mode 0700.
func WriteKeyFile(path string, pin hash.PIN) error {
	dir := dirOf(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o400); err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	b := make([]byte, hex.EncodedLen(len(pin))+1)
	hex.Encode(b, pin)
	b[len(b)-1] = '\n'
	_, err = tmp.Write(b)
	clear(b)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	return nil
}

// validCredentialName accepts a systemd credential name: a plain file name.
func validCredentialName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("credential name %q: want a plain file name", name)
	}
	return nil
}

// readCredentialFile reads credential name from dir ($CREDENTIALS_DIRECTORY),
// never outside it.
func readCredentialFile(dir, name string) ([]byte, error) {
	if err := validCredentialName(name); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, fmt.Errorf("credential %s: $CREDENTIALS_DIRECTORY is not set (run from a unit with LoadCredentialEncrypted= or ImportCredential=)", name)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", name, err)
	}
	defer root.Close()
	f, err := root.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", name, err)
	}
	defer f.Close()
	if err := regularFile(f, "credential "+name); err != nil {
		return nil, err
	}
	return readAllBounded(f, dir+"/"+name)
}

// ReadCredentialKey reads a derived PIN, in hex, from systemd credential
// name in dir.
func ReadCredentialKey(dir, name string) (hash.PIN, error) {
	b, err := readCredentialFile(dir, name)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return parseHexKey(b, "credential "+name)
}

// firstLine cuts b at its first "\n" (or "\r\n"), in place.
func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		clear(b[i:])
		b = b[:i]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b[n-1] = 0
		b = b[:n-1]
	}
	return b
}

// PasswordSource says where Enable gets the password from. Exactly one
// field is set.
type PasswordSource struct {
	// Prompt asks for the password (no echo); the CLI's prompt.
	Prompt func() ([]byte, error)
	// File is a --password-file: the first line, without its newline.
	// It must not be open to group or others.
	File string
	// Credential names a systemd credential in $CREDENTIALS_DIRECTORY
	// holding the password (its first line).
	Credential string
	// CredentialsDir overrides $CREDENTIALS_DIRECTORY.
	CredentialsDir string
	// FileOwner is the uid a password file must belong to; -1 (the
	// default from the CLI) accepts any owner. Tests set their own uid.
	FileOwner int64
}

// read returns the password; the caller wipes it.
func (s PasswordSource) read() ([]byte, error) {
	n := 0
	for _, set := range []bool{s.Prompt != nil, s.File != "", s.Credential != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("give exactly one password source: the prompt, a password file or a credential")
	}
	switch {
	case s.Prompt != nil:
		return s.Prompt()
	case s.File != "":
		f, err := os.OpenFile(s.File, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		defer f.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			if st.Mode&0o077 != 0 {
				return nil, fmt.Errorf("password file %s has mode %04o: it must not be open to group or others: chmod 0600 %s", s.File, st.Mode&0o777, s.File)
			}
			if s.FileOwner >= 0 && int64(st.Uid) != s.FileOwner {
				return nil, fmt.Errorf("password file %s belongs to uid %d, not %d", s.File, st.Uid, s.FileOwner)
			}
		}
		b, err := readAllBounded(f, s.File)
		if err != nil {
			return nil, err
		}
		return firstLine(b), nil
	default:
		dir := s.CredentialsDir
		if dir == "" {
			dir = os.Getenv("CREDENTIALS_DIRECTORY")
		}
		b, err := readCredentialFile(dir, s.Credential)
		if err != nil {
			return nil, err
		}
		return firstLine(b), nil
	}
}
