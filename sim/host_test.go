package sim

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
	"github.com/shiftlock/shiftlock/tcg/token"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// A minimal host, written against the codec packages only (the host
// session library is tested on its own): enough to drive every path of the
// drive with exact bytes.

type host struct {
	t     testing.TB
	tr    transport.Transport
	comID uint16
	alloc int
}

func newHost(t testing.TB, d *Drive) *host {
	t.Helper()
	h := &host{t: t, tr: d.Transport(), alloc: 2048}
	disc := h.discovery()
	id, ok := disc.BaseComID()
	if !ok {
		t.Fatalf("discovery announces no SSC: %+v", disc)
	}
	h.comID = id
	return h
}

// newTestDrive creates a drive in a temporary directory, closed at cleanup.
func newTestDrive(t testing.TB, cfg Config) (*Drive, string) {
	t.Helper()
	if cfg.Blocks == 0 {
		cfg.Blocks = 1 << 16 // 32 MiB
	}
	if cfg.TryLimit == 0 {
		cfg.TryLimit = 5
	}
	if cfg.MBRSize == 0 {
		cfg.MBRSize = 1 << 20
	}
	d, psid, err := Create(t.TempDir(), cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d, psid
}

func (h *host) discovery() *discovery.Discovery {
	h.t.Helper()
	buf := make([]byte, 2048)
	n, err := h.tr.IFRecv(context.Background(), 1, 1, buf)
	if err != nil {
		h.t.Fatalf("Level 0 discovery: %v", err)
	}
	d, err := discovery.Parse(buf[:n])
	if err != nil {
		h.t.Fatalf("Level 0 discovery: %v", err)
	}
	return d
}

// exchange sends payload in (tsn, hsn) and returns the response payload,
// polling like sedutil and growing the buffer on MinTransfer. A nil return
// means the drive answered with an empty ComPacket.
func (h *host) exchange(tsn, hsn uint32, payload []byte) []byte {
	h.t.Helper()
	cp, err := packet.Build(h.comID, tsn, hsn, payload)
	if err != nil {
		h.t.Fatal(err)
	}
	cp = append(cp, make([]byte, (512-len(cp)%512)%512)...) // sedutil pads to 512
	ctx := context.Background()
	if err := h.tr.IFSend(ctx, 1, h.comID, cp); err != nil {
		h.t.Fatalf("IF-SEND: %v", err)
	}
	alloc := h.alloc
	for range 100 {
		buf := make([]byte, alloc)
		n, err := h.tr.IFRecv(ctx, 1, h.comID, buf)
		if err != nil {
			h.t.Fatalf("IF-RECV: %v", err)
		}
		resp, err := packet.Parse(buf[:n])
		if err != nil {
			h.t.Fatalf("IF-RECV: %v", err)
		}
		if len(resp.Packets) == 0 {
			switch {
			case resp.MinTransfer != 0:
				alloc = int(resp.MinTransfer)
				continue
			case resp.OutstandingData != 0:
				continue
			}
			return nil
		}
		p, data, err := resp.Payload()
		if err != nil {
			h.t.Fatalf("IF-RECV: %v", err)
		}
		if p.TSN != tsn || p.HSN != hsn {
			h.t.Fatalf("response for TSN %d HSN %d; want %d %d", p.TSN, p.HSN, tsn, hsn)
		}
		return data
	}
	h.t.Fatal("drive never answered")
	return nil
}

func (h *host) result(tsn, hsn uint32, c method.Call) method.Result {
	h.t.Helper()
	b, err := c.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	out := h.exchange(tsn, hsn, b)
	if out == nil {
		h.t.Fatalf("%v: empty response", c)
	}
	r, err := method.ParseResult(out)
	if err != nil {
		h.t.Fatalf("%v: %v (% x)", c, err, out)
	}
	return r
}

func (h *host) properties(hostProps method.PropertyList) (tper, echo method.PropertyList) {
	h.t.Helper()
	r := h.result(0, 0, method.NewProperties(hostProps))
	tper, echo, err := method.ParsePropertiesResult(r)
	if err != nil {
		h.t.Fatalf("Properties: %v", err)
	}
	return tper, echo
}

type sess struct {
	h        *host
	tsn, hsn uint32
}

var nextHSN uint32 = 0x69

// start opens a session; auth zero means Anybody.
func (h *host) start(sp, auth method.UID, pin []byte, write bool) (*sess, error) {
	h.t.Helper()
	nextHSN++
	p := method.StartSessionParams{HostSessionID: nextHSN, SPID: sp, Write: write, HostSigningAuthority: auth, HostChallenge: pin}
	r := h.result(0, 0, method.NewStartSession(p))
	hsn, tsn, err := method.ParseSyncSession(r)
	if err != nil {
		return nil, err
	}
	if hsn != p.HostSessionID {
		h.t.Fatalf("SyncSession HSN %d; want %d", hsn, p.HostSessionID)
	}
	return &sess{h: h, tsn: tsn, hsn: hsn}, nil
}

func (h *host) mustStart(sp, auth method.UID, pin []byte, write bool) *sess {
	h.t.Helper()
	s, err := h.start(sp, auth, pin, write)
	if err != nil {
		h.t.Fatalf("StartSession %v as %v: %v", sp, auth, err)
	}
	return s
}

func (s *sess) call(c method.Call) method.Result {
	s.h.t.Helper()
	return s.h.result(s.tsn, s.hsn, c)
}

// do runs c and returns its status as an error.
func (s *sess) do(c method.Call) error {
	s.h.t.Helper()
	return s.call(c).Err()
}

func (s *sess) must(c method.Call) method.Result {
	s.h.t.Helper()
	r := s.call(c)
	if err := r.Err(); err != nil {
		s.h.t.Fatalf("%v: %v", c, err)
	}
	return r
}

func (s *sess) get(obj method.UID, first, last uint64) (token.Value, error) {
	s.h.t.Helper()
	r := s.call(method.NewGet(obj, method.Columns(first, last)))
	if err := r.Err(); err != nil {
		return token.Value{}, err
	}
	row, err := r.Row()
	if err != nil {
		s.h.t.Fatalf("Get %v: %v", obj, err)
	}
	return row, nil
}

func (s *sess) column(obj method.UID, col uint64) token.Value {
	s.h.t.Helper()
	row, err := s.get(obj, col, col)
	if err != nil {
		s.h.t.Fatalf("Get %v column %d: %v", obj, col, err)
	}
	v, ok := row.Lookup(col)
	if !ok {
		s.h.t.Fatalf("Get %v column %d: column missing in %v", obj, col, row)
	}
	return v
}

func (s *sess) set(obj method.UID, cols ...token.Value) error {
	s.h.t.Helper()
	return s.do(method.NewSet(obj, cols...))
}

func (s *sess) mustSet(obj method.UID, cols ...token.Value) {
	s.h.t.Helper()
	if err := s.set(obj, cols...); err != nil {
		s.h.t.Fatalf("Set %v: %v", obj, err)
	}
}

func (s *sess) end() {
	s.h.t.Helper()
	out := s.h.exchange(s.tsn, s.hsn, method.EndSession())
	if !bytes.Equal(out, []byte{token.TagEndOfSession}) {
		s.h.t.Fatalf("EndOfSession answered with % x", out)
	}
}

func wantStatus(t testing.TB, what string, err error, want method.MethodStatus) {
	t.Helper()
	if want == method.StatusSuccess {
		if err != nil {
			t.Fatalf("%s: %v; want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v; want %v", what, err, want)
	}
}

// Common flows.

// msid reads the MSID anonymously, as the kernel and sedutil do.
func (h *host) msid() []byte {
	h.t.Helper()
	s := h.mustStart(method.AdminSP, method.UID{}, nil, false)
	defer s.end()
	v := s.column(method.CPINMSID, 3)
	b, err := v.AsBytes()
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// takeOwnership sets the SID PIN to sid and activates the Locking SP
// (Admin1's PIN becomes sid too).
func (h *host) takeOwnership(sid []byte) {
	h.t.Helper()
	s := h.mustStart(method.AdminSP, method.SID, h.msid(), true)
	s.mustSet(method.CPINSID, token.Named(3, token.Bytes(sid)))
	s.end()
	s = h.mustStart(method.AdminSP, method.SID, sid, true)
	if v := s.column(method.LockingSP, 6); !v.Equal(token.Uint(lifeManufacturedInactive)) {
		h.t.Fatalf("LockingSP LifeCycleState %v; want 8", v)
	}
	s.must(method.NewCall(method.LockingSP, method.Activate))
	if v := s.column(method.LockingSP, 6); !v.Equal(token.Uint(lifeManufactured)) {
		h.t.Fatalf("LockingSP LifeCycleState %v after Activate; want 9", v)
	}
	s.end()
}

// admin1 opens a write session to the Locking SP as Admin1.
func (h *host) admin1(pin []byte) *sess {
	h.t.Helper()
	return h.mustStart(method.LockingSP, method.Admin(1), pin, true)
}

func named(c uint64, v token.Value) token.Value { return token.Named(c, v) }
func b(v bool) token.Value                      { return token.Bool(v) }
func u(v uint64) token.Value                    { return token.Uint(v) }
