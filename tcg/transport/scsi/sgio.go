package scsi

import (
	"fmt"
	"strings"
	"unsafe"
)

// SgIOHdr mirrors struct sg_io_hdr (sg_io_hdr_t) of include/scsi/sg.h, the
// argument of SG_IO. The C pointers are unsafe.Pointer fields, so the
// layout follows the platform as C does: 88 bytes with 8-byte pointers
// (offsets in PROTOCOL.md 4.2), 64 bytes with 4-byte pointers. The garbage
// collector sees the buffers the header points to. TestSgIOHdrABI pins
// both layouts.
type SgIOHdr struct {
	InterfaceID    int32          // interface_id: 'S'
	DxferDirection int32          // dxfer_direction: SG_DXFER_*
	CmdLen         uint8          // cmd_len: CDB length
	MxSbLen        uint8          // mx_sb_len: size of the sense buffer
	IovecCount     uint16         // iovec_count: 0, dxferp is a plain buffer
	DxferLen       uint32         // dxfer_len: data transfer length in bytes
	Dxferp         unsafe.Pointer // dxferp: data buffer
	Cmdp           unsafe.Pointer // cmdp: CDB
	Sbp            unsafe.Pointer // sbp: sense buffer
	Timeout        uint32         // timeout: milliseconds
	Flags          uint32         // flags: SG_FLAG_*
	PackID         int32          // pack_id: unused
	UsrPtr         unsafe.Pointer // usr_ptr: unused
	Status         uint8          // status: SCSI status byte (out)
	MaskedStatus   uint8          // masked_status: status >> 1 (out)
	MsgStatus      uint8          // msg_status (out)
	SbLenWr        uint8          // sb_len_wr: sense bytes written (out)
	HostStatus     uint16         // host_status: DID_* (out)
	DriverStatus   uint16         // driver_status: DRIVER_* (out)
	Resid          int32          // resid: dxfer_len minus bytes transferred (out)
	Duration       uint32         // duration: milliseconds (out)
	Info           uint32         // info: SG_INFO_* (out)
}

// SG_IO and its constants (include/scsi/sg.h). SG_IO predates the _IOC
// encoding and is the same number on every architecture.
const (
	IoctlSGIO = 0x2285

	interfaceIDOrig = 'S'

	DxferNone    = -1 // SG_DXFER_NONE
	DxferToDev   = -2 // SG_DXFER_TO_DEV
	DxferFromDev = -3 // SG_DXFER_FROM_DEV

	infoCheck = 0x1 // SG_INFO_CHECK: something is wrong
)

// SenseLen is the size of the sense buffer given to SG_IO (SCSI sense
// data is at most 252 bytes; drives send 18 or 32 in practice).
const SenseLen = 64

// SCSI status byte values (SAM-5 table 43).
const (
	StatusGood                = 0x00
	StatusCheckCondition      = 0x02
	StatusConditionMet        = 0x04
	StatusBusy                = 0x08
	StatusReservationConflict = 0x18
	StatusTaskSetFull         = 0x28
	StatusACAActive           = 0x30
	StatusTaskAborted         = 0x40
)

var statusNames = map[uint8]string{
	StatusGood:                "GOOD",
	StatusCheckCondition:      "CHECK CONDITION",
	StatusConditionMet:        "CONDITION MET",
	StatusBusy:                "BUSY",
	StatusReservationConflict: "RESERVATION CONFLICT",
	StatusTaskSetFull:         "TASK SET FULL",
	StatusACAActive:           "ACA ACTIVE",
	StatusTaskAborted:         "TASK ABORTED",
}

// Host status values (include/scsi/scsi_status.h, DID_*).
var hostNames = map[uint16]string{
	0x01: "DID_NO_CONNECT (no connection to the device)",
	0x02: "DID_BUS_BUSY",
	0x03: "DID_TIME_OUT (the command timed out)",
	0x04: "DID_BAD_TARGET",
	0x05: "DID_ABORT",
	0x06: "DID_PARITY",
	0x07: "DID_ERROR (internal host adapter error)",
	0x08: "DID_RESET",
	0x09: "DID_BAD_INTR",
	0x0a: "DID_PASSTHROUGH",
	0x0b: "DID_SOFT_ERROR",
	0x0c: "DID_IMM_RETRY",
	0x0d: "DID_REQUEUE",
	0x0e: "DID_TRANSPORT_DISRUPTED",
	0x0f: "DID_TRANSPORT_FAILFAST",
	0x11: "DID_NEXUS_FAILURE",
	0x12: "DID_ALLOC_FAILURE",
	0x13: "DID_MEDIUM_ERROR",
	0x14: "DID_TRANSPORT_MARGINAL",
}

// Driver status values (low nibble; DRIVER_* of the sg driver).
const driverSense = 0x08

var driverNames = map[uint16]string{
	0x01: "DRIVER_BUSY",
	0x02: "DRIVER_SOFT",
	0x03: "DRIVER_MEDIA",
	0x04: "DRIVER_ERROR",
	0x05: "DRIVER_INVALID",
	0x06: "DRIVER_TIMEOUT (the command timed out)",
	0x07: "DRIVER_HARD",
	0x08: "DRIVER_SENSE",
}

// CommandError is a failed SG_IO command without usable sense data: a SCSI
// status other than GOOD, or a host adapter or driver failure.
type CommandError struct {
	Status       uint8  // SCSI status byte
	HostStatus   uint16 // DID_* value
	DriverStatus uint16 // DRIVER_* value
}

func (e *CommandError) Error() string {
	var parts []string
	if e.Status != StatusGood {
		name, ok := statusNames[e.Status]
		if !ok {
			name = "unknown"
		}
		parts = append(parts, fmt.Sprintf("SCSI status 0x%02x %s", e.Status, name))
	}
	if e.HostStatus != 0 {
		name, ok := hostNames[e.HostStatus]
		if !ok {
			name = "unknown"
		}
		parts = append(parts, fmt.Sprintf("host status 0x%02x %s", e.HostStatus, name))
	}
	if d := e.DriverStatus & 0x0f; d != 0 {
		name, ok := driverNames[d]
		if !ok {
			name = "unknown"
		}
		parts = append(parts, fmt.Sprintf("driver status 0x%02x %s", e.DriverStatus, name))
	}
	if len(parts) == 0 {
		return "SG_IO command failed"
	}
	return "SG_IO: " + strings.Join(parts, ", ")
}

// checkResult turns the status fields of a completed SG_IO and the sense
// bytes it wrote into an error, or nil for success. Sense data with key
// NO SENSE, RECOVERED ERROR or COMPLETED is success.
func checkResult(h *SgIOHdr, sense []byte) error {
	n := min(int(h.SbLenWr), len(sense))
	if n > 0 {
		s, err := ParseSense(sense[:n])
		switch {
		case err == nil && !s.Key.benign():
			return s
		case err != nil && h.Status == StatusCheckCondition:
			return fmt.Errorf("SG_IO: CHECK CONDITION with %v", err)
		}
	}
	ce := &CommandError{Status: h.Status, HostStatus: h.HostStatus, DriverStatus: h.DriverStatus}
	if h.HostStatus != 0 {
		return ce
	}
	if h.Status != StatusGood && h.Status != StatusConditionMet {
		if n == 0 || h.Status != StatusCheckCondition {
			return ce
		}
	}
	if d := h.DriverStatus & 0x0f; d != 0 && d != driverSense {
		return ce
	}
	return nil
}
