package scsi

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// SCSI operation codes (SPC-5, SAT-4).
const (
	OpInquiry             = 0x12
	OpSecurityProtocolIn  = 0xA2
	OpSecurityProtocolOut = 0xB5
	OpATAPassThrough12    = 0xA1
	OpATAPassThrough16    = 0x85
)

// ATA commands (ACS-4) and pass-through protocols (SAT-4 table 132).
const (
	ATAIdentifyDevice = 0xEC
	ATATrustedReceive = 0x5C
	ATATrustedSend    = 0x5E

	ataProtoPIOIn  = 4
	ataProtoPIOOut = 5
)

// ATA PASS-THROUGH byte 2 flags: T_DIR (bit 3, from the device), BYT_BLOK
// (bit 2, lengths in blocks) and T_LENGTH = 2 (bits 1:0, the length is in
// the COUNT field).
const (
	ataFlagsIn  = 0x08 | 0x04 | 0x02 // 0x0E
	ataFlagsOut = 0x04 | 0x02        // 0x06
)

// ATABlock is the unit of ATA trusted transfers and of IDENTIFY data.
const ATABlock = 512

// SecurityProtocolCDB returns the 12-byte SECURITY PROTOCOL IN (op 0xA2)
// or OUT (0xB5) CDB with INC_512 = 0: n is a byte count (SPC-5 6.40,
// 6.41; PROTOCOL.md 4.2).
func SecurityProtocolCDB(op, proto uint8, spsp uint16, n uint32) [12]byte {
	var c [12]byte
	c[0] = op
	c[1] = proto
	binary.BigEndian.PutUint16(c[2:], spsp)
	// c[4] bit 7 INC_512 stays 0.
	binary.BigEndian.PutUint32(c[6:], n)
	return c
}

// ATACmd is an ATA command in a SAT ATA PASS-THROUGH CDB: the 28-bit
// register set, which is all the trusted and identify commands use.
type ATACmd struct {
	Protocol uint8 // 4 PIO Data-In, 5 PIO Data-Out
	Flags    uint8 // byte 2: T_DIR, BYT_BLOK, T_LENGTH
	Features uint8
	Count    uint8
	LBALow   uint8
	LBAMid   uint8
	LBAHigh  uint8
	Device   uint8
	Command  uint8
}

// CDB16 returns the ATA PASS-THROUGH(16) CDB (SAT-4 12.2.2.3) with EXTEND
// = 0.
func (a ATACmd) CDB16() [16]byte {
	var c [16]byte
	c[0] = OpATAPassThrough16
	c[1] = a.Protocol << 1
	c[2] = a.Flags
	c[4] = a.Features
	c[6] = a.Count
	c[8] = a.LBALow
	c[10] = a.LBAMid
	c[12] = a.LBAHigh
	c[13] = a.Device
	c[14] = a.Command
	return c
}

// CDB12 returns the ATA PASS-THROUGH(12) CDB (SAT-4 12.2.2.2).
func (a ATACmd) CDB12() [12]byte {
	var c [12]byte
	c[0] = OpATAPassThrough12
	c[1] = a.Protocol << 1
	c[2] = a.Flags
	c[3] = a.Features
	c[4] = a.Count
	c[5] = a.LBALow
	c[6] = a.LBAMid
	c[7] = a.LBAHigh
	c[8] = a.Device
	c[9] = a.Command
	return c
}

// TrustedCmd returns TRUSTED SEND (send) or TRUSTED RECEIVE of the given
// number of 512-byte blocks (ACS-4 7.54, 7.56): FEATURES = security
// protocol, COUNT = blocks 7:0, LBA 7:0 = blocks 15:8, LBA 23:8 = SP
// specific (PROTOCOL.md 4.3).
func TrustedCmd(send bool, proto uint8, spsp uint16, blocks uint16) ATACmd {
	a := ATACmd{
		Protocol: ataProtoPIOIn, Flags: ataFlagsIn, Command: ATATrustedReceive,
		Features: proto, Count: uint8(blocks), LBALow: uint8(blocks >> 8),
		LBAMid: uint8(spsp), LBAHigh: uint8(spsp >> 8),
	}
	if send {
		a.Protocol, a.Flags, a.Command = ataProtoPIOOut, ataFlagsOut, ATATrustedSend
	}
	return a
}

// IdentifyCmd returns IDENTIFY DEVICE: PIO Data-In, one block.
func IdentifyCmd() ATACmd {
	return ATACmd{Protocol: ataProtoPIOIn, Flags: ataFlagsIn, Count: 1, Command: ATAIdentifyDevice}
}

// InquiryCDB returns INQUIRY with an allocation length of n bytes: the
// standard data (evpd false) or the VPD page (SPC-5 6.7).
func InquiryCDB(evpd bool, page uint8, n uint16) [6]byte {
	var c [6]byte
	c[0] = OpInquiry
	if evpd {
		c[1] = 0x01
		c[2] = page
	}
	binary.BigEndian.PutUint16(c[3:], n)
	return c
}

// ATAIdentity is what this package reads from IDENTIFY DEVICE data.
type ATAIdentity struct {
	Serial   [transport.SerialLen]byte // words 10-19, bytes in ASCII order, raw
	Firmware string                    // words 23-26, trimmed
	Model    string                    // words 27-46, trimmed
	// Trusted is word 48 bit 0 (Trusted Computing feature set supported),
	// with word 48 marked valid (bits 15:14 = 01b).
	Trusted bool
}

// ParseIdentifyDevice decodes 512 bytes of IDENTIFY DEVICE data (ACS-4
// 7.13.6). ATA strings hold two characters per little-endian word, the
// first in the high byte, so each byte pair is swapped.
func ParseIdentifyDevice(b []byte) (ATAIdentity, error) {
	if len(b) < ATABlock {
		return ATAIdentity{}, fmt.Errorf("IDENTIFY DEVICE data of %d bytes, want %d", len(b), ATABlock)
	}
	var id ATAIdentity
	copy(id.Serial[:], ataString(b, 10, 20))
	id.Firmware = strings.TrimRight(string(ataString(b, 23, 27)), " \x00")
	id.Model = strings.TrimRight(string(ataString(b, 27, 47)), " \x00")
	w48 := binary.LittleEndian.Uint16(b[96:])
	id.Trusted = w48>>14 == 0x1 && w48&0x1 != 0
	return id, nil
}

// ataString returns words [from, to) of IDENTIFY data as a string's bytes.
func ataString(b []byte, from, to int) []byte {
	out := make([]byte, 0, 2*(to-from))
	for w := from; w < to; w++ {
		out = append(out, b[2*w+1], b[2*w])
	}
	return out
}

// Inquiry is the standard INQUIRY data this package uses (SPC-5 6.7.2).
type Inquiry struct {
	DeviceType uint8  // peripheral device type: 0 direct access block device
	Vendor     string // bytes 8-15, trimmed
	Product    string // bytes 16-31, trimmed
	Revision   string // bytes 32-35, trimmed
}

// IsATA reports whether the vendor is "ATA", which a SCSI/ATA
// translation layer (libata, SAT) reports for an ATA drive.
func (q Inquiry) IsATA() bool { return q.Vendor == "ATA" }

// ParseInquiry decodes standard INQUIRY data; it needs the 36 bytes
// through the product revision level.
func ParseInquiry(b []byte) (Inquiry, error) {
	if len(b) < 36 {
		return Inquiry{}, fmt.Errorf("INQUIRY data of %d bytes, want at least 36", len(b))
	}
	trim := func(b []byte) string { return strings.Trim(string(b), " \x00") }
	return Inquiry{DeviceType: b[0] & 0x1f, Vendor: trim(b[8:16]), Product: trim(b[16:32]), Revision: trim(b[32:36])}, nil
}

// ParseUnitSerial decodes the Unit Serial Number VPD page (80h, SPC-5
// 7.7.19): the serial is exactly PAGE LENGTH bytes from byte 4, raw.
func ParseUnitSerial(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("unit serial number page of %d bytes", len(b))
	}
	if b[1] != 0x80 {
		return nil, fmt.Errorf("VPD page 0x%02x in answer to a request for page 0x80", b[1])
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if 4+n > len(b) {
		return nil, fmt.Errorf("unit serial number page says %d bytes, only %d arrived", n, len(b)-4)
	}
	return b[4 : 4+n], nil
}
