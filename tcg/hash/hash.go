// Package hash turns passwords into the PINs a TCG Storage drive checks,
// compatibly with the tools that set those PINs: sedutil-cli and its forks
// derive the PIN with PBKDF2 salted with the drive's serial number; the
// Linux kernel, cryptsetup and nvme-cli send the password bytes as they are.
//
// A Scheme names one derivation; Lookup finds a scheme by the name sedctl's
// --hash option takes. Derivations take the password as []byte so that the
// caller can wipe it, and return a PIN, which redacts itself when printed.
// The MSID and PSID are never hashed by any tool: send them as they are.
//
// The package is pure: no I/O, no logging.
package hash

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha512"
	"errors"
	"fmt"
	stdhash "hash"
	"strings"
)

const (
	// SerialLen is the length of the serial number field that salts the
	// sedutil derivations: ATA IDENTIFY DEVICE words 10-19 (byte swapped
	// into ASCII order), NVMe Identify Controller bytes 4-23.
	SerialLen = 20
	// KeyLen is the length of a PIN sedutil derives.
	KeyLen = 32
	// MaxPasswordLen is the longest password the sedutil schemes take.
	// sedutil builds differ beyond it (most hash strnlen(password, 256)
	// bytes, DTA master since 2017 all of them), so longer ones are
	// refused rather than hashed one way.
	MaxPasswordLen = 256
	// RawPINLen is how many password bytes sedutil -n sends.
	RawPINLen = 32
)

// Errors the derivations wrap. Their messages never include the password.
var (
	// ErrSerial: the serial number is not the raw 20-byte field.
	ErrSerial = errors.New("the drive serial number must be the raw 20-byte field, untrimmed")
	// ErrPassword: the password is one sedutil cannot take, so no
	// sedutil-compatible PIN exists for it.
	ErrPassword = errors.New("password not usable with this hash scheme")
	// ErrHex: the password is not a hex string.
	ErrHex = errors.New("PIN is not a hex string")
)

// A Scheme is a named password-to-PIN derivation. The schemes are the
// values Schemes returns; there is no way to make others.
type Scheme struct {
	name        string
	aliases     []string
	description string
	usesSerial  bool
	derive      func(password, serial []byte) (PIN, error)
}

// Name returns the scheme's name, the one sedctl's --hash option shows.
func (s *Scheme) Name() string { return s.name }

// String returns Name.
func (s *Scheme) String() string { return s.name }

// Aliases returns other names Lookup accepts for the scheme.
func (s *Scheme) Aliases() []string { return append([]string(nil), s.aliases...) }

// Description says, in a line, what the scheme does and which tools use it.
func (s *Scheme) Description() string { return s.description }

// UsesSerial reports whether Derive needs the drive's serial number.
func (s *Scheme) UsesSerial() bool { return s.usesSerial }

// Derive returns the PIN for password. serial is the drive's serial number
// field exactly as the drive reports it (SerialLen bytes, padding kept);
// schemes that do not use it ignore it. Derive keeps no reference to
// password or serial and does not change them: wipe the password when done.
// (The PBKDF2 schemes pass the password through the standard library, whose
// internal copies are left to the garbage collector.)
//
// The sedutil schemes map an empty password to an empty PIN, as sedutil
// does, and refuse a password with a NUL byte or longer than
// MaxPasswordLen, since sedutil would hash something else.
func (s *Scheme) Derive(password, serial []byte) (PIN, error) {
	pin, err := s.derive(password, serial)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	return pin, nil
}

// The schemes. PROTOCOL.md 2.2 lists where each one comes from.
var (
	// SedutilSHA1 is the DTA sedutil-cli derivation, used by every
	// official sedutil build and its PBA: PBKDF2-HMAC-SHA1, 75000
	// iterations, salt the 20-byte serial, 32 bytes. The default.
	SedutilSHA1 = &Scheme{
		name:        "sedutil-sha1",
		aliases:     []string{"sedutil-dta", "dta", "sha1", "sha1-75k"},
		description: "PBKDF2-HMAC-SHA1, 75000 iterations, salt = 20-byte drive serial, 32 bytes (DTA sedutil-cli; the default)",
		usesSerial:  true,
		derive:      sedutilPBKDF2(sha1.New, 75000),
	}
	// SedutilSHA512 is ChubbyAnt's sedutil fork (and CyrilVanErsche's
	// before it): PBKDF2-HMAC-SHA512, 500000 iterations, salt the 20-byte
	// serial, 32 bytes. go-tcg-storage calls it sedutil-sha512 too.
	SedutilSHA512 = &Scheme{
		name:        "sedutil-sha512",
		aliases:     []string{"sha512-500k"},
		description: "PBKDF2-HMAC-SHA512, 500000 iterations, salt = 20-byte drive serial, 32 bytes (ChubbyAnt sedutil, go-tcg-storage sedutil-sha512)",
		usesSerial:  true,
		derive:      sedutilPBKDF2(sha512.New, 500000),
	}
	// LadarSHA512 is ladar's sedutil fork in its default SHA512 build:
	// PBKDF2-HMAC-SHA512, 75000 iterations, salt the 20-byte serial, 32
	// bytes.
	LadarSHA512 = &Scheme{
		name:        "sha512-75k",
		description: "PBKDF2-HMAC-SHA512, 75000 iterations, salt = 20-byte drive serial, 32 bytes (ladar sedutil)",
		usesSerial:  true,
		derive:      sedutilPBKDF2(sha512.New, 75000),
	}
	// SedutilRaw is sedutil-cli -n: the password bytes unhashed,
	// truncated to RawPINLen bytes, except that a password with a NUL
	// byte is refused (sedutil builds differ on where such a password
	// ends).
	SedutilRaw = &Scheme{
		name:        "sedutil-raw",
		description: "password bytes unhashed, cut to 32 bytes (sedutil-cli -n)",
		derive:      sedutilRaw,
	}
	// None sends the password bytes as they are, whatever their length:
	// the Linux kernel's sed-opal ioctls, cryptsetup and nvme-cli do this.
	None = &Scheme{
		name:        "none",
		description: "password bytes as they are (Linux sed-opal, cryptsetup, nvme-cli)",
		derive:      none,
	}
	// Hex takes the password as the PIN written in hex (either case, no
	// prefix or separators), e.g. a hash another tool printed.
	Hex = &Scheme{
		name:        "hex",
		description: "password is the PIN in hex, e.g. a hash another tool printed",
		derive:      hexPIN,
	}
)

var schemes = []*Scheme{SedutilSHA1, SedutilSHA512, LadarSHA512, SedutilRaw, None, Hex}

// Schemes returns every scheme, the default first.
func Schemes() []*Scheme { return append([]*Scheme(nil), schemes...) }

// Default returns the scheme to use when none is named: SedutilSHA1.
func Default() *Scheme { return SedutilSHA1 }

// Lookup returns the scheme with the given name or alias, ignoring case.
func Lookup(name string) (*Scheme, error) {
	var names []string
	for _, s := range schemes {
		if strings.EqualFold(name, s.name) {
			return s, nil
		}
		for _, a := range s.aliases {
			if strings.EqualFold(name, a) {
				return s, nil
			}
		}
		names = append(names, s.name)
	}
	return nil, fmt.Errorf("unknown password hash scheme %q; use one of %s", name, strings.Join(names, ", "))
}

// PadSerial returns serial padded on the right with spaces to SerialLen
// bytes, as ATA and NVMe drives pad serial numbers shorter than the field
// (and as go-tcg-storage pads). Use it only for a serial typed by a person
// or read from a source that trims, such as sysfs; a serial read from the
// drive's identify data is already the right 20 bytes. A serial longer than
// SerialLen is an error.
func PadSerial(serial []byte) ([]byte, error) {
	if len(serial) > SerialLen {
		return nil, fmt.Errorf("%w: got %d bytes", ErrSerial, len(serial))
	}
	p := bytes.Repeat([]byte{' '}, SerialLen)
	copy(p, serial)
	return p, nil
}

func sedutilPBKDF2(h func() stdhash.Hash, iter int) func(password, serial []byte) (PIN, error) {
	return func(password, serial []byte) (PIN, error) {
		if len(serial) != SerialLen {
			return nil, fmt.Errorf("%w: got %d bytes", ErrSerial, len(serial))
		}
		if err := checkSedutilPassword(password); err != nil {
			return nil, err
		}
		if len(password) == 0 {
			// sedutil sends an empty password unhashed (the
			// factory default of some PINs).
			return PIN{}, nil
		}
		return pbkdf2Key(h, password, serial, iter, KeyLen)
	}
}

// pbkdf2Key is PBKDF2 (RFC 8018 5.2) with HMAC over h.
func pbkdf2Key(h func() stdhash.Hash, password, salt []byte, iter, keyLen int) (PIN, error) {
	k, err := pbkdf2.Key(h, string(password), salt, iter, keyLen)
	if err != nil {
		return nil, err
	}
	return PIN(k), nil
}

// checkSedutilPassword refuses what sedutil cannot take: it reads the
// password as a C string (so a NUL ends it) of at most 256 bytes.
func checkSedutilPassword(password []byte) error {
	if i := bytes.IndexByte(password, 0); i >= 0 {
		return fmt.Errorf("%w: it contains a NUL byte (at %d), which sedutil cannot take; use the none or hex scheme",
			ErrPassword, i)
	}
	if len(password) > MaxPasswordLen {
		return fmt.Errorf("%w: it is %d bytes long, sedutil reads at most %d", ErrPassword, len(password), MaxPasswordLen)
	}
	return nil
}

func sedutilRaw(password, _ []byte) (PIN, error) {
	if err := checkSedutilPassword(password); err != nil {
		return nil, err
	}
	return append(PIN{}, password[:min(len(password), RawPINLen)]...), nil
}

func none(password, _ []byte) (PIN, error) {
	return append(PIN{}, password...), nil
}

// hexPIN decodes password as hex. Unlike encoding/hex, its errors do not
// quote the offending byte, which is part of a secret.
func hexPIN(password, _ []byte) (PIN, error) {
	if len(password)%2 != 0 {
		return nil, fmt.Errorf("%w: odd length %d", ErrHex, len(password))
	}
	pin := make(PIN, len(password)/2)
	for i := range pin {
		hi, ok1 := fromHexChar(password[2*i])
		lo, ok2 := fromHexChar(password[2*i+1])
		if !ok1 || !ok2 {
			pin.Wipe()
			pos := 2 * i
			if ok1 {
				pos++
			}
			return nil, fmt.Errorf("%w: character %d is not a hex digit", ErrHex, pos+1)
		}
		pin[i] = hi<<4 | lo
	}
	return pin, nil
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
