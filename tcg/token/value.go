package token

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kind says what a [Value] holds.
type Kind uint8

// Value kinds. KindInvalid is the zero Value, which encodes to an error.
const (
	KindInvalid          Kind = iota
	KindUint                  // unsigned integer atom
	KindInt                   // signed integer atom
	KindBytes                 // byte-sequence atom
	KindList                  // StartList ... EndList
	KindName                  // StartName name value EndName
	KindCall                  // Call token
	KindEndOfData             // EndOfData token
	KindEndOfSession          // EndOfSession token
	KindStartTransaction      // StartTransaction token (its status is the next Value)
	KindEndTransaction        // EndTransaction token (its status is the next Value)
)

var kindNames = [...]string{
	KindInvalid:          "invalid",
	KindUint:             "uint",
	KindInt:              "int",
	KindBytes:            "bytes",
	KindList:             "list",
	KindName:             "name",
	KindCall:             "Call",
	KindEndOfData:        "EndOfData",
	KindEndOfSession:     "EndOfSession",
	KindStartTransaction: "StartTransaction",
	KindEndTransaction:   "EndTransaction",
}

// String returns the kind's name ("uint", "list", "EndOfData", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// IsMarker reports whether k is one of the control tokens that stand alone
// in a stream: Call, EndOfData, EndOfSession, StartTransaction or
// EndTransaction.
func (k Kind) IsMarker() bool {
	return k >= KindCall && k <= KindEndTransaction
}

// A Value is one decoded item of a token stream: an atom, a list, a named
// value or a marker. The zero Value is invalid (KindInvalid). Values are
// immutable once built; byte sequences and list items are shared, not
// copied, so don't modify a slice passed to [Bytes] or [List] while the
// Value is in use.
type Value struct {
	kind  Kind
	num   uint64  // KindUint value, or KindInt as two's complement
	bytes []byte  // KindBytes
	items []Value // KindList items; KindName: [name, value]
}

// Uint returns an unsigned integer Value.
func Uint(v uint64) Value { return Value{kind: KindUint, num: v} }

// Int returns a signed integer Value. Signed atoms are rare in Opal; use
// [Uint] for counts, lengths, columns and booleans.
func Int(v int64) Value { return Value{kind: KindInt, num: uint64(v)} }

// Bool returns the unsigned integer 1 for true and 0 for false, the TCG
// boolean encoding.
func Bool(b bool) Value {
	if b {
		return Uint(1)
	}
	return Uint(0)
}

// Bytes returns a byte-sequence Value holding b (not a copy). A nil b is a
// zero-length byte sequence.
func Bytes(b []byte) Value {
	if b == nil {
		b = []byte{}
	}
	return Value{kind: KindBytes, bytes: b}
}

// Text returns a byte-sequence Value holding the bytes of s, as used for
// Session Manager property names ("MaxComPacketSize").
func Text(s string) Value { return Value{kind: KindBytes, bytes: []byte(s)} }

// List returns a list Value of items (the slice is kept, not copied).
func List(items ...Value) Value {
	if items == nil {
		items = []Value{}
	}
	return Value{kind: KindList, items: items}
}

// Named returns the named value "StartName name value EndName" with an
// unsigned integer name, the form Opal uses for optional parameters and
// table columns.
func Named(name uint64, v Value) Value { return Pair(Uint(name), v) }

// Pair returns the named value "StartName name value EndName" with any atom
// as name: byte strings for Session Manager properties and Enterprise
// parameters, half-UIDs in ACE BooleanExpr values.
func Pair(name, v Value) Value {
	return Value{kind: KindName, items: []Value{name, v}}
}

// Marker returns the Value for a marker kind (KindCall, KindEndOfData,
// KindEndOfSession, KindStartTransaction, KindEndTransaction), or the zero
// Value if k is not a marker kind.
func Marker(k Kind) Value {
	if !k.IsMarker() {
		return Value{}
	}
	return Value{kind: k}
}

// Kind returns the kind of v.
func (v Value) Kind() Kind { return v.kind }

// IsZero reports whether v is the zero (invalid) Value, for example an
// omitted optional field.
func (v Value) IsZero() bool { return v.kind == KindInvalid }

// A TypeError reports a Value of the wrong kind (or out of range) for what
// the caller asked.
type TypeError struct {
	Want string // what was asked for, e.g. "uint"
	Got  Value
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("token: %s is not a %s", e.Got.brief(), e.Want)
}

// AsUint returns the value of an integer that fits uint64. Following the
// robustness rule of PROTOCOL.md 1.4 it also accepts a non-negative signed
// integer, and a byte sequence of 1..8 bytes read as a big-endian number.
func (v Value) AsUint() (uint64, error) {
	switch v.kind {
	case KindUint:
		return v.num, nil
	case KindInt:
		if int64(v.num) >= 0 {
			return v.num, nil
		}
	case KindBytes:
		if n := len(v.bytes); n >= 1 && n <= 8 {
			var u uint64
			for _, c := range v.bytes {
				u = u<<8 | uint64(c)
			}
			return u, nil
		}
	}
	return 0, &TypeError{Want: "uint", Got: v}
}

// AsInt returns the value of an integer that fits int64: a signed integer,
// or an unsigned one up to math.MaxInt64.
func (v Value) AsInt() (int64, error) {
	switch v.kind {
	case KindInt:
		return int64(v.num), nil
	case KindUint:
		if v.num <= math.MaxInt64 {
			return int64(v.num), nil
		}
	}
	return 0, &TypeError{Want: "int", Got: v}
}

// AsBool returns an integer as a boolean: 0 is false, anything else true.
func (v Value) AsBool() (bool, error) {
	switch v.kind {
	case KindUint, KindInt:
		return v.num != 0, nil
	}
	return false, &TypeError{Want: "boolean", Got: v}
}

// AsBytes returns the content of a byte sequence (shared, not copied).
// Integers are not converted: a byte-typed column given as an integer is a
// protocol error the caller should see.
func (v Value) AsBytes() ([]byte, error) {
	if v.kind != KindBytes {
		return nil, &TypeError{Want: "byte sequence", Got: v}
	}
	return v.bytes, nil
}

// AsList returns the items of a list (shared, not copied).
func (v Value) AsList() ([]Value, error) {
	if v.kind != KindList {
		return nil, &TypeError{Want: "list", Got: v}
	}
	return v.items, nil
}

// Items returns the items of a list, or nil if v is not a list.
func (v Value) Items() []Value {
	if v.kind != KindList {
		return nil
	}
	return v.items
}

// NameValue returns the name and the value of a named value; ok is false if
// v is not a named value.
func (v Value) NameValue() (name, value Value, ok bool) {
	if v.kind != KindName {
		return Value{}, Value{}, false
	}
	return v.items[0], v.items[1], true
}

// Lookup returns the value of the first named item of list v whose name is
// the integer name, as in a Get result's column list or a method's optional
// parameters. ok is false if v is not a list or has no such item.
func (v Value) Lookup(name uint64) (value Value, ok bool) {
	for _, it := range v.Items() {
		if it.kind != KindName {
			continue
		}
		if n := it.items[0]; (n.kind == KindUint || n.kind == KindInt && int64(n.num) >= 0) && n.num == name {
			return it.items[1], true
		}
	}
	return Value{}, false
}

// LookupText is [Value.Lookup] for byte-string names, such as Session
// Manager property names.
func (v Value) LookupText(name string) (value Value, ok bool) {
	for _, it := range v.Items() {
		if it.kind != KindName {
			continue
		}
		if n := it.items[0]; n.kind == KindBytes && string(n.bytes) == name {
			return it.items[1], true
		}
	}
	return Value{}, false
}

// Equal reports whether v and w are the same value: same kind (an unsigned 5
// differs from a signed 5), same number or bytes, equal items.
func (v Value) Equal(w Value) bool {
	if v.kind != w.kind || v.num != w.num || string(v.bytes) != string(w.bytes) || len(v.items) != len(w.items) {
		return false
	}
	for i := range v.items {
		if !v.items[i].Equal(w.items[i]) {
			return false
		}
	}
	return true
}

// String formats v for people: unsigned integers in decimal, signed ones
// with a sign (+5, -5), byte sequences as "text" when printable and as 0x…
// hex otherwise, lists as [a b c], named values as name=value, markers by
// name. It prints byte sequences in full: don't log Values that may carry
// credentials (StartSession, Authenticate, Set of a C_PIN).
func (v Value) String() string {
	var sb strings.Builder
	v.format(&sb)
	return sb.String()
}

func (v Value) format(sb *strings.Builder) {
	switch v.kind {
	case KindUint:
		sb.WriteString(strconv.FormatUint(v.num, 10))
	case KindInt:
		if int64(v.num) >= 0 {
			sb.WriteByte('+')
		}
		sb.WriteString(strconv.FormatInt(int64(v.num), 10))
	case KindBytes:
		if printable(v.bytes) {
			sb.WriteString(strconv.Quote(string(v.bytes)))
		} else {
			sb.WriteString("0x")
			sb.WriteString(hex.EncodeToString(v.bytes))
		}
	case KindList:
		sb.WriteByte('[')
		for i, it := range v.items {
			if i > 0 {
				sb.WriteByte(' ')
			}
			it.format(sb)
		}
		sb.WriteByte(']')
	case KindName:
		v.items[0].format(sb)
		sb.WriteByte('=')
		v.items[1].format(sb)
	default:
		sb.WriteString(v.kind.String())
	}
}

// brief is String cut short, for error messages.
func (v Value) brief() string {
	s := v.kind.String()
	if v.kind != KindInvalid && !v.kind.IsMarker() {
		f := v.String()
		if len(f) > 40 {
			f = f[:37] + "..."
		}
		s += " " + f
	}
	return s
}

func printable(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
