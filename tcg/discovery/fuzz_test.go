package discovery

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that errors carry an offset
// inside the input, and that whatever decodes re-encodes: Parse(Build(d))
// equals d.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		s, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(unhexDump(f, string(s)))
	}
	f.Add(unhexDump(f, opal2Drive))
	f.Add(unhexDump(f, otherSSCs))
	f.Add(response(desc(CodeTPer, 1, 0), desc(CodeLocking, 1, 0)))

	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%x) error %v is not a *ParseError", b, err)
			}
			if pe.Offset < 0 || pe.Offset > len(b) {
				t.Fatalf("Parse(%x) error offset %d outside the %d-byte input", b, pe.Offset, len(b))
			}
			if d != nil && !errors.Is(err, ErrTruncated) {
				t.Fatalf("Parse(%x) = %v with a result; only ErrTruncated comes with one", b, err)
			}
			if d == nil {
				return
			}
		}
		out, err := Build(d)
		if err != nil {
			t.Fatalf("Build(Parse(%x)) = %v", b, err)
		}
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Build(Parse(%x))) = %v\nbuilt %x", b, err, out)
		}
		if !reflect.DeepEqual(d, d2) {
			t.Fatalf("round trip of %x:\nParse      %+v\nre-Parse   %+v\nbuilt      %x", b, d, d2, out)
		}
	})
}
