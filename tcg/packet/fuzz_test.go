package packet

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, fails only with a *ParseError
// inside the input, and that whatever parses re-encodes to bytes that parse
// to the same ComPacket and encode the same again.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.hex"))
	for _, file := range files {
		b := readGolden(f, file)
		f.Add(b)
		f.Add(append(bytes.Clone(b), make([]byte, 64)...))
		if len(b) > 1 {
			f.Add(b[:len(b)-1])
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Parse(in)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset >= max(len(in), 1) {
				t.Fatalf("Parse(%x) = %v; want a *ParseError within the input", in, err)
			}
			return
		}
		enc, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(Parse(%x)) = %v", in, err)
		}
		back, err := Parse(enc)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("Parse(%x) = %+v, %v; want %+v (from %x)", enc, back, err, c, in)
		}
		enc2, err := back.MarshalBinary()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %x then %x, %v", enc, enc2, err)
		}
		_, _, _ = c.Payload()
	})
}

// TestFuzzCorpusFiles checks the seed files under testdata/fuzz are ones the
// fuzz targets know (a renamed target would silently drop them).
func TestFuzzCorpusFiles(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*"))
	known := []string{"FuzzParse"}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && !slices.Contains(known, filepath.Base(d)) {
			t.Errorf("%s: no fuzz target %s (known: %s)", d, filepath.Base(d), strings.Join(known, ", "))
		}
	}
}
