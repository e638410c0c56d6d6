package token

import (
	"errors"
	"fmt"
)

// Control-token bytes (Core 3.2.2.3.2). 0xF4..0xF7 and 0xFD..0xFE are
// reserved, as are the atom headers 0xE4..0xEF.
const (
	TagStartList        byte = 0xF0
	TagEndList          byte = 0xF1
	TagStartName        byte = 0xF2
	TagEndName          byte = 0xF3
	TagCall             byte = 0xF8
	TagEndOfData        byte = 0xF9
	TagEndOfSession     byte = 0xFA
	TagStartTransaction byte = 0xFB
	TagEndTransaction   byte = 0xFC
	TagEmpty            byte = 0xFF
)

// Atom size limits (Core 3.2.2.3.1): a short atom holds up to 15 bytes, a
// medium atom up to 2047, a long atom up to MaxAtomLen.
const (
	MaxShortLen  = 1<<4 - 1
	MaxMediumLen = 1<<11 - 1
	MaxAtomLen   = 1<<24 - 1
)

// ErrAtomTooLong is returned when a byte sequence does not fit a long atom.
var ErrAtomTooLong = errors.New("token: byte sequence longer than a long atom allows (16 MiB - 1)")

// AppendUint appends the shortest encoding of the unsigned integer v to dst:
// a tiny atom for 0..63, otherwise a short atom (0x81..0x88) of minimal
// width. Values of 2^32 and more keep all their bytes.
func AppendUint(dst []byte, v uint64) []byte {
	if v < 64 {
		return append(dst, byte(v))
	}
	n := 1
	for v>>(8*n) != 0 {
		n++
	}
	dst = append(dst, 0x80|byte(n))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// AppendInt appends the shortest encoding of the signed integer v to dst: a
// signed tiny atom (0x40 bit) for -32..31, otherwise a signed short atom
// (0x91..0x98) holding the minimal two's-complement width.
func AppendInt(dst []byte, v int64) []byte {
	if v >= -32 && v <= 31 {
		return append(dst, 0x40|byte(v)&0x3f)
	}
	n := 1
	for n < 8 && (v < -(1<<(8*n-1)) || v >= 1<<(8*n-1)) {
		n++
	}
	dst = append(dst, 0x90|byte(n))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// AppendBytes appends b as a byte-sequence atom to dst, choosing the shortest
// header: short (0xA0|n) up to 15 bytes, medium (0xD0) up to 2047, long
// (0xE2) up to [MaxAtomLen]. A longer b returns dst unchanged and
// [ErrAtomTooLong].
func AppendBytes(dst, b []byte) ([]byte, error) {
	if len(b) > MaxAtomLen {
		return dst, ErrAtomTooLong
	}
	return append(bytesHeader(dst, len(b)), b...), nil
}

// AppendValue appends the encoding of v to dst. It fails on the zero Value,
// on a byte sequence longer than [MaxAtomLen], and on nesting deeper than
// [DefaultMaxDepth], so that whatever it writes decodes with the default
// [Limits]. On error dst is returned as it was.
func AppendValue(dst []byte, v Value) ([]byte, error) {
	out, err := appendValue(dst, v, 0)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// Encode returns the encoding of the values vs, one after the other.
func Encode(vs ...Value) ([]byte, error) {
	var b []byte
	for _, v := range vs {
		var err error
		if b, err = appendValue(b, v, 0); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// markerTags maps the marker kinds to their control-token bytes.
var markerTags = [...]byte{
	KindCall:             TagCall,
	KindEndOfData:        TagEndOfData,
	KindEndOfSession:     TagEndOfSession,
	KindStartTransaction: TagStartTransaction,
	KindEndTransaction:   TagEndTransaction,
}

func appendValue(dst []byte, v Value, depth int) ([]byte, error) {
	switch v.kind {
	case KindUint:
		return AppendUint(dst, v.num), nil
	case KindInt:
		return AppendInt(dst, int64(v.num)), nil
	case KindBytes:
		return AppendBytes(dst, v.bytes)
	case KindList, KindName:
		if depth >= DefaultMaxDepth {
			return dst, fmt.Errorf("token: encode: %w (more than %d)", ErrTooDeep, DefaultMaxDepth)
		}
		open, end := TagStartList, TagEndList
		if v.kind == KindName {
			open, end = TagStartName, TagEndName
			if k := v.items[0].kind; k != KindUint && k != KindInt && k != KindBytes {
				return dst, fmt.Errorf("token: encode: %w: name is a %v, not an atom", ErrSyntax, k)
			}
		}
		dst = append(dst, open)
		for _, it := range v.items {
			if it.kind.IsMarker() {
				return dst, fmt.Errorf("token: encode: %w: %v inside a %v", ErrSyntax, it.kind, v.kind)
			}
			var err error
			if dst, err = appendValue(dst, it, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, end), nil
	case KindCall, KindEndOfData, KindEndOfSession, KindStartTransaction, KindEndTransaction:
		return append(dst, markerTags[v.kind]), nil
	}
	return dst, fmt.Errorf("token: encode: %v value", v.kind)
}

// An Encoder writes a token stream into a growing byte slice, one token at a
// time. It checks that lists and names are balanced and nest at most
// [DefaultMaxDepth] deep, that a name holds an atom and one value, and that
// control tokens stay at the top level, so that what it writes decodes; the
// first error sticks and is returned by
// [Encoder.Finish]. The zero Encoder is ready to use. An Encoder allocates
// only when appending outgrows the buffer it was given.
type Encoder struct {
	buf   []byte
	err   error
	open  [DefaultMaxDepth]byte  // TagStartList or TagStartName per level
	items [DefaultMaxDepth]uint8 // in a name: items written so far (name, value)
	depth int
}

// NewEncoder returns an Encoder that appends to buf (pass buf[:0] to reuse a
// buffer's storage).
func NewEncoder(buf []byte) *Encoder { return &Encoder{buf: buf} }

// Reset discards the Encoder's state and makes it append to buf.
func (e *Encoder) Reset(buf []byte) { *e = Encoder{buf: buf} }

// item accounts for one item written at the current level; atom says
// whether it is an atom. It reports false (with e.err set) if a name does not
// allow it.
func (e *Encoder) item(atom bool) bool {
	if e.err != nil {
		return false
	}
	if e.depth == 0 || e.open[e.depth-1] != TagStartName {
		return true
	}
	switch n := &e.items[e.depth-1]; {
	case *n == 0 && !atom:
		e.err = fmt.Errorf("token: encode: %w: a name must be an atom", ErrSyntax)
	case *n >= 2:
		e.err = fmt.Errorf("token: encode: %w: a named value holds one value", ErrSyntax)
	default:
		*n++
		return true
	}
	return false
}

// Uint writes an unsigned integer atom (see [AppendUint]).
func (e *Encoder) Uint(v uint64) {
	if e.item(true) {
		e.buf = AppendUint(e.buf, v)
	}
}

// Int writes a signed integer atom (see [AppendInt]).
func (e *Encoder) Int(v int64) {
	if e.item(true) {
		e.buf = AppendInt(e.buf, v)
	}
}

// Bool writes 1 for true and 0 for false.
func (e *Encoder) Bool(b bool) {
	if b {
		e.Uint(1)
	} else {
		e.Uint(0)
	}
}

// Bytes writes a byte-sequence atom (see [AppendBytes]).
func (e *Encoder) Bytes(b []byte) {
	if e.item(true) {
		e.buf, e.err = AppendBytes(e.buf, b)
	}
}

// Text writes the bytes of s as a byte-sequence atom.
func (e *Encoder) Text(s string) {
	if e.item(true) {
		if len(s) > MaxAtomLen {
			e.err = ErrAtomTooLong
			return
		}
		e.buf = append(bytesHeader(e.buf, len(s)), s...)
	}
}

// bytesHeader appends the shortest atom header for an n-byte sequence,
// n <= MaxAtomLen.
func bytesHeader(dst []byte, n int) []byte {
	switch {
	case n <= MaxShortLen:
		return append(dst, 0xA0|byte(n))
	case n <= MaxMediumLen:
		return append(dst, 0xD0|byte(n>>8), byte(n))
	}
	return append(dst, 0xE2, byte(n>>16), byte(n>>8), byte(n))
}

// Value writes v (see [AppendValue]).
func (e *Encoder) Value(v Value) {
	if v.kind.IsMarker() {
		e.marker(markerTags[v.kind])
		return
	}
	if e.item(v.kind == KindUint || v.kind == KindInt || v.kind == KindBytes) {
		e.buf, e.err = appendValue(e.buf, v, e.depth)
	}
}

// StartList writes StartList (0xF0).
func (e *Encoder) StartList() { e.push(TagStartList) }

// EndList writes EndList (0xF1), closing the innermost StartList.
func (e *Encoder) EndList() { e.pop(TagStartList, TagEndList) }

// StartName writes StartName (0xF2); write the name, the value, then EndName.
func (e *Encoder) StartName() { e.push(TagStartName) }

// EndName writes EndName (0xF3), closing the innermost StartName.
func (e *Encoder) EndName() { e.pop(TagStartName, TagEndName) }

// Call writes the Call token (0xF8).
func (e *Encoder) Call() { e.marker(TagCall) }

// EndOfData writes EndOfData (0xF9).
func (e *Encoder) EndOfData() { e.marker(TagEndOfData) }

// EndOfSession writes EndOfSession (0xFA).
func (e *Encoder) EndOfSession() { e.marker(TagEndOfSession) }

// StartTransaction writes StartTransaction (0xFB) followed by its status.
func (e *Encoder) StartTransaction(status uint64) {
	e.marker(TagStartTransaction)
	e.Uint(status)
}

// EndTransaction writes EndTransaction (0xFC) followed by its status (0 =
// commit).
func (e *Encoder) EndTransaction(status uint64) {
	e.marker(TagEndTransaction)
	e.Uint(status)
}

// Empty writes an Empty atom (0xFF), which receivers ignore.
func (e *Encoder) Empty() {
	if e.err == nil {
		e.buf = append(e.buf, TagEmpty)
	}
}

func (e *Encoder) push(tag byte) {
	if !e.item(false) {
		return
	}
	if e.depth >= len(e.open) {
		e.err = fmt.Errorf("token: encode: %w (more than %d)", ErrTooDeep, len(e.open))
		return
	}
	e.open[e.depth] = tag
	e.items[e.depth] = 0
	e.depth++
	e.buf = append(e.buf, tag)
}

func (e *Encoder) pop(open, end byte) {
	if e.err != nil {
		return
	}
	if e.depth == 0 || e.open[e.depth-1] != open {
		e.err = fmt.Errorf("token: encode: %w: 0x%02X does not close an open 0x%02X", ErrUnbalanced, end, open)
		return
	}
	if open == TagStartName && e.items[e.depth-1] != 2 {
		e.err = fmt.Errorf("token: encode: %w: EndName after %d items; want a name and a value", ErrSyntax, e.items[e.depth-1])
		return
	}
	e.depth--
	e.buf = append(e.buf, end)
}

func (e *Encoder) marker(tag byte) {
	if e.err != nil {
		return
	}
	if e.depth != 0 {
		e.err = fmt.Errorf("token: encode: %w: control token 0x%02X inside a list or name", ErrSyntax, tag)
		return
	}
	e.buf = append(e.buf, tag)
}

// Len returns the number of bytes written so far.
func (e *Encoder) Len() int { return len(e.buf) }

// Err returns the first error, if any.
func (e *Encoder) Err() error { return e.err }

// Finish returns the encoded stream, or the first error; lists or names
// still open are an error.
func (e *Encoder) Finish() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	if e.depth != 0 {
		return nil, fmt.Errorf("token: encode: %w: %d lists or names still open", ErrUnbalanced, e.depth)
	}
	return e.buf, nil
}
