package sedctl

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// Raw method calls (sedutil --objDump and --rawCmd). Values are written one
// argument each:
//
//	42            unsigned integer
//	-5, +5        signed integer
//	true, false   1 and 0
//	0x0a0b, hex:0a0b   bytes, in hex
//	text:hello    bytes, the text's
//	uid:Locking_Range1, uid:0000080200030001   an 8-byte UID
//	N=VALUE       a named value (N an integer): an optional parameter or a column
//	[ ... ]       a list (the brackets are arguments of their own; N=[ opens a named list)
//	tokens:HEX    values encoded as TCG tokens, in hex (sedutil's plist; a
//	              single outer list is the parameter list itself)

// parseValues parses raw value arguments.
func parseValues(args []string) ([]token.Value, error) {
	vals, _, err := parseSeq(args, false)
	return vals, err
}

// parseSeq parses values until the end or, inList, a "]" (consumed), and
// returns what follows.
func parseSeq(args []string, inList bool) ([]token.Value, []string, error) {
	out := []token.Value{}
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		if a == "]" {
			if !inList {
				return nil, nil, usageError(errors.New("unexpected ]: no list to close"))
			}
			return out, args, nil
		}
		var name *uint64
		if n, v, ok := strings.Cut(a, "="); ok && isUint(n) {
			u, _ := strconv.ParseUint(n, 0, 64)
			name, a = &u, v
		}
		var v []token.Value
		if a == "[" {
			items, rest, err := parseSeq(args, true)
			if err != nil {
				return nil, nil, err
			}
			args = rest
			v = []token.Value{token.List(items...)}
		} else {
			var err error
			if v, err = parseAtom(a); err != nil {
				return nil, nil, err
			}
		}
		if name != nil {
			if len(v) != 1 {
				return nil, nil, usageError(fmt.Errorf("%d=: a named value holds one value", *name))
			}
			v = []token.Value{token.Named(*name, v[0])}
		}
		out = append(out, v...)
	}
	if inList {
		return nil, nil, usageError(errors.New("list not closed: add a ] argument"))
	}
	return out, nil, nil
}

func isUint(s string) bool {
	_, err := strconv.ParseUint(s, 0, 64)
	return err == nil
}

func parseAtom(a string) ([]token.Value, error) {
	low := strings.ToLower(a)
	switch {
	case low == "true":
		return []token.Value{token.Bool(true)}, nil
	case low == "false":
		return []token.Value{token.Bool(false)}, nil
	case strings.HasPrefix(low, "0x"), strings.HasPrefix(low, "hex:"):
		h := a[strings.IndexAny(a, "xX:")+1:]
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, usageError(fmt.Errorf("%q: bad hex", a))
		}
		return []token.Value{token.Bytes(b)}, nil
	case strings.HasPrefix(low, "text:"):
		return []token.Value{token.Text(a[5:])}, nil
	case strings.HasPrefix(low, "uid:"):
		u, err := method.ParseUID(a[4:])
		if err != nil {
			return nil, usageError(fmt.Errorf("%q: %v", a, err))
		}
		return []token.Value{u.Value()}, nil
	case strings.HasPrefix(low, "tokens:"):
		b, err := hex.DecodeString(strings.ReplaceAll(a[7:], " ", ""))
		if err != nil {
			return nil, usageError(fmt.Errorf("%q: bad hex", a))
		}
		vs, err := token.Decode(b)
		if err != nil {
			return nil, usageError(fmt.Errorf("%q: %v", a, err))
		}
		for _, v := range vs {
			if v.Kind().IsMarker() {
				return nil, usageError(fmt.Errorf("%q: holds a %v token; give only the parameters", a, v.Kind()))
			}
		}
		if len(vs) == 1 && vs[0].Kind() == token.KindList {
			return vs[0].Items(), nil
		}
		return vs, nil
	case a != "" && (a[0] == '-' || a[0] == '+'):
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return nil, usageError(fmt.Errorf("%q: not a signed integer", a))
		}
		return []token.Value{token.Int(n)}, nil
	}
	n, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return nil, usageError(fmt.Errorf("value %q: want a number, true/false, 0xHEX, text:..., uid:..., N=VALUE, [ ... ] or tokens:HEX", a))
	}
	return []token.Value{token.Uint(n)}, nil
}

// tokenJSON renders a token value for --json: integers as numbers, bytes
// as {"hex": ..., "text": ... (when printable)}, lists as arrays, named
// values as {"name": ..., "value": ...}, markers as {"marker": ...}.
func tokenJSON(v token.Value) any {
	switch v.Kind() {
	case token.KindUint:
		u, _ := v.AsUint()
		return u
	case token.KindInt:
		i, _ := v.AsInt()
		return i
	case token.KindBytes:
		b, _ := v.AsBytes()
		m := map[string]string{"hex": hex.EncodeToString(b)}
		if printable(b) {
			m["text"] = string(b)
		}
		return m
	case token.KindList:
		out := []any{}
		for _, it := range v.Items() {
			out = append(out, tokenJSON(it))
		}
		return out
	case token.KindName:
		n, val, _ := v.NameValue()
		return map[string]any{"name": tokenJSON(n), "value": tokenJSON(val)}
	}
	return map[string]string{"marker": v.Kind().String()}
}

// parseSP reads an SP: 0/admin, 1/locking, or a UID.
func parseSP(s string) (method.UID, error) {
	switch strings.ToLower(s) {
	case "0", "admin", "adminsp":
		return method.AdminSP, nil
	case "1", "locking", "lockingsp":
		return method.LockingSP, nil
	}
	u, err := method.ParseUID(s)
	if err != nil {
		return u, usageError(fmt.Errorf("SP %q: want 0 (admin), 1 (locking) or a UID", s))
	}
	return u, nil
}

type rawResult struct {
	Device    string `json:"device"`
	SP        string `json:"sp"`
	Authority string `json:"authority"`
	Invoking  string `json:"invoking"`
	Method    string `json:"method"`
	Status    string `json:"status"`
	Values    []any  `json:"values"`
}

func rawOut(e *env, d *device, sp, obj method.UID, m method.MethodID, a opal.Auth, r method.Result, callErr error) error {
	out := rawResult{Device: d.spec, SP: sp.String(), Authority: authName(a.Authority), Invoking: obj.String(), Method: m.String(),
		Status: r.Status.Name(), Values: []any{}}
	for _, v := range r.Values {
		out.Values = append(out.Values, tokenJSON(v))
	}
	if callErr != nil {
		var st method.MethodStatus
		if !errors.As(callErr, &st) {
			return e.explain(d, a, callErr)
		}
		out.Status = st.Name()
	}
	if err := e.emit(out, func(w io.Writer) error {
		fmt.Fprintf(w, "%s.%s as %s: %s\n", obj, m, out.Authority, out.Status)
		if row, err := r.Row(); err == nil && len(row.Items()) > 0 {
			t := newTable("COLUMN", "VALUE")
			for _, it := range row.Items() {
				if n, v, ok := it.NameValue(); ok {
					t.add(n.String(), v.String())
				} else {
					t.add("", it.String())
				}
			}
			return t.write(w)
		}
		for _, v := range r.Values {
			fmt.Fprintln(w, v.String())
		}
		return nil
	}); err != nil {
		return err
	}
	return e.explain(d, a, callErr)
}

// cmdRawGet is sedutil --objDump: Get of every column of OBJECT.
func cmdRawGet(e *env, args []string) error {
	sp, err := parseSP(args[0])
	if err != nil {
		return err
	}
	who, err := parseAuthority(args[1])
	if err != nil {
		return err
	}
	obj, err := method.ParseUID(args[2])
	if err != nil {
		return usageError(fmt.Errorf("object %q: %v", args[2], err))
	}
	d, err := e.openDevice(args[3])
	if err != nil {
		return err
	}
	a, err := e.login(d, who)
	if err != nil {
		return err
	}
	r, err := opal.Get(e.ctx, d.c, sp, a, obj, method.CellBlock{})
	return rawOut(e, d, sp, obj, method.Get, a, r, err)
}

// cmdRawSet sets columns: raw set SP AUTH OBJECT COL=VALUE... DEV.
func cmdRawSet(e *env, args []string) error {
	sp, err := parseSP(args[0])
	if err != nil {
		return err
	}
	who, err := parseAuthority(args[1])
	if err != nil {
		return err
	}
	obj, err := method.ParseUID(args[2])
	if err != nil {
		return usageError(fmt.Errorf("object %q: %v", args[2], err))
	}
	cols, err := parseValues(args[3 : len(args)-1])
	if err != nil {
		return err
	}
	for _, c := range cols {
		if c.Kind() != token.KindName {
			return usageError(fmt.Errorf("raw set takes COLUMN=VALUE arguments; %v is not one", c))
		}
	}
	d, err := e.openDevice(args[len(args)-1])
	if err != nil {
		return err
	}
	a, err := e.login(d, who)
	if err != nil {
		return err
	}
	r, err := opal.Call(e.ctx, d.c, sp, a, true, method.NewSet(obj, cols...))
	return rawOut(e, d, sp, obj, method.Set, a, r, err)
}

// cmdRawCall is sedutil --rawCmd: any method, in a read-write session.
func cmdRawCall(e *env, args []string) error {
	sp, err := parseSP(args[0])
	if err != nil {
		return err
	}
	who, err := parseAuthority(args[1])
	if err != nil {
		return err
	}
	inv, err := method.ParseUID(args[2])
	if err != nil {
		return usageError(fmt.Errorf("invoking UID %q: %v", args[2], err))
	}
	m, err := method.ParseMethodID(args[3])
	if err != nil {
		return usageError(fmt.Errorf("method %q: %v", args[3], err))
	}
	params, err := parseValues(args[4 : len(args)-1])
	if err != nil {
		return err
	}
	d, err := e.openDevice(args[len(args)-1])
	if err != nil {
		return err
	}
	a, err := e.login(d, who)
	if err != nil {
		return err
	}
	r, err := opal.Call(e.ctx, d.c, sp, a, true, method.NewCall(inv, m, params...))
	return rawOut(e, d, sp, inv, m, a, r, err)
}
