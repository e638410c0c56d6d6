package method

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/token"
)

func TestMethodStatus(t *testing.T) {
	tests := []struct {
		s    MethodStatus
		want string
	}{
		{StatusSuccess, "SUCCESS (0x00)"},
		{StatusNotAuthorized, "NOT_AUTHORIZED (0x01)"},
		{StatusObsolete02, "OBSOLETE (0x02)"},
		{StatusSPBusy, "SP_BUSY (0x03)"},
		{StatusSPFailed, "SP_FAILED (0x04)"},
		{StatusSPDisabled, "SP_DISABLED (0x05)"},
		{StatusSPFrozen, "SP_FROZEN (0x06)"},
		{StatusNoSessionsAvailable, "NO_SESSIONS_AVAILABLE (0x07)"},
		{StatusUniquenessConflict, "UNIQUENESS_CONFLICT (0x08)"},
		{StatusInsufficientSpace, "INSUFFICIENT_SPACE (0x09)"},
		{StatusInsufficientRows, "INSUFFICIENT_ROWS (0x0A)"},
		{StatusInvalidFunction, "INVALID_FUNCTION (0x0B)"},
		{StatusInvalidParameter, "INVALID_PARAMETER (0x0C)"},
		{StatusInvalidReference, "INVALID_REFERENCE (0x0D)"},
		{StatusObsolete0E, "OBSOLETE (0x0E)"},
		{StatusTPerMalfunction, "TPER_MALFUNCTION (0x0F)"},
		{StatusTransactionFailure, "TRANSACTION_FAILURE (0x10)"},
		{StatusResponseOverflow, "RESPONSE_OVERFLOW (0x11)"},
		{StatusAuthorityLockedOut, "AUTHORITY_LOCKED_OUT (0x12)"},
		{StatusFail, "FAIL (0x3F)"},
		{MethodStatus(0x20), "UNKNOWN (0x20)"},
	}
	for _, tt := range tests {
		if got := tt.s.Error(); got != tt.want {
			t.Errorf("MethodStatus(%d).Error() = %q; want %q", tt.s, got, tt.want)
		}
	}
	err := fmt.Errorf("unlock range 1: %w", fmt.Errorf("session: %w", StatusNotAuthorized))
	if !errors.Is(err, StatusNotAuthorized) || errors.Is(err, StatusSPBusy) {
		t.Errorf("errors.Is through wrapping failed for %v", err)
	}
	var st MethodStatus
	if !errors.As(err, &st) || st != StatusNotAuthorized {
		t.Errorf("errors.As = %v", st)
	}
	if StatusSuccess.Err() != nil || !errors.Is(StatusFail.Err(), StatusFail) {
		t.Errorf("Err() wrong")
	}
	if StatusNotAuthorized.Is(errors.New("NOT_AUTHORIZED (0x01)")) {
		t.Errorf("Is matched a non-status error")
	}
	for _, s := range []MethodStatus{StatusNotAuthorized, StatusSPBusy, StatusNoSessionsAvailable, StatusAuthorityLockedOut} {
		if s.Hint() == "" {
			t.Errorf("%v has no hint", s)
		}
	}
	if StatusSuccess.Hint() != "" {
		t.Errorf("SUCCESS has a hint")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	return unhex(strings.Join(strings.Fields(s), ""))
}

const (
	hSMUID    = "A8 00000000000000FF"
	hSync     = "A8 000000000000FF03"
	hStatusOK = "F9 F0 00 00 00 F1"
)

func TestParseResult(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Result
	}{
		{"plain", "F0 01 F1 " + hStatusOK, Result{Values: []token.Value{token.Uint(1)}}},
		{"empty results", "F0 F1 " + hStatusOK, Result{Values: []token.Value{}}},
		{"no result list", hStatusOK, Result{}},
		{"status with eos", "F0 F1 F9 F0 03 00 00 F1 FA", Result{Values: []token.Value{}, Status: StatusSPBusy, EndOfSession: true}},
		{"extra eos", "F0 F1 " + hStatusOK + " FA FA FA", Result{Values: []token.Value{}, EndOfSession: true}},
		{"lone eos", "FA", Result{NoStatus: true, EndOfSession: true}},
		{"two eos", "FA FA", Result{NoStatus: true, EndOfSession: true}},
		{"reserved status fields set", "F0 F1 F9 F0 01 07 08 F1", Result{Values: []token.Value{}, Status: StatusNotAuthorized}},
		{"status as wide int", "F0 F1 F9 F0 82 00 12 00 00 F1", Result{Values: []token.Value{}, Status: StatusAuthorityLockedOut}},
		{"call header", "F8 " + hSMUID + " " + hSync + " F0 81 69 01 F1 " + hStatusOK,
			Result{HasCall: true, Invoking: SMUID, Method: SyncSession, Values: []token.Value{token.Uint(0x69), token.Uint(1)}}},
		{"call header without list", "F8 " + hSMUID + " " + hSync + " F9 F0 01 00 00 F1",
			Result{HasCall: true, Invoking: SMUID, Method: SyncSession, Status: StatusNotAuthorized}},
		{"result is a list of lists", "F0 F0 F1 F0 F1 F1 " + hStatusOK, Result{Values: []token.Value{token.List(), token.List()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustHex(t, tt.in)
			got, err := ParseResult(in)
			if err != nil || !resultEqual(got, tt.want) {
				t.Fatalf("ParseResult(%x) = %+v, %v; want %+v", in, got, err, tt.want)
			}
		})
	}
}

func TestParseResultErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"truncated", "F0 A5", token.ErrTruncated},
		{"no status list", "F0 F1 F9", ErrMalformed},
		{"no eod", "F0 F1 F0 00 00 00 F1", ErrMalformed},
		{"status list short", "F0 F1 F9 F0 00 00 F1", ErrMalformed},
		{"status list long", "F0 F1 F9 F0 00 00 00 00 F1", ErrMalformed},
		{"status not int", "F0 F1 F9 F0 A1 00 00 00 F1", ErrMalformed},
		{"reserved not int", "F0 F1 F9 F0 00 F0 F1 00 F1", ErrMalformed},
		{"status too big", "F0 F1 F9 F0 82 01 00 00 00 F1", ErrMalformed},
		{"status negative", "F0 F1 F9 F0 7F 00 00 F1", ErrMalformed},
		{"status not list", "F0 F1 F9 00", ErrMalformed},
		{"trailing after status", "F0 F1 " + hStatusOK + " 00", ErrMalformed},
		{"two result lists", "F0 F1 F0 F1 " + hStatusOK, ErrMalformed},
		{"call header cut", "F8 " + hSMUID, ErrMalformed},
		{"call header bad uid", "F8 A1 00 " + hSync + " F0 F1 " + hStatusOK, ErrMalformed},
		{"call header bad method", "F8 " + hSMUID + " 05 F0 F1 " + hStatusOK, ErrMalformed},
		{"eos in the middle", "F0 F1 FA " + hStatusOK, ErrMalformed},
		{"transaction", "FB 00 F0 F1 " + hStatusOK, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustHex(t, tt.in)
			got, err := ParseResult(in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseResult(%x) = %+v, %v; want %v", in, got, err, tt.want)
			}
		})
	}
	var de *token.DecodeError
	if _, err := ParseResult(mustHex(t, "F0 A5")); !errors.As(err, &de) || de.Offset != 1 {
		t.Errorf("ParseResult of a truncated stream: %v; want a *token.DecodeError at offset 1", err)
	}
}

func TestParseCall(t *testing.T) {
	get := "F8 A8 0000080200030001 A8 0000000600000016 F0 F0 F1 F1 "
	good := []struct {
		in   string
		want Call
	}{
		{get + hStatusOK, NewCall(LockingRange(1), Get, token.List())},
		{get + "F9 F0 05 00 00 F1", NewCall(LockingRange(1), Get, token.List())},
		{"FF " + get + hStatusOK + " FF", NewCall(LockingRange(1), Get, token.List())},
	}
	for _, tt := range good {
		in := mustHex(t, tt.in)
		if got, err := ParseCall(in); err != nil || !callEqual(got, tt.want) {
			t.Errorf("ParseCall(%x) = %v, %v; want %v", in, got, err, tt.want)
		}
	}
	if _, err := ParseCall([]byte{0xFA}); !errors.Is(err, ErrEndOfSession) {
		t.Errorf("ParseCall(FA) = %v; want ErrEndOfSession", err)
	}
	bad := []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrMalformed},
		{"truncated", "F8 A8 00", token.ErrTruncated},
		{"no status list", get + "F9", ErrMalformed},
		{"no call", "00 " + get[3:] + hStatusOK, ErrMalformed},
		{"short uid", "F8 A4 00000802 A8 0000000600000016 F0 F1 " + hStatusOK, ErrMalformed},
		{"int method", "F8 A8 0000080200030001 16 F0 F1 " + hStatusOK, ErrMalformed},
		{"params not list", "F8 A8 0000080200030001 A8 0000000600000016 00 " + hStatusOK, ErrMalformed},
		{"no eod", get + "00 F0 00 00 00 F1", ErrMalformed},
		{"bad status list", get + "F9 F0 00 00 F1", ErrMalformed},
		{"two calls", get + hStatusOK + " " + get + hStatusOK, ErrMalformed},
		{"eos and more", "FA FA", ErrMalformed},
	}
	for _, tt := range bad {
		in := mustHex(t, tt.in)
		if got, err := ParseCall(in); !errors.Is(err, tt.want) {
			t.Errorf("%s: ParseCall(%x) = %v, %v; want %v", tt.name, in, got, err, tt.want)
		}
	}
}

func TestCallHelpers(t *testing.T) {
	c := NewCall(ThisSP, Authenticate, User(1).Value(), token.Named(0, token.Text("pw")), token.Named(5, token.Uint(1)))
	if got := c.String(); got != "ThisSP.Authenticate" {
		t.Errorf("String() = %q", got)
	}
	if got := NewCall(mk(0x1234, 5), MethodID(mk(6, 0x999))).String(); got != "00001234:00000005.00000006:00000999" {
		t.Errorf("String() = %q", got)
	}
	if got := fmt.Sprintf("%v %+v", c, c); strings.Contains(got, "pw") {
		t.Errorf("formatted call %q shows its arguments", got)
	}
	if req := c.Required(); len(req) != 1 || !req[0].Equal(User(1).Value()) {
		t.Errorf("Required() = %v", req)
	}
	if req := NewCall(ThisSP, Random, token.Uint(1)).Required(); len(req) != 1 {
		t.Errorf("Required() = %v", req)
	}
	if v, ok := c.Arg(5); !ok || !v.Equal(token.Uint(1)) {
		t.Errorf("Arg(5) = %v, %v", v, ok)
	}
	if _, ok := c.Arg(1); ok {
		t.Errorf("Arg(1) found")
	}
	if _, err := NewCall(ThisSP, Random, token.Value{}).Encode(); err == nil {
		t.Errorf("Encode of a call with an invalid argument succeeded")
	}
	if _, err := (Result{Values: []token.Value{{}}}).Encode(); err == nil {
		t.Errorf("Encode of a result with an invalid value succeeded")
	}
	dst := []byte{1}
	if out, err := NewRandom(32).AppendTokens(dst); err != nil || out[0] != 1 || len(out) < 20 {
		t.Errorf("AppendTokens = %x, %v", out, err)
	}
}

func TestResultHelpers(t *testing.T) {
	row := Result{Values: []token.Value{token.List(token.Named(3, token.Uint(7)), token.Named(5, token.Uint(1)))}}
	if v, ok := row.Column(5); !ok || !v.Equal(token.Uint(1)) {
		t.Errorf("Column(5) = %v, %v", v, ok)
	}
	if _, ok := row.Column(4); ok {
		t.Errorf("Column(4) found")
	}
	flat := Result{Values: []token.Value{token.Named(3, token.Uint(7))}}
	if v, ok := flat.Column(3); !ok || !v.Equal(token.Uint(7)) {
		t.Errorf("flat Column(3) = %v, %v", v, ok)
	}
	if _, ok := (Result{Values: []token.Value{token.Uint(1)}}).Column(0); ok {
		t.Errorf("Column of a non-row result found something")
	}
	if _, err := (Result{Values: []token.Value{token.Uint(1)}}).Row(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Row() of [1] = %v", err)
	}

	if b, err := (Result{Values: []token.Value{token.Text("abc")}}).Bytes(); err != nil || string(b) != "abc" {
		t.Errorf("Bytes() = %q, %v", b, err)
	}
	for _, r := range []Result{{}, {Values: []token.Value{token.Uint(1)}}} {
		if _, err := r.Bytes(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Bytes() of %v = %v", r.Values, err)
		}
	}
	if ok, err := (Result{Values: []token.Value{token.Uint(1)}}).Bool(); err != nil || !ok {
		t.Errorf("Bool() = %v, %v", ok, err)
	}
	for _, r := range []Result{{}, {Values: []token.Value{token.Text("x")}}} {
		if _, err := r.Bool(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Bool() of %v = %v", r.Values, err)
		}
	}
	next := Result{Values: []token.Value{token.List(User(1).Value(), User(2).Value())}}
	if uids, err := next.UIDs(); err != nil || !reflect.DeepEqual(uids, []UID{User(1), User(2)}) {
		t.Errorf("UIDs() = %v, %v", uids, err)
	}
	for _, r := range []Result{{}, {Values: []token.Value{token.Uint(1)}}, {Values: []token.Value{token.List(token.Uint(1))}}} {
		if _, err := r.UIDs(); !errors.Is(err, ErrMalformed) {
			t.Errorf("UIDs() of %v = %v", r.Values, err)
		}
	}
}

func TestProperties(t *testing.T) {
	tper := PropertyList{{PropMaxComPacketSize, 65536}, {PropMaxResponseComPacketSize, 65536}, {PropMaxPacketSize, 65516}, {PropMaxSessions, 1}}
	host := sedutilHostProperties
	r := PropertiesResult(tper, host)
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseResult(b)
	if err != nil {
		t.Fatal(err)
	}
	gotT, gotH, err := ParsePropertiesResult(back)
	if err != nil || !reflect.DeepEqual(gotT, tper) || !reflect.DeepEqual(gotH, host) {
		t.Fatalf("ParsePropertiesResult = %v, %v, %v; want %v, %v", gotT, gotH, err, tper, host)
	}
	if v, ok := gotT.Get(PropMaxPacketSize); !ok || v != 65516 {
		t.Errorf("Get(MaxPacketSize) = %d, %v", v, ok)
	}
	if _, ok := gotT.Get("Nope"); ok {
		t.Errorf("Get(Nope) found")
	}

	// A drive that leaves out the host echo and adds odd entries (go-tcg-storage #116).
	odd := Result{HasCall: true, Invoking: SMUID, Method: Properties, Values: []token.Value{token.List(
		token.Pair(token.Text(PropMaxPackets), token.Uint(1)),
		token.Pair(token.Text("VendorBlob"), token.Text("x")),
		token.Pair(token.Uint(7), token.Uint(1)),
		token.Uint(3),
	)}}
	gotT, gotH, err = ParsePropertiesResult(odd)
	if err != nil || !reflect.DeepEqual(gotT, PropertyList{{PropMaxPackets, 1}}) || gotH != nil {
		t.Errorf("ParsePropertiesResult(odd) = %v, %v, %v", gotT, gotH, err)
	}

	bad := []Result{
		{Status: StatusFail, Values: []token.Value{}},
		{HasCall: true, Method: StartSession, Values: []token.Value{token.List()}},
		{Values: []token.Value{}},
		{Values: []token.Value{token.Uint(1)}},
		{Values: []token.Value{token.List(), token.Named(0, token.Uint(1))}},
	}
	for _, r := range bad {
		if _, _, err := ParsePropertiesResult(r); err == nil {
			t.Errorf("ParsePropertiesResult(%+v) succeeded", r)
		}
	}
	if _, _, err := ParsePropertiesResult(bad[0]); !errors.Is(err, StatusFail) {
		t.Errorf("failed Properties = %v; want FAIL", err)
	}

	if l, err := ParsePropertiesCall(NewProperties(nil)); err != nil || l == nil || len(l) != 0 {
		t.Errorf("ParsePropertiesCall(no host properties) = %v, %v", l, err)
	}
	for _, c := range []Call{
		NewCall(SMUID, StartSession),
		NewCall(SMUID, Properties, token.Uint(1)),
		NewCall(SMUID, Properties, token.Named(0, token.Uint(1))),
	} {
		if _, err := ParsePropertiesCall(c); !errors.Is(err, StatusInvalidParameter) {
			t.Errorf("ParsePropertiesCall(%v %v) = %v; want INVALID_PARAMETER", c, token.List(c.Args...), err)
		}
	}
}

func TestStartSession(t *testing.T) {
	full := StartSessionParams{
		HostSessionID: 0xFFFFFFFF, SPID: LockingSP, Write: true, HostChallenge: []byte{},
		HostExchangeAuthority: Admin(2), HostSigningAuthority: User(3),
		SessionTimeout: 30000, TransTimeout: 1000, InitialCredit: 4096,
	}
	c := NewStartSession(full)
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte{0xF2, 0x00, 0xA0, 0xF3}) {
		t.Errorf("empty HostChallenge not sent as a zero-length atom: %x", b)
	}
	back, err := ParseCall(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseStartSession(back)
	if err != nil || !reflect.DeepEqual(got, full) {
		t.Fatalf("ParseStartSession = %#v, %v; want %#v", got, err, full)
	}
	s := fmt.Sprintf("%v %+v %#v %s", full, full, full, full)
	if strings.Contains(s, "[]") || !strings.Contains(s, "User3") {
		t.Errorf("StartSessionParams formats as %q", s)
	}
	secret := StartSessionParams{SPID: LockingSP, HostChallenge: []byte("hunter2")}
	if s := fmt.Sprintf("%v %+v %#v", secret, secret, secret); strings.Contains(s, "hunter2") || strings.Contains(s, "68756e746572") {
		t.Errorf("StartSessionParams reveals the challenge: %q", s)
	}

	args := func(extra ...token.Value) Call {
		a := append([]token.Value{token.Uint(1), LockingSP.Value(), token.Uint(1)}, extra...)
		return NewCall(SMUID, StartSession, a...)
	}
	bad := []Call{
		NewCall(SMUID, Properties),
		NewCall(SMUID, StartSession, token.Uint(1), LockingSP.Value()),
		NewCall(SMUID, StartSession, token.Uint(1<<32), LockingSP.Value(), token.Uint(1)),
		NewCall(SMUID, StartSession, token.Text("1"), LockingSP.Value(), token.Uint(1)),
		NewCall(SMUID, StartSession, token.Uint(1), token.Uint(2), token.Uint(1)),
		NewCall(SMUID, StartSession, token.Uint(1), LockingSP.Value(), token.Text("x")),
		NewCall(SMUID, StartSession, token.Uint(1), LockingSP.Value(), token.List()),
		args(token.Named(0, token.Uint(1))),
		args(token.Named(1, token.Uint(1))),
		args(token.Named(3, token.Text("short"))),
		args(token.Named(5, token.Text("x"))),
		args(token.Named(6, token.Uint(1<<33))),
		args(token.Named(7, token.List())),
		args(token.Named(2, token.Text("cert"))),
		args(token.Named(8, token.Text("hash"))),
		args(token.Pair(token.Text("x"), token.Uint(1))),
		args(token.Named(0, token.Text("pw")), token.Uint(1)),
	}
	for _, c := range bad {
		if p, err := ParseStartSession(c); !errors.Is(err, StatusInvalidParameter) {
			t.Errorf("ParseStartSession(%v) = %v, %v; want INVALID_PARAMETER", token.List(c.Args...), p, err)
		}
	}
}

func TestSessionResults(t *testing.T) {
	for _, r := range []Result{
		{HasCall: true, Method: Properties, Values: []token.Value{token.Uint(1), token.Uint(2)}},
		{Values: []token.Value{token.Uint(1)}},
		{Values: []token.Value{token.Uint(0), token.Uint(2)}},
		{Values: []token.Value{token.Uint(1), token.Uint(0)}},
		{Values: []token.Value{token.Text("a"), token.Uint(2)}},
		{Values: []token.Value{token.Uint(1), token.Uint(1 << 32)}},
		{NoStatus: true, EndOfSession: true},
	} {
		if _, _, err := ParseSyncSession(r); err == nil {
			t.Errorf("ParseSyncSession(%+v) succeeded", r)
		}
	}
	// No Call header, extra SyncSession parameters: accepted.
	r := Result{Values: []token.Value{token.Uint(5), token.Uint(6), token.Named(5, token.Uint(1))}}
	if hsn, tsn, err := ParseSyncSession(r); err != nil || hsn != 5 || tsn != 6 {
		t.Errorf("ParseSyncSession = %d, %d, %v", hsn, tsn, err)
	}

	b, err := CloseSessionResult(0x69, 0x1001).Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, "F8 A8 00000000000000FF A8 000000000000FF06 F0 81 69 82 10 01 F1 F9 F0 00 00 00 F1")
	if !bytes.Equal(b, want) {
		t.Errorf("CloseSessionResult = %x; want %x", b, want)
	}
	back, err := ParseResult(b)
	if err != nil {
		t.Fatal(err)
	}
	if hsn, tsn, err := ParseCloseSession(back); err != nil || hsn != 0x69 || tsn != 0x1001 {
		t.Errorf("ParseCloseSession = %d, %d, %v", hsn, tsn, err)
	}
	if _, _, err := ParseCloseSession(SyncSessionResult(1, 2)); err == nil {
		t.Errorf("ParseCloseSession(SyncSession) succeeded")
	}
	if !bytes.Equal(EndSession(), []byte{0xFA}) {
		t.Errorf("EndSession() = %x", EndSession())
	}
	if b, err := (Result{NoStatus: true}).Encode(); err != nil || !bytes.Equal(b, []byte{0xFA}) {
		t.Errorf("Result{NoStatus}.Encode() = %x, %v; want FA", b, err)
	}
	if (Result{}).Err() != nil {
		t.Errorf("Result{}.Err() != nil")
	}
}

func TestTableCalls(t *testing.T) {
	// Byte-table Get in the kernel's 0x7BD chunks.
	c := NewGet(MBR, Rows(0, 0x7BC))
	b, err := c.Encode()
	want := mustHex(t, "F8 A8 0000080400000000 A8 0000000600000016 F0 F0 F2 01 00 F3 F2 02 82 07 BC F3 F1 F1 F9 F0 00 00 00 F1")
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("NewGet(MBR, Rows(0, 0x7BC)) = %x, %v; want %x", b, err, want)
	}
	cb, err := ParseGet(c)
	if err != nil || !cb.Value().Equal(Rows(0, 0x7BC).Value()) {
		t.Errorf("ParseGet = %+v, %v", cb, err)
	}
	full := CellBlock{Table: MBR.Value(), StartRow: token.Uint(1), EndRow: token.Uint(2), StartColumn: token.Uint(3), EndColumn: token.Uint(4)}
	if cb, err := ParseCellBlock(full.Value()); err != nil || !cb.Value().Equal(full.Value()) {
		t.Errorf("ParseCellBlock(full) = %+v, %v", cb, err)
	}
	for _, c := range []Call{
		NewCall(MBR, Set, Rows(0, 1).Value()),
		NewCall(MBR, Get),
		NewCall(MBR, Get, token.Uint(1)),
		NewCall(MBR, Get, token.List(token.Uint(1))),
		NewCall(MBR, Get, token.List(token.Named(5, token.Uint(1)))),
		NewCall(MBR, Get, token.List(token.Pair(token.Text("startColumn"), token.Uint(1)))),
		NewCall(MBR, Get, token.List(token.Named(3, token.Uint(1)), token.Named(3, token.Uint(2)))),
	} {
		if _, err := ParseGet(c); !errors.Is(err, StatusInvalidParameter) {
			t.Errorf("ParseGet(%v %v) = %v; want INVALID_PARAMETER", c, token.List(c.Args...), err)
		}
	}

	sb := NewSetBytes(DataStore, 4096, []byte("data"))
	where, values, err := ParseSet(sb)
	if err != nil || !where.Equal(token.Uint(4096)) || !values.Equal(token.Text("data")) {
		t.Errorf("ParseSet(SetBytes) = %v, %v, %v", where, values, err)
	}
	for _, c := range []Call{
		NewCall(DataStore, Get),
		NewCall(DataStore, Set, token.Uint(1)),
		NewCall(DataStore, Set, token.Named(2, token.Uint(1))),
		NewCall(DataStore, Set, token.Named(0, token.Uint(1)), token.Named(0, token.Uint(2))),
		NewCall(DataStore, Set, token.Pair(token.Text("Where"), token.Uint(1))),
	} {
		if _, _, err := ParseSet(c); !errors.Is(err, StatusInvalidParameter) {
			t.Errorf("ParseSet(%v) = %v; want INVALID_PARAMETER", token.List(c.Args...), err)
		}
	}

	if a, proof, err := ParseAuthenticate(NewAuthenticate(Admin(1), nil)); err != nil || a != Admin(1) || proof != nil {
		t.Errorf("ParseAuthenticate(no proof) = %v, %x, %v", a, proof, err)
	}
	for _, c := range []Call{
		NewCall(ThisSP, Get),
		NewCall(ThisSP, Authenticate),
		NewCall(ThisSP, Authenticate, token.Uint(1)),
		NewCall(ThisSP, Authenticate, Admin(1).Value(), token.Named(1, token.Text("x"))),
		NewCall(ThisSP, Authenticate, Admin(1).Value(), token.Named(0, token.Uint(1))),
		NewCall(ThisSP, Authenticate, Admin(1).Value(), token.Named(0, token.Text("a")), token.Named(0, token.Text("b"))),
	} {
		if _, _, err := ParseAuthenticate(c); !errors.Is(err, StatusInvalidParameter) {
			t.Errorf("ParseAuthenticate(%v) = %v; want INVALID_PARAMETER", token.List(c.Args...), err)
		}
	}

	calls := []struct {
		c    Call
		want string
	}{
		{NewNext(LockingTable, UID{}, 0), "F8 A8 0000080200000000 A8 0000000600000008 F0 F1 " + hStatusOK},
		{NewNext(LockingTable, GlobalRange, 2), "F8 A8 0000080200000000 A8 0000000600000008 F0 F2 00 A8 0000080200000001 F3 F2 01 02 F3 F1 " + hStatusOK},
		{NewRandom(32), "F8 A8 0000000000000001 A8 0000000600000601 F0 20 F1 " + hStatusOK},
		{NewRevertSP(false), "F8 A8 0000000000000001 A8 0000000600000011 F0 F1 " + hStatusOK},
		{NewCall(LockingSP, Activate), "F8 A8 0000020500000002 A8 0000000600000203 F0 F1 " + hStatusOK},
		{NewCall(KAES256(1), GenKey), "F8 A8 0000080600030001 A8 0000000600000010 F0 F1 " + hStatusOK},
	}
	for _, tt := range calls {
		b, err := tt.c.Encode()
		if want := mustHex(t, tt.want); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%v.Encode() = %x, %v; want %x", tt.c, b, err, want)
		}
	}
}

func TestBooleanExpr(t *testing.T) {
	// PROTOCOL.md 1.7: newer kernels write "Admin1 OR UserN".
	v := AnyOf(Admin(1), User(1))
	b, err := token.Encode(v)
	want := mustHex(t, `F0 F2 A4 00000C05 A8 0000000900010001 F3 F2 A4 00000C05 A8 0000000900030001 F3
		F2 A4 0000040E 01 F3 F1`)
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("AnyOf(Admin1, User1) = %x, %v; want %x", b, err, want)
	}
	terms, err := ParseBooleanExpr(v)
	wantTerms := []ACETerm{AuthorityTerm(Admin(1)), AuthorityTerm(User(1)), OpTerm(Or)}
	if err != nil || !reflect.DeepEqual(terms, wantTerms) {
		t.Errorf("ParseBooleanExpr = %v, %v; want %v", terms, err, wantTerms)
	}
	has := func(set ...UID) func(UID) bool {
		return func(u UID) bool {
			for _, s := range set {
				if s == u {
					return true
				}
			}
			return false
		}
	}
	evals := []struct {
		terms []ACETerm
		set   []UID
		want  bool
	}{
		{wantTerms, []UID{User(1)}, true},
		{wantTerms, []UID{Admin(1)}, true},
		{wantTerms, []UID{User(2)}, false},
		{[]ACETerm{AuthorityTerm(User(1))}, []UID{User(1)}, true},
		{[]ACETerm{AuthorityTerm(Admin(1)), AuthorityTerm(User(1)), OpTerm(And)}, []UID{User(1)}, false},
		{[]ACETerm{AuthorityTerm(Admin(1)), AuthorityTerm(User(1)), OpTerm(And)}, []UID{User(1), Admin(1)}, true},
		{nil, []UID{User(1)}, false},
	}
	for _, tt := range evals {
		if got, err := EvalBooleanExpr(tt.terms, has(tt.set...)); err != nil || got != tt.want {
			t.Errorf("EvalBooleanExpr(%v, %v) = %v, %v; want %v", tt.terms, tt.set, got, err, tt.want)
		}
	}
	for _, terms := range [][]ACETerm{
		{OpTerm(Or)},
		{AuthorityTerm(User(1)), OpTerm(Or)},
		{AuthorityTerm(User(1)), AuthorityTerm(User(2))},
		{AuthorityTerm(User(1)), AuthorityTerm(User(2)), OpTerm(BoolOp(7))},
	} {
		if _, err := EvalBooleanExpr(terms, has()); !errors.Is(err, StatusInvalidParameter) {
			t.Errorf("EvalBooleanExpr(%v) = %v; want INVALID_PARAMETER", terms, err)
		}
	}
	for _, v := range []token.Value{
		token.Uint(1),
		token.List(token.Uint(1)),
		token.List(token.Named(1, User(1).Value())),
		token.List(token.Pair(token.Text("abcd"), User(1).Value())),
		token.List(token.Pair(HalfAuthorityObjectRef.Value(), token.Uint(1))),
		token.List(token.Pair(HalfBooleanACE.Value(), token.Uint(2))),
		token.List(token.Pair(HalfBooleanACE.Value(), token.Text("x"))),
	} {
		if _, err := ParseBooleanExpr(v); !errors.Is(err, StatusInvalidParameter) {
			t.Errorf("ParseBooleanExpr(%v) = %v; want INVALID_PARAMETER", v, err)
		}
	}
	if AnyOf().Kind() != token.KindList || len(AnyOf().Items()) != 0 {
		t.Errorf("AnyOf() = %v", AnyOf())
	}
	if And.String() != "AND" || Or.String() != "OR" || BoolOp(9).String() != "BoolOp(9)" {
		t.Errorf("BoolOp strings")
	}
}
