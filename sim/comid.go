package sim

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
	"github.com/shiftlock/shiftlock/tcg/token"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Security protocols and fixed ComIDs (PROTOCOL.md 1.1, 1.17).
const (
	protoInfo   = 0x00
	protoTCG    = 0x01
	protoComID  = 0x02
	comIDLevel0 = 0x0001
	comIDTPerRe = 0x0004 // TPer Reset (protocol 0x02, IF-SEND)
	comIDBlock  = 0x0005 // Block SID Authentication (protocol 0x02, IF-SEND)

	// Protocol 0x02 request codes (Core 3.3.4.3).
	reqVerifyComIDValid = 1
	reqStackReset       = 2

	maxQueued = 16 // responses a ComID holds before IF-SEND is refused
)

// comState is the volatile state of the drive's one ComID.
type comState struct {
	queue []*response
	// host holds the host's properties from a Properties exchange;
	// zero until then.
	host hostLimits
	// p2 is the pending answer to a protocol 0x02 request on the ComID.
	p2 []byte
}

// A response waits in the ComID's queue for IF-RECV.
type response struct {
	tsn, hsn uint32
	data     []byte // token payload
	polls    int    // IF-RECVs answered "not ready" so far
}

func (r *response) size() int { return packet.HeaderLen + (len(r.data)+3)&^3 }

// hostLimits are what the host said it can receive (Properties).
type hostLimits struct {
	maxComPacket uint64
	maxIndToken  uint64
}

// errField wraps transport.ErrInvalidField: the command was refused at the
// interface (opalwire INVALID_FIELD).
func errField(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), transport.ErrInvalidField)
}

// IFSend takes an IF-SEND (TRUSTED SEND, SECURITY PROTOCOL OUT, Security
// Send) for protocol proto and ComID spsp.
func (d *Drive) IFSend(proto uint8, spsp uint16, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.expireSessions()
	switch proto {
	case protoTCG:
		if spsp != d.st.Config.BaseComID {
			return errField("if-send protocol 1: ComID 0x%04x is not the drive's ComID 0x%04x", spsp, d.st.Config.BaseComID)
		}
		return d.receiveComPacket(data)
	case protoComID:
		return d.comIDRequest(spsp, data)
	}
	return errField("if-send: security protocol 0x%02x not supported", proto)
}

// IFRecv answers an IF-RECV with at most alloc bytes.
func (d *Drive) IFRecv(proto uint8, spsp uint16, alloc int) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if alloc < 0 {
		return nil, errField("if-recv: negative allocation length")
	}
	d.expireSessions()
	var out []byte
	switch {
	case proto == protoInfo && spsp == 0x0000:
		// Supported protocol list: 6 reserved bytes, length, the list.
		out = []byte{0, 0, 0, 0, 0, 0, 0, 3, protoInfo, protoTCG, protoComID}
	case proto == protoInfo && spsp == 0x0001:
		// Certificate data: none (reserved, length 0).
		out = []byte{0, 0, 0, 0}
	case proto == protoTCG && spsp == comIDLevel0:
		out = d.levelZero()
	case proto == protoTCG && spsp == d.st.Config.BaseComID:
		out = d.nextResponse(alloc)
	case proto == protoComID && spsp == 0x0000:
		// GET_COMID: the static base ComID, extension 0.
		out = binary.BigEndian.AppendUint16(nil, d.st.Config.BaseComID)
		out = append(out, 0, 0)
	case proto == protoComID && spsp == d.st.Config.BaseComID:
		out = d.comIDAnswer()
	default:
		return nil, errField("if-recv: protocol 0x%02x ComID 0x%04x not supported", proto, spsp)
	}
	if len(out) > alloc {
		out = out[:alloc]
	}
	return out, nil
}

// comIDRequest handles an IF-SEND on protocol 0x02 (PROTOCOL.md 1.17).
func (d *Drive) comIDRequest(spsp uint16, data []byte) error {
	switch spsp {
	case comIDTPerRe:
		if !d.st.Config.Profile.opal2Family() || !d.st.Admin.ProgrammaticResetEnable {
			return errField("TPer reset: not enabled (TPerInfo.ProgrammaticResetEnable is False)")
		}
		d.reset(resetProgrammatic)
		return d.commit()
	case comIDBlock:
		if !d.st.Config.Profile.opal2Family() {
			return errField("Block SID: not supported by %s", d.st.Config.Profile)
		}
		d.sidBlocked = true
		d.sidBlockHW = len(data) > 0 && data[0]&1 != 0
		d.log.Info("SID authentication blocked until the next power cycle", "hardware_reset_clears", d.sidBlockHW)
		return nil
	case d.st.Config.BaseComID:
	default:
		return errField("if-send protocol 2: ComID 0x%04x not supported", spsp)
	}
	if len(data) < 8 {
		return errField("if-send protocol 2: request of %d bytes, want 8", len(data))
	}
	comID, ext, code := binary.BigEndian.Uint16(data), binary.BigEndian.Uint16(data[2:]), binary.BigEndian.Uint32(data[4:])
	if comID != spsp || ext != 0 {
		return errField("if-send protocol 2: request for ComID 0x%04x/0x%04x on ComID 0x%04x", comID, ext, spsp)
	}
	answer := func(payload []byte) {
		b := binary.BigEndian.AppendUint16(nil, comID)
		b = binary.BigEndian.AppendUint16(b, ext)
		b = binary.BigEndian.AppendUint32(b, code)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
		d.com.p2 = append(b, payload...)
	}
	switch code {
	case reqVerifyComIDValid:
		// ComID state: 2 issued, 3 associated (sessions are open on it).
		state := uint32(2)
		if len(d.sessions) > 0 {
			state = 3
		}
		answer(binary.BigEndian.AppendUint32(nil, state))
	case reqStackReset:
		n := len(d.sessions)
		d.sessions = map[uint32]*session{}
		d.com = comState{}
		d.log.Info("STACK_RESET: sessions and queued responses dropped", "sessions", n)
		answer([]byte{0, 0, 0, 0}) // success
	default:
		return errField("if-send protocol 2: request code %d not supported", code)
	}
	return nil
}

// comIDAnswer returns the pending protocol 0x02 answer, or an empty one.
func (d *Drive) comIDAnswer() []byte {
	if d.com.p2 == nil {
		// No response available: request code 0, no data.
		b := binary.BigEndian.AppendUint16(nil, d.st.Config.BaseComID)
		return append(b, make([]byte, 10)...)
	}
	b := d.com.p2
	d.com.p2 = nil
	return b
}

// nextResponse answers an IF-RECV on the base ComID (PROTOCOL.md 1.3,
// Core 3.3.10.2.1).
func (d *Drive) nextResponse(alloc int) []byte {
	cp := packet.ComPacket{ComID: d.st.Config.BaseComID}
	if len(d.com.queue) > 0 {
		r := d.com.queue[0]
		outstanding := 0
		for _, q := range d.com.queue {
			outstanding += q.size()
		}
		switch {
		case r.polls < d.notReadyPolls:
			r.polls++
			cp.OutstandingData = 1
		case r.size() > alloc:
			cp.OutstandingData = uint32(outstanding)
			cp.MinTransfer = uint32(r.size())
		default:
			d.com.queue = d.com.queue[1:]
			cp.OutstandingData = uint32(outstanding - r.size())
			cp.Packets = []packet.Packet{{TSN: r.tsn, HSN: r.hsn, SubPackets: []packet.SubPacket{{Kind: packet.KindData, Data: r.data}}}}
		}
	}
	b, err := cp.MarshalBinary()
	if err != nil {
		d.log.Error("encoding a ComPacket", "err", err)
	}
	return b
}

// receiveComPacket processes the ComPacket of an IF-SEND. A ComPacket that
// breaks the framing or the drive's limits is discarded, as a drive does:
// the host then reads an empty response.
func (d *Drive) receiveComPacket(data []byte) error {
	cfg := &d.st.Config
	// Hosts pad transfers (the kernel to 2048 bytes, sedutil and ATA to
	// 512-byte multiples): accept padding up to the next 512 bytes.
	if limit := (int(cfg.MaxComPacketSize) + 511) &^ 511; len(data) > limit {
		return errField("if-send of %d bytes exceeds MaxComPacketSize %d", len(data), cfg.MaxComPacketSize)
	}
	if len(d.com.queue) >= maxQueued {
		return errField("if-send: %d responses are waiting to be read on ComID 0x%04x", len(d.com.queue), cfg.BaseComID)
	}
	cp, err := packet.Parse(data)
	if err != nil {
		d.log.Info("discarding a malformed ComPacket", "err", err)
		return nil
	}
	if cp.ComID != cfg.BaseComID || cp.ComIDExtension != 0 {
		d.log.Info("discarding a ComPacket for another ComID", "comid", cp.ComID, "ext", cp.ComIDExtension)
		return nil
	}
	if cp.Size() > int(cfg.MaxComPacketSize) {
		d.log.Info("discarding a ComPacket over MaxComPacketSize", "size", cp.Size())
		return nil
	}
	if len(cp.Packets) == 0 {
		return nil
	}
	if len(cp.Packets) > 1 {
		d.log.Info("discarding a ComPacket with several Packets (MaxPackets is 1)", "packets", len(cp.Packets))
		return nil
	}
	p := cp.Packets[0]
	var payload []byte
	n := 0
	for _, sp := range p.SubPackets {
		if sp.Kind == packet.KindData {
			payload = sp.Data
			n++
		}
	}
	if n != 1 {
		d.log.Info("discarding a Packet without exactly one data SubPacket (MaxSubpackets is 1)", "subpackets", n)
		return nil
	}
	if size := packet.PacketHeaderLen + packet.SubPacketHeaderLen + (len(payload)+3)&^3; size > int(cfg.MaxPacketSize) {
		d.log.Info("discarding a Packet over MaxPacketSize", "size", size)
		return nil
	}
	if p.TSN == 0 && p.HSN == 0 {
		d.sessionManager(payload)
		return nil
	}
	s, ok := d.sessions[p.TSN]
	if !ok || s.hsn != p.HSN {
		// No such session: a host that ends a session which failed to
		// start, or that a reset aborted, reads an empty response.
		d.log.Info("discarding a Packet for no open session", "tsn", p.TSN, "hsn", p.HSN)
		return nil
	}
	d.sessionPacket(s, payload)
	return nil
}

// queue appends a response for IF-RECV. Responses that exceed what the host
// can receive become RESPONSE_OVERFLOW.
func (d *Drive) queue(tsn, hsn uint32, data []byte) {
	d.com.queue = append(d.com.queue, &response{tsn: tsn, hsn: hsn, data: data})
}

// respond queues the result r of a method in a session (tsn, hsn), or on
// the Session Manager (0, 0), replacing it with RESPONSE_OVERFLOW when it
// does not fit the host's or the drive's limits.
func (d *Drive) respond(tsn, hsn uint32, r method.Result) {
	b, err := r.Encode()
	if err == nil {
		if lim := d.responseLimit(); packet.HeaderLen+(len(b)+3)&^3 > lim || !d.atomsFitHost(r.Values) {
			err = fmt.Errorf("response of %d bytes exceeds the limit of %d", packet.HeaderLen+len(b), lim)
		}
	}
	if err != nil {
		d.log.Info("response overflow", "err", err)
		over := method.Result{HasCall: r.HasCall, Invoking: r.Invoking, Method: r.Method, Status: method.StatusResponseOverflow}
		b, _ = over.Encode()
	}
	d.queue(tsn, hsn, b)
}

// responseLimit is the largest ComPacket the drive sends: its own
// MaxComPacketSize, or less if the host said so in Properties.
func (d *Drive) responseLimit() int {
	lim := uint64(d.st.Config.MaxComPacketSize)
	if h := d.com.host.maxComPacket; h != 0 && h < lim {
		lim = h
	}
	return int(lim)
}

func (d *Drive) atomsFitHost(vs []token.Value) bool {
	lim := d.com.host.maxIndToken
	if lim == 0 {
		return true
	}
	return maxAtom(vs) <= int(lim)
}

// maxAtom returns the encoded size of the largest atom in vs.
func maxAtom(vs []token.Value) int {
	m := 0
	for _, v := range vs {
		switch v.Kind() {
		case token.KindBytes:
			b, _ := v.AsBytes()
			h := 1
			switch {
			case len(b) > token.MaxMediumLen:
				h = 4
			case len(b) > token.MaxShortLen:
				h = 2
			}
			m = max(m, h+len(b))
		case token.KindList:
			m = max(m, maxAtom(v.Items()))
		case token.KindName:
			n, val, _ := v.NameValue()
			m = max(m, maxAtom([]token.Value{n, val}))
		default:
			m = max(m, 9)
		}
	}
	return m
}

// sessionManager handles a Session Manager call (TSN = HSN = 0).
func (d *Drive) sessionManager(payload []byte) {
	c, err := method.ParseCall(payload)
	if err != nil {
		if errors.Is(err, method.ErrEndOfSession) {
			return // nothing to end on the Session Manager
		}
		d.log.Info("malformed Session Manager call", "err", loggable(nil, err))
		d.respond(0, 0, method.Result{Status: method.StatusInvalidParameter})
		return
	}
	if c.Invoking != method.SMUID {
		d.respond(0, 0, method.Result{HasCall: true, Invoking: method.SMUID, Method: c.Method, Status: method.StatusInvalidParameter})
		return
	}
	switch c.Method {
	case method.Properties:
		d.respond(0, 0, d.properties(c))
	case method.StartSession:
		d.respond(0, 0, d.startSession(c))
	default:
		d.log.Info("Session Manager method not supported", "method", c.Method.String())
		d.respond(0, 0, method.Result{HasCall: true, Invoking: method.SMUID, Method: c.Method, Status: method.StatusInvalidParameter})
	}
}

// tperProperties returns the drive's Session Manager properties.
func (d *Drive) tperProperties() method.PropertyList {
	cfg := &d.st.Config
	return method.PropertyList{
		{Name: method.PropMaxComPacketSize, Value: uint64(cfg.MaxComPacketSize)},
		{Name: method.PropMaxResponseComPacketSize, Value: uint64(cfg.MaxComPacketSize)},
		{Name: method.PropMaxPacketSize, Value: uint64(cfg.MaxPacketSize)},
		{Name: method.PropMaxIndTokenSize, Value: uint64(cfg.MaxIndTokenSize)},
		{Name: method.PropMaxAggTokenSize, Value: uint64(cfg.MaxIndTokenSize)},
		{Name: method.PropMaxPackets, Value: 1},
		{Name: method.PropMaxSubpackets, Value: 1},
		{Name: method.PropMaxMethods, Value: 1},
		{Name: method.PropMaxSessions, Value: uint64(cfg.MaxSessions)},
		{Name: method.PropMaxReadSessions, Value: uint64(cfg.MaxReadSessions)},
		{Name: method.PropMaxAuthentications, Value: uint64(cfg.MaxAuthentications)},
		{Name: method.PropMaxTransactionLimit, Value: 0}, // transactions are not supported
		{Name: method.PropContinuedTokens, Value: 0},
		{Name: method.PropSequenceNumbers, Value: 0},
		{Name: method.PropAckNak, Value: 0},
		{Name: method.PropAsynchronous, Value: 0},
		{Name: method.PropDefSessionTimeout, Value: uint64(cfg.DefSessionTimeout)},
		{Name: method.PropMaxSessionTimeout, Value: uint64(cfg.MaxSessionTimeout)},
		{Name: method.PropMinSessionTimeout, Value: uint64(cfg.MinSessionTimeout)},
		{Name: method.PropDefTransTimeout, Value: 0},
		{Name: method.PropMaxTransTimeout, Value: 0},
		{Name: method.PropMinTransTimeout, Value: 0},
		{Name: method.PropMaxComIDTime, Value: 0},
	}
}

// Core Table 168: what a host supports at least, and so what the TPer
// assumes of it.
var hostMinimums = map[string]uint64{
	method.PropMaxComPacketSize:         1024,
	method.PropMaxResponseComPacketSize: 1024,
	method.PropMaxPacketSize:            1004,
	method.PropMaxIndTokenSize:          968,
	method.PropMaxAggTokenSize:          968,
	method.PropMaxPackets:               1,
	method.PropMaxSubpackets:            1,
	method.PropMaxMethods:               1,
}

// properties answers the Session Manager's Properties method: the drive's
// properties, and the host's as the drive accepts them.
func (d *Drive) properties(c method.Call) method.Result {
	host, err := method.ParsePropertiesCall(c)
	if err != nil {
		return method.Result{HasCall: true, Invoking: method.SMUID, Method: method.Properties, Status: method.StatusInvalidParameter}
	}
	var accepted method.PropertyList
	limits := hostLimits{}
	for _, p := range host {
		v := p.Value
		switch p.Name {
		case method.PropMaxComPacketSize, method.PropMaxResponseComPacketSize, method.PropMaxPacketSize,
			method.PropMaxIndTokenSize, method.PropMaxAggTokenSize, method.PropMaxPackets,
			method.PropMaxSubpackets, method.PropMaxMethods:
			v = max(v, hostMinimums[p.Name])
		case method.PropContinuedTokens, method.PropSequenceNumbers, method.PropAckNak, method.PropAsynchronous:
			v = 0 // not supported
		default:
			continue
		}
		switch p.Name {
		case method.PropMaxComPacketSize:
			limits.maxComPacket = v
		case method.PropMaxIndTokenSize:
			limits.maxIndToken = v
		}
		accepted = append(accepted, method.Property{Name: p.Name, Value: v})
	}
	d.com.host = limits
	tper := d.tperProperties()
	if d.shortProperties {
		items := make([]token.Value, len(tper))
		for i, p := range tper {
			items[i] = token.Pair(token.Text(p.Name), token.Uint(p.Value))
		}
		return method.Result{HasCall: true, Invoking: method.SMUID, Method: method.Properties, Values: []token.Value{token.List(items...)}}
	}
	return method.PropertiesResult(tper, accepted)
}
