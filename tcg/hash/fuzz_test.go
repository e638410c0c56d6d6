package hash

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// FuzzHex checks the hex scheme against encoding/hex: same result on valid
// input, an ErrHex on anything else, never a panic.
func FuzzHex(f *testing.F) {
	for _, s := range []string{"", "00", "0", "00ffABcd", "0g", "g0", " 00", "0x00", "\xff\xfe"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, password []byte) {
		pin, err := Hex.Derive(password, nil)
		want, wantErr := hex.DecodeString(string(password))
		if wantErr != nil {
			if !errors.Is(err, ErrHex) || pin != nil {
				t.Fatalf("Hex.Derive(%q) = %x, %v; want nil, ErrHex", password, []byte(pin), err)
			}
			return
		}
		if err != nil || !bytes.Equal(pin, want) || pin == nil {
			t.Fatalf("Hex.Derive(%q) = %x, %v; want %x", password, []byte(pin), err, want)
		}
	})
}

// FuzzCheapSchemes checks the schemes without PBKDF2 on any password, and
// that every PIN prints redacted whatever its bytes.
func FuzzCheapSchemes(f *testing.F) {
	f.Add([]byte("dummy"))
	f.Add([]byte(""))
	f.Add([]byte("a\x00b"))
	f.Add(bytes.Repeat([]byte("x"), 300))
	f.Fuzz(func(t *testing.T, password []byte) {
		pin, err := None.Derive(password, nil)
		if err != nil || !bytes.Equal(pin, password) {
			t.Fatalf("None.Derive(%q) = %x, %v", password, []byte(pin), err)
		}
		raw, err := SedutilRaw.Derive(password, nil)
		sedutilOK := bytes.IndexByte(password, 0) < 0 && len(password) <= MaxPasswordLen
		switch {
		case !sedutilOK && !errors.Is(err, ErrPassword):
			t.Fatalf("SedutilRaw.Derive(%q) = %v; want ErrPassword", password, err)
		case sedutilOK && (err != nil || !bytes.Equal(raw, password[:min(len(password), RawPINLen)])):
			t.Fatalf("SedutilRaw.Derive(%q) = %x, %v", password, []byte(raw), err)
		}
		want := "[REDACTED " + strconv.Itoa(len(password)) + " bytes]"
		for _, verb := range []string{"%v", "%s", "%x", "%q", "%#v"} {
			if got := fmt.Sprintf(verb, pin); got != want {
				t.Fatalf("Sprintf(%q, PIN(%q)) = %q; want %q", verb, password, got, want)
			}
		}
		if b, _ := pin.MarshalJSON(); !strings.Contains(string(b), want) {
			t.Fatalf("MarshalJSON = %s", b)
		}
	})
}
