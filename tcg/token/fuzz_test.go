package token

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzDecode checks that decoding never panics, fails only with a
// *DecodeError whose offset lies within the input, and that whatever decodes
// re-encodes to a stable canonical form: Encode(Decode(x)) decodes to the
// same values and encodes to the same bytes again.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hex"))
	for _, file := range files {
		f.Add(readGolden(f, file))
	}
	for _, s := range []string{
		"", "a5", "d0", "e200", "e4", "f0", "f1", "f2", "f201f3", "80", "b141", "b141a142",
		"8900ffffffffffffffff", "99ff8000000000000000", "c801ff", "e1000001ff", "ff05ff",
		"f0f0f0f0f0f0f1f1f1f1f1f1", "fb00f8a8000000000000000000f9fc00",
	} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		vs, err := Decode(in)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(in) || vs != nil {
				t.Fatalf("Decode(%x) = %v, %v; want nil and a *DecodeError within the input", in, vs, err)
			}
			return
		}
		enc, err := Encode(vs...)
		if err != nil {
			t.Fatalf("Encode(Decode(%x) = %v) = %v", in, vs, err)
		}
		back, err := Decode(enc)
		if err != nil || !equalValues(back, vs) {
			t.Fatalf("Decode(%x) = %v, %v; want %v (from %x)", enc, back, err, vs, in)
		}
		enc2, err := Encode(back...)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("Encode is not stable: %x then %x, %v (from %x)", enc, enc2, err, in)
		}
		if len(enc) > len(in) {
			t.Fatalf("canonical encoding %x is longer than its input %x", enc, in)
		}
		for _, v := range vs {
			_ = v.String()
		}
	})
}

// FuzzEncoder drives an Encoder with a program of operations (one per input
// byte) and checks that whatever Finish accepts decodes.
func FuzzEncoder(f *testing.F) {
	for _, s := range []string{"", "0102", "0a0b000c0d", "0a0c00030d0b", "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a", "0c000d"} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		var e Encoder
		for i, op := range prog {
			arg := uint64(i) * 0x0101010101
			switch op % 16 {
			case 0:
				e.Uint(arg)
			case 1:
				e.Int(-int64(arg))
			case 2:
				e.Bytes(bytes.Repeat([]byte{op}, int(op)))
			case 3:
				e.Text("x")
			case 4:
				e.Bool(op&0x10 != 0)
			case 5:
				e.Call()
			case 6:
				e.EndOfData()
			case 7:
				e.EndOfSession()
			case 8:
				e.StartTransaction(arg)
			case 9:
				e.EndTransaction(arg)
			case 10:
				e.StartList()
			case 11:
				e.EndList()
			case 12:
				e.StartName()
			case 13:
				e.EndName()
			case 14:
				e.Empty()
			case 15:
				e.Value(List(Named(arg, Text("v")), Uint(arg)))
			}
		}
		b, err := e.Finish()
		if err != nil {
			return
		}
		if _, err := Decode(b); err != nil {
			t.Fatalf("Decode(%x) = %v for a stream the Encoder accepted (program %x)", b, err, prog)
		}
	})
}

// TestFuzzCorpusFiles checks the seed files under testdata/fuzz are ones the
// fuzz targets know (a renamed target would silently drop them).
func TestFuzzCorpusFiles(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*"))
	known := []string{"FuzzDecode", "FuzzEncoder"}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && !slices.Contains(known, filepath.Base(d)) {
			t.Errorf("%s: no fuzz target %s (known: %s)", d, filepath.Base(d), strings.Join(known, ", "))
		}
	}
}
