package method

import (
	"github.com/shiftlock/shiftlock/tcg/token"
)

// Parameter names of the table and SP methods (PROTOCOL.md 1.8, 1.11, 1.15).
const (
	// CellBlock, Get's only parameter
	CellTable       = 0
	CellStartRow    = 1
	CellEndRow      = 2
	CellStartColumn = 3
	CellEndColumn   = 4

	// Set
	ParamWhere  = 0 // byte-table offset (or row)
	ParamValues = 1 // column list, or the bytes for a byte table

	// Next
	ParamNextWhere = 0 // row to start after
	ParamNextCount = 1

	// Authenticate, after the required authority
	ParamProof = 0

	// RevertSP
	ParamKeepGlobalRangeKey = 0x060000

	// Activate and Reactivate (Single User Mode)
	ParamSingleUserModeSelectionList = 0x060000
	ParamRangeStartRangeLengthPolicy = 0x060001
	ParamAdmin1PIN                   = 0x060002
)

// A CellBlock selects the cells a Get returns. Zero fields are omitted;
// object tables take columns, byte tables take rows (byte offsets,
// inclusive).
type CellBlock struct {
	Table       token.Value
	StartRow    token.Value
	EndRow      token.Value
	StartColumn token.Value
	EndColumn   token.Value
}

// Columns selects columns start..end (inclusive) of an object.
func Columns(start, end uint64) CellBlock {
	return CellBlock{StartColumn: token.Uint(start), EndColumn: token.Uint(end)}
}

// Rows selects bytes start..end (inclusive) of a byte table.
func Rows(start, end uint64) CellBlock {
	return CellBlock{StartRow: token.Uint(start), EndRow: token.Uint(end)}
}

func (cb *CellBlock) fields() [5]*token.Value {
	return [5]*token.Value{&cb.Table, &cb.StartRow, &cb.EndRow, &cb.StartColumn, &cb.EndColumn}
}

// Value returns the CellBlock as a list of named values, in name order.
func (cb CellBlock) Value() token.Value {
	var items []token.Value
	for n, f := range cb.fields() {
		if !f.IsZero() {
			items = append(items, token.Named(uint64(n), *f))
		}
	}
	return token.List(items...)
}

// ParseCellBlock reads a CellBlock list. Errors wrap StatusInvalidParameter.
func ParseCellBlock(v token.Value) (CellBlock, error) {
	items, err := v.AsList()
	if err != nil {
		return CellBlock{}, invalid("CellBlock: %v", err)
	}
	var cb CellBlock
	f := cb.fields()
	for _, it := range items {
		name, val, ok := it.NameValue()
		if !ok {
			return CellBlock{}, invalid("CellBlock item %v is not a named value", it.Kind())
		}
		n, err := uint32Of(name)
		if err != nil || n >= uint32(len(f)) {
			return CellBlock{}, invalid("CellBlock name %v", name)
		}
		if !f[n].IsZero() {
			return CellBlock{}, invalid("CellBlock name %d given twice", n)
		}
		*f[n] = val
	}
	return cb, nil
}

// NewGet returns the Get call of cells cb of object or table obj.
func NewGet(obj UID, cb CellBlock) Call { return NewCall(obj, Get, cb.Value()) }

// ParseGet returns the CellBlock of a Get call. Errors wrap
// StatusInvalidParameter.
func ParseGet(c Call) (CellBlock, error) {
	if c.Method != Get {
		return CellBlock{}, invalid("%v is not Get", c)
	}
	if len(c.Args) != 1 {
		return CellBlock{}, invalid("Get with %d parameters; want one CellBlock", len(c.Args))
	}
	return ParseCellBlock(c.Args[0])
}

// NewSet returns the Set call of columns on object obj; each column is a
// token.Named(column, value).
func NewSet(obj UID, columns ...token.Value) Call {
	return NewCall(obj, Set, token.Named(ParamValues, token.List(columns...)))
}

// NewSetBytes returns the Set call that writes data at offset of byte table
// table (MBR, DataStore). data must fit the TPer's MaxIndTokenSize as one
// atom.
func NewSetBytes(table UID, offset uint64, data []byte) Call {
	return NewCall(table, Set, token.Named(ParamWhere, token.Uint(offset)), token.Named(ParamValues, token.Bytes(data)))
}

// ParseSet returns the Where and Values parameters of a Set call; either may
// be the zero Value if absent. For an object Values is the column list, for
// a byte table Where is the offset and Values the bytes. Errors wrap
// StatusInvalidParameter.
func ParseSet(c Call) (where, values token.Value, err error) {
	if c.Method != Set {
		return token.Value{}, token.Value{}, invalid("%v is not Set", c)
	}
	for _, a := range c.Args {
		name, v, ok := a.NameValue()
		if !ok {
			return token.Value{}, token.Value{}, invalid("Set parameter %v is not a named value", a.Kind())
		}
		n, err := uint32Of(name)
		switch {
		case err == nil && n == ParamWhere && where.IsZero():
			where = v
		case err == nil && n == ParamValues && values.IsZero():
			values = v
		default:
			return token.Value{}, token.Value{}, invalid("Set parameter name %v", name)
		}
	}
	return where, values, nil
}

// NewAuthenticate returns the call that authenticates authority within the
// current session (invoked on ThisSP); a nil proof is omitted. The result is
// [ bool ]: a wrong PIN gives SUCCESS with false (see [Result.Bool]).
func NewAuthenticate(authority UID, proof []byte) Call {
	c := NewCall(ThisSP, Authenticate, authority.Value())
	if proof != nil {
		c.Args = append(c.Args, token.Named(ParamProof, token.Bytes(proof)))
	}
	return c
}

// ParseAuthenticate returns the authority and proof (nil if absent) of an
// Authenticate call. Errors wrap StatusInvalidParameter.
func ParseAuthenticate(c Call) (authority UID, proof []byte, err error) {
	if c.Method != Authenticate {
		return UID{}, nil, invalid("%v is not Authenticate", c)
	}
	req := c.Required()
	if len(req) != 1 {
		return UID{}, nil, invalid("Authenticate with %d required parameters; want the authority", len(req))
	}
	if authority, err = UIDFromValue(req[0]); err != nil {
		return UID{}, nil, invalid("Authenticate authority: %v", err)
	}
	for _, a := range c.Args[1:] {
		name, v, ok := a.NameValue()
		if n, err := uint32Of(name); !ok || err != nil || n != ParamProof || proof != nil {
			return UID{}, nil, invalid("Authenticate parameter %v", a)
		}
		if proof, err = v.AsBytes(); err != nil {
			return UID{}, nil, invalid("Authenticate proof: %v", err)
		}
	}
	return authority, proof, nil
}

// NewNext returns the Next call on table: up to count rows (0 = all) after
// row where (zero UID = from the start). The result is [ [ uid ... ] ]
// (see [Result.UIDs]).
func NewNext(table, where UID, count uint64) Call {
	c := NewCall(table, Next)
	if !where.IsZero() {
		c.Args = append(c.Args, token.Named(ParamNextWhere, where.Value()))
	}
	if count != 0 {
		c.Args = append(c.Args, token.Named(ParamNextCount, token.Uint(count)))
	}
	return c
}

// NewRandom returns the Random call for count bytes (at most 32 in Opal); the
// result is [ bytes ].
func NewRandom(count uint64) Call { return NewCall(ThisSP, Random, token.Uint(count)) }

// NewRevertSP returns the RevertSP call (inside a Locking SP session as an
// Admin). With keepGlobalRangeKey the global range's media key, and so its
// data, survives. The TPer aborts the session afterwards.
func NewRevertSP(keepGlobalRangeKey bool) Call {
	c := NewCall(ThisSP, RevertSP)
	if keepGlobalRangeKey {
		c.Args = []token.Value{token.Named(ParamKeepGlobalRangeKey, token.Bool(true))}
	}
	return c
}
