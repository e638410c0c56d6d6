package scsi

import (
	"fmt"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// SenseKey is the sense key of sense data (SPC-5 table 51).
type SenseKey uint8

// Sense keys.
const (
	NoSense        SenseKey = 0x0
	RecoveredError SenseKey = 0x1
	NotReady       SenseKey = 0x2
	MediumError    SenseKey = 0x3
	HardwareError  SenseKey = 0x4
	IllegalRequest SenseKey = 0x5
	UnitAttention  SenseKey = 0x6
	DataProtect    SenseKey = 0x7
	BlankCheck     SenseKey = 0x8
	VendorSpecific SenseKey = 0x9
	CopyAborted    SenseKey = 0xA
	AbortedCommand SenseKey = 0xB
	VolumeOverflow SenseKey = 0xD
	Miscompare     SenseKey = 0xE
	Completed      SenseKey = 0xF
)

var senseKeyNames = [16]string{
	"NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
	"ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
	"COPY ABORTED", "ABORTED COMMAND", "RESERVED (0xC)", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED",
}

func (k SenseKey) String() string { return senseKeyNames[k&0xf] }

// benign reports whether the key means the command succeeded.
func (k SenseKey) benign() bool { return k == NoSense || k == RecoveredError || k == Completed }

// Additional sense codes that this package tests for.
const (
	ASCInvalidOpcode     = 0x20 // INVALID COMMAND OPERATION CODE
	ASCInvalidFieldInCDB = 0x24 // INVALID FIELD IN CDB
	ASCInvalidFieldParam = 0x26 // INVALID FIELD IN PARAMETER LIST
)

// ascNames names the ASC/ASCQ pairs people meet with security commands
// (SPC-5 table F.1).
var ascNames = map[uint16]string{
	0x0000: "NO ADDITIONAL SENSE INFORMATION",
	0x001D: "ATA PASS THROUGH INFORMATION AVAILABLE",
	0x0400: "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE",
	0x0401: "LOGICAL UNIT IS IN PROCESS OF BECOMING READY",
	0x0402: "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED",
	0x0403: "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED",
	0x0C00: "WRITE ERROR",
	0x1100: "UNRECOVERED READ ERROR",
	0x1A00: "PARAMETER LIST LENGTH ERROR",
	0x2000: "INVALID COMMAND OPERATION CODE",
	0x2002: "ACCESS DENIED - NO ACCESS RIGHTS",
	0x2100: "LOGICAL BLOCK ADDRESS OUT OF RANGE",
	0x2400: "INVALID FIELD IN CDB",
	0x2500: "LOGICAL UNIT NOT SUPPORTED",
	0x2600: "INVALID FIELD IN PARAMETER LIST",
	0x2700: "WRITE PROTECTED",
	0x2800: "NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED",
	0x2900: "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED",
	0x2A01: "MODE PARAMETERS CHANGED",
	0x2C00: "COMMAND SEQUENCE ERROR",
	0x3A00: "MEDIUM NOT PRESENT",
	0x3F01: "MICROCODE HAS BEEN CHANGED",
	0x4400: "INTERNAL TARGET FAILURE",
	0x7471: "LOGICAL UNIT ACCESS NOT AUTHORIZED",
}

// ASCName returns the name of an ASC/ASCQ pair, or "" if this package
// does not know it.
func ASCName(asc, ascq uint8) string { return ascNames[uint16(asc)<<8|uint16(ascq)] }

// ATAStatus holds the ATA registers that a pass-through command returned
// in its sense data (SAT-4 12.2.2.6, ATA Status Return descriptor; or the
// fixed format's INFORMATION field with ASC/ASCQ 00h/1Dh).
type ATAStatus struct {
	Error  uint8 // ERROR register: bit 2 ABRT
	Status uint8 // STATUS register: bit 0 ERR, bit 6 DRDY
	Device uint8
	Count  uint8 // COUNT 7:0
}

func (a ATAStatus) String() string {
	s := fmt.Sprintf("ATA status 0x%02x error 0x%02x", a.Status, a.Error)
	if a.Error&0x04 != 0 {
		s += " (ABRT: the drive aborted the command)"
	}
	return s
}

// Sense is decoded sense data; a failed command returns it as its error.
type Sense struct {
	Response uint8 // response code: 0x70/0x71 fixed, 0x72/0x73 descriptor
	Key      SenseKey
	ASC      uint8
	ASCQ     uint8

	// FieldPointer is the sense-key-specific field pointer of an ILLEGAL
	// REQUEST: the byte of the CDB (InCDB) or of the parameter data at
	// fault. -1 when the drive gave none.
	FieldPointer int
	InCDB        bool

	ATA *ATAStatus // ATA registers, when the data carries them
}

// Deferred reports whether the sense data belongs to an earlier command.
func (s Sense) Deferred() bool { return s.Response == 0x71 || s.Response == 0x73 }

// Error describes the sense data: "ILLEGAL REQUEST: INVALID FIELD IN CDB
// (ASC 0x24 ASCQ 0x00), CDB byte 14".
func (s Sense) Error() string {
	var b strings.Builder
	b.WriteString(s.Key.String())
	b.WriteString(": ")
	if n := ASCName(s.ASC, s.ASCQ); n != "" {
		b.WriteString(n)
	} else {
		b.WriteString("additional sense")
	}
	fmt.Fprintf(&b, " (ASC 0x%02x ASCQ 0x%02x)", s.ASC, s.ASCQ)
	if s.FieldPointer >= 0 {
		where := "parameter data"
		if s.InCDB {
			where = "CDB"
		}
		fmt.Fprintf(&b, ", %s byte %d", where, s.FieldPointer)
	}
	if s.ATA != nil {
		b.WriteString(", ")
		b.WriteString(s.ATA.String())
	}
	if s.Deferred() {
		b.WriteString(" (deferred error of an earlier command)")
	}
	return b.String()
}

// Is matches transport.ErrNotSupported for ILLEGAL REQUEST / INVALID
// COMMAND OPERATION CODE and transport.ErrInvalidField for ILLEGAL REQUEST
// / INVALID FIELD IN CDB or IN PARAMETER LIST.
func (s Sense) Is(target error) bool {
	if s.Key != IllegalRequest {
		return false
	}
	switch target {
	case transport.ErrNotSupported:
		return s.ASC == ASCInvalidOpcode && s.ASCQ == 0
	case transport.ErrInvalidField:
		return s.ASC == ASCInvalidFieldInCDB || s.ASC == ASCInvalidFieldParam
	}
	return false
}

// ParseSense decodes fixed-format (70h/71h) and descriptor-format
// (72h/73h) sense data (SPC-5 4.4). Fields the drive did not send read as
// zero; data too short for the sense key, or with another response code,
// is an error.
func ParseSense(b []byte) (Sense, error) {
	s := Sense{FieldPointer: -1}
	if len(b) == 0 {
		return s, fmt.Errorf("empty sense data")
	}
	s.Response = b[0] & 0x7f
	switch s.Response {
	case 0x70, 0x71:
		if len(b) < 3 {
			return s, fmt.Errorf("fixed-format sense data of %d bytes: % x", len(b), b)
		}
		s.Key = SenseKey(b[2] & 0x0f)
		// The additional length (byte 7) bounds the rest.
		end := len(b)
		if len(b) >= 8 {
			end = min(end, 8+int(b[7]))
		}
		if end > 12 {
			s.ASC = b[12]
		}
		if end > 13 {
			s.ASCQ = b[13]
		}
		if end > 17 {
			s.parseSKS(b[15:18])
		}
		if s.ASC == 0x00 && s.ASCQ == 0x1D && end > 6 {
			// SAT: INFORMATION carries ERROR, STATUS, DEVICE, COUNT.
			s.ATA = &ATAStatus{Error: b[3], Status: b[4], Device: b[5], Count: b[6]}
		}
	case 0x72, 0x73:
		if len(b) < 2 {
			return s, fmt.Errorf("descriptor-format sense data of %d bytes: % x", len(b), b)
		}
		s.Key = SenseKey(b[1] & 0x0f)
		if len(b) > 2 {
			s.ASC = b[2]
		}
		if len(b) > 3 {
			s.ASCQ = b[3]
		}
		if len(b) < 8 {
			break
		}
		descs := b[8:min(len(b), 8+int(b[7]))]
		for len(descs) >= 2 {
			typ, n := descs[0], int(descs[1])
			if 2+n > len(descs) {
				break // truncated descriptor: ignore it
			}
			d := descs[:2+n]
			switch {
			case typ == 0x02 && n >= 6: // sense key specific
				s.parseSKS(d[4:7])
			case typ == 0x09 && n >= 12: // ATA Status Return
				s.ATA = &ATAStatus{Error: d[3], Count: d[5], Device: d[12], Status: d[13]}
			}
			descs = descs[2+n:]
		}
	default:
		return s, fmt.Errorf("sense data with unknown response code 0x%02x: % x", b[0], b[:min(len(b), 32)])
	}
	return s, nil
}

// parseSKS decodes the three sense-key-specific bytes as a field pointer
// when the key is ILLEGAL REQUEST and SKSV is set.
func (s *Sense) parseSKS(b []byte) {
	if s.Key != IllegalRequest || b[0]&0x80 == 0 {
		return
	}
	s.InCDB = b[0]&0x40 != 0
	s.FieldPointer = int(b[1])<<8 | int(b[2])
}
