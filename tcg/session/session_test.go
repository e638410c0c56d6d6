package session

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
	"github.com/shiftlock/shiftlock/tcg/token"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

var admin1PIN = hash.PIN(mustHex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"))

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startAdmin1(t *testing.T, c *Client) *Session {
	t.Helper()
	s, err := c.StartSession(testCtx(t), Params{SP: method.LockingSP, Write: true, Authority: method.Admin(1), Challenge: admin1PIN})
	if err != nil {
		t.Fatalf("StartSession: %v", err)
	}
	return s
}

// TestGoldenTransfers pins the exact IF-SEND transfers for the PROTOCOL.md
// examples: the ComPacket, then zeros to a 512-byte block.
func TestGoldenTransfers(t *testing.T) {
	f := newFake(t)
	c := NewClient(f, nil)
	ctx := testCtx(t)
	s := startAdmin1(t, c)
	if err := s.Set(ctx, method.LockingRange(1), token.Named(7, token.Bool(true)), token.Named(8, token.Bool(true))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, method.CPINMSID, method.Columns(3, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		m    method.MethodID
	}{
		{"startsession_admin1.hex", method.StartSession},
		{"set_range1_locked.hex", method.Set},
		{"get_msid_pin.hex", method.Get},
		{"end_session.hex", method.MethodID{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want := readGolden(t, "testdata/"+tc.file)
			sent := f.sentCalls(tc.m)
			if len(sent) != 1 {
				t.Fatalf("%d transfers sent; want 1", len(sent))
			}
			got := sent[0]
			if len(got) != 512 {
				t.Errorf("transfer of %d bytes; want 512 (padded)", len(got))
			}
			if !bytes.HasPrefix(got, want) {
				t.Errorf("sent\n%x\nwant\n%x", got[:min(len(got), len(want))], want)
			}
			if bytes.ContainsFunc(got[min(len(want), len(got)):], func(r rune) bool { return r != 0 }) {
				t.Errorf("padding not zero: %x", got[len(want):])
			}
		})
	}
}

func TestPropertiesOncePerClient(t *testing.T) {
	f := newFake(t)
	c := NewClient(f, nil)
	ctx := testCtx(t)
	for range 3 {
		s := startAdmin1(t, c)
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.sentCalls(method.Properties)); n != 1 {
		t.Errorf("Properties sent %d times; want 1", n)
	}
	p := c.Limits()
	if p.Fallback != nil || p.TPer.MaxComPacketSize != 2048 || p.Host.MaxComPacketSize != 65536 || p.TPer.MaxMethods != 1 {
		t.Errorf("Limits = %+v", p)
	}
	c.Renegotiate()
	s := startAdmin1(t, c)
	s.Close(ctx)
	if n := len(f.sentCalls(method.Properties)); n != 2 {
		t.Errorf("after Renegotiate, Properties sent %d times; want 2", n)
	}
}

func TestPropertiesFallback(t *testing.T) {
	failed, _ := method.Result{HasCall: true, Invoking: method.SMUID, Method: method.Properties, Values: []token.Value{}, Status: method.StatusFail}.Encode()
	short, _ := method.PropertiesResult(method.PropertyList{{Name: method.PropMaxComPacketSize, Value: 4096}}, nil).Encode()
	for _, tc := range []struct {
		name      string
		answer    []byte
		fallback  bool
		wantTPer  Limits
		wantHost  Limits
		errSubstr string
	}{
		{"status FAIL", failed, true, CoreMinimums, CoreMinimums, "FAIL"},
		{"garbage", []byte{0xF0, 0xF0}, true, CoreMinimums, CoreMinimums, "malformed"},
		{"only EndOfData", []byte{0xF9}, true, CoreMinimums, CoreMinimums, "malformed"},
		{"short list, no echo", short, false, func() Limits { l := CoreMinimums; l.MaxComPacketSize = 4096; return l }(), CoreMinimums, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.properties = func() []byte { return tc.answer }
			c := NewClient(f, nil)
			s := startAdmin1(t, c) // sessions work either way
			s.Close(testCtx(t))
			p := c.Limits()
			if (p.Fallback != nil) != tc.fallback {
				t.Fatalf("Fallback = %v; want fallback %v", p.Fallback, tc.fallback)
			}
			if p.Fallback != nil && !strings.Contains(p.Fallback.Error(), tc.errSubstr) {
				t.Errorf("Fallback = %v; want it to mention %q", p.Fallback, tc.errSubstr)
			}
			if p.TPer != tc.wantTPer || p.Host != tc.wantHost {
				t.Errorf("limits TPer %+v Host %+v; want %+v %+v", p.TPer, p.Host, tc.wantTPer, tc.wantHost)
			}
		})
	}
}

func TestNoProperties(t *testing.T) {
	f := newFake(t)
	c := NewClient(f, &Options{NoProperties: true})
	s := startAdmin1(t, c)
	s.Close(testCtx(t))
	if n := len(f.sentCalls(method.Properties)); n != 0 {
		t.Errorf("Properties sent %d times; want 0", n)
	}
	if p := c.Limits(); p.TPer != CoreMinimums || !errors.Is(p.Fallback, ErrNotExchanged) {
		t.Errorf("Limits = %+v", p)
	}
}

func TestPolling(t *testing.T) {
	f := newFake(t)
	f.notReady = 4
	c := NewClient(f, nil)
	s := startAdmin1(t, c)
	before := c.Stats()
	if err := s.Set(testCtx(t), method.LockingRange(1), token.Named(7, token.Bool(false))); err != nil {
		t.Fatal(err)
	}
	d := c.Stats()
	if got := d.Receives - before.Receives; got != 5 {
		t.Errorf("%d IF-RECVs for a response after 4 not-ready answers; want 5", got)
	}
	if got := d.Sends - before.Sends; got != 1 {
		t.Errorf("%d IF-SENDs; want 1", got)
	}
}

func TestMinTransferGrowsBuffer(t *testing.T) {
	f := newFake(t)
	big := bytes.Repeat([]byte{0xA5}, 100000)
	f.onCall = func(c method.Call) method.Result {
		return method.Result{Values: []token.Value{token.Bytes(big)}}
	}
	c := NewClient(f, nil)
	s := startAdmin1(t, c)
	r, err := s.Get(testCtx(t), method.MBR, method.Rows(0, uint64(len(big)-1)))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := r.Bytes(); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("Bytes = %d bytes, %v; want %d bytes", len(b), err, len(big))
	}
	last := f.allocs[len(f.allocs)-1]
	if last < len(big) || last%512 != 0 {
		t.Errorf("last IF-RECV allocation %d; want >= %d, a multiple of 512", last, len(big))
	}
}

func TestEmptyAnswer(t *testing.T) {
	f := newFake(t)
	c := NewClient(f, &Options{EmptyGrace: 20 * time.Millisecond})
	s := startAdmin1(t, c)
	// From now on the drive loses every request.
	s.c.t = &dropping{fakeTPer: f}
	start := time.Now()
	err := s.Set(testCtx(t), method.LockingRange(1), token.Named(7, token.Bool(false)))
	if !errors.Is(err, ErrNoResponse) {
		t.Fatalf("Set = %v; want ErrNoResponse", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// dropping is a drive that takes every IF-SEND and never answers.
type dropping struct{ *fakeTPer }

func (d *dropping) IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error {
	return nil
}

func TestTimeout(t *testing.T) {
	f := newFake(t)
	c := NewClient(f, &Options{Timeout: 50 * time.Millisecond})
	s := startAdmin1(t, c)
	f.notReady = 1 << 20
	err := s.Set(testCtx(t), method.LockingRange(1), token.Named(7, token.Bool(false)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set = %v; want a deadline error", err)
	}
	if !strings.Contains(err.Error(), "did not answer within 50ms") {
		t.Errorf("error %q does not say what timed out", err)
	}
	// The late answer to the Set is still queued: the next exchange
	// must not take it for its own.
	f.mu.Lock()
	f.notReady = 0
	for _, q := range f.queue {
		q.notReady = 0
	}
	f.mu.Unlock()
	n := 0
	f.onCall = func(c method.Call) method.Result {
		n++
		return method.Result{Values: []token.Value{token.Uint(uint64(100 + n))}}
	}
	r, err := s.Call(testCtx(t), method.NewRandom(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Values) != 1 {
		t.Fatalf("answer %v; want the Random's own", r.Values)
	}
	if v, _ := r.Values[0].AsUint(); v != 101 {
		t.Errorf("answer %v; want the Random's own (101), not the stale Set's", r.Values)
	}
}

func TestFailedStart(t *testing.T) {
	for _, st := range []method.MethodStatus{method.StatusNotAuthorized, method.StatusAuthorityLockedOut, method.StatusSPBusy} {
		t.Run(st.Name(), func(t *testing.T) {
			f := newFake(t)
			f.startStatus = st
			c := NewClient(f, nil)
			s, err := c.StartSession(testCtx(t), Params{SP: method.LockingSP, Write: true, Authority: method.Admin(1), Challenge: admin1PIN})
			if s != nil || !errors.Is(err, st) {
				t.Fatalf("StartSession = %v, %v; want nil, %v", s, err, st)
			}
			want := "start session on LockingSP as Admin1: " + st.Error()
			if err.Error() != want {
				t.Errorf("error %q; want %q", err, want)
			}
			if n := len(f.sentCalls(method.StartSession)); n != 1 {
				t.Errorf("StartSession sent %d times; want 1 (never retry)", n)
			}
			if n := len(f.sentCalls(method.MethodID{})); n != 0 {
				t.Errorf("EndOfSession sent %d times after a failed start", n)
			}
		})
	}
}

func TestCallError(t *testing.T) {
	f := newFake(t)
	f.onCall = func(c method.Call) method.Result {
		return method.Result{Values: []token.Value{}, Status: method.StatusNotAuthorized}
	}
	c := NewClient(f, nil)
	s := startAdmin1(t, c)
	err := s.Set(testCtx(t), method.LockingRange(1), token.Named(7, token.Bool(false)))
	if !errors.Is(err, method.StatusNotAuthorized) {
		t.Fatalf("Set = %v", err)
	}
	if want := "Set Locking_Range1: NOT_AUTHORIZED (0x01)"; err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
	if err := s.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.sentCalls(method.MethodID{})); n != 1 {
		t.Errorf("EndOfSession sent %d times; want 1", n)
	}
}

func TestSessionEndingCalls(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sp      method.UID
		call    method.Call
		status  method.MethodStatus
		wantEOS bool
	}{
		{"Revert own SP", method.AdminSP, method.NewCall(method.AdminSP, method.Revert), 0, false},
		{"Revert ThisSP", method.AdminSP, method.NewCall(method.ThisSP, method.Revert), 0, false},
		{"RevertSP", method.LockingSP, method.NewRevertSP(true), 0, false},
		{"Revert LockingSP from AdminSP", method.AdminSP, method.NewCall(method.LockingSP, method.Revert), 0, true},
		{"failed Revert", method.AdminSP, method.NewCall(method.AdminSP, method.Revert), method.StatusNotAuthorized, true},
		{"failed RevertSP", method.LockingSP, method.NewRevertSP(false), method.StatusFail, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.onCall = func(method.Call) method.Result { return method.Result{Values: []token.Value{}, Status: tc.status} }
			c := NewClient(f, nil)
			ctx := testCtx(t)
			s, err := c.StartSession(ctx, Params{SP: tc.sp, Write: true, Authority: method.SID, Challenge: admin1PIN})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Call(ctx, tc.call)
			if (err != nil) != (tc.status != 0) {
				t.Fatalf("Call = %v", err)
			}
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(f.sentCalls(method.MethodID{})); (n == 1) != tc.wantEOS || n > 1 {
				t.Errorf("EndOfSession sent %d times; want EOS %v", n, tc.wantEOS)
			}
			if _, err := s.Call(ctx, method.NewRandom(4)); !errors.Is(err, ErrSessionEnded) {
				t.Errorf("Call after the end = %v; want ErrSessionEnded", err)
			}
		})
	}
}

func TestEndOfSessionFromDrive(t *testing.T) {
	f := newFake(t)
	f.onCall = func(method.Call) method.Result { return method.Result{Values: []token.Value{}, EndOfSession: true} }
	c := NewClient(f, nil)
	s := startAdmin1(t, c)
	ctx := testCtx(t)
	if _, err := s.Call(ctx, method.NewRandom(4)); err != nil {
		t.Fatal(err)
	}
	if ok, why := s.Ended(); !ok || !strings.Contains(why, "EndOfSession") {
		t.Errorf("Ended = %v, %q", ok, why)
	}
	s.Close(ctx)
	if n := len(f.sentCalls(method.MethodID{})); n != 0 {
		t.Errorf("EndOfSession sent %d times to an ended session", n)
	}
}

func TestBatch(t *testing.T) {
	f := newFake(t)
	f.multi = true
	f.maxMethods = 4
	n := 0
	f.onCall = func(c method.Call) method.Result {
		n++
		return method.Result{Values: []token.Value{token.Uint(uint64(n))}}
	}
	c := NewClient(f, nil)
	s := startAdmin1(t, c)
	if got := s.BatchSize(); got != 4 {
		t.Fatalf("BatchSize = %d; want 4", got)
	}
	ctx := testCtx(t)
	before := c.Stats()
	var calls []method.Call
	for range 6 {
		calls = append(calls, method.NewRandom(1))
	}
	rs, err := s.Calls(ctx, calls...)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 6 {
		t.Fatalf("%d results", len(rs))
	}
	for i, r := range rs {
		if v, _ := r.Values[0].AsUint(); v != uint64(i+1) {
			t.Errorf("result %d = %v", i, r.Values)
		}
	}
	if d := c.Stats().Sends - before.Sends; d != 2 {
		t.Errorf("%d IF-SENDs for 6 calls in batches of 4; want 2", d)
	}

	// A failure stops the batch; the results before it are returned.
	f.onCall = func(c method.Call) method.Result {
		n++
		if n == 9 {
			return method.Result{Values: []token.Value{}, Status: method.StatusInvalidParameter}
		}
		return method.Result{Values: []token.Value{}}
	}
	rs, err = s.Calls(ctx, calls[:4]...)
	if !errors.Is(err, method.StatusInvalidParameter) || len(rs) != 3 {
		t.Errorf("Calls = %d results, %v; want 3 and INVALID_PARAMETER", len(rs), err)
	}
}

func TestTooLarge(t *testing.T) {
	f := newFake(t)
	c := NewClient(f, nil)
	s := startAdmin1(t, c)
	ctx := testCtx(t)
	sends := c.Stats().Sends
	// MaxIndTokenSize 1992: 1991 bytes in a medium atom (2-byte header)
	// are one too many.
	_, err := s.Call(ctx, method.NewSetBytes(method.MBR, 0, make([]byte, 1991)))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxIndTokenSize") {
		t.Errorf("Set 1991 bytes = %v; want ErrTooLarge (MaxIndTokenSize)", err)
	}
	// 1990 bytes fit the token limit, but not MaxComPacketSize 2048 with
	// the headers.
	_, err = s.Call(ctx, method.NewSetBytes(method.MBR, 0, make([]byte, 1990)))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxComPacketSize") {
		t.Errorf("Set 1990 bytes = %v; want ErrTooLarge (MaxComPacketSize)", err)
	}
	if d := c.Stats().Sends - sends; d != 0 {
		t.Errorf("%d IF-SENDs for requests that do not fit", d)
	}
	if _, err := s.Call(ctx, method.NewSetBytes(method.MBR, 0, make([]byte, 1900))); err != nil {
		t.Errorf("Set 1900 bytes: %v", err)
	}

	// Without Properties, the Core minimums: 1024-byte ComPackets.
	c2 := NewClient(newFake(t), &Options{NoProperties: true})
	s2 := startAdmin1(t, c2)
	if _, err := s2.Call(ctx, method.NewSetBytes(method.MBR, 0, make([]byte, 960))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Set 960 bytes with minimum limits = %v; want ErrTooLarge", err)
	}
}

func TestCheckTokens(t *testing.T) {
	for _, tc := range []struct {
		tok []byte
		max uint64
		ok  bool
	}{
		{[]byte{0x01, 0xF0, 0xF1}, 1, true},
		{[]byte{0xA8, 1, 2, 3, 4, 5, 6, 7, 8}, 9, true},
		{[]byte{0xA8, 1, 2, 3, 4, 5, 6, 7, 8}, 8, false},
		{append([]byte{0xD0, 0x20}, make([]byte, 32)...), 34, true},
		{append([]byte{0xD0, 0x20}, make([]byte, 32)...), 33, false},
		{append([]byte{0xD1, 0x00}, make([]byte, 256)...), 257, false},
		{append([]byte{0xE2, 0x00, 0x01, 0x00}, make([]byte, 256)...), 260, true},
		{append([]byte{0xE2, 0x00, 0x01, 0x00}, make([]byte, 256)...), 259, false},
	} {
		err := checkTokens(tc.tok, tc.max)
		if (err == nil) != tc.ok {
			t.Errorf("checkTokens(%x, %d) = %v; want ok %v", tc.tok[:min(8, len(tc.tok))], tc.max, err, tc.ok)
		}
	}
}

func TestCloseSessionMessage(t *testing.T) {
	f := newFake(t)
	c := NewClient(f, nil)
	s := startAdmin1(t, c)
	tsn, hsn := s.Numbers()
	s.c.t = &closing{fakeTPer: f, tsn: tsn, hsn: hsn}
	_, err := s.Call(testCtx(t), method.NewRandom(4))
	if !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("Call = %v; want ErrSessionEnded", err)
	}
	if ok, why := s.Ended(); !ok || !strings.Contains(why, "CloseSession") {
		t.Errorf("Ended = %v %q", ok, why)
	}
}

// closing answers every call with a CloseSession message for (tsn, hsn),
// as a drive that aborted the session does.
type closing struct {
	*fakeTPer
	tsn, hsn uint32
}

func (d *closing) IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.respond(0, 0, method.CloseSessionResult(d.hsn, d.tsn))
	return nil
}

func TestStackReset(t *testing.T) {
	f := newFake(t)
	c := NewClient(f, nil)
	ctx := testCtx(t)
	s := startAdmin1(t, c)
	if err := c.StackReset(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, why := s.Ended(); !ok || why != "ended by STACK_RESET" {
		t.Errorf("session after STACK_RESET: ended %v, %q", ok, why)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close after STACK_RESET: %v", err)
	}
	f.mu.Lock()
	req := f.sends[len(f.sends)-1]
	f.mu.Unlock()
	if want := mustHex("1004000000000002"); !bytes.Equal(req[:8], want) || len(req) != 512 {
		t.Errorf("STACK_RESET request %x (%d bytes); want %x, padded to 512", req[:8], len(req), want)
	}
	if p := c.Limits(); !errors.Is(p.Fallback, ErrNotExchanged) {
		t.Errorf("properties kept after STACK_RESET: %+v", p)
	}
	st, err := c.VerifyComID(ctx, 0)
	if err != nil || st != ComIDInvalid {
		t.Errorf("VerifyComID = %v, %v", st, err)
	}
}

func TestComPacketForOtherComID(t *testing.T) {
	f := newFake(t)
	c := NewClient(f, &Options{ComID: 0x2000})
	_, err := c.StartSession(testCtx(t), Params{SP: method.AdminSP})
	if err == nil {
		t.Fatal("StartSession on a ComID the drive does not serve succeeded")
	}
}

func TestDiscoverSetsComID(t *testing.T) {
	f := newFake(t)
	f.comID = 0x07FE
	c := NewClient(f, nil)
	id, err := c.ComID(testCtx(t))
	if err != nil || id != 0x07FE {
		t.Fatalf("ComID = %#x, %v", id, err)
	}
	if c.Level0() == nil || !c.Level0().LockingSupported() {
		t.Errorf("Level0 = %+v", c.Level0())
	}
}

func TestChallengeWithoutAuthority(t *testing.T) {
	c := NewClient(newFake(t), nil)
	if _, err := c.StartSession(testCtx(t), Params{SP: method.AdminSP, Challenge: admin1PIN}); err == nil {
		t.Error("StartSession with a PIN and no authority succeeded")
	}
}

func TestEmptyComPacketParse(t *testing.T) {
	// The framing the fake answers "not ready" with is PROTOCOL.md's.
	nr, _ := packet.ComPacket{ComID: 0x1004, OutstandingData: 1}.MarshalBinary()
	if want := mustHex("0000000010040000000000010000000000000000"); !bytes.Equal(nr, want) {
		t.Errorf("not ready = %x; want %x", nr, want)
	}
}

// A tcg/transport Transport is what a Client takes.
var _ Transport = (transport.Transport)(nil)
