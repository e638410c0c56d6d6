package sim

import (
	"github.com/shiftlock/shiftlock/tcg/discovery"
)

// levelZero returns the Level 0 Discovery response (Core 3.3.6; PROTOCOL.md
// 1.2) with the live locking flags. The caller holds d.mu.
func (d *Drive) levelZero() []byte {
	st := d.st
	cfg := &st.Config
	p := cfg.Profile
	l := &st.Locking
	v1 := discovery.Descriptor{Version: 1}
	disc := &discovery.Discovery{
		MajorVersion: 0,
		MinorVersion: 1,
		// Sync only, as a conservative drive (the Samsung 860's 0x11): no
		// Async, no ACK/NAK, no buffer management, static ComIDs (no
		// dynamic ComID management; STACK_RESET and VERIFY_COMID_VALID
		// work all the same).
		TPer: &discovery.TPer{Descriptor: v1, Sync: true, Streaming: true},
		Locking: &discovery.Locking{
			Descriptor:       v1,
			LockingSupported: true,
			LockingEnabled:   st.active(),
			Locked:           d.anyLocked(),
			MediaEncryption:  p.encrypts(),
		},
	}
	if p.opal2Family() {
		disc.Locking.Version = 2
		disc.Locking.MBRShadowingNotSupported = !p.hasMBR()
	}
	if p.hasMBR() && st.active() {
		disc.Locking.MBREnabled = l.MBR.Enable
		disc.Locking.MBRDone = l.MBR.Done
	}
	if p.opal2Family() {
		disc.Geometry = &discovery.Geometry{
			Descriptor:           v1,
			Align:                cfg.alignmentRequired(),
			LogicalBlockSize:     cfg.BlockSize,
			AlignmentGranularity: cfg.AlignmentGranularity,
			LowestAlignedLBA:     cfg.LowestAlignedLBA,
		}
		disc.DataStore = &discovery.DataStore{Descriptor: v1, MaxTables: 1, MaxTotalSize: uint32(cfg.DataStoreSize), Alignment: 1}
		disc.BlockSID = &discovery.BlockSID{
			Descriptor:    v1,
			SIDValueState: !st.pinMatches(&st.Admin.SID, st.Admin.MSID),
			SIDBlocked:    d.sidBlocked,
			HardwareReset: d.sidBlockHW,
		}
		mech := discovery.RemovalCryptoErase
		if !p.encrypts() {
			mech = discovery.RemovalBlockErase
		}
		disc.DataRemoval = &discovery.DataRemoval{Descriptor: v1, Mechanisms: mech}
	}
	ssc := discovery.OpalV2{
		Descriptor: v1,
		BaseComID:  cfg.BaseComID,
		NumComIDs:  1,
		NumAdmins:  uint16(cfg.Admins),
		NumUsers:   uint16(cfg.Users),
		// RangeCrossing false: one I/O may span ranges; sedsim checks
		// each part.
		InitialSIDPIN: discovery.PINIsMSID,
		RevertSIDPIN:  discovery.PINIsMSID,
	}
	switch p {
	case Opal2:
		disc.OpalV2 = &ssc
		sum := &discovery.SingleUserMode{Descriptor: v1, NumLockingObjects: uint32(cfg.Ranges + 1), Policy: l.SUMPolicy}
		if st.active() {
			all := true
			for _, r := range l.Ranges {
				sum.Any = sum.Any || r.SUM
				all = all && r.SUM
			}
			sum.All = all
		}
		disc.SingleUserMode = sum
	case Opal1:
		disc.OpalV1 = &discovery.OpalV1{Descriptor: v1, BaseComID: cfg.BaseComID, NumComIDs: 1}
	case Ruby:
		r := discovery.Ruby(ssc)
		disc.Ruby = &r
	case Pyrite2:
		disc.PyriteV2 = &discovery.PyriteV2{Descriptor: v1, BaseComID: cfg.BaseComID, NumComIDs: 1}
	}
	b, err := discovery.Build(disc)
	if err != nil {
		// Build fails only for descriptors it cannot encode; ours are fixed.
		d.log.Error("building Level 0 discovery", "err", err)
	}
	return b
}

// anyLocked reports whether some range is read- or write-locked (the
// Locking feature's Locked bit).
func (d *Drive) anyLocked() bool {
	if !d.st.active() {
		return false
	}
	for _, r := range d.st.Locking.Ranges {
		if r.ReadLockEnabled && r.ReadLocked || r.WriteLockEnabled && r.WriteLocked {
			return true
		}
	}
	return false
}
