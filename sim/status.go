package sim

import (
	"crypto/subtle"
	"slices"
)

// ErrCorrupt is wrapped by Open and Inspect when a drive's state file is
// foreign, damaged or of another format version.
var ErrCorrupt = errCorrupt

// Status is what the drive's operator sees of its state, as a vendor's
// debug port would show it: no PIN, no key.
type Status struct {
	Config Config
	// Owned reports whether the SID PIN is no longer the MSID (someone
	// took ownership).
	Owned bool
	// LockingActive reports whether the Locking SP is activated
	// (Manufactured); otherwise it is Manufactured-Inactive and nothing
	// locks.
	LockingActive bool
	// Ranges are the locking ranges, the global range first. Without an
	// active Locking SP they are all unlocked with locking disabled.
	Ranges []RangeStatus
	// MBR is MBRControl; the zero value on profiles without a shadow MBR.
	MBR MBRStatus
}

// RangeStatus is a locking range. Start and Length are in logical blocks;
// the global range (N 0) covers what no other range does.
type RangeStatus struct {
	N                uint32
	Start            uint64
	Length           uint64
	ReadLockEnabled  bool
	WriteLockEnabled bool
	ReadLocked       bool
	WriteLocked      bool
	LockOnReset      []uint8 // 0 PowerCycle, 1 Hardware, 2 HotPlug, 3 Programmatic
}

// ReadLockedNow reports whether reads of the range are refused now.
func (r RangeStatus) ReadLockedNow() bool { return r.ReadLockEnabled && r.ReadLocked }

// WriteLockedNow reports whether writes to the range are refused now.
func (r RangeStatus) WriteLockedNow() bool { return r.WriteLockEnabled && r.WriteLocked }

// MBRStatus is MBRControl.
type MBRStatus struct {
	Enable      bool
	Done        bool
	DoneOnReset []uint8
}

// Shown reports whether LBA 0.. show the MBR table now.
func (m MBRStatus) Shown() bool { return m.Enable && !m.Done }

// Status returns the drive's state as it is now.
func (d *Drive) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.status()
}

// Inspect reads the state of the drive in dir as last saved, without
// opening the drive: it neither powers the drive on nor takes its lock, so
// it works while another process serves the drive (the state file is
// always replaced whole). A drive that is not served shows the state it
// was powered off in; the next Open applies LockOnReset and DoneOnReset.
func Inspect(dir string) (Status, error) {
	st, _, err := loadState(dir)
	if err != nil {
		return Status{}, err
	}
	return st.status(), nil
}

func (st *driveState) status() Status {
	s := Status{
		Config:        st.Config,
		Owned:         subtle.ConstantTimeCompare(st.pinVerifier(st.Admin.MSID), st.Admin.SID.Verifier) != 1,
		LockingActive: st.active(),
	}
	for i, r := range st.Locking.Ranges {
		rs := RangeStatus{
			N: uint32(i), Start: r.Start, Length: r.Length,
			ReadLockEnabled: r.ReadLockEnabled, WriteLockEnabled: r.WriteLockEnabled,
			ReadLocked: r.ReadLocked, WriteLocked: r.WriteLocked,
			LockOnReset: slices.Clone(r.LockOnReset),
		}
		if i == 0 {
			rs.Length = st.Config.Blocks
		}
		s.Ranges = append(s.Ranges, rs)
	}
	if st.Config.Profile.hasMBR() {
		m := st.Locking.MBR
		s.MBR = MBRStatus{Enable: m.Enable, Done: m.Done, DoneOnReset: slices.Clone(m.DoneOnReset)}
	}
	return s
}
