package discovery

import "fmt"

// SSC is a security subsystem class: the command set and tables a drive
// implements on top of the TCG Core.
type SSC uint8

// The security subsystem classes a Level 0 response can announce.
const (
	SSCNone SSC = iota
	SSCEnterprise
	SSCOpalite
	SSCPyriteV1
	SSCPyriteV2
	SSCRuby
	SSCOpalV1
	SSCOpalV2
)

// sscPreference lists the classes a host should use, best first: the
// richest Opal first, then Ruby, Pyrite and Opalite (Opal subsets), then
// Enterprise (a different family that host tools support least).
var sscPreference = []SSC{SSCOpalV2, SSCOpalV1, SSCRuby, SSCPyriteV2, SSCPyriteV1, SSCOpalite, SSCEnterprise}

var sscNames = [...]struct{ human, id string }{
	SSCNone:       {"none", "none"},
	SSCEnterprise: {"Enterprise", "enterprise"},
	SSCOpalite:    {"Opalite", "opalite"},
	SSCPyriteV1:   {"Pyrite 1", "pyrite1"},
	SSCPyriteV2:   {"Pyrite 2", "pyrite2"},
	SSCRuby:       {"Ruby", "ruby"},
	SSCOpalV1:     {"Opal 1", "opal1"},
	SSCOpalV2:     {"Opal 2", "opal2"},
}

// String returns the class's name for people, e.g. "Opal 2".
func (s SSC) String() string {
	if int(s) < len(sscNames) {
		return sscNames[s].human
	}
	return fmt.Sprintf("SSC(%d)", uint8(s))
}

// MarshalText returns a stable identifier for JSON: "opal2", "opal1",
// "ruby", "pyrite2", "pyrite1", "opalite", "enterprise" or "none".
func (s SSC) MarshalText() ([]byte, error) {
	if int(s) < len(sscNames) {
		return []byte(sscNames[s].id), nil
	}
	return nil, fmt.Errorf("unknown SSC %d", uint8(s))
}

// UnmarshalText parses what MarshalText returns.
func (s *SSC) UnmarshalText(text []byte) error {
	for i, n := range sscNames {
		if n.id == string(text) {
			*s = SSC(i)
			return nil
		}
	}
	return fmt.Errorf("unknown SSC %q", text)
}

// present reports whether d announces s, and its ComIDs if so.
func (d *Discovery) present(s SSC) (base, count uint16, ok bool) {
	switch {
	case d == nil:
	case s == SSCOpalV2 && d.OpalV2 != nil:
		return d.OpalV2.BaseComID, d.OpalV2.NumComIDs, true
	case s == SSCOpalV1 && d.OpalV1 != nil:
		return d.OpalV1.BaseComID, d.OpalV1.NumComIDs, true
	case s == SSCRuby && d.Ruby != nil:
		return d.Ruby.BaseComID, d.Ruby.NumComIDs, true
	case s == SSCPyriteV2 && d.PyriteV2 != nil:
		return d.PyriteV2.BaseComID, d.PyriteV2.NumComIDs, true
	case s == SSCPyriteV1 && d.PyriteV1 != nil:
		return d.PyriteV1.BaseComID, d.PyriteV1.NumComIDs, true
	case s == SSCOpalite && d.Opalite != nil:
		return d.Opalite.BaseComID, d.Opalite.NumComIDs, true
	case s == SSCEnterprise && d.Enterprise != nil:
		return d.Enterprise.BaseComID, d.Enterprise.NumComIDs, true
	}
	return 0, 0, false
}

// SSC returns the class a host should speak to the drive: the first one
// announced in the order Opal 2, Opal 1, Ruby, Pyrite 2, Pyrite 1, Opalite,
// Enterprise. It returns SSCNone if the drive announces none.
func (d *Discovery) SSC() SSC {
	for _, s := range sscPreference {
		if _, _, ok := d.present(s); ok {
			return s
		}
	}
	return SSCNone
}

// SSCs returns every class the drive announces, in the order SSC prefers.
func (d *Discovery) SSCs() []SSC {
	var all []SSC
	for _, s := range sscPreference {
		if _, _, ok := d.present(s); ok {
			all = append(all, s)
		}
	}
	return all
}

// ComIDs returns the base ComID and number of ComIDs the descriptor of
// class s gives, and whether the drive announces s.
func (d *Discovery) ComIDs(s SSC) (base, count uint16, ok bool) {
	return d.present(s)
}

// BaseComID returns the base ComID of the class SSC chooses: the ComID for
// sessions and method calls. ok is false if the drive announces no class.
func (d *Discovery) BaseComID() (comID uint16, ok bool) {
	base, _, ok := d.present(d.SSC())
	return base, ok
}

// LockingSupported reports the Locking feature's LockingSupported flag;
// false if the drive has no Locking descriptor.
func (d *Discovery) LockingSupported() bool {
	return d != nil && d.Locking != nil && d.Locking.LockingSupported
}

// LockingEnabled reports whether the Locking SP is activated.
func (d *Discovery) LockingEnabled() bool {
	return d != nil && d.Locking != nil && d.Locking.LockingEnabled
}

// Locked reports whether some locking range is currently locked.
func (d *Discovery) Locked() bool {
	return d != nil && d.Locking != nil && d.Locking.Locked
}

// MBREnabled reports whether MBR shadowing is enabled.
func (d *Discovery) MBREnabled() bool {
	return d != nil && d.Locking != nil && d.Locking.MBREnabled
}

// MBRDone reports the MBR Done flag: while MBR shadowing is enabled and
// Done is false, the drive shows the shadow MBR at LBA 0.
func (d *Discovery) MBRDone() bool {
	return d != nil && d.Locking != nil && d.Locking.MBRDone
}

// MBRShadowActive reports whether the drive currently shows the shadow MBR
// instead of the media's start: MBR shadowing enabled and not done.
func (d *Discovery) MBRShadowActive() bool {
	return d.MBREnabled() && !d.MBRDone()
}
