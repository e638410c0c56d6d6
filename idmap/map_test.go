package idmap

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// manyRanges returns n valid ranges of 10 ids, disk ids ascending and host
// ids descending, so that the two sort orders differ.
func manyRanges(n int) []Range {
	rs := make([]Range, n)
	for i := range rs {
		rs[i] = Range{Disk: uint32(i) * 100, Host: 1_000_000 - uint32(i)*100, Count: 10}
	}
	return rs
}

func TestNewMap(t *testing.T) {
	tests := []struct {
		name    string
		ranges  []Range
		wantErr string // substring; "" means valid
	}{
		{"none", nil, ""},
		{"one", []Range{{0, 100000, 65536}}, ""},
		{"identity", []Range{{0, 0, InvalidID}}, ""},
		{"last id", []Range{{MaxID, MaxID, 1}}, ""},
		{"ends at last id", []Range{{MaxID - 9, 0, 10}}, ""},
		{"adjacent", []Range{{0, 1000, 1}, {1, 100001, 65535}}, ""},
		{"adjacent host side", []Range{{10, 0, 10}, {0, 10, 10}}, ""},
		{"unsorted", []Range{{1, 100001, 65535}, {0, 1000, 1}}, ""},
		{"340 ranges", manyRanges(340), ""},
		{"zero count", []Range{{0, 100000, 0}}, `range "0:100000:0": count must be at least 1`},
		{"disk wrap", []Range{{MaxID, 0, 2}}, `range "4294967294:0:2": disk ids run past 4294967294`},
		{"disk reaches invalid id", []Range{{1, 0, InvalidID}}, `disk ids run past`},
		{"host wrap", []Range{{0, 4294967000, 1000}}, `range "0:4294967000:1000": host ids run past`},
		{"host is invalid id", []Range{{0, InvalidID, 1}}, `host ids run past`},
		{"disk is invalid id", []Range{{InvalidID, 0, 1}}, `disk ids run past`},
		{"overlap disk", []Range{{0, 0, 10}, {9, 100, 5}}, `range "9:100:5": disk ids overlap range "0:0:10"`},
		{"overlap disk inside", []Range{{0, 0, 10}, {3, 100, 2}}, `disk ids overlap`},
		{"overlap host", []Range{{0, 100, 10}, {50, 109, 1}}, `range "50:109:1": host ids overlap range "0:100:10"`},
		{"overlap host unsorted", []Range{{50, 105, 10}, {0, 100, 10}}, `host ids overlap`},
		{"duplicate", []Range{{5, 5, 1}, {5, 5, 1}}, `disk ids overlap`},
		{"341 ranges", manyRanges(341), "341 ranges; the kernel allows at most 340"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMap(tt.ranges...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewMap(%v) = %v; want no error", tt.ranges, err)
				}
				want := slices.Clone(tt.ranges)
				slices.SortFunc(want, func(a, b Range) int { return cmp.Compare(a.Disk, b.Disk) })
				if got := m.Ranges(); !slices.Equal(got, want) && len(want) > 0 {
					t.Errorf("NewMap(%v).Ranges() = %v; want %v", tt.ranges, got, want)
				}
				return
			}
			var me *MapError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &me) {
				t.Fatalf("NewMap(%v) = %v; want *MapError containing %q", tt.ranges, err, tt.wantErr)
			}
		})
	}
}

func TestToHostToDisk(t *testing.T) {
	container := mustMap(Range{0, 100000, 65536})
	split := mustMap(Range{0, 1000, 1}, Range{1, 100001, 65535})
	top := mustMap(Range{MaxID - 9, 0, 10}, Range{0, MaxID - 9, 10})
	many := mustMap(manyRanges(340)...)
	tests := []struct {
		name   string
		m      Map
		disk   uint32
		host   uint32 // InvalidID: unmapped
		unused bool   // host side check skipped (disk unmapped)
	}{
		{"container first", container, 0, 100000, false},
		{"container last", container, 65535, 165535, false},
		{"container one past", container, 65536, InvalidID, true},
		{"container invalid", container, InvalidID, InvalidID, true},
		{"split root", split, 0, 1000, false},
		{"split first of second", split, 1, 100001, false},
		{"split last", split, 65535, 165535, false},
		{"split one past", split, 65536, InvalidID, true},
		{"identity 0", Identity().UID, 0, 0, false},
		{"identity 4294967294", Identity().UID, MaxID, MaxID, false},
		{"identity 4294967295", Identity().UID, InvalidID, InvalidID, true},
		{"top first", top, MaxID - 9, 0, false},
		{"top last", top, MaxID, 9, false},
		{"top one before", top, MaxID - 10, InvalidID, true},
		{"top low", top, 9, MaxID, false},
		{"many first", many, 0, 1_000_000, false},
		{"many last of first", many, 9, 1_000_009, false},
		{"many gap", many, 10, InvalidID, true},
		{"many middle", many, 17005, 1_000_000 - 17000 + 5, false},
		{"many last", many, 33909, 1_000_000 - 33900 + 9, false},
		{"many past", many, 33910, InvalidID, true},
		{"many invalid", many, InvalidID, InvalidID, true},
		{"empty", Map{}, 0, InvalidID, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := tt.m.ToHost(tt.disk)
			if h != tt.host || ok != (tt.host != InvalidID) {
				t.Errorf("ToHost(%d) = %d, %v; want %d, %v", tt.disk, h, ok, tt.host, tt.host != InvalidID)
			}
			if tt.unused {
				return
			}
			d, ok := tt.m.ToDisk(tt.host)
			if d != tt.disk || !ok {
				t.Errorf("ToDisk(%d) = %d, %v; want %d, true", tt.host, d, ok, tt.disk)
			}
		})
	}
}

func TestToDiskUnmapped(t *testing.T) {
	container := mustMap(Range{0, 100000, 65536})
	for _, host := range []uint32{0, 99999, 165536, MaxID, InvalidID} {
		if d, ok := container.ToDisk(host); ok || d != InvalidID {
			t.Errorf("ToDisk(%d) = %d, %v; want %d, false", host, d, ok, InvalidID)
		}
	}
}

// TestSearchMatchesReference checks the linear and binary searches against a
// naive lookup at every range boundary, for every map size around linearMax.
func TestSearchMatchesReference(t *testing.T) {
	for n := 1; n <= 2*linearMax+3; n++ {
		rs := manyRanges(n)
		m := mustMap(rs...)
		for _, r := range rs {
			for _, id := range []uint32{r.Disk - 1, r.Disk, r.Disk + 1, r.Disk + r.Count - 1, r.Disk + r.Count, r.Host - 1, r.Host, r.Host + r.Count - 1, r.Host + r.Count} {
				wantH, wantHOK := refLookup(rs, id, false)
				if h, ok := m.ToHost(id); h != wantH || ok != wantHOK {
					t.Errorf("n=%d: ToHost(%d) = %d, %v; want %d, %v", n, id, h, ok, wantH, wantHOK)
				}
				wantD, wantDOK := refLookup(rs, id, true)
				if d, ok := m.ToDisk(id); d != wantD || ok != wantDOK {
					t.Errorf("n=%d: ToDisk(%d) = %d, %v; want %d, %v", n, id, d, ok, wantD, wantDOK)
				}
			}
		}
	}
}

func refLookup(rs []Range, id uint32, toDisk bool) (uint32, bool) {
	for _, r := range rs {
		from, to := r.Disk, r.Host
		if toDisk {
			from, to = to, from
		}
		if uint64(id) >= uint64(from) && uint64(id) < uint64(from)+uint64(r.Count) {
			return to + (id - from), true
		}
	}
	return InvalidID, false
}

func TestRoundTrip(t *testing.T) {
	maps := map[string]Map{
		"identity":  Identity().UID,
		"container": mustMap(Range{0, 100000, 65536}),
		"split":     mustMap(Range{0, 1000, 1}, Range{1, 100001, 65535}),
		"many":      mustMap(manyRanges(340)...),
	}
	for name, m := range maps {
		t.Run(name, func(t *testing.T) {
			for _, r := range m.Ranges() {
				for _, x := range []uint32{r.Disk, r.Disk + r.Count/2, r.Disk + r.Count - 1} {
					h, ok := m.ToHost(x)
					if !ok {
						t.Fatalf("ToHost(%d) unmapped; want mapped", x)
					}
					if d, ok := m.ToDisk(h); d != x || !ok {
						t.Errorf("ToDisk(ToHost(%d)) = %d, %v; want %d, true", x, d, ok, x)
					}
					inv := m.Invert()
					if got, ok := inv.ToDisk(x); got != h || !ok {
						t.Errorf("Invert().ToDisk(%d) = %d, %v; want %d, true", x, got, ok, h)
					}
				}
			}
		})
	}
}

func TestToHostAllocs(t *testing.T) {
	for _, m := range []Map{mustMap(Range{0, 100000, 65536}), mustMap(manyRanges(340)...)} {
		n := testing.AllocsPerRun(100, func() {
			m.ToHost(500)
			m.ToDisk(100500)
		})
		if n != 0 {
			t.Errorf("ToHost/ToDisk with %d ranges: %v allocations; want 0", m.Len(), n)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		m          Map
		str, proc  string
		invertText string
	}{
		{Map{}, "", "", ""},
		{mustMap(Range{0, 100000, 65536}), "0:100000:65536", "0 100000 65536\n", "100000:0:65536"},
		{mustMap(Range{1, 100001, 65535}, Range{0, 1000, 1}), "0:1000:1,1:100001:65535", "0 1000 1\n1 100001 65535\n", "1000:0:1,100001:1:65535"},
		{Identity().GID, "0:0:4294967295", "0 0 4294967295\n", "0:0:4294967295"},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			if got := tt.m.String(); got != tt.str {
				t.Errorf("String() = %q; want %q", got, tt.str)
			}
			if got := tt.m.ProcFormat(); got != tt.proc {
				t.Errorf("ProcFormat() = %q; want %q", got, tt.proc)
			}
			if got := tt.m.Invert().String(); got != tt.invertText {
				t.Errorf("Invert().String() = %q; want %q", got, tt.invertText)
			}
			if got := tt.m.Empty(); got != (tt.str == "") {
				t.Errorf("Empty() = %v; want %v", got, tt.str == "")
			}
		})
	}
}

func TestRangesIsCopy(t *testing.T) {
	m := mustMap(Range{0, 100000, 65536})
	m.Ranges()[0].Host = 5
	if h, _ := m.ToHost(0); h != 100000 {
		t.Errorf("after changing Ranges(): ToHost(0) = %d; want 100000", h)
	}
}

func BenchmarkToHost(b *testing.B) {
	for _, n := range []int{1, 2, linearMax, linearMax + 1, 16, 64, 340} {
		m := mustMap(manyRanges(n)...)
		// Ids spread over all ranges, half of them mapped.
		ids := make([]uint32, 256)
		for i := range ids {
			ids[i] = uint32(i*7919) % (uint32(n) * 100) / 5 * 5
		}
		b.Run(fmt.Sprintf("ranges=%d", n), func(b *testing.B) {
			var sink uint32
			i := 0
			for b.Loop() {
				h, _ := m.ToHost(ids[i&255])
				sink += h
				i++
			}
			_ = sink
		})
	}
}

func TestInvertIDMap(t *testing.T) {
	m := IDMap{UID: mustMap(Range{0, 100000, 65536}), GID: mustMap(Range{0, 1000, 1}, Range{1, 100001, 65535})}.Invert()
	if got, want := m.UID.String()+" "+m.GID.String(), "100000:0:65536 1000:0:1,100001:1:65535"; got != want {
		t.Errorf("Invert() = %s; want %s", got, want)
	}
	if got := (IDMap{}).Invert(); !got.UID.Empty() || !got.GID.Empty() {
		t.Errorf("IDMap{}.Invert() = %v; want empty maps", got)
	}
}
