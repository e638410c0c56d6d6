package sim

import (
	"testing"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// FuzzIFSend feeds arbitrary IF-SEND payloads to the drive: no panic, and
// the drive keeps answering Level 0 discovery and IF-RECV.
func FuzzIFSend(f *testing.F) {
	for _, c := range []method.Call{
		method.NewProperties(nil),
		method.NewStartSession(method.StartSessionParams{HostSessionID: 1, SPID: method.AdminSP}),
		method.NewStartSession(method.StartSessionParams{HostSessionID: 1, SPID: method.LockingSP, Write: true, HostSigningAuthority: method.Admin(1), HostChallenge: []byte("x")}),
	} {
		b, _ := c.Encode()
		cp, _ := packet.Build(0x1004, 0, 0, b)
		f.Add(uint8(1), cp)
	}
	f.Add(uint8(2), []byte{0x10, 0x04, 0, 0, 0, 0, 0, 2})
	f.Add(uint8(2), []byte{0x10, 0x04, 0, 0, 0, 0, 0, 1})
	d, _ := newTestDrive(f, Config{})
	f.Fuzz(func(t *testing.T, proto uint8, data []byte) {
		spsp := uint16(0x1004)
		if proto == 2 && len(data) > 0 && data[0] < 8 {
			spsp = uint16(data[0]) // TPer reset, Block SID...
		}
		_ = d.IFSend(proto%3, spsp, data)
		if _, err := d.IFRecv(1, 0x1004, 65536); err != nil {
			t.Fatalf("IF-RECV after IF-SEND: %v", err)
		}
		if _, err := d.IFRecv(2, 0x1004, 512); err != nil {
			t.Fatalf("IF-RECV protocol 2: %v", err)
		}
		if b, err := d.IFRecv(1, 1, 2048); err != nil || len(b) < 48 {
			t.Fatalf("discovery: %d bytes, %v", len(b), err)
		}
	})
}

// FuzzSessionCall feeds arbitrary token streams to an Admin1 session of
// an owned drive, and to the Session Manager: no panic, and every call gets
// a well-formed answer.
func FuzzSessionCall(f *testing.F) {
	for _, c := range []method.Call{
		method.NewGet(method.LockingRange(1), method.Columns(0, 10)),
		method.NewSet(method.LockingRange(1), token.Named(3, token.Uint(8)), token.Named(4, token.Uint(8))),
		method.NewSet(method.ACELockingRangeSetRdLocked(1), token.Named(3, method.AnyOf(method.User(1), method.Admins))),
		method.NewSetBytes(method.MBR, 100, []byte("hello")),
		method.NewGet(method.DataStore, method.Rows(10, 20)),
		method.NewNext(method.LockingTable, method.GlobalRange, 3),
		method.NewAuthenticate(method.User(1), []byte("u")),
		method.NewCall(method.KAES256(2), method.GenKey),
		method.NewRevertSP(true),
		method.NewRandom(8),
	} {
		b, _ := c.Encode()
		f.Add(b, false)
	}
	f.Add([]byte{token.TagEndOfSession}, false)
	d, _ := newTestDrive(f, Config{Blocks: 4096})
	h := newHost(f, d)
	h.takeOwnership([]byte("sid"))
	f.Fuzz(func(t *testing.T, payload []byte, sm bool) {
		h.t = t
		if !d.st.active() { // a RevertSP
			a := h.mustStart(method.AdminSP, method.SID, []byte("sid"), true)
			a.must(method.NewCall(method.LockingSP, method.Activate))
			a.end()
		}
		h.t = t
		if sm {
			if out := h.exchange(0, 0, payload); out != nil {
				if _, err := method.ParseResult(out); err != nil {
					t.Fatalf("Session Manager answer % x: %v", out, err)
				}
			}
			d.PowerCycle() // drop whatever session it opened
			return
		}
		s := h.admin1([]byte("sid"))
		out := h.exchange(s.tsn, s.hsn, payload)
		if out == nil {
			t.Fatalf("no answer to % x", payload)
		}
		if _, err := method.ParseResult(out); err != nil {
			t.Fatalf("answer % x to % x: %v", out, payload, err)
		}
		d.PowerCycle()
	})
}
