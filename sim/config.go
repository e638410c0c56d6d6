package sim

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// Profile is the security subsystem class the drive implements.
type Profile string

// Profiles. The differences between them are listed in the package
// documentation.
const (
	Opal2   Profile = "opal2"
	Opal1   Profile = "opal1"
	Pyrite2 Profile = "pyrite2"
	Ruby    Profile = "ruby"
)

// ParseProfile returns the profile called name (case-insensitive); "" is
// Opal2.
func ParseProfile(name string) (Profile, error) {
	switch p := Profile(strings.ToLower(name)); p {
	case "":
		return Opal2, nil
	case Opal2, Opal1, Pyrite2, Ruby:
		return p, nil
	}
	return "", fmt.Errorf("unknown drive profile %q (want opal2, opal1, pyrite2 or ruby)", name)
}

// encrypts reports whether the profile has media encryption keys the host
// can see (K_AES objects, GenKey, MediaEncryption in Level 0). Pyrite has
// none; sedsim still encrypts its backing file with a hidden key.
func (p Profile) encrypts() bool { return p != Pyrite2 }

// hasRanges reports whether the profile has non-global locking ranges.
func (p Profile) hasRanges() bool { return p != Pyrite2 }

// hasMBR reports whether the profile has MBR shadowing (MBRControl and the
// MBR table). Pyrite 2 reports MBRShadowingNotSupported; Ruby, a data-centre
// class, has no shadow MBR either (PROTOCOL.md leaves Ruby [S]).
func (p Profile) hasMBR() bool { return p == Opal2 || p == Opal1 }

// hasSUM reports whether Activate takes Single User Mode parameters.
func (p Profile) hasSUM() bool { return p == Opal2 }

// opal2Family reports whether the profile has the Opal 2.01+ features:
// Geometry reporting, Block SID, programmatic TPer reset, LockOnReset
// values beyond PowerCycle.
func (p Profile) opal2Family() bool { return p != Opal1 }

// Config describes a new drive (Create). It is stored in the drive's state
// and fixed for the drive's life, except the quirks (SetQuirks).
type Config struct {
	Profile Profile `json:"profile"` // "" = Opal2

	BlockSize uint32 `json:"block_size"` // logical block size: 512 (default) or 4096
	Blocks    uint64 `json:"blocks"`     // capacity in logical blocks (required)
	// AlignmentGranularity and LowestAlignedLBA are the range alignment
	// rules (PROTOCOL.md 1.14), in logical blocks. Alignment is required
	// when the granularity is above 1. Default: 8 blocks for 512-byte
	// blocks (4 KiB, like the Samsung 860), 1 for 4096.
	AlignmentGranularity uint64 `json:"alignment_granularity"`
	LowestAlignedLBA     uint64 `json:"lowest_aligned_lba"`

	// Serial (at most 20 bytes, space padded), Model (40) and Firmware (8)
	// are what IDENTIFY reports. Default: a random serial "SIM…", model
	// "sedsim <profile>", firmware "sedsim1".
	Serial   string `json:"serial"`
	Model    string `json:"model"`
	Firmware string `json:"firmware"`

	// TryLimit is the C_PIN TryLimit of the SID, Admin and User PINs
	// (0 = unlimited). The PSID is never locked out.
	TryLimit uint32 `json:"try_limit"`

	Ranges int `json:"ranges"` // non-global locking ranges: default 8 (Pyrite: always 0)
	Users  int `json:"users"`  // Locking SP users: default Ranges+1 (9), enough for SUM on every range
	Admins int `json:"admins"` // Locking SP admins: default 4

	DataStoreSize uint64 `json:"datastore_size"` // bytes; default 10 MiB
	MBRSize       uint64 `json:"mbr_size"`       // bytes; default 128 MiB (no MBR for Pyrite and Ruby)

	BaseComID uint16 `json:"base_comid"` // default 0x1004

	// Session Manager properties (PROTOCOL.md 1.6), reported by Properties
	// and enforced. Defaults: 65536-byte ComPackets (MaxPacketSize and
	// MaxIndTokenSize follow), 4 sessions, 2 authentications per session.
	MaxComPacketSize   uint32 `json:"max_compacket_size"`
	MaxPacketSize      uint32 `json:"max_packet_size"`
	MaxIndTokenSize    uint32 `json:"max_ind_token_size"`
	MaxSessions        int    `json:"max_sessions"`
	MaxReadSessions    int    `json:"max_read_sessions"`
	MaxAuthentications int    `json:"max_authentications"`
	// Session timeouts in milliseconds. DefSessionTimeout 0 means sessions
	// never time out unless the host asks for a timeout in StartSession,
	// which must lie in [MinSessionTimeout, MaxSessionTimeout]. Defaults:
	// 0, 100 ms, 24 h.
	DefSessionTimeout uint32 `json:"def_session_timeout_ms"`
	MinSessionTimeout uint32 `json:"min_session_timeout_ms"`
	MaxSessionTimeout uint32 `json:"max_session_timeout_ms"`
	MaxPINLength      int    `json:"max_pin_length"` // longest C_PIN PIN accepted: default 32

	// "Difficult drive" quirks, for testing hosts' retry logic
	// (PROTOCOL.md 1.3). NotReadyPolls: each response is withheld for this
	// many IF-RECVs, which get "not ready yet" (Length 0, OutstandingData
	// 1, MinTransfer 0). ShortProperties: the Properties answer leaves out
	// the echo of the host's properties (like a WD drive,
	// go-tcg-storage #116).
	NotReadyPolls   int  `json:"not_ready_polls"`
	ShortProperties bool `json:"short_properties"`
}

// Limits of the configuration.
const (
	maxRanges     = 64
	maxAdmins     = 16
	maxUsers      = 256
	maxTableBytes = 1 << 30 // MBR or DataStore: 1 GiB
	minComPacket  = 2048    // Opal's minimum MaxComPacketSize
	maxComPacket  = 1 << 20 // opalwire's payload limit
)

// withDefaults returns c with every zero field set to its default and checks
// the result.
func (c Config) withDefaults() (Config, error) {
	var err error
	if c.Profile, err = ParseProfile(string(c.Profile)); err != nil {
		return c, err
	}
	if c.BlockSize == 0 {
		c.BlockSize = 512
	}
	if c.BlockSize != 512 && c.BlockSize != 4096 {
		return c, fmt.Errorf("block size %d: want 512 or 4096", c.BlockSize)
	}
	if c.Blocks == 0 {
		return c, errors.New("drive capacity (Blocks) must not be zero")
	}
	if c.Blocks > (1<<63)/uint64(c.BlockSize) {
		return c, fmt.Errorf("drive capacity of %d blocks is too large", c.Blocks)
	}
	if c.AlignmentGranularity == 0 {
		c.AlignmentGranularity = 1
		if c.BlockSize == 512 {
			c.AlignmentGranularity = 8
		}
	}
	if c.LowestAlignedLBA >= c.AlignmentGranularity {
		return c, fmt.Errorf("lowest aligned LBA %d must be below the alignment granularity %d", c.LowestAlignedLBA, c.AlignmentGranularity)
	}
	if c.Serial == "" {
		c.Serial = "SIM" + strings.ToUpper(fmt.Sprintf("%x", randomBytes(6)))
	}
	if c.Model == "" {
		c.Model = "sedsim " + string(c.Profile)
	}
	if c.Firmware == "" {
		c.Firmware = "sedsim1"
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"serial", c.Serial, 20}, {"model", c.Model, 40}, {"firmware", c.Firmware, 8}} {
		if len(f.v) > f.max {
			return c, fmt.Errorf("%s %q is longer than %d bytes", f.name, f.v, f.max)
		}
		for _, r := range f.v {
			if r < 0x20 || r > 0x7E {
				return c, fmt.Errorf("%s %q: only printable ASCII is allowed", f.name, f.v)
			}
		}
	}
	if !c.Profile.hasRanges() {
		c.Ranges = 0
	} else if c.Ranges == 0 {
		c.Ranges = 8
	}
	if c.Ranges < 0 || c.Ranges > maxRanges {
		return c, fmt.Errorf("%d locking ranges: want 1..%d (0 means the default, 8)", c.Ranges, maxRanges)
	}
	if c.Users == 0 {
		c.Users = c.Ranges + 1
		if c.Users < 2 {
			c.Users = 2
		}
	}
	if c.Users < 1 || c.Users > maxUsers {
		return c, fmt.Errorf("%d users: want 1..%d", c.Users, maxUsers)
	}
	if c.Admins == 0 {
		c.Admins = 4
	}
	if c.Admins < 1 || c.Admins > maxAdmins {
		return c, fmt.Errorf("%d admins: want 1..%d", c.Admins, maxAdmins)
	}
	if c.DataStoreSize == 0 {
		c.DataStoreSize = 10 << 20
	}
	if c.MBRSize == 0 {
		c.MBRSize = 128 << 20
	}
	if !c.Profile.hasMBR() {
		c.MBRSize = 0
	}
	if c.DataStoreSize > maxTableBytes || c.MBRSize > maxTableBytes {
		return c, fmt.Errorf("MBR (%d bytes) and DataStore (%d bytes) may hold at most %d bytes each", c.MBRSize, c.DataStoreSize, maxTableBytes)
	}
	if c.BaseComID == 0 {
		c.BaseComID = 0x1004
	}
	if c.BaseComID <= comIDBlock {
		// 0x0001 is Level 0 discovery, 0x0004 TPer reset, 0x0005 Block SID.
		return c, fmt.Errorf("base ComID 0x%04x is reserved", c.BaseComID)
	}
	if c.MaxComPacketSize == 0 {
		c.MaxComPacketSize = 65536
	}
	if c.MaxComPacketSize < minComPacket || c.MaxComPacketSize > maxComPacket {
		return c, fmt.Errorf("MaxComPacketSize %d: want %d..%d", c.MaxComPacketSize, minComPacket, maxComPacket)
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = c.MaxComPacketSize - 20
	}
	if c.MaxPacketSize < 2028 || c.MaxPacketSize > c.MaxComPacketSize-20 {
		return c, fmt.Errorf("MaxPacketSize %d: want 2028..%d", c.MaxPacketSize, c.MaxComPacketSize-20)
	}
	if c.MaxIndTokenSize == 0 {
		c.MaxIndTokenSize = c.MaxPacketSize - 36
	}
	if c.MaxIndTokenSize < 1992 || c.MaxIndTokenSize > c.MaxPacketSize-12 {
		return c, fmt.Errorf("MaxIndTokenSize %d: want 1992..%d", c.MaxIndTokenSize, c.MaxPacketSize-12)
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = 4
	}
	if c.MaxReadSessions == 0 {
		c.MaxReadSessions = c.MaxSessions
	}
	if c.MaxAuthentications == 0 {
		c.MaxAuthentications = 2
	}
	if c.MaxSessions < 1 || c.MaxSessions > 64 || c.MaxReadSessions < 1 || c.MaxReadSessions > c.MaxSessions || c.MaxAuthentications < 2 || c.MaxAuthentications > 16 {
		return c, fmt.Errorf("sessions %d, read sessions %d, authentications %d: want 1..64, 1..sessions, 2..16", c.MaxSessions, c.MaxReadSessions, c.MaxAuthentications)
	}
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = 100
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = 24 * 3600 * 1000
	}
	if c.MinSessionTimeout > c.MaxSessionTimeout || (c.DefSessionTimeout != 0 && (c.DefSessionTimeout < c.MinSessionTimeout || c.DefSessionTimeout > c.MaxSessionTimeout)) {
		return c, fmt.Errorf("session timeouts: default %d ms must lie in [%d, %d] ms", c.DefSessionTimeout, c.MinSessionTimeout, c.MaxSessionTimeout)
	}
	if c.MaxPINLength == 0 {
		c.MaxPINLength = 32
	}
	if c.MaxPINLength < 1 || c.MaxPINLength > 256 {
		return c, fmt.Errorf("MaxPINLength %d: want 1..256", c.MaxPINLength)
	}
	if c.NotReadyPolls < 0 || c.NotReadyPolls > 1000 {
		return c, fmt.Errorf("NotReadyPolls %d: want 0..1000", c.NotReadyPolls)
	}
	return c, nil
}

// alignmentRequired reports whether range boundaries must be aligned.
func (c *Config) alignmentRequired() bool { return c.AlignmentGranularity > 1 }

// serial20 returns the serial as the raw 20-byte IDENTIFY field.
func (c *Config) serial20() [20]byte {
	var s [20]byte
	for i := range s {
		s[i] = ' '
	}
	copy(s[:], c.Serial)
	return s
}

// randomBytes returns n bytes from crypto/rand, which never fails.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// randomCredential returns a random printable credential of n characters,
// as drives print MSIDs and PSIDs on their labels.
func randomCredential(n int) []byte {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789" // 32 characters: no 0/O, 1/I
	b := randomBytes(n)
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return b
}
