package token

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// TestEncoderStartSession writes the PROTOCOL.md 1.6 StartSession example
// token by token.
func TestEncoderStartSession(t *testing.T) {
	want := readGolden(t, filepath.Join("testdata", "startsession_admin1.hex"))
	var e Encoder
	e.Call()
	e.Bytes(mustHexV("00000000000000ff"))
	e.Bytes(mustHexV("000000000000ff02"))
	e.StartList()
	e.Uint(0x69)
	e.Bytes(mustHexV("0000020500000002"))
	e.Bool(true)
	e.StartName()
	e.Uint(0)
	e.Bytes(mustHexV("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"))
	e.EndName()
	e.StartName()
	e.Uint(3)
	e.Value(Bytes(mustHexV("0000000900010001")))
	e.EndName()
	e.EndList()
	e.EndOfData()
	e.Value(List(Uint(0), Uint(0), Uint(0)))
	got, err := e.Finish()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Finish() = %x, %v; want %x", got, err, want)
	}
	if e.Len() != len(want) || e.Err() != nil {
		t.Fatalf("Len() = %d, Err() = %v; want %d, nil", e.Len(), e.Err(), len(want))
	}
}

func TestEncoderTokens(t *testing.T) {
	e := NewEncoder([]byte{0xAA})
	e.Int(-1)
	e.Text("ab")
	e.Bool(false)
	e.EndOfSession()
	e.StartTransaction(0)
	e.EndTransaction(1)
	e.Empty()
	e.StartName()
	e.Empty()
	e.Text("n")
	e.StartList()
	e.StartName()
	e.Int(-2)
	e.Value(Named(1, List()))
	e.EndName()
	e.EndList()
	e.EndName()
	e.Value(Marker(KindEndOfData))
	got, err := e.Finish()
	want := mustHex(t, "aa 7f a26162 00 fa fb00 fc01 ff f2ffa16ef0f27ef201f0f1f3f3f1f3 f9")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Finish() = %x, %v; want %x", got, err, want)
	}
	vs, err := Decode(got[1:])
	wantV := []Value{Int(-1), Text("ab"), Uint(0), Marker(KindEndOfSession),
		Marker(KindStartTransaction), Uint(0), Marker(KindEndTransaction), Uint(1),
		Pair(Text("n"), List(Pair(Int(-2), Named(1, List())))), Marker(KindEndOfData)}
	if err != nil || !equalValues(vs, wantV) {
		t.Fatalf("Decode(%x) = %v, %v; want %v", got[1:], vs, err, wantV)
	}
	e.Reset(nil)
	if b, err := e.Finish(); err != nil || len(b) != 0 {
		t.Fatalf("after Reset: Finish() = %x, %v", b, err)
	}
}

func TestEncoderErrors(t *testing.T) {
	tests := []struct {
		name string
		f    func(e *Encoder)
		want error
	}{
		{"end list with nothing open", func(e *Encoder) { e.EndList() }, ErrUnbalanced},
		{"end name closes list", func(e *Encoder) { e.StartList(); e.EndName() }, ErrUnbalanced},
		{"end list closes name", func(e *Encoder) { e.StartName(); e.Uint(1); e.EndList() }, ErrUnbalanced},
		{"open list", func(e *Encoder) { e.StartList() }, ErrUnbalanced},
		{"too deep", func(e *Encoder) {
			for range DefaultMaxDepth + 1 {
				e.StartList()
			}
		}, ErrTooDeep},
		{"value too deep", func(e *Encoder) {
			v := Uint(1)
			for range DefaultMaxDepth - 1 {
				v = List(v)
			}
			e.StartList()
			e.StartList()
			e.Value(v)
		}, ErrTooDeep},
		{"call in list", func(e *Encoder) { e.StartList(); e.Call(); e.EndList() }, ErrSyntax},
		{"marker value in name", func(e *Encoder) { e.StartName(); e.Uint(1); e.Value(Marker(KindEndOfData)) }, ErrSyntax},
		{"list as name", func(e *Encoder) { e.StartName(); e.StartList() }, ErrSyntax},
		{"list value as name", func(e *Encoder) { e.StartName(); e.Value(List()) }, ErrSyntax},
		{"name with two values", func(e *Encoder) { e.StartName(); e.Uint(1); e.Uint(2); e.Text("x") }, ErrSyntax},
		{"name without value", func(e *Encoder) { e.StartName(); e.Uint(1); e.EndName() }, ErrSyntax},
		{"empty name", func(e *Encoder) { e.StartName(); e.EndName() }, ErrSyntax},
		{"pair with list name", func(e *Encoder) { e.Value(Pair(List(), Uint(1))) }, ErrSyntax},
		{"too long bytes", func(e *Encoder) { e.Bytes(make([]byte, MaxAtomLen+1)) }, ErrAtomTooLong},
		{"too long text", func(e *Encoder) { e.Text(string(make([]byte, MaxAtomLen+1))) }, ErrAtomTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Encoder
			tt.f(&e)
			if e.Err() == nil {
				got, err := e.Finish()
				if err == nil || !errors.Is(err, tt.want) || got != nil {
					t.Fatalf("Finish() = %x, %v; want error %v", got, err, tt.want)
				}
				return
			}
			// Everything after the first error is ignored.
			first := e.Err()
			e.Uint(1)
			e.Int(1)
			e.Bytes(nil)
			e.Text("")
			e.Empty()
			e.EndOfData()
			e.StartList()
			e.EndList()
			e.Value(Uint(1))
			got, err := e.Finish()
			if !errors.Is(err, first) || tt.want != nil && !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("Finish() = %x, %v; want error %v", got, err, tt.want)
			}
		})
	}
}

// TestEncoderNoAlloc checks the Encoder writes into a big enough buffer
// without allocating.
func TestEncoderNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 256)
	pin := make([]byte, 32)
	uid := mustHexV("0000020500000002")
	var e Encoder
	allocs := testing.AllocsPerRun(100, func() {
		e.Reset(buf[:0])
		e.Call()
		e.Bytes(uid)
		e.Bytes(uid)
		e.StartList()
		e.Uint(1 << 40)
		e.Int(-1000)
		e.StartName()
		e.Uint(0)
		e.Bytes(pin)
		e.EndName()
		e.EndList()
		e.EndOfData()
		if _, err := e.Finish(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Encoder allocated %v times per call; want 0", allocs)
	}
}
