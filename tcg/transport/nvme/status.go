package nvme

import (
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Status is a failed NVMe completion status as the kernel reports it: the
// positive return value of NVME_IOCTL_ADMIN_CMD, which is the completion
// queue entry's Status Field shifted right by one (bits 7:0 SC, 10:8 SCT,
// 12:11 CRD, 13 More, 14 DNR; NVMe Base 2.0 figure 92). The kernel also
// uses a few values of its own in the path-related range (0x370, 0x371).
//
// Status matches transport.ErrNotSupported for Invalid Command Opcode and
// transport.ErrInvalidField for Invalid Field in Command, with errors.Is.
type Status uint16

// Status code types (SCT).
const (
	SCTGeneric         = 0x0
	SCTCommandSpecific = 0x1
	SCTMedia           = 0x2
	SCTPath            = 0x3
	SCTVendor          = 0x7
)

// A few generic status codes (SCT 0) that callers test for.
const (
	StatusInvalidOpcode Status = 0x001
	StatusInvalidField  Status = 0x002
	StatusAccessDenied  Status = 0x286 // media and data integrity error 86h
)

// SC returns the status code.
func (s Status) SC() uint8 { return uint8(s) }

// SCT returns the status code type.
func (s Status) SCT() uint8 { return uint8(s>>8) & 0x7 }

// More reports the More bit: more status is in the Error Information log.
func (s Status) More() bool { return s&(1<<13) != 0 }

// DNR reports the Do Not Retry bit.
func (s Status) DNR() bool { return s&(1<<14) != 0 }

// code is SCT and SC without the flag bits.
func (s Status) code() Status { return s & 0x7ff }

// Error describes the status: "NVMe status 0x4002: Invalid Field in
// Command (SCT 0 SC 0x02, do not retry)".
func (s Status) Error() string {
	name := s.Name()
	flags := ""
	if s.DNR() {
		flags += ", do not retry"
	}
	if s.More() {
		flags += ", more in the error log"
	}
	return fmt.Sprintf("NVMe status 0x%04x: %s (SCT %d SC 0x%02x%s)", uint16(s), name, s.SCT(), s.SC(), flags)
}

// Is matches the transport sentinels, and another Status with the same SCT
// and SC whatever the flag bits.
func (s Status) Is(target error) bool {
	switch target {
	case transport.ErrNotSupported:
		return s.code() == StatusInvalidOpcode
	case transport.ErrInvalidField:
		return s.code() == StatusInvalidField
	}
	if t, ok := target.(Status); ok {
		return s.code() == t.code()
	}
	return false
}

// Name returns the specification's name for the status code, or a generic
// description for codes without one here.
func (s Status) Name() string {
	switch s.SCT() {
	case SCTGeneric:
		if n, ok := genericNames[s.SC()]; ok {
			return n
		}
		return "generic command status"
	case SCTCommandSpecific:
		return "command specific status"
	case SCTMedia:
		if n, ok := mediaNames[s.SC()]; ok {
			return n
		}
		return "media and data integrity error"
	case SCTPath:
		if n, ok := pathNames[s.SC()]; ok {
			return n
		}
		return "path related status"
	case SCTVendor:
		return "vendor specific status"
	}
	return "reserved status code type"
}

// Generic command status values (NVMe Base 2.0 figure 94 and the NVM
// command set's figure 27).
var genericNames = map[uint8]string{
	0x00: "Successful Completion",
	0x01: "Invalid Command Opcode (the controller does not implement this command)",
	0x02: "Invalid Field in Command",
	0x03: "Command ID Conflict",
	0x04: "Data Transfer Error",
	0x05: "Commands Aborted due to Power Loss Notification",
	0x06: "Internal Error",
	0x07: "Command Abort Requested",
	0x08: "Command Aborted due to SQ Deletion",
	0x0B: "Invalid Namespace or Format",
	0x0C: "Command Sequence Error",
	0x0F: "Data SGL Length Invalid",
	0x13: "PRP Offset Invalid",
	0x15: "Operation Denied",
	0x1C: "Sanitize Failed",
	0x1D: "Sanitize In Progress",
	0x20: "Namespace is Write Protected",
	0x21: "Command Interrupted",
	0x22: "Transient Transport Error",
	0x80: "LBA Out of Range",
	0x81: "Capacity Exceeded",
	0x82: "Namespace Not Ready",
	0x83: "Reservation Conflict",
	0x84: "Format In Progress",
}

// Media and data integrity errors (figure 96, NVM command set figure 29).
var mediaNames = map[uint8]string{
	0x80: "Write Fault",
	0x81: "Unrecovered Read Error",
	0x82: "End-to-end Guard Check Error",
	0x83: "End-to-end Application Tag Check Error",
	0x84: "End-to-end Reference Tag Check Error",
	0x85: "Compare Failure",
	0x86: "Access Denied",
	0x87: "Deallocated or Unwritten Logical Block",
}

// Path related status (figure 97), including the kernel's own host values.
var pathNames = map[uint8]string{
	0x00: "Internal Path Error",
	0x01: "Asymmetric Access Persistent Loss",
	0x02: "Asymmetric Access Inaccessible",
	0x03: "Asymmetric Access Transition",
	0x60: "Controller Pathing Error",
	0x70: "Host Pathing Error (the kernel lost the path to the controller)",
	0x71: "Command Aborted By Host",
}
