package opal

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
	"github.com/shiftlock/shiftlock/tcg/session"
)

func TestAuthRedacts(t *testing.T) {
	a := Auth{method.Admin(1), hash.PIN("secret-password-bytes")}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "auth", a, "pin", a.PIN)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s %q %x", a, a, a, a, a, a), buf.String()} {
		if strings.Contains(s, "secret") || strings.Contains(s, fmt.Sprintf("%x", "secret")) {
			t.Errorf("Auth printed its PIN: %s", s)
		}
	}
	if got := a.String(); got != "Admin1" {
		t.Errorf("String = %q", got)
	}
}

// TestChunkSizes checks that the largest chunk writeChunk allows, framed,
// fits the drive's limits exactly, for small and large limits and offsets.
func TestChunkSizes(t *testing.T) {
	for _, lim := range []session.Limits{
		session.CoreMinimums,
		{MaxComPacketSize: 2048, MaxPacketSize: 2028, MaxIndTokenSize: 1992, MaxMethods: 1},
		{MaxComPacketSize: 65536, MaxPacketSize: 65516, MaxIndTokenSize: 65480, MaxMethods: 1},
		{MaxComPacketSize: 1 << 20, MaxPacketSize: 1<<20 - 20, MaxIndTokenSize: 4000, MaxMethods: 1},
	} {
		for _, end := range []uint64{0, 1 << 20, 1 << 40} {
			p := session.Properties{TPer: lim, Host: lim}
			n := writeChunk(p, method.MBR, end)
			if n <= 0 {
				t.Fatalf("writeChunk(%+v, %d) = %d", lim, end, n)
			}
			tok, err := method.NewSetBytes(method.MBR, end, make([]byte, n)).Encode()
			if err != nil {
				t.Fatal(err)
			}
			frame := packet.HeaderLen + (len(tok)+3)&^3
			atom := n + 4
			if n <= 2047 {
				atom = n + 2
			}
			if uint64(frame) > lim.MaxComPacketSize || uint64(frame-packet.ComPacketHeaderLen) > lim.MaxPacketSize || uint64(atom) > lim.MaxIndTokenSize {
				t.Errorf("limits %+v, offset %d: chunk %d gives a %d-byte ComPacket, %d-byte atom", lim, end, n, frame, atom)
			}
			if slack := lim.MaxComPacketSize - uint64(frame); lim.MaxIndTokenSize >= lim.MaxComPacketSize && slack > 16 {
				t.Errorf("limits %+v, offset %d: chunk %d wastes %d bytes", lim, end, n, slack)
			}
			if r := readChunk(p); r <= 0 || uint64(r+packet.HeaderLen+16) > lim.MaxComPacketSize {
				t.Errorf("readChunk(%+v) = %d", lim, r)
			}
		}
	}
}

func TestCPINRow(t *testing.T) {
	for _, tc := range []struct {
		a, row method.UID
	}{
		{method.SID, method.CPINSID},
		{method.Admin(1), method.CPINAdmin(1)},
		{method.Admin(4), method.CPINAdmin(4)},
		{method.User(9), method.CPINUser(9)},
		{method.AdminSPAdmin(1), method.CPINAdminSPAdmin(1)},
	} {
		if got, err := cpinRow(tc.a); err != nil || got != tc.row {
			t.Errorf("cpinRow(%v) = %v, %v; want %v", tc.a, got, err, tc.row)
		}
	}
	for _, a := range []method.UID{method.PSID, method.Anybody, method.Admins, method.LockingRange(1)} {
		if _, err := cpinRow(a); err == nil {
			t.Errorf("cpinRow(%v) succeeded", a)
		}
	}
	if spOf(method.SID) != method.AdminSP || spOf(method.AdminSPAdmin(1)) != method.AdminSP || spOf(method.User(3)) != method.LockingSP {
		t.Error("spOf")
	}
}
