// Package wire speaks opalwire v1, the socket protocol of sedsim (the
// software Opal drive), as a client: [Dial] opens one device handle, a
// [*Conn], which is a [transport.Transport] and also reads and writes the
// drive's blocks and power-cycles it.
//
// # Protocol (DESIGN.md, "opalwire v1")
//
// One Unix stream connection is one open device handle; many may be open at
// once and all share one drive. Strictly one request, then its response.
// All integers are big-endian.
//
//	request : op u8 | proto u8 | spsp u16 | len u32 | payload[len]
//	response: status u8 | rsvd[3] | len u32 | payload[len]
//
//	0x01 IF_SEND  proto/spsp as given; len = bytes sent
//	0x02 IF_RECV  len = allocation length (no payload); response len <= it
//	0x03 INFO     response: 128 bytes, see [AppendInfo]
//	0x04 RESET    power cycle
//	0x05 READ     payload: lba u64 | count u32; response: count blocks
//	0x06 WRITE    payload: lba u64 | count u32 | count blocks
//
// Every request but IF_RECV is followed by len payload bytes, including ops
// the server does not know, so a server can skip an unknown op and answer
// INVALID_OP (clients probe extensions that way). Payloads, in both
// directions, are at most [MaxPayload] bytes.
//
// This file holds the codec: pure functions that build and parse the
// fixed-size parts, shared with the server in sim/wire.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Sizes of the protocol's fixed parts.
const (
	HeaderLen     = 8       // request and response headers
	MaxPayload    = 1 << 20 // largest payload in either direction
	BlockRangeLen = 12      // lba u64 | count u32, the start of READ and WRITE payloads
	InfoLen       = 128     // INFO response payload

	ModelLen    = 40 // INFO model field
	FirmwareLen = 8  // INFO firmware field
)

// Op is a request's operation code.
type Op uint8

// Operation codes.
const (
	OpIFSend Op = 0x01
	OpIFRecv Op = 0x02
	OpInfo   Op = 0x03
	OpReset  Op = 0x04
	OpRead   Op = 0x05
	OpWrite  Op = 0x06
)

var opNames = [...]string{
	OpIFSend: "IF_SEND",
	OpIFRecv: "IF_RECV",
	OpInfo:   "INFO",
	OpReset:  "RESET",
	OpRead:   "READ",
	OpWrite:  "WRITE",
}

// String returns the op's name ("IF_SEND") or "OP_0xNN" for an unknown one.
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "OP_0x" + hex2(uint8(o))
}

func hex2(b uint8) string {
	s := strconv.FormatUint(uint64(b), 16)
	if len(s) == 1 {
		s = "0" + s
	}
	return strings.ToUpper(s)
}

// Status is a response's status code. Every value but StatusOK is an error:
//
//	errors.Is(err, wire.ErrAccessDenied)
//
// works through any amount of %w wrapping, and errors.As recovers the code.
// StatusInvalidField also matches [transport.ErrInvalidField], so code
// written against the Transport interface needs no opalwire knowledge.
type Status uint8

// Status codes.
const (
	StatusOK           Status = 0x00
	StatusInvalidField Status = 0x01 // unsupported protocol or ComID, or a malformed request
	StatusInvalidOp    Status = 0x02 // unknown op
	StatusDeviceError  Status = 0x03 // the drive failed the command
	StatusAccessDenied Status = 0x04 // READ or WRITE touched a locked LBA
)

// The non-OK statuses as errors, for errors.Is.
var (
	ErrInvalidField error = StatusInvalidField
	ErrInvalidOp    error = StatusInvalidOp
	ErrDeviceError  error = StatusDeviceError
	ErrAccessDenied error = StatusAccessDenied
)

var statusNames = [...]string{
	StatusOK:           "OK",
	StatusInvalidField: "INVALID_FIELD",
	StatusInvalidOp:    "INVALID_OP",
	StatusDeviceError:  "DEVICE_ERROR",
	StatusAccessDenied: "ACCESS_DENIED",
}

// Name returns the status's name ("ACCESS_DENIED"), or "UNKNOWN".
func (s Status) Name() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "UNKNOWN"
}

// Error returns the name and the code, "ACCESS_DENIED (0x04)".
func (s Status) Error() string {
	return s.Name() + " (0x" + hex2(uint8(s)) + ")"
}

// Is reports whether target is the same status, or the transport sentinel
// that the status stands for.
func (s Status) Is(target error) bool {
	if t, ok := target.(Status); ok {
		return t == s
	}
	return s == StatusInvalidField && target == transport.ErrInvalidField
}

// ErrProtocol marks a peer that broke the protocol: a response longer than
// the request allows, a payload over MaxPayload, a short INFO. The
// connection is closed after it.
var ErrProtocol = errors.New("opalwire protocol violation")

// ErrTooLarge is returned before anything is sent for an IF_SEND payload over
// MaxPayload.
var ErrTooLarge = errors.New("opalwire payload over 1 MiB")

// RequestHeader is the first HeaderLen bytes of a request.
type RequestHeader struct {
	Op    Op
	Proto uint8  // security protocol (IF_SEND, IF_RECV)
	SPSP  uint16 // protocol specific field, the ComID for protocols 1 and 2
	Len   uint32 // payload length, or the allocation length for IF_RECV
}

// PayloadLen returns how many payload bytes follow the header: Len for every
// op, known or not, except IF_RECV, whose Len is the allocation length.
func (h RequestHeader) PayloadLen() uint32 {
	if h.Op == OpIFRecv {
		return 0
	}
	return h.Len
}

// Append appends the encoded header to dst.
func (h RequestHeader) Append(dst []byte) []byte {
	dst = append(dst, byte(h.Op), h.Proto)
	dst = binary.BigEndian.AppendUint16(dst, h.SPSP)
	return binary.BigEndian.AppendUint32(dst, h.Len)
}

// ParseRequestHeader decodes the first HeaderLen bytes of b. Every byte
// pattern is a header; only a short b is an error. Whether the op is known
// and the length acceptable is the server's call.
func ParseRequestHeader(b []byte) (RequestHeader, error) {
	if len(b) < HeaderLen {
		return RequestHeader{}, fmt.Errorf("%w: request header is %d bytes, want %d", ErrProtocol, len(b), HeaderLen)
	}
	return RequestHeader{
		Op:    Op(b[0]),
		Proto: b[1],
		SPSP:  binary.BigEndian.Uint16(b[2:4]),
		Len:   binary.BigEndian.Uint32(b[4:8]),
	}, nil
}

// ResponseHeader is the first HeaderLen bytes of a response.
type ResponseHeader struct {
	Status Status
	Len    uint32 // payload length
}

// Append appends the encoded header, reserved bytes zero, to dst.
func (h ResponseHeader) Append(dst []byte) []byte {
	dst = append(dst, byte(h.Status), 0, 0, 0)
	return binary.BigEndian.AppendUint32(dst, h.Len)
}

// ParseResponseHeader decodes the first HeaderLen bytes of b. The reserved
// bytes are ignored.
func ParseResponseHeader(b []byte) (ResponseHeader, error) {
	if len(b) < HeaderLen {
		return ResponseHeader{}, fmt.Errorf("%w: response header is %d bytes, want %d", ErrProtocol, len(b), HeaderLen)
	}
	return ResponseHeader{Status: Status(b[0]), Len: binary.BigEndian.Uint32(b[4:8])}, nil
}

// BlockRange is the start of a READ or WRITE payload: Count blocks from LBA.
type BlockRange struct {
	LBA   uint64
	Count uint32
}

// Append appends the encoded range to dst.
func (r BlockRange) Append(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.LBA)
	return binary.BigEndian.AppendUint32(dst, r.Count)
}

// ParseBlockRange decodes the first BlockRangeLen bytes of b.
func ParseBlockRange(b []byte) (BlockRange, error) {
	if len(b) < BlockRangeLen {
		return BlockRange{}, fmt.Errorf("%w: block range is %d bytes, want %d", ErrProtocol, len(b), BlockRangeLen)
	}
	return BlockRange{LBA: binary.BigEndian.Uint64(b[0:8]), Count: binary.BigEndian.Uint32(b[8:12])}, nil
}

// Offsets inside the INFO payload.
const (
	infoSerial    = 0
	infoModel     = infoSerial + transport.SerialLen // 20
	infoFirmware  = infoModel + ModelLen             // 60
	infoBlockSize = infoFirmware + FirmwareLen       // 68
	infoBlocks    = infoBlockSize + 4                // 72
	infoPCIVendor = infoBlocks + 8                   // 80
	infoReserved  = infoPCIVendor + 2                // 82; 46 reserved bytes follow
)

// AppendInfo appends the 128-byte INFO payload for id to dst:
//
//	serial[20] (raw) | model[40] | firmware[8] (space padded) |
//	block size u32 | block count u64 | pci vendor u16 | reserved[46]
//
// id.Kind is not sent. A model over 40 bytes or a firmware revision over 8
// is an error: they would be cut.
func AppendInfo(dst []byte, id transport.Identity) ([]byte, error) {
	if len(id.Model) > ModelLen {
		return dst, fmt.Errorf("INFO: model %q is longer than %d bytes", id.Model, ModelLen)
	}
	if len(id.Firmware) > FirmwareLen {
		return dst, fmt.Errorf("INFO: firmware %q is longer than %d bytes", id.Firmware, FirmwareLen)
	}
	dst = append(dst, id.Serial[:]...)
	dst = appendPadded(dst, id.Model, ModelLen)
	dst = appendPadded(dst, id.Firmware, FirmwareLen)
	dst = binary.BigEndian.AppendUint32(dst, id.BlockSize)
	dst = binary.BigEndian.AppendUint64(dst, id.Blocks)
	dst = binary.BigEndian.AppendUint16(dst, id.PCIVendor)
	return append(dst, make([]byte, InfoLen-infoReserved)...), nil
}

func appendPadded(dst []byte, s string, n int) []byte {
	dst = append(dst, s...)
	for range n - len(s) {
		dst = append(dst, ' ')
	}
	return dst
}

// ParseInfo decodes an INFO payload. The serial is kept raw; model and
// firmware lose their trailing spaces and NULs. Kind is set to
// transport.KindSim. Reserved bytes are ignored; b must be exactly InfoLen
// bytes.
func ParseInfo(b []byte) (transport.Identity, error) {
	if len(b) != InfoLen {
		return transport.Identity{}, fmt.Errorf("%w: INFO payload is %d bytes, want %d", ErrProtocol, len(b), InfoLen)
	}
	var id transport.Identity
	copy(id.Serial[:], b[infoSerial:infoModel])
	id.Model = strings.TrimRight(string(b[infoModel:infoFirmware]), " \x00")
	id.Firmware = strings.TrimRight(string(b[infoFirmware:infoBlockSize]), " \x00")
	id.Kind = transport.KindSim
	id.BlockSize = binary.BigEndian.Uint32(b[infoBlockSize:])
	id.Blocks = binary.BigEndian.Uint64(b[infoBlocks:])
	id.PCIVendor = binary.BigEndian.Uint16(b[infoPCIVendor:])
	return id, nil
}
