package method

import (
	"errors"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/token"
)

// ErrMalformed is wrapped by errors about token streams that decode but do
// not have the shape of a method call or result.
var ErrMalformed = errors.New("method: malformed call or result")

// ErrEndOfSession reports a stream that holds only EndOfSession: from a host,
// the end of its session ([ParseCall]); from a TPer, the session is over
// ([Result.Err]).
var ErrEndOfSession = errors.New("method: session ended (EndOfSession)")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// A Call is one method invocation (Core 3.2.4.1, PROTOCOL.md 1.5).
type Call struct {
	Invoking UID
	Method   MethodID
	// Args are the parameters: required ones first, in order, then optional
	// ones as named values (token.Named).
	Args []token.Value
}

// NewCall returns the call of method m on object inv with args.
func NewCall(inv UID, m MethodID, args ...token.Value) Call {
	return Call{Invoking: inv, Method: m, Args: args}
}

// String returns "Invoking.Method" with friendly names where known, without
// the arguments (which may hold credentials).
func (c Call) String() string {
	inv, m := c.Invoking.Name(), c.Method.Name()
	if inv == "" {
		inv = c.Invoking.Hex()
	}
	if m == "" {
		m = c.Method.Hex()
	}
	return inv + "." + m
}

// AppendTokens appends the call's token stream to dst:
//
//	Call <Invoking> <Method> [ Args ] EndOfData [ 0 0 0 ]
//
// The trailing list is the status list a host sends (expected status 0, two
// reserved zeros).
func (c Call) AppendTokens(dst []byte) ([]byte, error) {
	e := token.NewEncoder(dst)
	e.Call()
	e.Bytes(c.Invoking[:])
	e.Bytes(c.Method[:])
	e.StartList()
	for _, a := range c.Args {
		e.Value(a)
	}
	e.EndList()
	e.EndOfData()
	e.StartList()
	e.Uint(0)
	e.Uint(0)
	e.Uint(0)
	e.EndList()
	out, err := e.Finish()
	if err != nil {
		return dst, fmt.Errorf("method: encode %v: %w", c, err)
	}
	return out, nil
}

// Encode returns the call's token stream (see [Call.AppendTokens]).
func (c Call) Encode() ([]byte, error) { return c.AppendTokens(nil) }

// Required returns the leading arguments that are not named values.
func (c Call) Required() []token.Value {
	for i, a := range c.Args {
		if a.Kind() == token.KindName {
			return c.Args[:i]
		}
	}
	return c.Args
}

// Arg returns the optional argument with integer name n.
func (c Call) Arg(n uint64) (token.Value, bool) {
	return token.List(c.Args...).Lookup(n)
}

// ParseCall parses the token stream a host sends to invoke one method (what
// [Call.Encode] writes). The status list after EndOfData must be a list of
// integers; its values are not checked. A stream that is a lone
// EndOfSession returns [ErrEndOfSession]. Transactions are not supported.
func ParseCall(b []byte) (Call, error) {
	vs, err := token.Decode(b)
	if err != nil {
		return Call{}, fmt.Errorf("method: parse call: %w", err)
	}
	if len(vs) == 1 && vs[0].Kind() == token.KindEndOfSession {
		return Call{}, ErrEndOfSession
	}
	if len(vs) != 6 {
		return Call{}, malformed("call of %d top-level tokens; want Call, invoking UID, method UID, parameter list, EndOfData, status list", len(vs))
	}
	if vs[0].Kind() != token.KindCall {
		return Call{}, malformed("call starts with %v, not Call", vs[0].Kind())
	}
	var c Call
	if c.Invoking, err = UIDFromValue(vs[1]); err != nil {
		return Call{}, malformed("invoking UID: %v", err)
	}
	if c.Method, err = MethodIDFromValue(vs[2]); err != nil {
		return Call{}, malformed("method UID: %v", err)
	}
	if c.Args, err = vs[3].AsList(); err != nil {
		return Call{}, malformed("%v parameters: %v", c, err)
	}
	if vs[4].Kind() != token.KindEndOfData {
		return Call{}, malformed("%v: %v after the parameters, not EndOfData", c, vs[4].Kind())
	}
	if err := checkStatusList(vs[5]); err != nil {
		return Call{}, malformed("%v: %v", c, err)
	}
	return c, nil
}

// checkStatusList checks v is a status list of three integers and returns the
// status.
func checkStatusList(v token.Value) error {
	_, err := statusOf(v)
	return err
}

func statusOf(v token.Value) (MethodStatus, error) {
	items, err := v.AsList()
	if err != nil {
		return 0, fmt.Errorf("status list: %w", err)
	}
	if len(items) != 3 {
		return 0, fmt.Errorf("status list of %d items; want 3", len(items))
	}
	var st uint64
	for i, it := range items {
		if it.Kind() != token.KindUint && it.Kind() != token.KindInt {
			return 0, fmt.Errorf("status list item %d is a %v", i, it.Kind())
		}
		if i == 0 {
			if st, err = it.AsUint(); err != nil || st > 0xFF {
				return 0, fmt.Errorf("status %v out of range", it)
			}
		}
	}
	return MethodStatus(st), nil
}

// A Result is a method's response (Core 3.2.4.2, PROTOCOL.md 1.5):
//
//	[ Call <Invoking> <Method> ] [ Values ] EndOfData [ Status 0 0 ] [ EndOfSession ]
//
// Session Manager responses carry the Call header (HasCall). A response
// that is only EndOfSession has NoStatus set.
type Result struct {
	HasCall  bool // the response repeats a Call header (Session Manager methods)
	Invoking UID  // with HasCall
	Method   MethodID
	Values   []token.Value // the items of the result list
	Status   MethodStatus
	// NoStatus marks a response without a status list: a lone EndOfSession
	// from the TPer. Encoding such a Result writes only EndOfSession.
	NoStatus bool
	// EndOfSession marks a response that ends with (or is) EndOfSession: the
	// TPer closed the session.
	EndOfSession bool
}

// Err returns nil for a successful result, the [MethodStatus] for a failed
// one, and [ErrEndOfSession] for a response without a status list.
func (r Result) Err() error {
	if r.NoStatus {
		return ErrEndOfSession
	}
	return r.Status.Err()
}

// AppendTokens appends the result's token stream to dst (the TPer side).
func (r Result) AppendTokens(dst []byte) ([]byte, error) {
	e := token.NewEncoder(dst)
	if !r.NoStatus {
		if r.HasCall {
			e.Call()
			e.Bytes(r.Invoking[:])
			e.Bytes(r.Method[:])
		}
		e.StartList()
		for _, v := range r.Values {
			e.Value(v)
		}
		e.EndList()
		e.EndOfData()
		e.StartList()
		e.Uint(uint64(r.Status))
		e.Uint(0)
		e.Uint(0)
		e.EndList()
	}
	if r.EndOfSession || r.NoStatus {
		e.EndOfSession()
	}
	out, err := e.Finish()
	if err != nil {
		return dst, fmt.Errorf("method: encode result: %w", err)
	}
	return out, nil
}

// Encode returns the result's token stream (see [Result.AppendTokens]).
func (r Result) Encode() ([]byte, error) { return r.AppendTokens(nil) }

// ParseResult parses a method's response. The status list must come last
// (apart from EndOfSession tokens) and hold exactly three integers, as
// sedutil and the kernel require; the Call header and the result list are
// optional, since drives answer failed Session Manager calls with or
// without them. A stream that is only EndOfSession gives NoStatus. An empty
// stream is an error.
func ParseResult(b []byte) (Result, error) {
	vs, err := token.Decode(b)
	if err != nil {
		return Result{}, fmt.Errorf("method: parse result: %w", err)
	}
	var r Result
	for len(vs) > 0 && vs[len(vs)-1].Kind() == token.KindEndOfSession {
		r.EndOfSession = true
		vs = vs[:len(vs)-1]
	}
	if len(vs) == 0 {
		if !r.EndOfSession {
			return Result{}, malformed("empty response")
		}
		r.NoStatus = true
		return r, nil
	}
	i := 0
	if vs[0].Kind() == token.KindCall {
		if len(vs) < 3 {
			return Result{}, malformed("Call header without invoking and method UIDs")
		}
		if r.Invoking, err = UIDFromValue(vs[1]); err != nil {
			return Result{}, malformed("result's invoking UID: %v", err)
		}
		if r.Method, err = MethodIDFromValue(vs[2]); err != nil {
			return Result{}, malformed("result's method UID: %v", err)
		}
		r.HasCall = true
		i = 3
	}
	if i < len(vs) && vs[i].Kind() == token.KindList && i+2 < len(vs) {
		r.Values = vs[i].Items()
		i++
	}
	if len(vs)-i != 2 || vs[i].Kind() != token.KindEndOfData {
		return Result{}, malformed("result does not end with EndOfData and a status list")
	}
	if r.Status, err = statusOf(vs[i+1]); err != nil {
		return Result{}, malformed("%v", err)
	}
	return r, nil
}

// Row returns the column list of a Get result on an object,
// "[ [ col=val ... ] ]", for [token.Value.Lookup]. Result lists that hold
// the named columns directly are accepted too.
func (r Result) Row() (token.Value, error) {
	if len(r.Values) == 1 && r.Values[0].Kind() == token.KindList {
		return r.Values[0], nil
	}
	for _, v := range r.Values {
		if v.Kind() != token.KindName {
			return token.Value{}, malformed("Get result %v is not a list of columns", token.List(r.Values...))
		}
	}
	return token.List(r.Values...), nil
}

// Column returns column n of a Get result on an object. ok is false if the
// result is not a column list or lacks the column (drives leave out columns
// the authority may not read).
func (r Result) Column(n uint64) (v token.Value, ok bool) {
	row, err := r.Row()
	if err != nil {
		return token.Value{}, false
	}
	return row.Lookup(n)
}

// Bytes returns the data of a Get result on a byte table, "[ bytes ]".
func (r Result) Bytes() ([]byte, error) {
	if len(r.Values) != 1 {
		return nil, malformed("byte-table Get result holds %d values; want 1", len(r.Values))
	}
	b, err := r.Values[0].AsBytes()
	if err != nil {
		return nil, malformed("byte-table Get result: %v", err)
	}
	return b, nil
}

// Bool returns the boolean of a result "[ bool ]", as Authenticate returns.
func (r Result) Bool() (bool, error) {
	if len(r.Values) != 1 {
		return false, malformed("result holds %d values; want one boolean", len(r.Values))
	}
	ok, err := r.Values[0].AsBool()
	if err != nil {
		return false, malformed("result: %v", err)
	}
	return ok, nil
}

// UIDs returns the UIDs of a Next result, "[ [ uid ... ] ]".
func (r Result) UIDs() ([]UID, error) {
	if len(r.Values) != 1 {
		return nil, malformed("Next result holds %d values; want one list", len(r.Values))
	}
	items, err := r.Values[0].AsList()
	if err != nil {
		return nil, malformed("Next result: %v", err)
	}
	out := make([]UID, 0, len(items))
	for _, it := range items {
		u, err := UIDFromValue(it)
		if err != nil {
			return nil, malformed("Next result: %v", err)
		}
		out = append(out, u)
	}
	return out, nil
}
