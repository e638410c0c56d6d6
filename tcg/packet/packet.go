// Package packet builds and parses the TCG Storage framing that carries
// token streams over IF-SEND and IF-RECV (TCG Core Specification 2.01,
// section 3.2.3): a ComPacket (addressed to a ComID) holds Packets (one per
// session, naming its TSN and HSN), which hold SubPackets (the token
// payload, zero-padded to a multiple of 4 bytes).
//
// [Parse] reads a received buffer; [ComPacket.AppendBinary] and [Build]
// write one. Hosts and TPers pad whole transfers with zeros (sedutil to a
// multiple of 512 bytes, the kernel to 2048), so Parse ignores everything
// beyond ComPacket.Length. Every length is checked against the buffer before
// use; malformed input is a [*ParseError] with the byte offset of the field
// at fault.
//
// The package is pure: no I/O, no logging, standard library only. Field
// layout and offsets follow shared/opal/PROTOCOL.md section 1.3.
package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Header sizes (Core 3.2.3.2–3.2.3.4).
const (
	ComPacketHeaderLen = 20
	PacketHeaderLen    = 24
	SubPacketHeaderLen = 12
	// HeaderLen is the overhead of one ComPacket holding one Packet holding
	// one SubPacket.
	HeaderLen = ComPacketHeaderLen + PacketHeaderLen + SubPacketHeaderLen
)

// Kind is a SubPacket's kind field.
type Kind uint16

// SubPacket kinds.
const (
	KindData          Kind = 0x0000 // token payload
	KindCreditControl Kind = 0x8001 // 4-byte credit grant (flow control; unused by Opal hosts)
)

// String returns "data", "credit control" or the number in hex.
func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindCreditControl:
		return "credit control"
	}
	return "0x" + strconv.FormatUint(uint64(k), 16)
}

// A ComPacket is the unit of one IF-SEND or IF-RECV on a ComID. A response
// with no Packets tells the host to poll again (OutstandingData != 0) or to
// retry with at least MinTransfer bytes (MinTransfer != 0); with both zero,
// nothing is queued (PROTOCOL.md 1.3, Core 3.3.10.2.1).
type ComPacket struct {
	ComID           uint16
	ComIDExtension  uint16 // always 0 for static ComIDs
	OutstandingData uint32 // responses: bytes still waiting at the TPer
	MinTransfer     uint32 // responses: smallest IF-RECV that can fetch the next response
	Packets         []Packet
}

// A Packet carries one session's traffic. Session Manager traffic uses
// TSN = HSN = 0.
type Packet struct {
	TSN             uint32 // TPer session number
	HSN             uint32 // host session number
	SeqNumber       uint32 // 0 unless sequence numbers were negotiated
	AckType         uint16 // 0 unless ACK/NAK was negotiated
	Acknowledgement uint32
	SubPackets      []SubPacket
}

// A SubPacket holds a payload of one kind, normally a token stream.
type SubPacket struct {
	Kind Kind
	Data []byte // without padding; after Parse it aliases the parsed buffer
}

// Causes of a [*ParseError], for errors.Is.
var (
	ErrTruncated = errors.New("truncated header")
	ErrLength    = errors.New("length runs past the enclosing structure")
)

// ErrEmpty is returned by [ComPacket.Payload] for a ComPacket without
// Packets: the TPer's "nothing (yet)" answer.
var ErrEmpty = errors.New("packet: empty ComPacket (no response queued)")

// A ParseError reports a buffer that is not a well-formed ComPacket.
type ParseError struct {
	Offset int    // byte offset of the header or length field at fault
	Err    error  // ErrTruncated or ErrLength
	Detail string // what exactly, for people
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("packet: offset %d: %v: %s", e.Offset, e.Err, e.Detail)
}

// Unwrap returns the cause (ErrTruncated or ErrLength).
func (e *ParseError) Unwrap() error { return e.Err }

func pad4(n int) int { return (n + 3) &^ 3 }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Parse parses the ComPacket at the start of buf. Bytes beyond
// ComPacket.Length are transfer padding and ignored, as are zero bytes too
// few to hold another header at the end of a ComPacket or Packet, and a
// SubPacket's padding cut short by the end of its Packet. Reserved fields are
// not checked. SubPacket data aliases buf.
//
// Parse allocates in proportion to len(buf) (at most one Packet per 24 bytes
// and one SubPacket per 12).
func Parse(buf []byte) (ComPacket, error) {
	be := binary.BigEndian
	if len(buf) < ComPacketHeaderLen {
		return ComPacket{}, &ParseError{0, ErrTruncated, fmt.Sprintf("ComPacket header needs %d bytes, have %d", ComPacketHeaderLen, len(buf))}
	}
	c := ComPacket{
		ComID:           be.Uint16(buf[4:]),
		ComIDExtension:  be.Uint16(buf[6:]),
		OutstandingData: be.Uint32(buf[8:]),
		MinTransfer:     be.Uint32(buf[12:]),
	}
	n := be.Uint32(buf[16:])
	if uint64(n) > uint64(len(buf)-ComPacketHeaderLen) {
		return ComPacket{}, &ParseError{16, ErrLength, fmt.Sprintf("ComPacket length %d, %d bytes follow the header", n, len(buf)-ComPacketHeaderLen)}
	}
	end := ComPacketHeaderLen + int(n)
	for off := ComPacketHeaderLen; off < end; {
		if end-off < PacketHeaderLen {
			if allZero(buf[off:end]) {
				break
			}
			return ComPacket{}, &ParseError{off, ErrTruncated, fmt.Sprintf("Packet header needs %d bytes, %d left in the ComPacket", PacketHeaderLen, end-off)}
		}
		p := Packet{
			TSN:             be.Uint32(buf[off:]),
			HSN:             be.Uint32(buf[off+4:]),
			SeqNumber:       be.Uint32(buf[off+8:]),
			AckType:         be.Uint16(buf[off+14:]),
			Acknowledgement: be.Uint32(buf[off+16:]),
		}
		pn := be.Uint32(buf[off+20:])
		if uint64(pn) > uint64(end-off-PacketHeaderLen) {
			return ComPacket{}, &ParseError{off + 20, ErrLength, fmt.Sprintf("Packet length %d, %d bytes left in the ComPacket", pn, end-off-PacketHeaderLen)}
		}
		pend := off + PacketHeaderLen + int(pn)
		for s := off + PacketHeaderLen; s < pend; {
			if pend-s < SubPacketHeaderLen {
				if allZero(buf[s:pend]) {
					break
				}
				return ComPacket{}, &ParseError{s, ErrTruncated, fmt.Sprintf("SubPacket header needs %d bytes, %d left in the Packet", SubPacketHeaderLen, pend-s)}
			}
			sn := be.Uint32(buf[s+8:])
			if uint64(sn) > uint64(pend-s-SubPacketHeaderLen) {
				return ComPacket{}, &ParseError{s + 8, ErrLength, fmt.Sprintf("SubPacket length %d, %d bytes left in the Packet", sn, pend-s-SubPacketHeaderLen)}
			}
			data := s + SubPacketHeaderLen
			p.SubPackets = append(p.SubPackets, SubPacket{
				Kind: Kind(be.Uint16(buf[s+6:])),
				Data: buf[data : data+int(sn) : data+int(sn)],
			})
			s = min(data+pad4(int(sn)), pend)
		}
		c.Packets = append(c.Packets, p)
		off = pend
	}
	return c, nil
}

// Size returns the number of bytes AppendBinary writes for c.
func (c ComPacket) Size() int {
	n := ComPacketHeaderLen
	for _, p := range c.Packets {
		n += PacketHeaderLen
		for _, s := range p.SubPackets {
			n += SubPacketHeaderLen + pad4(len(s.Data))
		}
	}
	return n
}

// AppendBinary appends the encoding of c to b: each SubPacket's data padded
// with zeros to a multiple of 4, every length field computed, reserved fields
// zero. It fails only if a length does not fit its 32-bit field.
func (c ComPacket) AppendBinary(b []byte) ([]byte, error) {
	be := binary.BigEndian
	var total uint64
	for _, p := range c.Packets {
		plen, err := p.length()
		if err != nil {
			return b, err
		}
		total += PacketHeaderLen + plen
	}
	if total > math.MaxUint32 {
		return b, fmt.Errorf("packet: ComPacket length %d does not fit 32 bits", total)
	}
	b = be.AppendUint32(b, 0)
	b = be.AppendUint16(b, c.ComID)
	b = be.AppendUint16(b, c.ComIDExtension)
	b = be.AppendUint32(b, c.OutstandingData)
	b = be.AppendUint32(b, c.MinTransfer)
	b = be.AppendUint32(b, uint32(total))
	for _, p := range c.Packets {
		plen, _ := p.length()
		b = be.AppendUint32(b, p.TSN)
		b = be.AppendUint32(b, p.HSN)
		b = be.AppendUint32(b, p.SeqNumber)
		b = be.AppendUint16(b, 0)
		b = be.AppendUint16(b, p.AckType)
		b = be.AppendUint32(b, p.Acknowledgement)
		b = be.AppendUint32(b, uint32(plen))
		for _, s := range p.SubPackets {
			b = append(b, 0, 0, 0, 0, 0, 0)
			b = be.AppendUint16(b, uint16(s.Kind))
			b = be.AppendUint32(b, uint32(len(s.Data)))
			b = append(b, s.Data...)
			for range pad4(len(s.Data)) - len(s.Data) {
				b = append(b, 0)
			}
		}
	}
	return b, nil
}

// length is the Packet.Length field of p: its SubPackets with headers and
// padding.
func (p Packet) length() (uint64, error) {
	var n uint64
	for _, s := range p.SubPackets {
		if uint64(len(s.Data)) > math.MaxUint32 {
			return 0, fmt.Errorf("packet: SubPacket of %d bytes does not fit 32 bits", len(s.Data))
		}
		n += SubPacketHeaderLen + uint64(pad4(len(s.Data)))
	}
	if n > math.MaxUint32 {
		return 0, fmt.Errorf("packet: Packet length %d does not fit 32 bits", n)
	}
	return n, nil
}

// MarshalBinary returns the encoding of c (see [ComPacket.AppendBinary]).
func (c ComPacket) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(make([]byte, 0, c.Size()))
}

// Build returns a ComPacket for comID holding one Packet (tsn, hsn) holding
// one data SubPacket with payload: the shape every Opal host sends. Use a
// [ComPacket] literal for anything else (a ComID extension, sequence
// numbers, several Packets). Padding the transfer to the transport's block
// size is the caller's business.
func Build(comID uint16, tsn, hsn uint32, payload []byte) ([]byte, error) {
	return ComPacket{
		ComID:   comID,
		Packets: []Packet{{TSN: tsn, HSN: hsn, SubPackets: []SubPacket{{Kind: KindData, Data: payload}}}},
	}.MarshalBinary()
}

// Payload returns the only Packet of c and the data of its only data
// SubPacket: the shape Opal TPers answer with (MaxPackets = MaxSubpackets =
// 1). SubPackets of other kinds are skipped. A ComPacket without Packets
// returns [ErrEmpty]; several Packets or data SubPackets are an error.
func (c ComPacket) Payload() (Packet, []byte, error) {
	switch len(c.Packets) {
	case 0:
		return Packet{}, nil, ErrEmpty
	case 1:
	default:
		return Packet{}, nil, fmt.Errorf("packet: ComPacket holds %d Packets; want 1", len(c.Packets))
	}
	p := c.Packets[0]
	var data []byte
	n := 0
	for _, s := range p.SubPackets {
		if s.Kind == KindData {
			data = s.Data
			n++
		}
	}
	if n != 1 {
		return Packet{}, nil, fmt.Errorf("packet: Packet (TSN %d, HSN %d) holds %d data SubPackets; want 1", p.TSN, p.HSN, n)
	}
	return p, data, nil
}
