package session

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// maxTraceBytes is how many bytes of a long byte sequence (an MBR chunk) a
// decoded trace shows.
const maxTraceBytes = 32

// A TraceDecoder renders the transfers a [TraceFunc] sees as one line of
// decoded tokens each, for people: UIDs and methods by name, and every
// value that carries a credential replaced by "[REDACTED n bytes]": the
// StartSession HostChallenge, the Authenticate proof, the PIN column of a
// Set on a C_PIN row, the Admin1PIN of Activate and Reactivate, and the PIN
// column of a Get on a C_PIN row (the MSID) in the response. It remembers
// the calls sent on each ComID to know what a response answers, so feed it
// every transfer in order. The zero TraceDecoder is ready to use; it is
// safe for concurrent use.
type TraceDecoder struct {
	mu    sync.Mutex
	calls map[uint16][]callKey
}

// callKey is what the decoder keeps of a call: enough to redact its result.
type callKey struct {
	inv method.UID
	m   method.MethodID
}

// Hook returns a TraceFunc that writes each transfer, decoded, as a line to
// w.
func (d *TraceDecoder) Hook(w io.Writer) TraceFunc {
	var mu sync.Mutex
	return func(dir string, proto uint8, spsp uint16, data []byte) {
		line := d.Decode(dir, proto, spsp, data)
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(w, line)
	}
}

// Decode renders one transfer.
func (d *TraceDecoder) Decode(dir string, proto uint8, spsp uint16, data []byte) string {
	head := fmt.Sprintf("%s protocol %d ComID %#04x (%d bytes): ", dir, proto, spsp, len(data))
	switch {
	case proto == ProtocolInfo:
		return head + "protocol information " + shortHex(data)
	case proto == ProtocolTCG && spsp == Level0ComID:
		return head + level0Summary(data)
	case proto == ProtocolComID:
		return head + comIDSummary(dir, spsp, data)
	case proto == ProtocolTCG:
		return head + d.comPacket(dir, spsp, data)
	}
	return head + "unknown protocol, " + strconv.Itoa(len(data)) + " bytes not shown"
}

func shortHex(b []byte) string {
	if len(b) > maxTraceBytes {
		return hex.EncodeToString(b[:maxTraceBytes]) + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return hex.EncodeToString(b)
}

func level0Summary(data []byte) string {
	if len(data) == 0 {
		return "Level 0 discovery request"
	}
	dd, err := discovery.Parse(data)
	if dd == nil {
		return "Level 0 discovery, undecodable: " + err.Error()
	}
	var sb strings.Builder
	sb.WriteString("Level 0 discovery: SSC ")
	sb.WriteString(dd.SSC().String())
	if base, ok := dd.BaseComID(); ok {
		fmt.Fprintf(&sb, ", base ComID %#04x", base)
	}
	if l := dd.Locking; l != nil {
		fmt.Fprintf(&sb, ", locking supported=%v enabled=%v locked=%v MBR enabled=%v done=%v",
			l.LockingSupported, l.LockingEnabled, l.Locked, l.MBREnabled, l.MBRDone)
	}
	if err != nil {
		sb.WriteString(" (" + err.Error() + ")")
	}
	return sb.String()
}

func comIDSummary(dir string, spsp uint16, data []byte) string {
	if spsp == 0 && dir == DirRecv {
		if len(data) < 4 {
			return "GET_COMID answer, short"
		}
		return fmt.Sprintf("GET_COMID: ComID %#04x extension %#04x", binary.BigEndian.Uint16(data), binary.BigEndian.Uint16(data[2:]))
	}
	if len(data) < 8 {
		return "ComID management, short"
	}
	code := binary.BigEndian.Uint32(data[4:])
	name := fmt.Sprintf("request %d", code)
	switch code {
	case RequestVerifyComIDValid:
		name = "VERIFY_COMID_VALID"
	case RequestStackReset:
		name = "STACK_RESET"
	}
	if dir == DirSend {
		return fmt.Sprintf("%s ComID %#04x", name, binary.BigEndian.Uint16(data))
	}
	if len(data) < 12 {
		return name + " answer, short"
	}
	avail := int(binary.BigEndian.Uint16(data[10:]))
	if avail == 0 {
		return name + " pending"
	}
	return fmt.Sprintf("%s answer: %s", name, shortHex(data[12:min(12+avail, len(data))]))
}

// comPacket renders session traffic.
func (d *TraceDecoder) comPacket(dir string, comID uint16, data []byte) string {
	cp, err := packet.Parse(data)
	if err != nil {
		return "undecodable ComPacket: " + err.Error()
	}
	if len(cp.Packets) == 0 {
		switch {
		case cp.MinTransfer != 0:
			return fmt.Sprintf("empty, response needs %d bytes (MinTransfer)", cp.MinTransfer)
		case cp.OutstandingData != 0:
			return fmt.Sprintf("empty, response not ready (OutstandingData %d)", cp.OutstandingData)
		}
		return "empty, nothing queued"
	}
	var sb strings.Builder
	for i, p := range cp.Packets {
		if i > 0 {
			sb.WriteString("; ")
		}
		fmt.Fprintf(&sb, "TSN %d HSN %d", p.TSN, p.HSN)
		for _, sp := range p.SubPackets {
			if sp.Kind != packet.KindData {
				fmt.Fprintf(&sb, " [%v subpacket]", sp.Kind)
				continue
			}
			sb.WriteString(": ")
			vs, err := token.Decode(sp.Data)
			if err != nil {
				fmt.Fprintf(&sb, "undecodable tokens (%d bytes not shown): %v", len(sp.Data), err)
				continue
			}
			if dir == DirSend {
				sb.WriteString(d.renderSend(comID, vs))
			} else {
				sb.WriteString(d.renderRecv(comID, vs))
			}
		}
	}
	return sb.String()
}

// secretPath reports whether the value reached through the named items
// path (names of nested named values) of a call's arguments carries a
// credential.
type secretPath func(path []uint64) bool

func argSecrets(k callKey) secretPath {
	switch k.m {
	case method.StartSession, method.Authenticate, method.EnterpriseAuthenticate:
		// HostChallenge, Proof.
		return func(p []uint64) bool { return len(p) == 1 && p[0] == 0 }
	case method.Activate, method.Reactivate:
		return func(p []uint64) bool { return len(p) == 1 && p[0] == method.ParamAdmin1PIN }
	case method.Set:
		if k.inv.Table() == method.CPINTable {
			// Values = [ PIN = ... ].
			return func(p []uint64) bool { return len(p) == 2 && p[0] == method.ParamValues && p[1] == 3 }
		}
	}
	return nil
}

func resultSecrets(k callKey) secretPath {
	if k.m == method.Get && k.inv.Table() == method.CPINTable {
		return func(p []uint64) bool { return len(p) == 1 && p[0] == 3 }
	}
	return nil
}

func (d *TraceDecoder) renderSend(comID uint16, vs []token.Value) string {
	var sb strings.Builder
	var keys []callKey
	for i := 0; i < len(vs); i++ {
		if i > 0 {
			sb.WriteByte(' ')
		}
		v := vs[i]
		if v.Kind() == token.KindCall && i+3 < len(vs) {
			inv, err1 := method.UIDFromValue(vs[i+1])
			m, err2 := method.MethodIDFromValue(vs[i+2])
			if err1 == nil && err2 == nil {
				k := callKey{inv, m}
				keys = append(keys, k)
				fmt.Fprintf(&sb, "Call %s.%s ", uidName(inv), methodName(m))
				renderValue(&sb, vs[i+3], nil, argSecrets(k))
				i += 3
				continue
			}
		}
		renderValue(&sb, v, nil, nil)
	}
	d.mu.Lock()
	if d.calls == nil {
		d.calls = map[uint16][]callKey{}
	}
	d.calls[comID] = keys
	d.mu.Unlock()
	return sb.String()
}

func (d *TraceDecoder) renderRecv(comID uint16, vs []token.Value) string {
	d.mu.Lock()
	keys := d.calls[comID]
	delete(d.calls, comID)
	d.mu.Unlock()
	var sb strings.Builder
	n := 0 // index of the result being rendered
	for i := 0; i < len(vs); i++ {
		v := vs[i]
		if i > 0 {
			sb.WriteByte(' ')
		}
		if v.Kind() == token.KindCall && i+2 < len(vs) {
			// Session Manager answers repeat the Call header.
			inv, err1 := method.UIDFromValue(vs[i+1])
			m, err2 := method.MethodIDFromValue(vs[i+2])
			if err1 == nil && err2 == nil {
				fmt.Fprintf(&sb, "Call %s.%s", uidName(inv), methodName(m))
				i += 2
				continue
			}
		}
		var secret secretPath
		if n < len(keys) && v.Kind() == token.KindList {
			secret = resultSecrets(keys[n])
		}
		renderValue(&sb, v, nil, secret)
		if i > 0 && vs[i-1].Kind() == token.KindEndOfData && v.Kind() == token.KindList {
			n++ // a status list ends a result
			if len(v.Items()) > 0 {
				if st, err := v.Items()[0].AsUint(); err == nil && st != 0 && st <= 0xFF {
					fmt.Fprintf(&sb, " (%v)", method.MethodStatus(st))
				}
			}
		}
	}
	return sb.String()
}

// renderValue writes v for people; path holds the names of the enclosing
// named values, and values secret reports are redacted.
func renderValue(sb *strings.Builder, v token.Value, path []uint64, secret secretPath) {
	switch v.Kind() {
	case token.KindUint, token.KindInt:
		sb.WriteString(v.String())
	case token.KindBytes:
		b, _ := v.AsBytes()
		if secret != nil && secret(path) {
			fmt.Fprintf(sb, "[REDACTED %d bytes]", len(b))
			return
		}
		sb.WriteString(bytesString(b))
	case token.KindList:
		sb.WriteByte('[')
		for i, it := range v.Items() {
			if i > 0 {
				sb.WriteByte(' ')
			}
			renderValue(sb, it, path, secret)
		}
		sb.WriteByte(']')
	case token.KindName:
		name, val, _ := v.NameValue()
		if n, err := name.AsUint(); err == nil && name.Kind() != token.KindBytes {
			if n > 0xFFFF {
				fmt.Fprintf(sb, "%#x=", n) // 0x060002, as the specifications write them
			} else {
				fmt.Fprintf(sb, "%d=", n)
			}
			p := append(append([]uint64(nil), path...), n)
			if secret != nil && secret(p) && val.Kind() != token.KindBytes {
				sb.WriteString("[REDACTED]")
				return
			}
			renderValue(sb, val, p, secret)
			return
		}
		renderValue(sb, name, nil, nil)
		sb.WriteByte('=')
		renderValue(sb, val, path, secret)
	default:
		sb.WriteString(v.String())
	}
}

// bytesString shows a UID or method by name, text as text, anything else
// in hex (shortened).
func bytesString(b []byte) string {
	if len(b) == 8 {
		var u method.UID
		copy(u[:], b)
		if n := u.Name(); n != "" {
			return n
		}
		var m method.MethodID
		copy(m[:], b)
		if n := m.Name(); n != "" {
			return n
		}
	}
	if len(b) > 0 && len(b) <= 64 && printable(b) {
		return strconv.Quote(string(b))
	}
	if len(b) == 0 {
		return `""`
	}
	return "0x" + shortHex(b)
}

func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7F {
			return false
		}
	}
	return true
}
