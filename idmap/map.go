package idmap

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// InvalidID is (uint32)-1, which is never a valid uid or gid (the kernel's
// INVALID_UID / INVALID_GID, ACL_UNDEFINED_ID).
const InvalidID uint32 = 4294967295

// ErrUnmapped reports an id that has no mapping; errors wrap it with the id
// and where it came from.
var ErrUnmapped = errors.New("id has no mapping")

// MaxID is the largest valid id.
const MaxID uint32 = InvalidID - 1

// MaxRanges is the most ranges a map may hold, the kernel's limit for
// /proc/PID/uid_map since Linux 4.15 (UID_GID_MAP_MAX_EXTENTS).
const MaxRanges = 340

// linearMax is the largest map searched linearly; larger maps use binary
// search (see BenchmarkToHost).
const linearMax = 4

// Range maps Count consecutive ids starting at Disk (stored in the backing
// tree) to Host (what the kernel sees on the mount).
type Range struct{ Disk, Host, Count uint32 }

// String returns the range as "disk:host:count".
func (r Range) String() string {
	return string(r.appendText(nil, ':', ':'))
}

func (r Range) appendText(b []byte, sep1, sep2 byte) []byte {
	b = strconv.AppendUint(b, uint64(r.Disk), 10)
	b = append(b, sep1)
	b = strconv.AppendUint(b, uint64(r.Host), 10)
	b = append(b, sep2)
	return strconv.AppendUint(b, uint64(r.Count), 10)
}

// MapError reports a map that cannot be used.
type MapError struct {
	Range  string // the offending range as written, e.g. "0:100000:0"; empty if the map as a whole is bad
	Reason string
}

func (e *MapError) Error() string {
	if e.Range == "" {
		return e.Reason
	}
	return fmt.Sprintf("range %q: %s", e.Range, e.Reason)
}

// Map is a validated, sorted, non-overlapping set of ranges for one id kind.
// The zero value is an empty map, which maps nothing. A Map is immutable and
// safe for concurrent use; copies share storage.
type Map struct {
	byDisk []Range // sorted by Disk
	byHost []Range // the same ranges, sorted by Host
}

// NewMap validates ranges and builds a Map. Every range needs Count >= 1 and
// must not run past MaxID on either side; ranges must not overlap on the disk
// side nor on the host side; there may be at most MaxRanges of them. No
// ranges gives the empty map.
func NewMap(ranges ...Range) (Map, error) {
	if len(ranges) > MaxRanges {
		return Map{}, &MapError{Reason: fmt.Sprintf("%d ranges; the kernel allows at most %d", len(ranges), MaxRanges)}
	}
	if len(ranges) == 0 {
		return Map{}, nil
	}
	for _, r := range ranges {
		if err := checkRange(r); err != nil {
			return Map{}, err
		}
	}
	byDisk := slices.Clone(ranges)
	slices.SortFunc(byDisk, func(a, b Range) int { return cmp.Compare(a.Disk, b.Disk) })
	byHost := slices.Clone(ranges)
	slices.SortFunc(byHost, func(a, b Range) int { return cmp.Compare(a.Host, b.Host) })
	for i := 1; i < len(byDisk); i++ {
		p, r := byDisk[i-1], byDisk[i]
		if r.Disk <= p.Disk+(p.Count-1) {
			return Map{}, &MapError{Range: r.String(), Reason: fmt.Sprintf("disk ids overlap range %q", p.String())}
		}
	}
	for i := 1; i < len(byHost); i++ {
		p, r := byHost[i-1], byHost[i]
		if r.Host <= p.Host+(p.Count-1) {
			return Map{}, &MapError{Range: r.String(), Reason: fmt.Sprintf("host ids overlap range %q", p.String())}
		}
	}
	return Map{byDisk: byDisk, byHost: byHost}, nil
}

func checkRange(r Range) error {
	if r.Count == 0 {
		return &MapError{Range: r.String(), Reason: "count must be at least 1"}
	}
	if uint64(r.Disk)+uint64(r.Count)-1 > uint64(MaxID) {
		return &MapError{Range: r.String(), Reason: fmt.Sprintf("disk ids run past %d", MaxID)}
	}
	if uint64(r.Host)+uint64(r.Count)-1 > uint64(MaxID) {
		return &MapError{Range: r.String(), Reason: fmt.Sprintf("host ids run past %d", MaxID)}
	}
	return nil
}

// mustMap is NewMap for ranges known to be valid.
func mustMap(ranges ...Range) Map {
	m, err := NewMap(ranges...)
	if err != nil {
		panic(err)
	}
	return m
}

// ToHost returns the host id for a disk id. It returns InvalidID and false if
// disk has no mapping; InvalidID itself never has one.
func (m Map) ToHost(disk uint32) (uint32, bool) {
	rs := m.byDisk
	if len(rs) <= linearMax {
		for _, r := range rs {
			// Unsigned: disk < r.Disk wraps to a value >= r.Count, since no
			// range reaches InvalidID.
			if off := disk - r.Disk; off < r.Count {
				return r.Host + off, true
			}
		}
		return InvalidID, false
	}
	// Find the last range starting at or before disk.
	lo, hi := 0, len(rs)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if rs[h].Disk <= disk {
			lo = h + 1
		} else {
			hi = h
		}
	}
	if lo > 0 {
		r := rs[lo-1]
		if off := disk - r.Disk; off < r.Count {
			return r.Host + off, true
		}
	}
	return InvalidID, false
}

// ToDisk returns the disk id for a host id. It returns InvalidID and false if
// host has no mapping; InvalidID itself never has one.
func (m Map) ToDisk(host uint32) (uint32, bool) {
	rs := m.byHost
	if len(rs) <= linearMax {
		for _, r := range rs {
			if off := host - r.Host; off < r.Count {
				return r.Disk + off, true
			}
		}
		return InvalidID, false
	}
	lo, hi := 0, len(rs)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if rs[h].Host <= host {
			lo = h + 1
		} else {
			hi = h
		}
	}
	if lo > 0 {
		r := rs[lo-1]
		if off := host - r.Host; off < r.Count {
			return r.Disk + off, true
		}
	}
	return InvalidID, false
}

// Ranges returns a copy of the ranges, sorted by Disk.
func (m Map) Ranges() []Range { return slices.Clone(m.byDisk) }

// Len returns the number of ranges.
func (m Map) Len() int { return len(m.byDisk) }

// Empty reports whether the map has no ranges (and so maps nothing).
func (m Map) Empty() bool { return len(m.byDisk) == 0 }

// String returns the canonical text form "disk:host:count[,...]", sorted by
// disk id, as accepted by ParseMap. The empty map gives "".
func (m Map) String() string {
	var b []byte
	for i, r := range m.byDisk {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.appendText(b, ':', ':')
	}
	return string(b)
}

// ProcFormat returns the map as lines "disk host count\n", ready to be
// written to /proc/PID/uid_map or gid_map (inside = disk, outside = host).
func (m Map) ProcFormat() string {
	var b []byte
	for _, r := range m.byDisk {
		b = r.appendText(b, ' ', ' ')
		b = append(b, '\n')
	}
	return string(b)
}

// Invert returns the map with Disk and Host swapped in every range.
func (m Map) Invert() Map {
	if m.Empty() {
		return Map{}
	}
	swap := func(rs []Range) []Range {
		out := make([]Range, len(rs))
		for i, r := range rs {
			out[i] = Range{Disk: r.Host, Host: r.Disk, Count: r.Count}
		}
		return out
	}
	return Map{byDisk: swap(m.byHost), byHost: swap(m.byDisk)}
}

// IDMap holds the maps for both id kinds.
type IDMap struct{ UID, GID Map }

var identity = mustMap(Range{Disk: 0, Host: 0, Count: InvalidID})

// Identity returns the map that maps every valid id to itself
// (0:0:4294967295 for uids and gids), as in the initial user namespace.
func Identity() IDMap { return IDMap{UID: identity, GID: identity} }

// Invert returns the IDMap with both maps inverted.
func (m IDMap) Invert() IDMap { return IDMap{UID: m.UID.Invert(), GID: m.GID.Invert()} }
