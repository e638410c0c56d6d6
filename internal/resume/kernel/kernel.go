// Package kernel is the Linux kernel's side of unlock-on-resume, as sedctl
// sees it: the SAVE list that IOC_OPAL_SAVE fills and opal_unlock_from_suspend
// replays when a drive resumes (shared/opal/PROTOCOL.md 3.5).
//
// Opal is the narrow interface the resume engine arms: Probe (does this block
// device answer the sed-opal ioctls?) and Save (IOC_OPAL_SAVE). The real
// implementation sits on tcg/transport/sedioctl; Model is an in-process
// implementation of the kernel's behaviour, driven through tcg/opal against
// any Transport (sedsim in tests), so that arming, a power cycle and the
// kernel's replay can be tested without a kernel.
package kernel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
)

// LockState is opal_lock_unlock.l_state (include/uapi/linux/sed-opal.h,
// enum opal_lock_state).
type LockState uint32

// Lock states.
const (
	RO LockState = 0x01 // OPAL_RO: ReadLocked = false, WriteLocked = true
	RW LockState = 0x02 // OPAL_RW: both false
	LK LockState = 0x04 // OPAL_LK: both true
)

func (l LockState) String() string {
	switch l {
	case RO:
		return "RO"
	case RW:
		return "RW"
	case LK:
		return "LK"
	}
	return fmt.Sprintf("l_state %d", uint32(l))
}

// SaveForLock is OPAL_SAVE_FOR_LOCK (opal_lock_unlock.flags, Linux 6.2): a
// later IOC_OPAL_LOCK_UNLOCK(LK) of the range may omit the key.
const SaveForLock uint16 = 0x01

// Limits of the kernel ABI (PROTOCOL.md 3.1).
const (
	MaxKeyLen = 256 // OPAL_KEY_MAX; opal_key.key_len is a u8
	MaxLR     = 8   // OPAL_MAX_LRS - 1: ranges 0 (global) to 8
	MaxUser   = 9   // enum opal_user: OPAL_ADMIN1 = 0, OPAL_USER1..9 = 1..9
)

// LockUnlock is struct opal_lock_unlock as IOC_OPAL_SAVE takes it, in Go
// terms: the implementation of Opal copies it field by field into the
// kernel struct (PROTOCOL.md 3.3: session.sum, session.who, session.opal_key
// {lr, key_len, key_type = OPAL_INCLUDED, key}, l_state, flags).
type LockUnlock struct {
	SUM   bool     // opal_session_info.sum: authenticate as User(LR+1)
	Who   uint32   // opal_session_info.who: 0 = Admin1, n = User n
	LR    uint8    // opal_key.lr: the locking range, 0 = global
	Key   hash.PIN // opal_key.key: the PIN as the drive checks it (already derived)
	State LockState
	Flags uint16 // SaveForLock where the kernel has it
}

// Validate checks what the kernel checks before it accepts a LockUnlock
// (EINVAL otherwise).
func (lu LockUnlock) Validate() error {
	switch {
	case len(lu.Key) > MaxKeyLen:
		return fmt.Errorf("key of %d bytes: the kernel takes at most %d", len(lu.Key), MaxKeyLen)
	case lu.LR > MaxLR:
		return fmt.Errorf("range %d: the kernel handles ranges 0 to %d", lu.LR, MaxLR)
	case lu.Who > MaxUser:
		return fmt.Errorf("who %d: the kernel knows Admin1 and User1..User%d", lu.Who, MaxUser)
	case lu.State != RO && lu.State != RW && lu.State != LK:
		return fmt.Errorf("lock state %d is not RO, RW or LK", uint32(lu.State))
	}
	return nil
}

// Authority returns the authority the kernel authenticates as for lu
// (PROTOCOL.md 3.4: "Admin1/who session"; with sum, User(lr+1)).
func (lu LockUnlock) Authority() method.UID {
	switch {
	case lu.SUM:
		return method.User(uint32(lu.LR) + 1)
	case lu.Who == 0:
		return method.Admin(1)
	}
	return method.User(lu.Who)
}

// Who maps an authority to enum opal_user. Only Admin1 and User1..User9
// exist for the kernel.
func Who(a method.UID) (uint32, error) {
	if a == method.Admin(1) {
		return 0, nil
	}
	for n := uint32(1); n <= MaxUser; n++ {
		if a == method.User(n) {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: the kernel authenticates only as Admin1 or User1..User%d", ErrAuthority, MaxUser)
}

// Status flags (struct opal_status.flags, IOC_OPAL_GET_STATUS, Linux 6.0).
const (
	FlagSupported        uint32 = 0x01
	FlagLockingSupported uint32 = 0x02
	FlagLockingEnabled   uint32 = 0x04
	FlagLocked           uint32 = 0x08
	FlagMBREnabled       uint32 = 0x10
	FlagMBRDone          uint32 = 0x20
	FlagSUMSupported     uint32 = 0x40
)

// Status is what Probe learns: struct opal_status.flags from the kernel's
// last Level 0 discovery.
type Status struct {
	Flags uint32
}

// Supported reports whether the kernel drives the device as Opal 1 or 2.
func (s Status) Supported() bool { return s.Flags&FlagSupported != 0 }

// MBREnabled reports whether the shadow MBR is enabled, which makes the
// kernel set MBR Done as Admin1 on resume (PROTOCOL.md 3.5).
func (s Status) MBREnabled() bool { return s.Flags&FlagMBREnabled != 0 }

// LockingEnabled reports whether the Locking SP is active with locking on.
func (s Status) LockingEnabled() bool { return s.Flags&FlagLockingEnabled != 0 }

// Errors.
var (
	// ErrUnsupported: the block device does not answer the sed-opal
	// ioctls (no CONFIG_BLK_SED_OPAL, no opal_dev for the disk, a drive
	// that is not Opal 1 or 2: ENOTTY or EOPNOTSUPP).
	ErrUnsupported = errors.New("the block device does not answer the kernel's sed-opal ioctls")
	// ErrAuthority: the authority is not one the kernel can use.
	ErrAuthority = errors.New("authority not usable by the kernel")
)

// Opal is the kernel's unlock-on-resume facility for one block device.
type Opal interface {
	// Probe reports whether the device answers the sed-opal ioctls, and
	// its flags (IOC_OPAL_GET_STATUS; on kernels before 6.0, which lack
	// it, an implementation reports FlagSupported after another harmless
	// check, or ErrUnsupported). A device without sed-opal gives an error
	// wrapping ErrUnsupported.
	Probe(ctx context.Context) (Status, error)
	// Save is IOC_OPAL_SAVE: the kernel copies lu into the device's
	// list, replacing an entry for the same range, and replays it on
	// resume. It verifies nothing, not even the key.
	Save(ctx context.Context, lu LockUnlock) error
}

// Release is a kernel version, from uname -r.
type Release struct {
	Major, Minor, Patch int
}

// ParseRelease reads "6.18.44-foo" or "6.9" (as uname -r prints it).
func ParseRelease(s string) (Release, error) {
	head := s
	if i := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		head = s[:i]
	}
	parts := strings.Split(strings.TrimSuffix(head, "."), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Release{}, fmt.Errorf("kernel release %q: want MAJOR.MINOR[.PATCH]", s)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 1<<20 {
			return Release{}, fmt.Errorf("kernel release %q: want MAJOR.MINOR[.PATCH]", s)
		}
		v[i] = n
	}
	return Release{v[0], v[1], v[2]}, nil
}

func (r Release) String() string { return fmt.Sprintf("%d.%d.%d", r.Major, r.Minor, r.Patch) }

// AtLeast reports whether r >= major.minor.patch.
func (r Release) AtLeast(major, minor, patch int) bool {
	if r.Major != major {
		return r.Major > major
	}
	if r.Minor != minor {
		return r.Minor > minor
	}
	return r.Patch >= patch
}

// HasSaveForLock reports whether the kernel knows OPAL_SAVE_FOR_LOCK (6.2).
func (r Release) HasSaveForLock() bool { return r.AtLeast(6, 2, 0) }

// HasSaveAndReplay reports whether the kernel has IOC_OPAL_SAVE and the
// resume replay (4.11).
func (r Release) HasSaveAndReplay() bool { return r.AtLeast(4, 11, 0) }

// SATAResumeRisk says, for a SATA disk (sd through libata), whether kernel r
// may be one of those that skip the Opal unlock on resume: commit 3cc2ffe5c16d
// (6.6-rc4, backported to 6.1.64 and other stable series) stopped ATA disks
// from going through sd's system resume, and 0c76106cb975 (6.9, with stable
// backports) fixed it (kernel bugzilla 218538; PROTOCOL.md 3.5). It returns
// "" when r is clear of that window, a warning otherwise. The stable releases
// that picked up the fix are not known here, so 6.1.64+ and 6.5 to 6.8 get a
// warning to check.
func (r Release) SATAResumeRisk() string {
	affected := false
	switch {
	case r.AtLeast(6, 9, 0):
	case r.AtLeast(6, 5, 0):
		affected = true
	case r.Major == 6 && r.Minor == 1 && r.Patch >= 64:
		affected = true
	}
	if !affected {
		return ""
	}
	return fmt.Sprintf("kernel %v may have the SATA resume regression (commit 3cc2ffe5c16d, bugzilla 218538): "+
		"SATA disks stay locked after suspend unless the kernel carries the fix 0c76106cb975 "+
		"(\"scsi: sd: Fix TCG OPAL unlock on system resume\", 6.9 and stable backports); "+
		"check your kernel's changelog, or arm the daemon path with --path daemon", r)
}
