package hash

import (
	"crypto/subtle"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// PIN is a credential value as it goes to the drive (the C_PIN "PIN"
// column, or the key the kernel's sed-opal ioctls take). It redacts itself
// wherever the standard library would print or encode it: fmt with any
// verb, encoding/json, encoding.TextMarshaler users and log/slog. The bytes
// themselves are []byte(p); send them, then Wipe.
//
// The redaction cannot reach a PIN held in an unexported struct field, which
// fmt prints by reflection; keep PINs in exported fields or variables.
type PIN []byte

// String returns "[REDACTED n bytes]".
func (p PIN) String() string {
	return "[REDACTED " + strconv.Itoa(len(p)) + " bytes]"
}

// GoString returns the same as String, for %#v.
func (p PIN) GoString() string { return p.String() }

// Format prints String for every verb, so %x and %q do not leak the bytes.
func (p PIN) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, p.String()) }

// MarshalJSON encodes the redacted form as a JSON string.
func (p PIN) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(p.String())), nil }

// MarshalText returns the redacted form.
func (p PIN) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// LogValue returns the redacted form for log/slog, whose handlers would
// otherwise print a byte slice as text.
func (p PIN) LogValue() slog.Value { return slog.StringValue(p.String()) }

// Wipe overwrites the PIN's bytes with zeros. Copies made elsewhere, such
// as a token buffer the PIN was encoded into, are the caller's to wipe.
func (p PIN) Wipe() { clear(p) }

// Equal reports whether p and q hold the same bytes, in time that depends
// on their lengths only.
func (p PIN) Equal(q PIN) bool { return subtle.ConstantTimeCompare(p, q) == 1 }

var (
	_ fmt.Formatter          = PIN(nil)
	_ fmt.GoStringer         = PIN(nil)
	_ slog.LogValuer         = PIN(nil)
	_ json.Marshaler         = PIN(nil)
	_ encoding.TextMarshaler = PIN(nil)
)
