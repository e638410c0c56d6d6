package method

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/token"
)

// readGolden returns the bytes of a testdata/*.hex file: a first line "# where
// it comes from", then hex with any spacing; "#" starts a comment anywhere.
func readGolden(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("# ")) {
		t.Fatalf("%s: first line must be a # comment naming the source", path)
	}
	var sb strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var adminPIN = unhex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")

var sedutilHostProperties = PropertyList{
	{PropMaxComPacketSize, 2048}, {PropMaxPacketSize, 2028}, {PropMaxIndTokenSize, 1992},
	{PropMaxPackets, 1}, {PropMaxSubpackets, 1}, {PropMaxMethods, 1},
}

// goldenCalls are the testdata files holding a host's call, with the Call
// they hold and a check of the method-specific parser.
var goldenCalls = map[string]struct {
	call  Call
	check func(t *testing.T, c Call)
}{
	"startsession_admin1.hex": {
		NewStartSession(StartSessionParams{HostSessionID: 0x69, SPID: LockingSP, Write: true, HostChallenge: adminPIN, HostSigningAuthority: Admin(1)}),
		func(t *testing.T, c Call) {
			want := StartSessionParams{HostSessionID: 0x69, SPID: LockingSP, Write: true, HostChallenge: adminPIN, HostSigningAuthority: Admin(1)}
			if p, err := ParseStartSession(c); err != nil || !reflect.DeepEqual(p, want) {
				t.Errorf("ParseStartSession = %v, %v; want %v", p, err, want)
			}
		},
	},
	"startsession_anybody.hex": {
		NewStartSession(StartSessionParams{HostSessionID: 0x69, SPID: AdminSP}),
		func(t *testing.T, c Call) {
			want := StartSessionParams{HostSessionID: 0x69, SPID: AdminSP}
			if p, err := ParseStartSession(c); err != nil || !reflect.DeepEqual(p, want) {
				t.Errorf("ParseStartSession = %v, %v; want %v", p, err, want)
			}
		},
	},
	"properties_sedutil.hex": {
		NewProperties(sedutilHostProperties),
		func(t *testing.T, c Call) {
			if l, err := ParsePropertiesCall(c); err != nil || !reflect.DeepEqual(l, sedutilHostProperties) {
				t.Errorf("ParsePropertiesCall = %v, %v; want %v", l, err, sedutilHostProperties)
			}
		},
	},
	"get_msid_pin.hex": {
		NewGet(CPINMSID, Columns(3, 3)),
		func(t *testing.T, c Call) {
			cb, err := ParseGet(c)
			if err != nil || !cb.StartColumn.Equal(token.Uint(3)) || !cb.EndColumn.Equal(token.Uint(3)) || !cb.StartRow.IsZero() {
				t.Errorf("ParseGet = %+v, %v; want columns 3..3", cb, err)
			}
		},
	},
	"set_range1_locked.hex": {
		NewSet(LockingRange(1), token.Named(7, token.Bool(true)), token.Named(8, token.Bool(true))),
		func(t *testing.T, c Call) {
			where, values, err := ParseSet(c)
			if err != nil || !where.IsZero() || !values.Equal(token.List(token.Named(7, token.Uint(1)), token.Named(8, token.Uint(1)))) {
				t.Errorf("ParseSet = %v, %v, %v", where, values, err)
			}
		},
	},
	"revertsp_keep.hex": {
		NewRevertSP(true),
		func(t *testing.T, c Call) {
			if v, ok := c.Arg(ParamKeepGlobalRangeKey); !ok || !v.Equal(token.Uint(1)) {
				t.Errorf("KeepGlobalRangeKey = %v, %v", v, ok)
			}
		},
	},
	"authenticate_user1.hex": {
		NewAuthenticate(User(1), []byte("pass")),
		func(t *testing.T, c Call) {
			a, proof, err := ParseAuthenticate(c)
			if err != nil || a != User(1) || string(proof) != "pass" {
				t.Errorf("ParseAuthenticate = %v, %q, %v", a, proof, err)
			}
		},
	},
}

// goldenResults are the testdata files holding a TPer's response.
var goldenResults = map[string]struct {
	result Result
	check  func(t *testing.T, r Result)
}{
	"syncsession.hex": {
		SyncSessionResult(0x69, 0x1001),
		func(t *testing.T, r Result) {
			if hsn, tsn, err := ParseSyncSession(r); err != nil || hsn != 0x69 || tsn != 0x1001 {
				t.Errorf("ParseSyncSession = %#x, %#x, %v; want 0x69, 0x1001", hsn, tsn, err)
			}
		},
	},
	"syncsession_not_authorized.hex": {
		FailedSessionResult(StatusNotAuthorized),
		func(t *testing.T, r Result) {
			if _, _, err := ParseSyncSession(r); !errors.Is(err, StatusNotAuthorized) {
				t.Errorf("ParseSyncSession error = %v; want NOT_AUTHORIZED", err)
			}
		},
	},
	"status_only_locked_out.hex": {
		Result{Status: StatusAuthorityLockedOut},
		func(t *testing.T, r Result) {
			if _, _, err := ParseSyncSession(r); !errors.Is(err, StatusAuthorityLockedOut) {
				t.Errorf("ParseSyncSession error = %v; want AUTHORITY_LOCKED_OUT", err)
			}
		},
	},
	"get_msid_pin_result.hex": {
		Result{Values: []token.Value{token.List(token.Named(3, token.Text("MSID0123456789AB")))}},
		func(t *testing.T, r Result) {
			v, ok := r.Column(3)
			if b, err := v.AsBytes(); !ok || err != nil || string(b) != "MSID0123456789AB" {
				t.Errorf("Column(3) = %v, %v", v, ok)
			}
		},
	},
	"end_of_session.hex": {
		Result{NoStatus: true, EndOfSession: true},
		func(t *testing.T, r Result) {
			if err := r.Err(); !errors.Is(err, ErrEndOfSession) {
				t.Errorf("Err() = %v; want ErrEndOfSession", err)
			}
		},
	},
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.hex: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			in := readGolden(t, f)
			gc, isCall := goldenCalls[name]
			gr, isResult := goldenResults[name]
			if !isCall && !isResult {
				t.Fatalf("no goldenCalls or goldenResults entry for %s", name)
			}
			if isCall {
				enc, err := gc.call.Encode()
				if err != nil || !bytes.Equal(enc, in) {
					t.Fatalf("%v.Encode() = %x, %v; want %x", gc.call, enc, err, in)
				}
				c, err := ParseCall(in)
				if err != nil || !callEqual(c, gc.call) {
					t.Fatalf("ParseCall(%x) = %v %v, %v; want %v %v", in, c, token.List(c.Args...), err, gc.call, token.List(gc.call.Args...))
				}
				gc.check(t, c)
			}
			if isResult {
				enc, err := gr.result.Encode()
				if err != nil {
					t.Fatal(err)
				}
				r, err := ParseResult(in)
				if err != nil || !resultEqual(r, gr.result) {
					t.Fatalf("ParseResult(%x) = %+v, %v; want %+v", in, r, err, gr.result)
				}
				gr.check(t, r)
				// A status-only response re-encodes with an empty result list.
				if name == "status_only_locked_out.hex" {
					in = append([]byte{0xF0, 0xF1}, in...)
				}
				if !bytes.Equal(enc, in) {
					t.Fatalf("Encode(%+v) = %x; want %x", gr.result, enc, in)
				}
			}
		})
	}
	if n := len(goldenCalls) + len(goldenResults); n != len(files) {
		t.Errorf("%d testdata files, %d golden entries", len(files), n)
	}
}

func callEqual(a, b Call) bool {
	return a.Invoking == b.Invoking && a.Method == b.Method && token.List(a.Args...).Equal(token.List(b.Args...))
}

func resultEqual(a, b Result) bool {
	return a.HasCall == b.HasCall && a.Invoking == b.Invoking && a.Method == b.Method &&
		a.Status == b.Status && a.NoStatus == b.NoStatus && a.EndOfSession == b.EndOfSession &&
		token.List(a.Values...).Equal(token.List(b.Values...))
}
