// Package transport defines how the TCG Storage layers reach a device: the
// two security commands of TCG Core Specification 2.01 section 3.3.10,
// IF-SEND and IF-RECV, plus the identity of the device behind them
// (shared/opal/PROTOCOL.md section 4.4).
//
// Each backend lives in its own subpackage and returns a [Transport]: the
// opalwire client for sedsim in transport/wire, and one per Linux
// passthrough path (NVMe Security Send/Receive, SCSI SECURITY PROTOCOL
// IN/OUT, ATA TRUSTED SEND/RECEIVE, DESIGN.md). The session layer above
// sees only this interface, so a host tool tested against sedsim runs
// unchanged on a real drive.
//
// Backends report the conditions callers act on with the sentinel errors of
// this package, wrapped with the operation, so that
//
//	errors.Is(err, transport.ErrNotSupported)
//
// holds for every backend.
package transport

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// Transport is one open handle to a TCG storage device: IF-SEND and IF-RECV
// (Core 3.3.10) plus the device's identity.
//
// proto is the security protocol (0x00 for the protocol list, 0x01 for
// Level 0 discovery and ComPackets, 0x02 for ComID management) and spsp the
// protocol-specific field, which for protocols 0x01 and 0x02 is the ComID.
//
// Implementations are safe for concurrent use; they serialise commands as a
// device does. A call that returns because ctx ended may leave the handle
// unusable: later calls then fail, and the caller opens a new one.
type Transport interface {
	// IFSend transfers data to the device (Security Send, SECURITY
	// PROTOCOL OUT, TRUSTED SEND). The device may require len(data) to be
	// a multiple of 512 for some transports; callers pad with zeros.
	IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error

	// IFRecv asks the device for at most len(buf) bytes (the allocation
	// length) and returns how many it stored in buf. Transports whose
	// command always transfers the whole allocation return len(buf); the
	// TCG framing inside says how much of it is meaningful.
	IFRecv(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error)

	// Identify returns the device's identity through the same path as the
	// security commands (NVMe Identify Controller, SCSI INQUIRY VPD 0x80,
	// ATA IDENTIFY DEVICE, opalwire INFO).
	Identify(ctx context.Context) (Identity, error)

	// Close releases the handle. Calls after Close fail with ErrClosed.
	Close() error
}

// Kind names the command set a Transport speaks to its device.
type Kind uint8

// Transport kinds.
const (
	KindUnknown Kind = iota
	KindNVMe         // NVMe admin Security Send / Receive (PROTOCOL.md 4.1)
	KindSCSI         // SCSI SECURITY PROTOCOL IN / OUT, also SATA behind SAT (4.2)
	KindATA          // ATA TRUSTED SEND / RECEIVE through ATA PASS-THROUGH (4.3)
	KindSim          // sedsim, in process or over opalwire
)

// String returns "nvme", "scsi", "ata", "sim" or "unknown(N)".
func (k Kind) String() string {
	switch k {
	case KindNVMe:
		return "nvme"
	case KindSCSI:
		return "scsi"
	case KindATA:
		return "ata"
	case KindSim:
		return "sim"
	}
	return "unknown(" + strconv.Itoa(int(k)) + ")"
}

// SerialLen is the length of a raw serial number: 20 bytes, the size of the
// NVMe SN field and of ATA IDENTIFY words 10-19.
const SerialLen = 20

// Identity describes a device as its identify command reports it.
type Identity struct {
	// Serial holds the serial number exactly as the device reports it:
	// space padded and never trimmed, because sedutil-compatible password
	// hashing salts with these 20 raw bytes (PROTOCOL.md 2.2). Use
	// SerialString for display.
	Serial [SerialLen]byte

	Model    string // trimmed of trailing spaces and NULs
	Firmware string // trimmed of trailing spaces and NULs
	Kind     Kind

	BlockSize uint32 // logical block size in bytes; 0 if unknown
	Blocks    uint64 // capacity in logical blocks; 0 if unknown
	PCIVendor uint16 // PCI vendor id; 0 if unknown or not PCI
}

// SerialString returns the serial for people: Serial with leading and
// trailing spaces and NULs removed. Never use it as a hashing salt.
func (id Identity) SerialString() string {
	return strings.Trim(string(id.Serial[:]), " \x00")
}

// Sentinel errors. Backends wrap them with the operation and device:
//
//	fmt.Errorf("if-recv proto 0x%02x comid 0x%04x on %s: %w", p, c, dev, transport.ErrInvalidField)
var (
	// ErrNotSupported means the device has no TCG security protocol
	// support at all (NVMe OACS bit 0 clear, ATA IDENTIFY word 48 without
	// the trusted computing bit, an Invalid Opcode answer).
	ErrNotSupported = errors.New("device does not support TCG security protocols")

	// ErrInvalidField means the device rejected a field of the command:
	// usually an unsupported security protocol or ComID (NVMe Invalid
	// Field in Command, SCSI ILLEGAL REQUEST / INVALID FIELD IN CDB,
	// opalwire INVALID_FIELD).
	ErrInvalidField = errors.New("device rejected the command: unsupported security protocol, ComID or length")

	// ErrClosed means the Transport was closed, or broken by an earlier
	// failure, and a new one must be opened.
	ErrClosed = errors.New("transport is closed")
)
