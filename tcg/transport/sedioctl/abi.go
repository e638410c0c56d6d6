package sedioctl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/shiftlock/shiftlock/tcg/transport/internal/ioctl"
)

// Limits from include/uapi/linux/sed-opal.h.
const (
	KeyMax    = 256 // OPAL_KEY_MAX
	MaxLRs    = 9   // OPAL_MAX_LRS: the global range and ranges 1 to 8
	UIDLength = 8   // OPAL_UID_LENGTH
)

// KeyType says where the kernel takes the key from (opal_key.key_type,
// since 6.6; the byte was padding before and 0 there still means the key
// in the struct).
type KeyType uint8

// Key types.
const (
	KeyIncluded KeyType = 0 // OPAL_INCLUDED: key[] holds it
	KeyKeyring  KeyType = 1 // OPAL_KEYRING: "opal-boot-pin" in the .sed_opal keyring
)

// User is enum opal_user: the authority a session runs as.
type User uint32

// Authorities.
const (
	Admin1 User = 0 // OPAL_ADMIN1
	User1  User = 1 // OPAL_USER1; OPAL_USER2..9 are 2..9
)

// UserN returns OPAL_USERn for n in 1..9.
func UserN(n int) (User, error) {
	if n < 1 || n > 9 {
		return 0, fmt.Errorf("user %d: the kernel knows User1 to User9", n)
	}
	return User(n), nil
}

// LockState is enum opal_lock_state.
type LockState uint32

// Lock states.
const (
	ReadOnly  LockState = 0x01 // OPAL_RO: read unlocked, write locked
	ReadWrite LockState = 0x02 // OPAL_RW: both unlocked
	Locked    LockState = 0x04 // OPAL_LK: both locked
)

func (s LockState) String() string {
	switch s {
	case ReadOnly:
		return "RO"
	case ReadWrite:
		return "RW"
	case Locked:
		return "LK"
	}
	return fmt.Sprintf("LockState(%d)", uint32(s))
}

// Flag and option values.
const (
	SaveForLock = 0x01 // opal_lock_unlock.flags OPAL_SAVE_FOR_LOCK (6.2)

	MBREnable  = 0 // opal_mbr_data.enable_disable OPAL_MBR_ENABLE
	MBRDisable = 1 // OPAL_MBR_DISABLE

	MBRNotDone = 0 // opal_mbr_done.done_flag OPAL_MBR_NOT_DONE
	MBRIsDone  = 1 // OPAL_MBR_DONE

	TableRead  = 1 << 0 // opal_read_write_table.flags OPAL_TABLE_READ
	TableWrite = 1 << 1 // OPAL_TABLE_WRITE

	Preserve = 0x01 // opal_revert_lsp.options OPAL_PRESERVE: keep the global range key
)

// StatusFlags is opal_status.flags (OPAL_FL_*).
type StatusFlags uint32

// Status flags.
const (
	FlSupported        StatusFlags = 0x01 // the drive speaks Opal 1 or 2
	FlLockingSupported StatusFlags = 0x02
	FlLockingEnabled   StatusFlags = 0x04
	FlLocked           StatusFlags = 0x08
	FlMBREnabled       StatusFlags = 0x10
	FlMBRDone          StatusFlags = 0x20
	FlSUMSupported     StatusFlags = 0x40
)

// Key mirrors struct opal_key (264 bytes). Its String method hides the
// key bytes.
type Key struct {
	LR      uint8        // lr: locking range
	KeyLen  uint8        // key_len
	KeyType KeyType      // key_type
	_       [5]byte      // __align
	Key     [KeyMax]byte // key
}

// ErrKeyTooLong means a key over KeyMax bytes, which the kernel cannot take.
var ErrKeyTooLong = errors.New("key is longer than the kernel's 256-byte OPAL_KEY_MAX")

// NewKey returns an OPAL_INCLUDED key for range lr. The key is used as
// given: hash passwords first.
func NewKey(lr uint8, key []byte) (Key, error) {
	if len(key) > KeyMax {
		return Key{}, fmt.Errorf("%d bytes: %w", len(key), ErrKeyTooLong)
	}
	k := Key{LR: lr, KeyLen: uint8(len(key))}
	copy(k.Key[:], key)
	return k, nil
}

// KeyringKey returns an OPAL_KEYRING key for range lr: the kernel uses
// "opal-boot-pin" from its .sed_opal keyring (6.6+).
func KeyringKey(lr uint8) Key { return Key{LR: lr, KeyType: KeyKeyring} }

// Wipe zeroes the key bytes.
func (k *Key) Wipe() { clear(k.Key[:]); k.KeyLen = 0 }

// String describes the key without its bytes.
func (k Key) String() string {
	if k.KeyType == KeyKeyring {
		return fmt.Sprintf("opal_key{lr %d, keyring}", k.LR)
	}
	return fmt.Sprintf("opal_key{lr %d, %d bytes redacted}", k.LR, k.KeyLen)
}

// GoString hides the key bytes from %#v too.
func (k Key) GoString() string { return k.String() }

// SessionInfo mirrors struct opal_session_info (272 bytes).
type SessionInfo struct {
	SUM uint32 // sum: Single User Mode: authenticate as User(lr+1)
	Who User   // who
	Key Key    // opal_key
}

// LockUnlock mirrors struct opal_lock_unlock (280 bytes): the argument of
// IOC_OPAL_SAVE, IOC_OPAL_LOCK_UNLOCK and IOC_OPAL_ADD_USR_TO_LR.
type LockUnlock struct {
	Session SessionInfo // session
	LState  LockState   // l_state
	Flags   uint16      // flags: SaveForLock (6.2; padding before)
	_       [2]byte     // __align
}

// UserLRSetup mirrors struct opal_user_lr_setup (296 bytes).
type UserLRSetup struct {
	RangeStart  uint64      // range_start, in logical blocks
	RangeLength uint64      // range_length
	RLE         uint32      // RLE: read lock enabled
	WLE         uint32      // WLE: write lock enabled
	Session     SessionInfo // session
}

// LRAct mirrors struct opal_lr_act (280 bytes), for IOC_OPAL_ACTIVATE_LSP.
type LRAct struct {
	Key    Key           // key: the SID key
	SUM    uint32        // sum: activate in Single User Mode
	NumLRs uint8         // num_lrs: entries of LR that count
	LR     [MaxLRs]uint8 // lr: ranges for Single User Mode
	_      [2]byte       // align
}

// NewPW mirrors struct opal_new_pw (544 bytes).
type NewPW struct {
	Session   SessionInfo // session: who authenticates, with the old key
	NewUserPW SessionInfo // new_user_pw: whose PIN changes, and the new key
}

// MBRData mirrors struct opal_mbr_data (272 bytes).
type MBRData struct {
	Key           Key     // key
	EnableDisable uint8   // enable_disable: MBREnable or MBRDisable
	_             [7]byte // __align
}

// MBRDoneArg mirrors struct opal_mbr_done (272 bytes).
type MBRDoneArg struct {
	Key      Key     // key
	DoneFlag uint8   // done_flag: MBRNotDone or MBRIsDone
	_        [7]byte // __align
}

// ShadowMBR mirrors struct opal_shadow_mbr (288 bytes). Data is a user
// address; [Kernel.WriteShadowMBR] fills it.
type ShadowMBR struct {
	Key    Key    // key
	Data   uint64 // data: user pointer
	Offset uint64 // offset
	Size   uint64 // size
}

// ReadWriteTable mirrors struct opal_read_write_table (312 bytes). Data is
// a user address; [Kernel.ReadTable] and [Kernel.WriteTable] fill it.
type ReadWriteTable struct {
	Key      Key             // key
	Data     uint64          // data: user pointer
	TableUID [UIDLength]byte // table_uid
	Offset   uint64          // offset
	Size     uint64          // size
	Flags    uint64          // flags: TableRead or TableWrite
	Priv     uint64          // priv
}

// Status mirrors struct opal_status (8 bytes), the result of
// IOC_OPAL_GET_STATUS.
type Status struct {
	Flags    StatusFlags // flags
	Reserved uint32      // reserved
}

// Has reports whether every flag in f is set.
func (s Status) Has(f StatusFlags) bool { return s.Flags&f == f }

// LRStatus mirrors struct opal_lr_status (304 bytes), in and out of
// IOC_OPAL_GET_LR_STATUS.
type LRStatus struct {
	Session     SessionInfo // session
	RangeStart  uint64      // range_start
	RangeLength uint64      // range_length
	RLE         uint32      // RLE
	WLE         uint32      // WLE
	LState      LockState   // l_state
	_           [4]byte     // align
}

// Geometry mirrors struct opal_geometry (32 bytes on 64-bit), the Level 0
// Geometry feature as the kernel cached it.
type Geometry struct {
	Align                uint8   // align: ranges must be aligned
	_                    [3]byte // implicit C padding
	LogicalBlockSize     uint32  // logical_block_size
	AlignmentGranularity uint64  // alignment_granularity, in logical blocks
	LowestAlignedLBA     uint64  // lowest_aligned_lba
	_                    [3]byte // __align; C pads the struct to 8 after it
}

// DiscoveryArg mirrors struct opal_discovery (16 bytes).
type DiscoveryArg struct {
	Data uint64 // data: user pointer
	Size uint64 // size
}

// RevertLSP mirrors struct opal_revert_lsp (272 bytes).
type RevertLSP struct {
	Key     Key    // key: Admin1's
	Options uint32 // options: Preserve
	_       uint32 // __pad
}

// LRReact mirrors struct opal_lr_react (544 bytes; the 2026 series).
type LRReact struct {
	Key         Key           // key
	NewAdminKey Key           // new_admin_key
	NumLRs      uint8         // num_lrs
	LR          [MaxLRs]uint8 // lr
	RangePolicy uint8         // range_policy
	EntireTable uint8         // entire_table
	_           [4]byte       // align
}

// SUMRanges mirrors struct opal_sum_ranges (280 bytes; the 2026 series),
// in and out of IOC_OPAL_GET_SUM_STATUS.
type SUMRanges struct {
	Key         Key           // key
	NumLRs      uint8         // num_lrs
	LR          [MaxLRs]uint8 // lr
	RangePolicy uint8         // range_policy
	_           [5]byte       // align
}

// ioctl request numbers: _IOW/_IOR('p', nr, struct), PROTOCOL.md 3.2.
var (
	IoctlSave             = ioctl.IOW('p', 220, uint32(unsafe.Sizeof(LockUnlock{})))
	IoctlLockUnlock       = ioctl.IOW('p', 221, uint32(unsafe.Sizeof(LockUnlock{})))
	IoctlTakeOwnership    = ioctl.IOW('p', 222, uint32(unsafe.Sizeof(Key{})))
	IoctlActivateLSP      = ioctl.IOW('p', 223, uint32(unsafe.Sizeof(LRAct{})))
	IoctlSetPW            = ioctl.IOW('p', 224, uint32(unsafe.Sizeof(NewPW{})))
	IoctlActivateUsr      = ioctl.IOW('p', 225, uint32(unsafe.Sizeof(SessionInfo{})))
	IoctlRevertTPR        = ioctl.IOW('p', 226, uint32(unsafe.Sizeof(Key{})))
	IoctlLRSetup          = ioctl.IOW('p', 227, uint32(unsafe.Sizeof(UserLRSetup{})))
	IoctlAddUsrToLR       = ioctl.IOW('p', 228, uint32(unsafe.Sizeof(LockUnlock{})))
	IoctlEnableDisableMBR = ioctl.IOW('p', 229, uint32(unsafe.Sizeof(MBRData{})))
	IoctlEraseLR          = ioctl.IOW('p', 230, uint32(unsafe.Sizeof(SessionInfo{})))
	IoctlSecureEraseLR    = ioctl.IOW('p', 231, uint32(unsafe.Sizeof(SessionInfo{})))
	IoctlPSIDRevertTPR    = ioctl.IOW('p', 232, uint32(unsafe.Sizeof(Key{})))
	IoctlMBRDone          = ioctl.IOW('p', 233, uint32(unsafe.Sizeof(MBRDoneArg{})))
	IoctlWriteShadowMBR   = ioctl.IOW('p', 234, uint32(unsafe.Sizeof(ShadowMBR{})))
	IoctlGenericTableRW   = ioctl.IOW('p', 235, uint32(unsafe.Sizeof(ReadWriteTable{})))
	IoctlGetStatus        = ioctl.IOR('p', 236, uint32(unsafe.Sizeof(Status{})))
	IoctlGetLRStatus      = ioctl.IOW('p', 237, uint32(unsafe.Sizeof(LRStatus{})))
	IoctlGetGeometry      = ioctl.IOR('p', 238, uint32(unsafe.Sizeof(Geometry{})))
	IoctlDiscovery        = ioctl.IOW('p', 239, uint32(unsafe.Sizeof(DiscoveryArg{})))
	IoctlRevertLSP        = ioctl.IOW('p', 240, uint32(unsafe.Sizeof(RevertLSP{})))
	IoctlSetSIDPW         = ioctl.IOW('p', 241, uint32(unsafe.Sizeof(NewPW{})))
	IoctlReactivateLSP    = ioctl.IOW('p', 242, uint32(unsafe.Sizeof(LRReact{})))
	IoctlLRSetStartLen    = ioctl.IOW('p', 243, uint32(unsafe.Sizeof(UserLRSetup{})))
	IoctlEnableDisableLR  = ioctl.IOW('p', 244, uint32(unsafe.Sizeof(UserLRSetup{})))
	IoctlGetSUMStatus     = ioctl.IOW('p', 245, uint32(unsafe.Sizeof(SUMRanges{})))
	IoctlStackReset       = ioctl.IO('p', 246)
)

// ioctlNames names the request numbers in errors.
var ioctlNames = map[uint32]string{
	IoctlSave: "IOC_OPAL_SAVE", IoctlLockUnlock: "IOC_OPAL_LOCK_UNLOCK", IoctlTakeOwnership: "IOC_OPAL_TAKE_OWNERSHIP",
	IoctlActivateLSP: "IOC_OPAL_ACTIVATE_LSP", IoctlSetPW: "IOC_OPAL_SET_PW", IoctlActivateUsr: "IOC_OPAL_ACTIVATE_USR",
	IoctlRevertTPR: "IOC_OPAL_REVERT_TPR", IoctlLRSetup: "IOC_OPAL_LR_SETUP", IoctlAddUsrToLR: "IOC_OPAL_ADD_USR_TO_LR",
	IoctlEnableDisableMBR: "IOC_OPAL_ENABLE_DISABLE_MBR", IoctlEraseLR: "IOC_OPAL_ERASE_LR",
	IoctlSecureEraseLR: "IOC_OPAL_SECURE_ERASE_LR", IoctlPSIDRevertTPR: "IOC_OPAL_PSID_REVERT_TPR",
	IoctlMBRDone: "IOC_OPAL_MBR_DONE", IoctlWriteShadowMBR: "IOC_OPAL_WRITE_SHADOW_MBR",
	IoctlGenericTableRW: "IOC_OPAL_GENERIC_TABLE_RW", IoctlGetStatus: "IOC_OPAL_GET_STATUS",
	IoctlGetLRStatus: "IOC_OPAL_GET_LR_STATUS", IoctlGetGeometry: "IOC_OPAL_GET_GEOMETRY",
	IoctlDiscovery: "IOC_OPAL_DISCOVERY", IoctlRevertLSP: "IOC_OPAL_REVERT_LSP", IoctlSetSIDPW: "IOC_OPAL_SET_SID_PW",
	IoctlReactivateLSP: "IOC_OPAL_REACTIVATE_LSP", IoctlLRSetStartLen: "IOC_OPAL_LR_SET_START_LEN",
	IoctlEnableDisableLR: "IOC_OPAL_ENABLE_DISABLE_LR", IoctlGetSUMStatus: "IOC_OPAL_GET_SUM_STATUS",
	IoctlStackReset: "IOC_OPAL_STACK_RESET",
}

// IoctlName returns the C name of a request number, or its hex value.
func IoctlName(req uint32) string {
	if n, ok := ioctlNames[req]; ok {
		return n
	}
	return fmt.Sprintf("ioctl 0x%08x", req)
}

// Explicit encodings, in host byte order as the kernel reads them. Each
// writes the same bytes as the struct's memory (TestMarshalMatchesMemory).

var ne = binary.NativeEndian

func pad(b []byte, n int) []byte { return append(b, make([]byte, n)...) }

func (k *Key) appendTo(b []byte) []byte {
	b = append(b, k.LR, k.KeyLen, byte(k.KeyType))
	b = pad(b, 5)
	return append(b, k.Key[:]...)
}

func (s *SessionInfo) appendTo(b []byte) []byte {
	b = ne.AppendUint32(b, s.SUM)
	b = ne.AppendUint32(b, uint32(s.Who))
	return s.Key.appendTo(b)
}

// MarshalBinary returns the 264 bytes of struct opal_key.
func (k *Key) MarshalBinary() ([]byte, error) { return k.appendTo(nil), nil }

// MarshalBinary returns the 272 bytes of struct opal_session_info.
func (s *SessionInfo) MarshalBinary() ([]byte, error) { return s.appendTo(nil), nil }

// MarshalBinary returns the 280 bytes of struct opal_lock_unlock.
func (l *LockUnlock) MarshalBinary() ([]byte, error) {
	b := l.Session.appendTo(nil)
	b = ne.AppendUint32(b, uint32(l.LState))
	b = ne.AppendUint16(b, l.Flags)
	return pad(b, 2), nil
}

// MarshalBinary returns the 296 bytes of struct opal_user_lr_setup.
func (u *UserLRSetup) MarshalBinary() ([]byte, error) {
	b := ne.AppendUint64(nil, u.RangeStart)
	b = ne.AppendUint64(b, u.RangeLength)
	b = ne.AppendUint32(b, u.RLE)
	b = ne.AppendUint32(b, u.WLE)
	return u.Session.appendTo(b), nil
}

// MarshalBinary returns the 280 bytes of struct opal_lr_act.
func (a *LRAct) MarshalBinary() ([]byte, error) {
	b := a.Key.appendTo(nil)
	b = ne.AppendUint32(b, a.SUM)
	b = append(b, a.NumLRs)
	b = append(b, a.LR[:]...)
	return pad(b, 2), nil
}

// MarshalBinary returns the 544 bytes of struct opal_new_pw.
func (p *NewPW) MarshalBinary() ([]byte, error) {
	return p.NewUserPW.appendTo(p.Session.appendTo(nil)), nil
}

// MarshalBinary returns the 272 bytes of struct opal_mbr_data.
func (m *MBRData) MarshalBinary() ([]byte, error) {
	return pad(append(m.Key.appendTo(nil), m.EnableDisable), 7), nil
}

// MarshalBinary returns the 272 bytes of struct opal_mbr_done.
func (m *MBRDoneArg) MarshalBinary() ([]byte, error) {
	return pad(append(m.Key.appendTo(nil), m.DoneFlag), 7), nil
}

// MarshalBinary returns the 288 bytes of struct opal_shadow_mbr.
func (s *ShadowMBR) MarshalBinary() ([]byte, error) {
	b := s.Key.appendTo(nil)
	b = ne.AppendUint64(b, s.Data)
	b = ne.AppendUint64(b, s.Offset)
	return ne.AppendUint64(b, s.Size), nil
}

// MarshalBinary returns the 312 bytes of struct opal_read_write_table.
func (t *ReadWriteTable) MarshalBinary() ([]byte, error) {
	b := t.Key.appendTo(nil)
	b = ne.AppendUint64(b, t.Data)
	b = append(b, t.TableUID[:]...)
	for _, v := range []uint64{t.Offset, t.Size, t.Flags, t.Priv} {
		b = ne.AppendUint64(b, v)
	}
	return b, nil
}

// MarshalBinary returns the 8 bytes of struct opal_status.
func (s *Status) MarshalBinary() ([]byte, error) {
	return ne.AppendUint32(ne.AppendUint32(nil, uint32(s.Flags)), s.Reserved), nil
}

// UnmarshalBinary decodes struct opal_status.
func (s *Status) UnmarshalBinary(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("opal_status: %d bytes, want 8", len(b))
	}
	s.Flags, s.Reserved = StatusFlags(ne.Uint32(b)), ne.Uint32(b[4:])
	return nil
}

// MarshalBinary returns the 304 bytes of struct opal_lr_status.
func (l *LRStatus) MarshalBinary() ([]byte, error) {
	b := l.Session.appendTo(nil)
	b = ne.AppendUint64(b, l.RangeStart)
	b = ne.AppendUint64(b, l.RangeLength)
	b = ne.AppendUint32(b, l.RLE)
	b = ne.AppendUint32(b, l.WLE)
	b = ne.AppendUint32(b, uint32(l.LState))
	return pad(b, 4), nil
}

// UnmarshalBinary decodes the output fields of struct opal_lr_status
// (range, lock enables and state); the session is input only.
func (l *LRStatus) UnmarshalBinary(b []byte) error {
	if len(b) < 304 {
		return fmt.Errorf("opal_lr_status: %d bytes, want 304", len(b))
	}
	l.RangeStart, l.RangeLength = ne.Uint64(b[272:]), ne.Uint64(b[280:])
	l.RLE, l.WLE, l.LState = ne.Uint32(b[288:]), ne.Uint32(b[292:]), LockState(ne.Uint32(b[296:]))
	return nil
}

// MarshalBinary returns the bytes of struct opal_geometry (32 on 64-bit).
func (g *Geometry) MarshalBinary() ([]byte, error) {
	b := pad([]byte{g.Align}, 3)
	b = ne.AppendUint32(b, g.LogicalBlockSize)
	b = ne.AppendUint64(b, g.AlignmentGranularity)
	b = ne.AppendUint64(b, g.LowestAlignedLBA)
	return pad(b, int(unsafe.Sizeof(*g))-len(b)), nil
}

// UnmarshalBinary decodes struct opal_geometry.
func (g *Geometry) UnmarshalBinary(b []byte) error {
	if len(b) < 24 {
		return fmt.Errorf("opal_geometry: %d bytes, want at least 24", len(b))
	}
	g.Align, g.LogicalBlockSize = b[0], ne.Uint32(b[4:])
	g.AlignmentGranularity, g.LowestAlignedLBA = ne.Uint64(b[8:]), ne.Uint64(b[16:])
	return nil
}

// MarshalBinary returns the 16 bytes of struct opal_discovery.
func (d *DiscoveryArg) MarshalBinary() ([]byte, error) {
	return ne.AppendUint64(ne.AppendUint64(nil, d.Data), d.Size), nil
}

// MarshalBinary returns the 272 bytes of struct opal_revert_lsp.
func (r *RevertLSP) MarshalBinary() ([]byte, error) {
	return pad(ne.AppendUint32(r.Key.appendTo(nil), r.Options), 4), nil
}

// MarshalBinary returns the 544 bytes of struct opal_lr_react.
func (r *LRReact) MarshalBinary() ([]byte, error) {
	b := r.NewAdminKey.appendTo(r.Key.appendTo(nil))
	b = append(b, r.NumLRs)
	b = append(b, r.LR[:]...)
	b = append(b, r.RangePolicy, r.EntireTable)
	return pad(b, 4), nil
}

// MarshalBinary returns the 280 bytes of struct opal_sum_ranges.
func (s *SUMRanges) MarshalBinary() ([]byte, error) {
	b := append(s.Key.appendTo(nil), s.NumLRs)
	b = append(b, s.LR[:]...)
	return pad(append(b, s.RangePolicy), 5), nil
}

// UnmarshalBinary decodes the range list of struct opal_sum_ranges.
func (s *SUMRanges) UnmarshalBinary(b []byte) error {
	if len(b) < 280 {
		return fmt.Errorf("opal_sum_ranges: %d bytes, want 280", len(b))
	}
	s.NumLRs = b[264]
	copy(s.LR[:], b[265:274])
	s.RangePolicy = b[274]
	return nil
}
