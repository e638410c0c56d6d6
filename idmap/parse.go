package idmap

import (
	"errors"
	"fmt"
	"strings"
)

// maxProcMapSize caps the /proc/PID/uid_map text ParseProcMap reads: MaxRanges
// lines of three 10-digit columns ("%10u %10u %10u\n" is 33 bytes), with room
// for generous spacing.
const maxProcMapSize = 64 << 10

// ParseMap parses the text form of the --map, --uid-map and --gid-map flags:
// "disk:host:count[,disk:host:count...]", e.g. "0:100000:65536" or
// "0:1000:1,1:100001:65535". Whitespace around each range is ignored. Numbers
// are decimal, without sign. The empty string is an error.
func ParseMap(s string) (Map, error) {
	if strings.TrimSpace(s) == "" {
		return Map{}, &MapError{Reason: "empty map; want disk:host:count[,disk:host:count...]"}
	}
	if n := strings.Count(s, ",") + 1; n > MaxRanges {
		return Map{}, &MapError{Reason: fmt.Sprintf("%d ranges; the kernel allows at most %d", n, MaxRanges)}
	}
	var ranges []Range
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return Map{}, &MapError{Reason: fmt.Sprintf("map %q has an empty range (stray comma?)", s)}
		}
		f := strings.Split(item, ":")
		if len(f) != 3 {
			return Map{}, &MapError{Range: item, Reason: "want disk:host:count"}
		}
		r, err := parseRange(item, f[0], f[1], f[2])
		if err != nil {
			return Map{}, err
		}
		ranges = append(ranges, r)
	}
	return NewMap(ranges...)
}

// ParseProcMap parses the content of /proc/PID/uid_map or gid_map: one line
// "inside outside count" per range, columns separated by any amount of
// blanks. Inside ids are disk ids, outside ids host ids: a tree mapped this
// way stores exactly the ids the namespace's processes see. Blank lines at
// the end are ignored. Empty content (a user namespace whose map has not been
// written yet) is an error.
func ParseProcMap(b []byte) (Map, error) {
	if len(b) > maxProcMapSize {
		return Map{}, &MapError{Reason: fmt.Sprintf("id map text is %d bytes; at most %d expected", len(b), maxProcMapSize)}
	}
	s := strings.TrimRight(string(b), " \t\n")
	if s == "" {
		return Map{}, &MapError{Reason: "empty id map (has the user namespace's map been written?)"}
	}
	if n := strings.Count(s, "\n") + 1; n > MaxRanges {
		return Map{}, &MapError{Reason: fmt.Sprintf("%d ranges; the kernel allows at most %d", n, MaxRanges)}
	}
	var ranges []Range
	n := 0
	for line := range strings.SplitSeq(s, "\n") {
		n++
		f := strings.Fields(line)
		if len(f) == 0 {
			return Map{}, &MapError{Reason: fmt.Sprintf("blank line %d in id map", n)}
		}
		if len(f) != 3 {
			return Map{}, &MapError{Range: strings.TrimSpace(line), Reason: "want \"inside outside count\""}
		}
		r, err := parseRange(strings.TrimSpace(line), f[0], f[1], f[2])
		if err != nil {
			return Map{}, err
		}
		ranges = append(ranges, r)
	}
	return NewMap(ranges...)
}

func parseRange(text, disk, host, count string) (Range, error) {
	var r Range
	for _, p := range []struct {
		name string
		s    string
		v    *uint32
	}{{"disk id", disk, &r.Disk}, {"host id", host, &r.Host}, {"count", count, &r.Count}} {
		v, err := parseDecimal(p.s)
		if err != nil {
			return Range{}, &MapError{Range: text, Reason: fmt.Sprintf("%s %q: %v", p.name, p.s, err)}
		}
		*p.v = v
	}
	if err := checkRange(r); err != nil {
		var me *MapError
		if errors.As(err, &me) {
			me.Range = text
		}
		return Range{}, err
	}
	return r, nil
}

// parseDecimal parses an unsigned decimal number that fits in 32 bits. Unlike
// strconv it is explicit about refusing signs, spaces, underscores and
// prefixes such as 0x.
func parseDecimal(s string) (uint32, error) {
	if s == "" {
		return 0, errors.New("not a number")
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number")
		}
		v = v*10 + uint64(c-'0')
		if v > uint64(InvalidID) {
			return 0, errors.New("out of range")
		}
	}
	return uint32(v), nil
}

// ParseFlags builds an IDMap from the command-line flags: both is --map
// (uids and gids alike), uid and gid are --uid-map and --gid-map, which
// override --map for their side. An empty string means the flag is unset; a
// side left without a map is an error.
func ParseFlags(both, uid, gid string) (IDMap, error) {
	var common Map
	if both != "" {
		m, err := ParseMap(both)
		if err != nil {
			return IDMap{}, fmt.Errorf("--map: %w", err)
		}
		common = m
	}
	side := func(kind, flag, s string) (Map, error) {
		if s != "" {
			m, err := ParseMap(s)
			if err != nil {
				return Map{}, fmt.Errorf("%s: %w", flag, err)
			}
			return m, nil
		}
		if both == "" {
			return Map{}, fmt.Errorf("no %s map: pass --map or %s", kind, flag)
		}
		return common, nil
	}
	u, err := side("uid", "--uid-map", uid)
	if err != nil {
		return IDMap{}, err
	}
	g, err := side("gid", "--gid-map", gid)
	if err != nil {
		return IDMap{}, err
	}
	return IDMap{UID: u, GID: g}, nil
}
