package hash

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serial860 is the 20-byte serial field of PROTOCOL.md 2.2's vectors: 15
// characters and 5 spaces of padding.
var serial860 = []byte("S2RBNB0HA12200B     ")

// password256 is 256 bytes, longer than SHA-1's and SHA-512's blocks (so
// HMAC hashes the key first), and the longest password sedutil reads.
func password256() []byte { return append(bytesFrom1To255(), 'x') }

func bytesFrom1To255() []byte {
	b := make([]byte, 255)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func TestVectors(t *testing.T) {
	wd := []byte("WD-WX12A3456789     ")
	for _, tc := range []struct {
		name     string
		scheme   *Scheme
		password []byte
		serial   []byte
		want     string
	}{
		// PROTOCOL.md 2.2, verbatim.
		{"2.2 sha1", SedutilSHA1, []byte("dummy"), serial860,
			"4f2accfd1a1764dc5b5bb38f40f9068d2d1a1f6dd5392707dea14c3bb7deeacc"},
		{"2.2 sha512 500k", SedutilSHA512, []byte("dummy"), serial860,
			"55c44674a296a05dae1fca033cf5598d5a06d5aee9baba6a3be90cdefde2ae2a"},
		{"2.2 sha512 75k", LadarSHA512, []byte("dummy"), serial860,
			"f4570f71e55f1db53b8adb1b42d7525a6324244b9bb8c9837a5509dc97b43810"},
		// A 256-byte password (bytes 0x01..0xff then 'x') and another
		// serial. Computed with both
		//   python3 -c 'import hashlib; p=bytes(range(1,256))+b"x";
		//     print(hashlib.pbkdf2_hmac("sha1", p, b"WD-WX12A3456789     ", 75000, 32).hex())'
		// and
		//   openssl kdf -keylen 32 -kdfopt digest:SHA1 -kdfopt hexpass:0102...ff78 \
		//     -kdfopt 'salt:WD-WX12A3456789     ' -kdfopt iter:75000 PBKDF2
		// (digest:SHA512 and iter:500000 for the others); they agree.
		{"256-byte sha1", SedutilSHA1, password256(), wd,
			"339de56fcb0c64df7dc9bd3a679bdb91e8a97dda133050e3d761c64f7c340c14"},
		{"256-byte sha512 500k", SedutilSHA512, password256(), wd,
			"b1d97b6e097a3d1c4c49b4f7d603c531ae4cf0b6d76cc1813a3f43180dccfced"},
		{"256-byte sha512 75k", LadarSHA512, password256(), wd,
			"24152e49c585096ca122ac29b8c5a704a82c818f120cdd1275721b9bacea67e6"},
		// Empty passwords are not hashed.
		{"empty sha1", SedutilSHA1, nil, serial860, ""},
		{"empty sha512", SedutilSHA512, []byte{}, serial860, ""},
		{"empty sha512 75k", LadarSHA512, nil, serial860, ""},
		{"raw", SedutilRaw, []byte("dummy"), nil, hex.EncodeToString([]byte("dummy"))},
		{"raw cut to 32", SedutilRaw, []byte(strings.Repeat("0123456789", 4)), nil,
			hex.EncodeToString([]byte("01234567890123456789012345678901"))},
		{"raw empty", SedutilRaw, nil, nil, ""},
		{"none", None, []byte("dummy\x00\xff"), nil, "64756d6d7900ff"},
		{"none long", None, append(password256(), 'y'), nil,
			hex.EncodeToString(append(password256(), 'y'))},
		{"none empty", None, nil, serial860, ""},
		{"hex", Hex, []byte("00ffABcd"), nil, "00ffabcd"},
		{"hex empty", Hex, nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			password := bytes.Clone(tc.password)
			serial := bytes.Clone(tc.serial)
			pin, err := tc.scheme.Derive(password, serial)
			if err != nil {
				t.Fatalf("%s.Derive = %v", tc.scheme, err)
			}
			if pin == nil {
				t.Errorf("%s.Derive = nil PIN; want a non-nil one", tc.scheme)
			}
			if got := hex.EncodeToString(pin); got != tc.want {
				t.Errorf("%s.Derive(%q, %q) = %s; want %s", tc.scheme, tc.password, tc.serial, got, tc.want)
			}
			if !bytes.Equal(password, tc.password) || !bytes.Equal(serial, tc.serial) {
				t.Errorf("Derive changed its arguments")
			}
			// The PIN must not alias the password.
			clear(password)
			if got := hex.EncodeToString(pin); got != tc.want {
				t.Errorf("PIN changed when the password was wiped: %s", got)
			}
		})
	}
}

// TestPBKDF2 is PROTOCOL.md 2.2's sanity check (RFC 6070): PBKDF2-SHA1
// ("password", "salt", 4096, 20).
func TestPBKDF2(t *testing.T) {
	got, err := pbkdf2Key(sha1.New, []byte("password"), []byte("salt"), 4096, 20)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "4b007901b765489abead49d926f721d065a429c1"); !bytes.Equal(got, want) {
		t.Errorf("pbkdf2Key = %x; want %x", []byte(got), want)
	}
}

// TestTrimmedSerial shows the pitfall of PROTOCOL.md 2.2: a trimmed serial
// (15 bytes) salts a different hash, so Derive refuses it; PadSerial
// restores the drive's field.
func TestTrimmedSerial(t *testing.T) {
	trimmed := bytes.TrimRight(serial860, " ")
	// PROTOCOL.md 2.2: what tools that trim compute.
	got, err := pbkdf2Key(sha1.New, []byte("dummy"), trimmed, 75000, 32)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "104d9c1a849863aefe0c3ba4d0ea2fd5f747153dfbc62650c608616917fbcf78"); !bytes.Equal(got, want) {
		t.Errorf("PBKDF2 with the trimmed serial = %x; want %x", []byte(got), want)
	}
	for _, s := range []*Scheme{SedutilSHA1, SedutilSHA512, LadarSHA512} {
		for _, serial := range [][]byte{nil, trimmed, append(bytes.Clone(serial860), ' ')} {
			// Even an empty password, which is not hashed, needs a
			// good serial: a bad one is the caller's bug.
			for _, pw := range [][]byte{[]byte("dummy"), nil} {
				if pin, err := s.Derive(pw, serial); !errors.Is(err, ErrSerial) {
					t.Errorf("%s.Derive(%q, %d-byte serial) = %x, %v; want ErrSerial", s, pw, len(serial), []byte(pin), err)
				}
			}
		}
	}
	padded, err := PadSerial(trimmed)
	if err != nil || !bytes.Equal(padded, serial860) {
		t.Fatalf("PadSerial(%q) = %q, %v; want %q", trimmed, padded, err, serial860)
	}
	pin, err := SedutilSHA1.Derive([]byte("dummy"), padded)
	if want := unhex(t, "4f2accfd1a1764dc5b5bb38f40f9068d2d1a1f6dd5392707dea14c3bb7deeacc"); err != nil || !bytes.Equal(pin, want) {
		t.Errorf("Derive with the padded serial = %x, %v; want %x", []byte(pin), err, want)
	}
	if p, err := PadSerial(serial860); err != nil || !bytes.Equal(p, serial860) {
		t.Errorf("PadSerial(20 bytes) = %q, %v; want it unchanged", p, err)
	}
	if p, err := PadSerial(make([]byte, 21)); !errors.Is(err, ErrSerial) {
		t.Errorf("PadSerial(21 bytes) = %q, %v; want ErrSerial", p, err)
	}
}

func TestPasswordErrors(t *testing.T) {
	secret := "hunter2"
	for _, tc := range []struct {
		scheme   *Scheme
		password []byte
		want     error
	}{
		{SedutilSHA1, []byte(secret + "\x00x"), ErrPassword},
		{SedutilSHA512, []byte("\x00" + secret), ErrPassword},
		{LadarSHA512, append(password256(), 'y'), ErrPassword},
		{SedutilSHA1, append(password256(), 'y'), ErrPassword},
		{SedutilRaw, []byte(secret + "\x00"), ErrPassword},
		{SedutilRaw, append(password256(), 'y'), ErrPassword},
		{Hex, []byte("abc"), ErrHex},
		{Hex, []byte("0g"), ErrHex},
		{Hex, []byte("g0"), ErrHex},
		{Hex, []byte("00 11"), ErrHex},
		{Hex, []byte("0x00"), ErrHex},
		{Hex, []byte(hex.EncodeToString([]byte(secret)) + "\n"), ErrHex},
		{Hex, []byte(secret + "h"), ErrHex},
	} {
		pin, err := tc.scheme.Derive(tc.password, serial860)
		if !errors.Is(err, tc.want) || pin != nil {
			t.Errorf("%s.Derive(%q) = %x, %v; want nil, %v", tc.scheme, tc.password, []byte(pin), err, tc.want)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, hex.EncodeToString([]byte(secret))) {
			t.Errorf("%s.Derive error %q quotes the password", tc.scheme, msg)
		}
		if !strings.HasPrefix(err.Error(), tc.scheme.Name()+": ") {
			t.Errorf("%s.Derive error %q does not name the scheme", tc.scheme, err)
		}
	}
	_, err := Hex.Derive([]byte("00112z"), nil)
	if want := "hex: PIN is not a hex string: character 6 is not a hex digit"; err == nil || err.Error() != want {
		t.Errorf("Hex.Derive(00112z) error = %v; want %s", err, want)
	}
	_, err = Hex.Derive([]byte("0011z2"), nil)
	if want := "hex: PIN is not a hex string: character 5 is not a hex digit"; err == nil || err.Error() != want {
		t.Errorf("Hex.Derive(0011z2) error = %v; want %s", err, want)
	}
	// The longest password sedutil reads is fine.
	if _, err := SedutilRaw.Derive(password256(), nil); err != nil {
		t.Errorf("SedutilRaw.Derive(256 bytes) = %v", err)
	}
}

func TestLookup(t *testing.T) {
	for name, want := range map[string]*Scheme{
		"sedutil-sha1":   SedutilSHA1,
		"SEDUTIL-SHA1":   SedutilSHA1,
		"sedutil-dta":    SedutilSHA1,
		"dta":            SedutilSHA1,
		"sha1":           SedutilSHA1,
		"sha1-75k":       SedutilSHA1,
		"sedutil-sha512": SedutilSHA512,
		"sha512-500k":    SedutilSHA512,
		"sha512-75k":     LadarSHA512,
		"Sha512-75K":     LadarSHA512,
		"sedutil-raw":    SedutilRaw,
		"none":           None,
		"hex":            Hex,
	} {
		if got, err := Lookup(name); got != want || err != nil {
			t.Errorf("Lookup(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	// "sha512" alone is ambiguous (500k in ChubbyAnt and go-tcg-storage,
	// 75k in ladar): a wrong guess costs a try against the drive's
	// TryLimit, so it is not accepted.
	for _, name := range []string{"sha512", "", "md5", "sedutil"} {
		s, err := Lookup(name)
		if err == nil {
			t.Errorf("Lookup(%q) = %v; want an error", name, s)
			continue
		}
		if want := "use one of sedutil-sha1, sedutil-sha512, sha512-75k, sedutil-raw, none, hex"; !strings.Contains(err.Error(), want) {
			t.Errorf("Lookup(%q) error = %q; want it to list the schemes", name, err)
		}
	}
}

func TestSchemes(t *testing.T) {
	all := Schemes()
	var names []string
	for _, s := range all {
		names = append(names, s.Name())
		if s.String() != s.Name() || s.Description() == "" {
			t.Errorf("scheme %q: String %q, Description %q", s.Name(), s.String(), s.Description())
		}
	}
	if want := []string{"sedutil-sha1", "sedutil-sha512", "sha512-75k", "sedutil-raw", "none", "hex"}; !slices.Equal(names, want) {
		t.Errorf("Schemes() = %v; want %v", names, want)
	}
	if Default() != SedutilSHA1 || all[0] != Default() {
		t.Errorf("Default() = %v; want sedutil-sha1, listed first", Default())
	}
	all[0] = nil
	if Schemes()[0] != SedutilSHA1 {
		t.Errorf("Schemes() returns the package's own slice")
	}
	for _, s := range []*Scheme{SedutilSHA1, SedutilSHA512, LadarSHA512} {
		if !s.UsesSerial() {
			t.Errorf("%s.UsesSerial() = false", s)
		}
	}
	for _, s := range []*Scheme{SedutilRaw, None, Hex} {
		if s.UsesSerial() {
			t.Errorf("%s.UsesSerial() = true", s)
		}
	}
	a := SedutilSHA1.Aliases()
	if !slices.Contains(a, "sedutil-dta") {
		t.Errorf("SedutilSHA1.Aliases() = %v", a)
	}
	a[0] = "changed"
	if SedutilSHA1.Aliases()[0] == "changed" {
		t.Errorf("Aliases() returns the scheme's own slice")
	}
}
