package nvme

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Controller holds the fields of the Identify Controller data structure
// (CNS 01h, NVMe Base 2.0 figure 275) that this package uses.
type Controller struct {
	VID      uint16                    // bytes 0-1: PCI vendor id
	SSVID    uint16                    // bytes 2-3: PCI subsystem vendor id
	Serial   [transport.SerialLen]byte // bytes 4-23: SN, ASCII, space padded, raw
	Model    string                    // bytes 24-63: MN, trailing spaces and NULs trimmed
	Firmware string                    // bytes 64-71: FR, trailing spaces and NULs trimmed
	OACS     uint16                    // bytes 256-257: Optional Admin Command Support
}

// OACSSecurity is OACS bit 0: the controller supports Security Send and
// Security Receive.
const OACSSecurity = 1 << 0

// SecuritySupported reports whether OACS bit 0 is set.
func (c Controller) SecuritySupported() bool { return c.OACS&OACSSecurity != 0 }

// ParseIdentifyController decodes an Identify Controller data structure.
// It needs at least the first 258 bytes (through OACS); the device always
// returns IdentifyLen.
func ParseIdentifyController(b []byte) (Controller, error) {
	const need = 258
	if len(b) < need {
		return Controller{}, fmt.Errorf("identify controller: %d bytes, need at least %d", len(b), need)
	}
	le := binary.LittleEndian // NVMe data structures are little-endian
	var c Controller
	c.VID = le.Uint16(b[0:])
	c.SSVID = le.Uint16(b[2:])
	copy(c.Serial[:], b[4:24])
	c.Model = trimField(b[24:64])
	c.Firmware = trimField(b[64:72])
	c.OACS = le.Uint16(b[256:])
	return c, nil
}

// Identity returns the controller's identity as a transport.Identity.
func (c Controller) Identity() transport.Identity {
	return transport.Identity{
		Serial:    c.Serial,
		Model:     c.Model,
		Firmware:  c.Firmware,
		Kind:      transport.KindNVMe,
		PCIVendor: c.VID,
	}
}

// Namespace holds the fields of the Identify Namespace data structure (CNS
// 00h, NVMe Base 2.0 NVM Command Set figure 97) that give the capacity.
type Namespace struct {
	Size      uint64 // bytes 0-7: NSZE, in logical blocks
	BlockSize uint32 // from the LBA format that FLBAS selects
}

// ParseIdentifyNamespace decodes the namespace size and the logical block
// size of the format in use. An LBA format index beyond NLBAF, or an LBADS
// below 9 (512 bytes) or above 16, is an error.
func ParseIdentifyNamespace(b []byte) (Namespace, error) {
	if len(b) < IdentifyLen {
		return Namespace{}, fmt.Errorf("identify namespace: %d bytes, want %d", len(b), IdentifyLen)
	}
	le := binary.LittleEndian
	nlbaf := int(b[25]) // zero-based number of LBA formats
	flbas := b[26]
	idx := int(flbas&0x0f) | int(flbas>>5&0x03)<<4 // bits 3:0, and 6:5 as bits 5:4
	if idx > nlbaf || idx >= 64 {
		return Namespace{}, fmt.Errorf("identify namespace: FLBAS selects format %d of %d", idx, nlbaf+1)
	}
	lbads := b[128+4*idx+2]
	if lbads < 9 || lbads > 16 {
		return Namespace{}, fmt.Errorf("identify namespace: LBA data size 2^%d is out of range", lbads)
	}
	return Namespace{Size: le.Uint64(b[0:]), BlockSize: 1 << lbads}, nil
}

// trimField returns an ASCII identify field without trailing spaces and
// NULs.
func trimField(b []byte) string {
	return strings.TrimRight(string(b), " \x00")
}
