package method

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/token"
)

func addGoldens(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hex"))
	for _, file := range files {
		f.Add(readGolden(f, file))
	}
}

// FuzzParseCall checks ParseCall never panics, that a parsed call re-encodes
// to a stream that parses to the same call and encodes the same again, and
// that the TPer-side parameter parsers cope with whatever arguments arrive.
func FuzzParseCall(f *testing.F) {
	addGoldens(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCall(in)
		if err != nil {
			var de *token.DecodeError
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrEndOfSession) && !errors.As(err, &de) {
				t.Fatalf("ParseCall(%x) = %v; want ErrMalformed, ErrEndOfSession or a *token.DecodeError", in, err)
			}
			return
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatalf("Encode(ParseCall(%x)) = %v", in, err)
		}
		back, err := ParseCall(enc)
		if err != nil || !callEqual(back, c) {
			t.Fatalf("ParseCall(%x) = %v, %v; want %v", enc, back, err, c)
		}
		enc2, err := back.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("call encoding not stable: %x then %x, %v", enc, enc2, err)
		}
		_ = c.String()
		for _, err := range []error{
			second(ParseStartSession(c)),
			second(ParsePropertiesCall(c)),
			second(ParseGet(c)),
			third(ParseSet(c)),
			third(ParseAuthenticate(c)),
		} {
			if err != nil && !errors.Is(err, StatusInvalidParameter) {
				t.Fatalf("parameter parser on %v: %v; want INVALID_PARAMETER", c, err)
			}
		}
		if p, err := ParseStartSession(c); err == nil {
			again, err := ParseStartSession(NewStartSession(p))
			if err != nil || again.String() != p.String() || !bytes.Equal(again.HostChallenge, p.HostChallenge) {
				t.Fatalf("StartSession round trip: %v, %v; want %v", again, err, p)
			}
		}
		for _, a := range c.Args {
			if terms, err := ParseBooleanExpr(a); err == nil {
				_, _ = EvalBooleanExpr(terms, func(UID) bool { return true })
				if !BooleanExpr(terms...).Equal(a) {
					t.Fatalf("BooleanExpr(ParseBooleanExpr(%v)) = %v", a, BooleanExpr(terms...))
				}
			}
		}
	})
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

// FuzzParseResult checks ParseResult never panics and that a parsed result
// re-encodes to a stable form that parses to the same result.
func FuzzParseResult(f *testing.F) {
	addGoldens(f)
	for _, s := range []string{"FA", "FAFA", "F9F0120000F1", "F0F1F9F0000000F1FA"} {
		f.Add(unhex(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseResult(in)
		if err != nil {
			var de *token.DecodeError
			if !errors.Is(err, ErrMalformed) && !errors.As(err, &de) {
				t.Fatalf("ParseResult(%x) = %v; want ErrMalformed or a *token.DecodeError", in, err)
			}
			return
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatalf("Encode(ParseResult(%x)) = %v", in, err)
		}
		back, err := ParseResult(enc)
		if err != nil || !resultEqual(back, r) {
			t.Fatalf("ParseResult(%x) = %+v, %v; want %+v", enc, back, err, r)
		}
		enc2, err := back.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("result encoding not stable: %x then %x, %v", enc, enc2, err)
		}
		_ = r.Err()
		_, _, _ = ParsePropertiesResult(r)
		_, _, _ = ParseSyncSession(r)
		_, _, _ = ParseCloseSession(r)
		_, _ = r.Row()
		_, _ = r.Bytes()
		_, _ = r.Bool()
		_, _ = r.UIDs()
	})
}

// FuzzParseUID checks that any UID ParseUID accepts prints and parses back
// to itself in every form.
func FuzzParseUID(f *testing.F) {
	for _, s := range []string{"LockingSP", "User3", "00000205:00000002", "0x00000009000300FF", "Table_MBR",
		"ACE_Locking_Range7_Set_WrLocked", "BandMaster2", "DataStore9", "x(0000000000000000)", "C_PIN_AdminSP_Admin1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUID(s)
		if err != nil {
			return
		}
		for _, form := range []string{u.String(), u.Hex(), u.Name()} {
			if form == "" {
				continue
			}
			if back, err := ParseUID(form); err != nil || back != u {
				t.Fatalf("ParseUID(%q) = %v, %v; want %v (from %q)", form, back, err, u, s)
			}
		}
	})
}

// TestFuzzCorpusFiles checks the seed files under testdata/fuzz are ones the
// fuzz targets know (a renamed target would silently drop them).
func TestFuzzCorpusFiles(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*"))
	known := []string{"FuzzParseCall", "FuzzParseResult", "FuzzParseUID"}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && !slices.Contains(known, filepath.Base(d)) {
			t.Errorf("%s: no fuzz target %s (known: %s)", d, filepath.Base(d), strings.Join(known, ", "))
		}
	}
}
