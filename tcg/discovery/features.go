package discovery

import (
	"encoding/binary"
	"fmt"
)

// FeatureCode identifies a Level 0 feature descriptor (Core 3.3.6).
type FeatureCode uint16

// Feature codes. Codes without a decoded type in this package end up in
// Discovery.Other.
const (
	CodeTPer              FeatureCode = 0x0001 // Core 3.3.6.4
	CodeLocking           FeatureCode = 0x0002 // Core 3.3.6.5
	CodeGeometry          FeatureCode = 0x0003 // Opal 2 3.1.1.4
	CodeSecureMessaging   FeatureCode = 0x0004 // not decoded
	CodeEnterprise        FeatureCode = 0x0100 // Enterprise SSC
	CodeOpalV1            FeatureCode = 0x0200 // Opal SSC 1.00
	CodeSingleUserMode    FeatureCode = 0x0201 // Opal Feature Set: Single User Mode
	CodeDataStore         FeatureCode = 0x0202 // Opal Feature Set: Additional DataStore Tables
	CodeOpalV2            FeatureCode = 0x0203 // Opal SSC 2.0x
	CodeOpalite           FeatureCode = 0x0301 // Opalite SSC
	CodePyriteV1          FeatureCode = 0x0302 // Pyrite SSC 1.00
	CodePyriteV2          FeatureCode = 0x0303 // Pyrite SSC 2.00
	CodeRuby              FeatureCode = 0x0304 // Ruby SSC
	CodeLockingLBARanges  FeatureCode = 0x0401 // not decoded
	CodeBlockSID          FeatureCode = 0x0402 // Feature Set: Block SID Authentication
	CodeNamespaceLocking  FeatureCode = 0x0403 // Feature Set: Configurable Namespace Locking
	CodeDataRemoval       FeatureCode = 0x0404 // Supported Data Removal Mechanism
	CodeNamespaceGeometry FeatureCode = 0x0405 // not decoded
	CodeShadowMBRMultiNS  FeatureCode = 0x0407 // not decoded

	// CodeVendorMin is the first vendor unique feature code.
	CodeVendorMin FeatureCode = 0xC000
)

var codeNames = map[FeatureCode]string{
	CodeTPer:              "TPer",
	CodeLocking:           "Locking",
	CodeGeometry:          "Geometry Reporting",
	CodeSecureMessaging:   "Secure Messaging",
	CodeEnterprise:        "Enterprise SSC",
	CodeOpalV1:            "Opal SSC v1",
	CodeSingleUserMode:    "Single User Mode",
	CodeDataStore:         "Additional DataStore Tables",
	CodeOpalV2:            "Opal SSC v2",
	CodeOpalite:           "Opalite SSC",
	CodePyriteV1:          "Pyrite SSC v1",
	CodePyriteV2:          "Pyrite SSC v2",
	CodeRuby:              "Ruby SSC",
	CodeLockingLBARanges:  "Locking LBA Ranges Control",
	CodeBlockSID:          "Block SID Authentication",
	CodeNamespaceLocking:  "Configurable Namespace Locking",
	CodeDataRemoval:       "Data Removal Mechanism",
	CodeNamespaceGeometry: "Namespace Geometry Reporting",
	CodeShadowMBRMultiNS:  "Shadow MBR for Multiple Namespaces",
}

// String returns the feature's name and code, e.g. "Opal SSC v2 (0x0203)".
func (c FeatureCode) String() string {
	if n, ok := codeNames[c]; ok {
		return fmt.Sprintf("%s (0x%04X)", n, uint16(c))
	}
	if c.IsVendor() {
		return fmt.Sprintf("vendor unique (0x%04X)", uint16(c))
	}
	return fmt.Sprintf("unknown (0x%04X)", uint16(c))
}

// IsVendor reports whether c is in the vendor unique range (>= 0xC000).
func (c FeatureCode) IsVendor() bool { return c >= CodeVendorMin }

// Descriptor holds what every decoded feature descriptor carries besides
// its own fields. Its fields appear flattened in JSON.
type Descriptor struct {
	// Version is the descriptor version, bits 7..4 of byte 2. Build writes
	// it as is: real drives report 1 or more.
	Version uint8 `json:"version"`
	// Extra holds the data bytes beyond the length this package knows for
	// the feature (a newer descriptor version), nil if there are none.
	Extra HexBytes `json:"extra,omitempty"`
}

func (c *Descriptor) descriptor() *Descriptor { return c }

func bit(b byte, n uint) bool { return b&(1<<n) != 0 }

func setBit(b *byte, n uint, v bool) {
	if v {
		*b |= 1 << n
	}
}

// TPer is the TPer feature (0x0001, Core 3.3.6.4): which communication
// styles the TPer supports. Byte 4 bits 0..6.
type TPer struct {
	Descriptor
	Sync       bool `json:"sync"`        // b0
	Async      bool `json:"async"`       // b1
	AckNak     bool `json:"ack_nak"`     // b2
	BufferMgmt bool `json:"buffer_mgmt"` // b3
	Streaming  bool `json:"streaming"`   // b4
	ComIDMgmt  bool `json:"comid_mgmt"`  // b6
}

func (*TPer) layout() (int, int) { return 1, 0x0C }

func (f *TPer) decode(d []byte) {
	f.Sync, f.Async, f.AckNak = bit(d[0], 0), bit(d[0], 1), bit(d[0], 2)
	f.BufferMgmt, f.Streaming, f.ComIDMgmt = bit(d[0], 3), bit(d[0], 4), bit(d[0], 6)
}

func (f *TPer) encode(d []byte) {
	setBit(&d[0], 0, f.Sync)
	setBit(&d[0], 1, f.Async)
	setBit(&d[0], 2, f.AckNak)
	setBit(&d[0], 3, f.BufferMgmt)
	setBit(&d[0], 4, f.Streaming)
	setBit(&d[0], 6, f.ComIDMgmt)
}

// Locking is the Locking feature (0x0002, Core 3.3.6.5): the state of the
// Locking SP, the ranges and MBR shadowing. Byte 4 bits 0..7.
type Locking struct {
	Descriptor
	LockingSupported bool `json:"locking_supported"` // b0
	// LockingEnabled: the Locking SP is activated.
	LockingEnabled bool `json:"locking_enabled"` // b1
	// Locked: some locking range is currently read or write locked.
	Locked          bool `json:"locked"`           // b2
	MediaEncryption bool `json:"media_encryption"` // b3
	MBREnabled      bool `json:"mbr_enabled"`      // b4
	MBRDone         bool `json:"mbr_done"`         // b5
	// MBRShadowingNotSupported (Opal 2.02, Pyrite 2): the drive has no
	// MBR shadow.
	MBRShadowingNotSupported bool `json:"mbr_shadowing_not_supported"` // b6
	// HWResetSupported (Opal 2.02): LockOnReset and DoneOnReset may
	// name the hardware reset.
	HWResetSupported bool `json:"hw_reset_supported"` // b7
}

func (*Locking) layout() (int, int) { return 1, 0x0C }

func (f *Locking) decode(d []byte) {
	f.LockingSupported, f.LockingEnabled, f.Locked = bit(d[0], 0), bit(d[0], 1), bit(d[0], 2)
	f.MediaEncryption, f.MBREnabled, f.MBRDone = bit(d[0], 3), bit(d[0], 4), bit(d[0], 5)
	f.MBRShadowingNotSupported, f.HWResetSupported = bit(d[0], 6), bit(d[0], 7)
}

func (f *Locking) encode(d []byte) {
	setBit(&d[0], 0, f.LockingSupported)
	setBit(&d[0], 1, f.LockingEnabled)
	setBit(&d[0], 2, f.Locked)
	setBit(&d[0], 3, f.MediaEncryption)
	setBit(&d[0], 4, f.MBREnabled)
	setBit(&d[0], 5, f.MBRDone)
	setBit(&d[0], 6, f.MBRShadowingNotSupported)
	setBit(&d[0], 7, f.HWResetSupported)
}

// Geometry is the Geometry Reporting feature (0x0003, Opal 2 3.1.1.4): the
// alignment locking ranges must respect.
type Geometry struct {
	Descriptor
	// Align (AlignmentRequired): range starts and lengths must be
	// multiples of AlignmentGranularity, offset by LowestAlignedLBA.
	Align bool `json:"align"` // byte 4 b0
	// LogicalBlockSize is in bytes.
	LogicalBlockSize uint32 `json:"logical_block_size"` // bytes 12-15
	// AlignmentGranularity is in logical blocks.
	AlignmentGranularity uint64 `json:"alignment_granularity"` // bytes 16-23
	LowestAlignedLBA     uint64 `json:"lowest_aligned_lba"`    // bytes 24-31
}

func (*Geometry) layout() (int, int) { return 0x1C, 0x1C }

func (f *Geometry) decode(d []byte) {
	f.Align = bit(d[0], 0)
	f.LogicalBlockSize = binary.BigEndian.Uint32(d[8:12])
	f.AlignmentGranularity = binary.BigEndian.Uint64(d[12:20])
	f.LowestAlignedLBA = binary.BigEndian.Uint64(d[20:28])
}

func (f *Geometry) encode(d []byte) {
	setBit(&d[0], 0, f.Align)
	binary.BigEndian.PutUint32(d[8:12], f.LogicalBlockSize)
	binary.BigEndian.PutUint64(d[12:20], f.AlignmentGranularity)
	binary.BigEndian.PutUint64(d[20:28], f.LowestAlignedLBA)
}

// Enterprise is the Enterprise SSC feature (0x0100).
type Enterprise struct {
	Descriptor
	BaseComID uint16 `json:"base_comid"` // bytes 4-5
	NumComIDs uint16 `json:"num_comids"` // bytes 6-7
	// RangeCrossing is the raw Range Crossing Behavior bit. As the Opal 2
	// text is remembered (not checked), 1 means the drive rejects an I/O
	// that spans locking ranges and 0 that it allows one across unlocked
	// ranges.
	RangeCrossing bool `json:"range_crossing"` // byte 8 b0
}

func (*Enterprise) layout() (int, int) { return 5, 0x10 }

func (f *Enterprise) decode(d []byte) {
	f.BaseComID = binary.BigEndian.Uint16(d[0:2])
	f.NumComIDs = binary.BigEndian.Uint16(d[2:4])
	f.RangeCrossing = bit(d[4], 0)
}

func (f *Enterprise) encode(d []byte) {
	binary.BigEndian.PutUint16(d[0:2], f.BaseComID)
	binary.BigEndian.PutUint16(d[2:4], f.NumComIDs)
	setBit(&d[4], 0, f.RangeCrossing)
}

// OpalV1 is the Opal SSC v1.00 feature (0x0200).
type OpalV1 struct {
	Descriptor
	BaseComID uint16 `json:"base_comid"` // bytes 4-5
	NumComIDs uint16 `json:"num_comids"` // bytes 6-7
}

func (*OpalV1) layout() (int, int) { return 4, 0x0C }

func (f *OpalV1) decode(d []byte) {
	f.BaseComID = binary.BigEndian.Uint16(d[0:2])
	f.NumComIDs = binary.BigEndian.Uint16(d[2:4])
}

func (f *OpalV1) encode(d []byte) {
	binary.BigEndian.PutUint16(d[0:2], f.BaseComID)
	binary.BigEndian.PutUint16(d[2:4], f.NumComIDs)
}

// SingleUserMode is the Single User Mode feature (0x0201, Opal Feature
// Set: Single User Mode).
type SingleUserMode struct {
	Descriptor
	// NumLockingObjects is how many locking objects can be in SUM.
	NumLockingObjects uint32 `json:"num_locking_objects"` // bytes 4-7
	// Any: at least one locking object is in SUM.
	Any bool `json:"any"` // byte 8 b0
	// All: every locking object is in SUM.
	All bool `json:"all"` // byte 8 b1
	// Policy (RangeStartRangeLengthPolicy): true means admins, not the
	// range's user, own the start and length of SUM ranges.
	Policy bool `json:"policy"` // byte 8 b2
}

func (*SingleUserMode) layout() (int, int) { return 5, 0x0C }

func (f *SingleUserMode) decode(d []byte) {
	f.NumLockingObjects = binary.BigEndian.Uint32(d[0:4])
	f.Any, f.All, f.Policy = bit(d[4], 0), bit(d[4], 1), bit(d[4], 2)
}

func (f *SingleUserMode) encode(d []byte) {
	binary.BigEndian.PutUint32(d[0:4], f.NumLockingObjects)
	setBit(&d[4], 0, f.Any)
	setBit(&d[4], 1, f.All)
	setBit(&d[4], 2, f.Policy)
}

// DataStore is the Additional DataStore Tables feature (0x0202).
type DataStore struct {
	Descriptor
	MaxTables uint16 `json:"max_tables"` // bytes 6-7
	// MaxTotalSize is the most bytes all DataStore tables may hold.
	MaxTotalSize uint32 `json:"max_total_size"` // bytes 8-11
	// Alignment is the granularity, in bytes, of a DataStore table's size.
	Alignment uint32 `json:"alignment"` // bytes 12-15
}

func (*DataStore) layout() (int, int) { return 0x0C, 0x0C }

func (f *DataStore) decode(d []byte) {
	f.MaxTables = binary.BigEndian.Uint16(d[2:4])
	f.MaxTotalSize = binary.BigEndian.Uint32(d[4:8])
	f.Alignment = binary.BigEndian.Uint32(d[8:12])
}

func (f *DataStore) encode(d []byte) {
	binary.BigEndian.PutUint16(d[2:4], f.MaxTables)
	binary.BigEndian.PutUint32(d[4:8], f.MaxTotalSize)
	binary.BigEndian.PutUint32(d[8:12], f.Alignment)
}

// PINIndicator says what the SID credential's PIN is initially, or after a
// TPer Revert (Opal 2 3.1.1.5).
type PINIndicator uint8

// PIN indicator values; others are reserved.
const (
	// PINIsMSID: the SID PIN is the MSID PIN.
	PINIsMSID PINIndicator = 0x00
	// PINVendorDefined: the SID PIN is vendor defined (e.g. printed on the
	// label), not the MSID.
	PINVendorDefined PINIndicator = 0xFF
)

func (p PINIndicator) String() string {
	switch p {
	case PINIsMSID:
		return "MSID"
	case PINVendorDefined:
		return "vendor defined"
	}
	return fmt.Sprintf("reserved (0x%02X)", uint8(p))
}

// OpalV2 is the Opal SSC v2.0x feature (0x0203, Opal 2 3.1.1.5).
type OpalV2 struct {
	Descriptor
	BaseComID uint16 `json:"base_comid"` // bytes 4-5
	NumComIDs uint16 `json:"num_comids"` // bytes 6-7
	// RangeCrossing is the raw Range Crossing Behavior bit. As the Opal 2
	// text is remembered (not checked), 1 means the drive rejects an I/O
	// that spans locking ranges and 0 that it allows one across unlocked
	// ranges.
	RangeCrossing bool `json:"range_crossing"` // byte 8 b0
	// NumAdmins is the number of Locking SP Admin authorities.
	NumAdmins uint16 `json:"num_admins"` // bytes 9-10
	// NumUsers is the number of Locking SP User authorities.
	NumUsers uint16 `json:"num_users"` // bytes 11-12
	// InitialSIDPIN is the SID PIN as shipped.
	InitialSIDPIN PINIndicator `json:"initial_sid_pin"` // byte 13
	// RevertSIDPIN is the SID PIN after a TPer Revert.
	RevertSIDPIN PINIndicator `json:"revert_sid_pin"` // byte 14
}

func (*OpalV2) layout() (int, int) { return 11, 0x10 }

func (f *OpalV2) decode(d []byte) {
	f.BaseComID = binary.BigEndian.Uint16(d[0:2])
	f.NumComIDs = binary.BigEndian.Uint16(d[2:4])
	f.RangeCrossing = bit(d[4], 0)
	f.NumAdmins = binary.BigEndian.Uint16(d[5:7])
	f.NumUsers = binary.BigEndian.Uint16(d[7:9])
	f.InitialSIDPIN = PINIndicator(d[9])
	f.RevertSIDPIN = PINIndicator(d[10])
}

func (f *OpalV2) encode(d []byte) {
	binary.BigEndian.PutUint16(d[0:2], f.BaseComID)
	binary.BigEndian.PutUint16(d[2:4], f.NumComIDs)
	setBit(&d[4], 0, f.RangeCrossing)
	binary.BigEndian.PutUint16(d[5:7], f.NumAdmins)
	binary.BigEndian.PutUint16(d[7:9], f.NumUsers)
	d[9] = byte(f.InitialSIDPIN)
	d[10] = byte(f.RevertSIDPIN)
}

// Ruby is the Ruby SSC feature (0x0304), laid out like OpalV2.
type Ruby OpalV2

func (*Ruby) layout() (int, int) { return (*OpalV2)(nil).layout() }
func (f *Ruby) decode(d []byte)  { (*OpalV2)(f).decode(d) }
func (f *Ruby) encode(d []byte)  { (*OpalV2)(f).encode(d) }

// Opalite is the Opalite SSC feature (0x0301). Pyrite v1 and v2 use the
// same layout.
type Opalite struct {
	Descriptor
	BaseComID uint16 `json:"base_comid"` // bytes 4-5
	NumComIDs uint16 `json:"num_comids"` // bytes 6-7
	// InitialSIDPIN is the SID PIN as shipped.
	InitialSIDPIN PINIndicator `json:"initial_sid_pin"` // byte 13
	// RevertSIDPIN is the SID PIN after a TPer Revert.
	RevertSIDPIN PINIndicator `json:"revert_sid_pin"` // byte 14
}

// The specification's length is 0x10; a drive reporting 0x0C still holds
// every field.
func (*Opalite) layout() (int, int) { return 11, 0x10 }

func (f *Opalite) decode(d []byte) {
	f.BaseComID = binary.BigEndian.Uint16(d[0:2])
	f.NumComIDs = binary.BigEndian.Uint16(d[2:4])
	f.InitialSIDPIN = PINIndicator(d[9])
	f.RevertSIDPIN = PINIndicator(d[10])
}

func (f *Opalite) encode(d []byte) {
	binary.BigEndian.PutUint16(d[0:2], f.BaseComID)
	binary.BigEndian.PutUint16(d[2:4], f.NumComIDs)
	d[9] = byte(f.InitialSIDPIN)
	d[10] = byte(f.RevertSIDPIN)
}

// PyriteV1 is the Pyrite SSC v1.00 feature (0x0302), laid out like Opalite.
type PyriteV1 Opalite

func (*PyriteV1) layout() (int, int) { return (*Opalite)(nil).layout() }
func (f *PyriteV1) decode(d []byte)  { (*Opalite)(f).decode(d) }
func (f *PyriteV1) encode(d []byte)  { (*Opalite)(f).encode(d) }

// PyriteV2 is the Pyrite SSC v2.00 feature (0x0303), laid out like Opalite.
type PyriteV2 Opalite

func (*PyriteV2) layout() (int, int) { return (*Opalite)(nil).layout() }
func (f *PyriteV2) decode(d []byte)  { (*Opalite)(f).decode(d) }
func (f *PyriteV2) encode(d []byte)  { (*Opalite)(f).encode(d) }

// BlockSID is the Block SID Authentication feature (0x0402).
type BlockSID struct {
	Descriptor
	// SIDValueState: the SID PIN differs from the MSID PIN (the drive
	// has an owner).
	SIDValueState bool `json:"sid_value_state"` // byte 4 b0
	// SIDBlocked (SID Authentication Blocked State): authenticating as SID
	// fails until the next power cycle (or hardware reset, if
	// HardwareReset).
	SIDBlocked bool `json:"sid_blocked"` // byte 4 b1
	// FreezeLockSupported: the Locking SP Freeze Lock is supported.
	FreezeLockSupported bool `json:"freeze_lock_supported"` // byte 4 b2
	// FreezeLockState: the Locking SP is frozen.
	FreezeLockState bool `json:"freeze_lock_state"` // byte 4 b3
	// HardwareReset: a hardware reset clears the block too.
	HardwareReset bool `json:"hardware_reset"` // byte 5 b0
}

func (*BlockSID) layout() (int, int) { return 2, 0x0C }

func (f *BlockSID) decode(d []byte) {
	f.SIDValueState, f.SIDBlocked = bit(d[0], 0), bit(d[0], 1)
	f.FreezeLockSupported, f.FreezeLockState = bit(d[0], 2), bit(d[0], 3)
	f.HardwareReset = bit(d[1], 0)
}

func (f *BlockSID) encode(d []byte) {
	setBit(&d[0], 0, f.SIDValueState)
	setBit(&d[0], 1, f.SIDBlocked)
	setBit(&d[0], 2, f.FreezeLockSupported)
	setBit(&d[0], 3, f.FreezeLockState)
	setBit(&d[1], 0, f.HardwareReset)
}

// NamespaceLocking is the Configurable Namespace Locking feature (0x0403,
// CNL): locking ranges scoped to NVMe namespaces.
type NamespaceLocking struct {
	Descriptor
	// RangeC: namespace-scoped locking objects can be created.
	RangeC bool `json:"range_c"` // byte 4 b7
	// RangeP: namespace-scoped locking objects are present.
	RangeP bool `json:"range_p"` // byte 4 b6
	// SUMC: single user mode can be configured for them.
	SUMC bool `json:"sum_c"` // byte 4 b5
	// MaxKeyCount is the most media encryption keys the drive holds.
	MaxKeyCount uint32 `json:"max_key_count"` // bytes 8-11
	// UnusedKeyCount is how many of them are free.
	UnusedKeyCount uint32 `json:"unused_key_count"` // bytes 12-15
	// MaxRangesPerNamespace is the most locking ranges per namespace.
	MaxRangesPerNamespace uint32 `json:"max_ranges_per_namespace"` // bytes 16-19
}

// Drives seen report length 0x10, which ends with the last field.
func (*NamespaceLocking) layout() (int, int) { return 0x10, 0x10 }

func (f *NamespaceLocking) decode(d []byte) {
	f.RangeC, f.RangeP, f.SUMC = bit(d[0], 7), bit(d[0], 6), bit(d[0], 5)
	f.MaxKeyCount = binary.BigEndian.Uint32(d[4:8])
	f.UnusedKeyCount = binary.BigEndian.Uint32(d[8:12])
	f.MaxRangesPerNamespace = binary.BigEndian.Uint32(d[12:16])
}

func (f *NamespaceLocking) encode(d []byte) {
	setBit(&d[0], 7, f.RangeC)
	setBit(&d[0], 6, f.RangeP)
	setBit(&d[0], 5, f.SUMC)
	binary.BigEndian.PutUint32(d[4:8], f.MaxKeyCount)
	binary.BigEndian.PutUint32(d[8:12], f.UnusedKeyCount)
	binary.BigEndian.PutUint32(d[12:16], f.MaxRangesPerNamespace)
}

// RemovalMechanisms is the Data Removal Mechanism bitmap: bit i set means
// mechanism i is supported, and Times[i] applies to it.
type RemovalMechanisms uint8

// Data removal mechanisms. The bit numbers come from Pyrite 2.00 as quoted
// by implementations and are not checked against the specification.
const (
	RemovalOverwrite   RemovalMechanisms = 1 << 0
	RemovalBlockErase  RemovalMechanisms = 1 << 1
	RemovalCryptoErase RemovalMechanisms = 1 << 2
	RemovalVendor      RemovalMechanisms = 1 << 5
)

// DataRemoval is the Supported Data Removal Mechanism feature (0x0404,
// Pyrite 2.00 and Opal 2.02).
type DataRemoval struct {
	Descriptor
	// OperationProcessing: a data removal operation is in progress.
	OperationProcessing bool `json:"operation_processing"` // byte 5 b0
	// OperationInterrupted: the last data removal operation was
	// interrupted.
	OperationInterrupted bool `json:"operation_interrupted"` // byte 5 b1
	// Mechanisms are the supported data removal mechanisms.
	Mechanisms RemovalMechanisms `json:"mechanisms"` // byte 6
	// TimeFormats bit i gives the unit of Times[i] (kept raw).
	TimeFormats uint8 `json:"time_formats"` // byte 7
	// Times[i] is the time mechanism i takes, in the unit TimeFormats
	// bit i selects.
	Times [6]uint16 `json:"times"` // bytes 8-19
}

func (*DataRemoval) layout() (int, int) { return 0x10, 0x20 }

func (f *DataRemoval) decode(d []byte) {
	f.OperationProcessing, f.OperationInterrupted = bit(d[1], 0), bit(d[1], 1)
	f.Mechanisms = RemovalMechanisms(d[2])
	f.TimeFormats = d[3]
	for i := range f.Times {
		f.Times[i] = binary.BigEndian.Uint16(d[4+2*i:])
	}
}

func (f *DataRemoval) encode(d []byte) {
	setBit(&d[1], 0, f.OperationProcessing)
	setBit(&d[1], 1, f.OperationInterrupted)
	d[2] = byte(f.Mechanisms)
	d[3] = f.TimeFormats
	for i, t := range f.Times {
		binary.BigEndian.PutUint16(d[4+2*i:], t)
	}
}

// Compile-time checks that every decoded type is a feature.
var (
	_ feature = (*TPer)(nil)
	_ feature = (*Locking)(nil)
	_ feature = (*Geometry)(nil)
	_ feature = (*Enterprise)(nil)
	_ feature = (*OpalV1)(nil)
	_ feature = (*SingleUserMode)(nil)
	_ feature = (*DataStore)(nil)
	_ feature = (*OpalV2)(nil)
	_ feature = (*Ruby)(nil)
	_ feature = (*Opalite)(nil)
	_ feature = (*PyriteV1)(nil)
	_ feature = (*PyriteV2)(nil)
	_ feature = (*BlockSID)(nil)
	_ feature = (*NamespaceLocking)(nil)
	_ feature = (*DataRemoval)(nil)
)
