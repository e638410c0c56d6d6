package idmap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMap(t *testing.T) {
	tests := []struct {
		in      string
		want    string // canonical String(); "" with wantErr
		wantErr string // substring of the error
	}{
		{"0:100000:65536", "0:100000:65536", ""},
		{"0:1000:1,1:100001:65535", "0:1000:1,1:100001:65535", ""},
		{"1:100001:65535,0:1000:1", "0:1000:1,1:100001:65535", ""},
		{" 0:1000:1 ,\t1:100001:65535\n", "0:1000:1,1:100001:65535", ""},
		{"0:0:4294967295", "0:0:4294967295", ""},
		{"4294967294:4294967294:1", "4294967294:4294967294:1", ""},
		{"007:0100:01", "7:100:1", ""},
		{"", "", "empty map"},
		{"   ", "", "empty map"},
		{"0:100000:0", "", `range "0:100000:0": count must be at least 1`},
		{"4294967295:0:1", "", `range "4294967295:0:1": disk ids run past 4294967294`},
		{"0:4294967295:1", "", `host ids run past`},
		{"1:1:4294967295", "", `disk ids run past`},
		{"0:0:4294967296", "", `range "0:0:4294967296": count "4294967296": out of range`},
		{"0:0:99999999999999999999999", "", `out of range`},
		{"0:0:10,5:100:1", "", `range "5:100:1": disk ids overlap range "0:0:10"`},
		{"0:0:10,100:5:1", "", `range "100:5:1": host ids overlap range "0:0:10"`},
		{"0:100000:65536,", "", `map "0:100000:65536," has an empty range`},
		{",0:100000:65536", "", `empty range`},
		{"0:0:1,,1:1:1", "", `empty range`},
		{"0:100000", "", `range "0:100000": want disk:host:count`},
		{"0:1:2:3", "", `want disk:host:count`},
		{"0 100000 65536", "", `want disk:host:count`},
		{"+0:100000:65536", "", `disk id "+0": not a decimal number`},
		{"0:-100000:65536", "", `host id "-100000": not a decimal number`},
		{"0:0x10:1", "", `host id "0x10": not a decimal number`},
		{"0:10:0x1", "", `not a decimal number`},
		{"0:1_000:1", "", `not a decimal number`},
		{"0: 1:1", "", `host id " 1": not a decimal number`},
		{"::", "", `disk id "": not a number`},
		{"a:b:c", "", `not a decimal number`},
		{"0:١:1", "", `not a decimal number`},
		{strings.Repeat("0:0:1,", 340) + "0:0:1", "", "341 ranges; the kernel allows at most 340"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMap(tt.in)
			if tt.wantErr != "" {
				var me *MapError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &me) {
					t.Fatalf("ParseMap(%q) = %v, %v; want *MapError containing %q", tt.in, m, err, tt.wantErr)
				}
				return
			}
			if err != nil || m.String() != tt.want {
				t.Fatalf("ParseMap(%q) = %v, %v; want %v", tt.in, m, err, tt.want)
			}
		})
	}
}

func TestParseMap340(t *testing.T) {
	var items []string
	for _, r := range manyRanges(340) {
		items = append(items, r.String())
	}
	m, err := ParseMap(strings.Join(items, ","))
	if err != nil || m.Len() != 340 {
		t.Fatalf("ParseMap(340 ranges) = %d ranges, %v; want 340, nil", m.Len(), err)
	}
}

func TestParseProcMap(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{"container", "         0     100000      65536\n", "0:100000:65536", ""},
		{"init", "         0          0 4294967295\n", "0:0:4294967295", ""},
		{"two", "         0       1000          1\n         1     100001      65535\n", "0:1000:1,1:100001:65535", ""},
		{"no newline", "0 100000 65536", "0:100000:65536", ""},
		{"tabs", "0\t100000\t65536\n", "0:100000:65536", ""},
		{"blank trailing lines", "0 100000 65536\n\n  \n", "0:100000:65536", ""},
		{"empty", "", "", "empty id map"},
		{"only newline", "\n", "", "empty id map"},
		{"blank line inside", "0 1000 1\n\n1 100001 65535\n", "", "blank line 2 in id map"},
		{"two columns", "0 100000\n", "", `range "0 100000": want "inside outside count"`},
		{"four columns", "0 100000 65536 1\n", "", `want "inside outside count"`},
		{"colons", "0:100000:65536\n", "", `want "inside outside count"`},
		{"zero count", "0 100000 0\n", "", `range "0 100000 0": count must be at least 1`},
		{"overlap", "0 100000 65536\n1 200000 1\n", "", `range "1:200000:1": disk ids overlap range "0:100000:65536"`},
		{"sign", "0 +100000 65536\n", "", `host id "+100000": not a decimal number`},
		{"hex", "0 0x100000 65536\n", "", `not a decimal number`},
		{"garbage", "\x00\xff\n", "", `want "inside outside count"`},
		{"341 lines", strings.Repeat("0 0 1\n", 341), "", "341 ranges"},
		{"too big", strings.Repeat(" ", maxProcMapSize+1), "", "bytes; at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseProcMap([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseProcMap(%q) = %v, %v; want error containing %q", tt.in, m, err, tt.wantErr)
				}
				return
			}
			if err != nil || m.String() != tt.want {
				t.Fatalf("ParseProcMap(%q) = %v, %v; want %v", tt.in, m, err, tt.want)
			}
			if back, err := ParseProcMap([]byte(m.ProcFormat())); err != nil || back.String() != m.String() {
				t.Errorf("ParseProcMap(ProcFormat()) = %v, %v; want %v", back, err, m)
			}
		})
	}
}

// TestParseProcMapGolden reads real /proc/PID/uid_map captures.
func TestParseProcMapGolden(t *testing.T) {
	want := map[string]string{
		"proc_init.txt":       "0:0:4294967295",
		"proc_container.txt":  "0:100000:65536",
		"proc_two_ranges.txt": "0:1000:1,1:100001:65535",
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			b := readProcGolden(t, name)
			m, err := ParseProcMap(b)
			if err != nil || m.String() != w {
				t.Errorf("ParseProcMap(%q) = %v, %v; want %v", b, m, err, w)
			}
		})
	}
}

// readProcGolden returns a testdata file without its first (comment) line.
func readProcGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n")
	if !ok || !strings.HasPrefix(string(b), "#") {
		t.Fatalf("%s: first line must be a # comment", name)
	}
	return []byte(rest)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name           string
		both, uid, gid string
		wantUID        string
		wantGID        string
		wantErr        string
	}{
		{"map only", "0:100000:65536", "", "", "0:100000:65536", "0:100000:65536", ""},
		{"uid and gid", "", "0:100000:65536", "0:200000:65536", "0:100000:65536", "0:200000:65536", ""},
		{"uid overrides map", "0:100000:65536", "0:1000:1", "", "0:1000:1", "0:100000:65536", ""},
		{"gid overrides map", "0:100000:65536", "", "0:1000:1", "0:100000:65536", "0:1000:1", ""},
		{"both override map", "0:100000:65536", "0:1:1", "0:2:1", "0:1:1", "0:2:1", ""},
		{"nothing", "", "", "", "", "", "no uid map: pass --map or --uid-map"},
		{"uid only", "", "0:100000:65536", "", "", "", "no gid map: pass --map or --gid-map"},
		{"gid only", "", "", "0:100000:65536", "", "", "no uid map: pass --map or --uid-map"},
		{"bad map", "0:100000:0", "", "", "", "", `--map: range "0:100000:0": count must be at least 1`},
		{"bad map overridden", "0:100000:0", "0:1:1", "0:1:1", "", "", `--map: range "0:100000:0"`},
		{"bad uid", "0:100000:65536", "x", "", "", "", `--uid-map: range "x": want disk:host:count`},
		{"bad gid", "", "0:1:1", "0:1:1,0:2:1", "", "", `--gid-map: range "0:2:1": disk ids overlap`},
		{"blank map", " ", "", "", "", "", "--map: empty map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseFlags(tt.both, tt.uid, tt.gid)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseFlags(%q, %q, %q) = %v; want error containing %q", tt.both, tt.uid, tt.gid, err, tt.wantErr)
				}
				return
			}
			if err != nil || m.UID.String() != tt.wantUID || m.GID.String() != tt.wantGID {
				t.Fatalf("ParseFlags(%q, %q, %q) = {%v %v}, %v; want {%v %v}", tt.both, tt.uid, tt.gid, m.UID, m.GID, err, tt.wantUID, tt.wantGID)
			}
		})
	}
}
