package token

import (
	"bytes"
	"errors"
	"fmt"
)

// Default decoding limits. A 2048-byte ComPacket (what sedutil and the kernel
// use) holds at most about 2000 tokens and a handful of nesting levels.
const (
	DefaultMaxDepth  = 32
	DefaultMaxTokens = 1 << 16
)

// Limits bound the work and memory of decoding, against hostile input.
type Limits struct {
	// MaxDepth is the deepest nesting of lists and named values; 0 means
	// DefaultMaxDepth.
	MaxDepth int
	// MaxTokens is the most tokens a stream may hold, counting every atom,
	// control token and Empty atom; 0 means DefaultMaxTokens.
	MaxTokens int
}

// Causes of a [*DecodeError], for errors.Is. ErrTooDeep and ErrUnbalanced
// also come from encoding.
var (
	ErrTruncated     = errors.New("truncated token stream")
	ErrReserved      = errors.New("reserved token")
	ErrUnbalanced    = errors.New("unbalanced list or name")
	ErrTooDeep       = errors.New("nesting too deep")
	ErrTooManyTokens = errors.New("too many tokens")
	ErrOverflow      = errors.New("integer does not fit 64 bits")
	ErrSyntax        = errors.New("malformed token stream")
)

// A DecodeError reports a stream that cannot be decoded.
type DecodeError struct {
	Offset int    // byte offset of the token at fault (len(input) if the stream ended early)
	Err    error  // ErrTruncated, ErrReserved, ErrUnbalanced, ErrTooDeep, ErrTooManyTokens, ErrOverflow or ErrSyntax
	Detail string // what exactly, for people
}

func (e *DecodeError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("token: offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("token: offset %d: %v: %s", e.Offset, e.Err, e.Detail)
}

// Unwrap returns the cause (ErrTruncated, ...).
func (e *DecodeError) Unwrap() error { return e.Err }

// Decode decodes the token stream b with the default [Limits].
func Decode(b []byte) ([]Value, error) { return Limits{}.Decode(b) }

// Decode decodes the token stream b into its top-level values: atoms, lists,
// named values and markers (Call, EndOfData, EndOfSession, StartTransaction,
// EndTransaction), in order. Empty atoms are skipped; continued byte
// sequences are joined. Markers may appear only at the top level. The Values
// refer to a private copy of b, so b may be reused afterwards. An empty b
// decodes to no values.
func (l Limits) Decode(b []byte) ([]Value, error) {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = DefaultMaxTokens
	}
	d := decoder{b: bytes.Clone(b), lim: l}
	var out []Value
	for {
		t, err := d.token()
		if err != nil {
			return nil, err
		}
		if t.end {
			return out, nil
		}
		v, err := d.item(t, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// decoder is a cursor over one stream.
type decoder struct {
	b      []byte
	off    int
	tokens int
	lim    Limits
}

// rawToken is one token: an atom (tag 0, value in atom) or a control token.
type rawToken struct {
	off  int
	tag  byte
	atom Value
	end  bool // end of stream
}

func (d *decoder) fail(off int, err error, format string, args ...any) error {
	return &DecodeError{Offset: off, Err: err, Detail: fmt.Sprintf(format, args...)}
}

// token returns the next token, skipping Empty atoms and joining continued
// byte sequences.
func (d *decoder) token() (rawToken, error) {
	for {
		if d.off >= len(d.b) {
			return rawToken{off: d.off, end: true}, nil
		}
		start := d.off
		if err := d.count(start); err != nil {
			return rawToken{}, err
		}
		c := d.b[start]
		switch {
		case c == TagEmpty:
			d.off++
			continue
		case c >= 0xF0:
			switch c {
			case TagStartList, TagEndList, TagStartName, TagEndName, TagCall,
				TagEndOfData, TagEndOfSession, TagStartTransaction, TagEndTransaction:
				d.off++
				return rawToken{off: start, tag: c}, nil
			}
			return rawToken{}, d.fail(start, ErrReserved, "0x%02X", c)
		case c >= 0xE4:
			return rawToken{}, d.fail(start, ErrReserved, "atom header 0x%02X", c)
		}
		a, err := d.atom()
		if err != nil {
			return rawToken{}, err
		}
		if !a.continued {
			return rawToken{off: start, atom: a.v}, nil
		}
		v, err := d.continued(start, a.v.bytes)
		if err != nil {
			return rawToken{}, err
		}
		return rawToken{off: start, atom: v}, nil
	}
}

func (d *decoder) count(off int) error {
	d.tokens++
	if d.tokens > d.lim.MaxTokens {
		return d.fail(off, ErrTooManyTokens, "more than %d", d.lim.MaxTokens)
	}
	return nil
}

type atom struct {
	v         Value
	continued bool // a byte-sequence atom with the S bit: more parts follow
}

// atom reads the atom at d.off (Core 3.2.2.3.1), whose header byte is below
// 0xE4.
func (d *decoder) atom() (atom, error) {
	start := d.off
	c := d.b[start]
	if c < 0x80 { // tiny: 0 S dddddd
		d.off++
		if c&0x40 != 0 {
			return atom{v: Int(int64(c&0x3f) - int64(c&0x20)<<1)}, nil
		}
		return atom{v: Uint(uint64(c))}, nil
	}
	var hdr, n int
	var isBytes, signed bool
	rest := len(d.b) - start
	switch {
	case c < 0xC0: // short: 10 B S LLLL
		hdr, n = 1, int(c&0x0f)
		isBytes, signed = c&0x20 != 0, c&0x10 != 0
	case c < 0xE0: // medium: 110 B S LLL LLLLLLLL
		if rest < 2 {
			return atom{}, d.fail(start, ErrTruncated, "medium atom header needs 2 bytes, %d left", rest)
		}
		hdr, n = 2, int(c&0x07)<<8|int(d.b[start+1])
		isBytes, signed = c&0x10 != 0, c&0x08 != 0
	default: // long: 111000 B S + 3 length bytes
		if rest < 4 {
			return atom{}, d.fail(start, ErrTruncated, "long atom header needs 4 bytes, %d left", rest)
		}
		hdr, n = 4, int(d.b[start+1])<<16|int(d.b[start+2])<<8|int(d.b[start+3])
		isBytes, signed = c&0x02 != 0, c&0x01 != 0
	}
	if n > rest-hdr {
		return atom{}, d.fail(start, ErrTruncated, "atom 0x%02X needs %d bytes, %d left", c, n, rest-hdr)
	}
	p := d.b[start+hdr : start+hdr+n : start+hdr+n]
	d.off = start + hdr + n
	if isBytes {
		// With B set, the S bit marks a continued token (Core 3.2.2.3.1):
		// this part is followed by more parts of the same byte sequence.
		return atom{v: Value{kind: KindBytes, bytes: p}, continued: signed}, nil
	}
	if n == 0 {
		return atom{}, d.fail(start, ErrSyntax, "integer atom 0x%02X with no bytes", c)
	}
	if !signed {
		for len(p) > 8 && p[0] == 0 {
			p = p[1:]
		}
		if len(p) > 8 {
			return atom{}, d.fail(start, ErrOverflow, "unsigned integer of %d significant bytes", len(p))
		}
		var u uint64
		for _, b := range p {
			u = u<<8 | uint64(b)
		}
		return atom{v: Uint(u)}, nil
	}
	// Drop sign-extension bytes beyond 8: 00 0x.. or FF 1x...
	for len(p) > 8 && (p[0] == 0 && p[1]&0x80 == 0 || p[0] == 0xff && p[1]&0x80 != 0) {
		p = p[1:]
	}
	if len(p) > 8 {
		return atom{}, d.fail(start, ErrOverflow, "signed integer of %d significant bytes", len(p))
	}
	var u uint64
	if p[0]&0x80 != 0 {
		u = ^uint64(0)
	}
	for _, b := range p {
		u = u<<8 | uint64(b)
	}
	return atom{v: Int(int64(u))}, nil
}

// continued joins the parts of a continued byte sequence that began at start
// with first: byte-sequence atoms with the S bit set, ended by one without it
// (Empty atoms in between are ignored).
func (d *decoder) continued(start int, first []byte) (Value, error) {
	joined := append(make([]byte, 0, len(first)), first...)
	for {
		if d.off >= len(d.b) {
			return Value{}, d.fail(len(d.b), ErrTruncated, "continued byte sequence from offset %d has no final part", start)
		}
		off := d.off
		if err := d.count(off); err != nil {
			return Value{}, err
		}
		c := d.b[off]
		if c == TagEmpty {
			d.off++
			continue
		}
		if c < 0x80 || c >= 0xE4 {
			return Value{}, d.fail(off, ErrSyntax, "0x%02X inside the continued byte sequence from offset %d", c, start)
		}
		a, err := d.atom()
		if err != nil {
			return Value{}, err
		}
		if a.v.kind != KindBytes {
			return Value{}, d.fail(off, ErrSyntax, "integer inside the continued byte sequence from offset %d", start)
		}
		if len(joined)+len(a.v.bytes) > MaxAtomLen {
			return Value{}, d.fail(off, ErrSyntax, "continued byte sequence longer than %d bytes", MaxAtomLen)
		}
		joined = append(joined, a.v.bytes...)
		if !a.continued {
			return Value{kind: KindBytes, bytes: joined}, nil
		}
	}
}

// item turns token t, and for lists and names the tokens that follow it,
// into a Value. depth is the nesting level t is at.
func (d *decoder) item(t rawToken, depth int) (Value, error) {
	switch t.tag {
	case 0:
		return t.atom, nil
	case TagStartList:
		if depth >= d.lim.MaxDepth {
			return Value{}, d.fail(t.off, ErrTooDeep, "more than %d levels", d.lim.MaxDepth)
		}
		items := []Value{}
		for {
			u, err := d.token()
			if err != nil {
				return Value{}, err
			}
			switch {
			case u.end:
				return Value{}, d.fail(u.off, ErrTruncated, "list from offset %d not closed", t.off)
			case u.tag == TagEndList:
				return Value{kind: KindList, items: items}, nil
			case u.tag == TagEndName:
				return Value{}, d.fail(u.off, ErrUnbalanced, "EndName closes the list from offset %d", t.off)
			case u.tag >= TagCall:
				return Value{}, d.fail(u.off, ErrSyntax, "control token 0x%02X inside a list", u.tag)
			}
			v, err := d.item(u, depth+1)
			if err != nil {
				return Value{}, err
			}
			items = append(items, v)
		}
	case TagStartName:
		if depth >= d.lim.MaxDepth {
			return Value{}, d.fail(t.off, ErrTooDeep, "more than %d levels", d.lim.MaxDepth)
		}
		name, err := d.token()
		if err != nil {
			return Value{}, err
		}
		if name.end {
			return Value{}, d.fail(name.off, ErrTruncated, "named value from offset %d has no name", t.off)
		}
		if name.tag != 0 {
			return Value{}, d.fail(name.off, ErrSyntax, "name must be an atom, not 0x%02X", name.tag)
		}
		val, err := d.token()
		if err != nil {
			return Value{}, err
		}
		switch {
		case val.end:
			return Value{}, d.fail(val.off, ErrTruncated, "named value from offset %d has no value", t.off)
		case val.tag != 0 && val.tag != TagStartList && val.tag != TagStartName:
			return Value{}, d.fail(val.off, ErrSyntax, "0x%02X where the value of the name at offset %d belongs", val.tag, t.off)
		}
		v, err := d.item(val, depth+1)
		if err != nil {
			return Value{}, err
		}
		end, err := d.token()
		if err != nil {
			return Value{}, err
		}
		switch {
		case end.end:
			return Value{}, d.fail(end.off, ErrTruncated, "named value from offset %d not closed", t.off)
		case end.tag != TagEndName:
			return Value{}, d.fail(end.off, ErrSyntax, "named value from offset %d holds more than one value", t.off)
		}
		return Value{kind: KindName, items: []Value{name.atom, v}}, nil
	case TagEndList, TagEndName:
		return Value{}, d.fail(t.off, ErrUnbalanced, "0x%02X with nothing open", t.tag)
	case TagCall:
		return Value{kind: KindCall}, nil
	case TagEndOfData:
		return Value{kind: KindEndOfData}, nil
	case TagEndOfSession:
		return Value{kind: KindEndOfSession}, nil
	case TagStartTransaction:
		return Value{kind: KindStartTransaction}, nil
	case TagEndTransaction:
		return Value{kind: KindEndTransaction}, nil
	}
	return Value{}, d.fail(t.off, ErrReserved, "0x%02X", t.tag)
}
