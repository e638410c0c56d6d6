package session

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// TestTraceRedacts runs the calls that carry credentials through a Client
// with a trace and checks that the decoded trace never shows them, while
// the raw trace does (so the test would notice a PIN that never went out).
func TestTraceRedacts(t *testing.T) {
	f := newFake(t)
	msid := []byte("MSID-0123456789-ABCDEF")
	f.onCall = func(c method.Call) method.Result {
		if c.Method == method.Get && c.Invoking == method.CPINMSID {
			return method.Result{Values: []token.Value{token.List(token.Named(3, token.Bytes(msid)))}}
		}
		if c.Method == method.Authenticate {
			return method.Result{Values: []token.Value{token.Bool(true)}}
		}
		return method.Result{Values: []token.Value{}}
	}
	var raw [][]byte
	var out bytes.Buffer
	var d TraceDecoder
	hook := d.Hook(&out)
	c := NewClient(f, &Options{Trace: func(dir string, proto uint8, spsp uint16, data []byte) {
		raw = append(raw, bytes.Clone(data))
		hook(dir, proto, spsp, data)
	}})
	ctx := testCtx(t)
	newPIN := bytes.Repeat([]byte{0x5A}, 32)
	proof := bytes.Repeat([]byte{0x6B}, 32)
	s := startAdmin1(t, c)
	calls := []method.Call{
		method.NewSet(method.CPINUser(1), token.Named(3, token.Bytes(newPIN))),
		method.NewAuthenticate(method.User(1), proof),
		method.NewCall(method.LockingSP, method.Activate, token.Named(method.ParamAdmin1PIN, token.Bytes(newPIN))),
		method.NewGet(method.CPINMSID, method.Columns(3, 3)),
		method.NewSet(method.LockingRange(1), token.Named(7, token.Bool(false))),
	}
	for _, call := range calls {
		if _, err := s.Call(ctx, call); err != nil {
			t.Fatal(err)
		}
	}
	s.Close(ctx)

	text := out.String()
	all := bytes.Join(raw, nil)
	for name, secret := range map[string][]byte{"admin1 PIN": admin1PIN, "new PIN": newPIN, "proof": proof, "MSID": msid} {
		if !bytes.Contains(all, secret) {
			t.Errorf("%s never went over the wire; the test is broken", name)
		}
		for _, form := range []string{hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)), string(secret), hex.EncodeToString(secret[:8])} {
			if strings.Contains(text, form) {
				t.Errorf("decoded trace shows the %s:\n%s", name, text)
			}
		}
	}
	for _, want := range []string{
		"Call SMUID.StartSession [105 LockingSP 1 0=[REDACTED 32 bytes] 3=Admin1]",
		"Call C_PIN_User1.Set [1=[3=[REDACTED 32 bytes]]]",
		"Call ThisSP.Authenticate [User1 0=[REDACTED 32 bytes]]",
		"Call LockingSP.Activate [0x60002=[REDACTED 32 bytes]]",
		"[[3=[REDACTED 22 bytes]]] EndOfData [0 0 0]",
		"Call Locking_Range1.Set [1=[7=0]]",
		"TSN 4097 HSN 105: EndOfSession",
		"Level 0 discovery: SSC",
		"Call SMUID.SyncSession [105 4097] EndOfData [0 0 0]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("decoded trace lacks %q:\n%s", want, text)
		}
	}
}

func TestTraceDecodeStates(t *testing.T) {
	var d TraceDecoder
	for _, tc := range []struct {
		dir   string
		proto uint8
		spsp  uint16
		data  string
		want  string
	}{
		{DirRecv, 1, 0x1004, "0000000010040000000000010000000000000000", "empty, response not ready (OutstandingData 1)"},
		{DirRecv, 1, 0x1004, "0000000010040000000000010000100000000000", "response needs 4096 bytes (MinTransfer)"},
		{DirRecv, 1, 0x1004, "0000000010040000000000000000000000000000", "empty, nothing queued"},
		{DirSend, 2, 0x1004, "1004000000000002", "STACK_RESET ComID 0x1004"},
		{DirRecv, 2, 0x1004, "100400000000000200000000", "STACK_RESET pending"},
		{DirRecv, 2, 0x1004, "10040000000000020000000400000000", "STACK_RESET answer: 00000000"},
		{DirRecv, 2, 0x0000, "10040000", "GET_COMID: ComID 0x1004"},
		{DirRecv, 1, 0x1004, "00", "undecodable ComPacket"},
	} {
		b, _ := hex.DecodeString(tc.data)
		if got := d.Decode(tc.dir, tc.proto, tc.spsp, b); !strings.Contains(got, tc.want) {
			t.Errorf("Decode(%s %x) = %q; want it to contain %q", tc.dir, b, got, tc.want)
		}
	}
}

// FuzzTraceDecode: the decoder sees whatever a drive sends; it must never
// panic.
func FuzzTraceDecode(f *testing.F) {
	for _, file := range []string{"startsession_admin1.hex", "set_range1_locked.hex", "get_msid_pin.hex", "end_session.hex"} {
		f.Add(uint8(1), uint16(0x1004), readGolden(f, "testdata/"+file))
	}
	f.Add(uint8(1), uint16(1), []byte{0, 0, 0, 0x10})
	f.Add(uint8(2), uint16(0x1004), []byte{0x10, 0x04, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, proto uint8, spsp uint16, data []byte) {
		var d TraceDecoder
		d.Decode(DirSend, proto, spsp, data)
		d.Decode(DirRecv, proto, spsp, data)
	})
}
