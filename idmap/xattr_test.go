package idmap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// xattrCase is one testdata/{acl,cap}_*.txt file:
//
//	# where the bytes come from
//	op: ACLToHost | ACLToDisk | CapToHost | CapToDisk
//	map: disk:host:count[,...]   (uids and gids alike; or uid: and gid:)
//	in: hex
//	want: hex | err: unmapped | err: bad
type xattrCase struct {
	name    string
	op      string
	m       IDMap
	in      []byte
	want    []byte
	wantErr error
}

func (c xattrCase) run() ([]byte, error) {
	switch c.op {
	case "ACLToHost":
		return ACLToHost(c.in, c.m)
	case "ACLToDisk":
		return ACLToDisk(c.in, c.m)
	case "CapToHost":
		return CapToHost(c.in, c.m)
	case "CapToDisk":
		return CapToDisk(c.in, c.m)
	}
	panic("unknown op " + c.op)
}

func loadXattrCases(t testing.TB, glob string) []xattrCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/%s: %v", glob, err)
	}
	var cases []xattrCase
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		c := xattrCase{name: filepath.Base(file)}
		fields := map[string]string{}
		for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if i == 0 {
				if !strings.HasPrefix(line, "# ") {
					t.Fatalf("%s: first line must be a # comment saying where the bytes come from", file)
				}
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("%s:%d: want key: value", file, i+1)
			}
			fields[k] = strings.TrimSpace(v)
		}
		c.op = fields["op"]
		uid, gid := fields["map"], fields["map"]
		if uid == "" {
			uid, gid = fields["uid"], fields["gid"]
		}
		if c.m, err = ParseFlags("", uid, gid); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if c.in, err = hex.DecodeString(fields["in"]); err != nil {
			t.Fatalf("%s: in: %v", file, err)
		}
		switch fields["err"] {
		case "":
			if c.want, err = hex.DecodeString(fields["want"]); err != nil {
				t.Fatalf("%s: want: %v", file, err)
			}
		case "unmapped":
			c.wantErr = ErrUnmapped
		case "bad":
			c.wantErr = ErrBadXattr
		default:
			t.Fatalf("%s: unknown err %q", file, fields["err"])
		}
		cases = append(cases, c)
	}
	return cases
}

func TestXattrGolden(t *testing.T) {
	for _, c := range append(loadXattrCases(t, "acl_*.txt"), loadXattrCases(t, "cap_*.txt")...) {
		t.Run(c.name, func(t *testing.T) {
			in := bytes.Clone(c.in)
			got, err := c.run()
			if !bytes.Equal(in, c.in) {
				t.Errorf("%s(%x) changed its input", c.op, in)
			}
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("%s(%x) = %x, %v; want error wrapping %v", c.op, c.in, got, err, c.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("%s(%x) = %x, %v; want %x", c.op, c.in, got, err, c.want)
			}
			if len(got) > 0 && len(c.in) > 0 && &got[0] == &c.in[0] {
				t.Errorf("%s(%x) returned its input slice; want a new slice", c.op, c.in)
			}
		})
	}
}

func TestXattrErrorMessages(t *testing.T) {
	m := IDMap{UID: mustMap(Range{0, 100000, 65536}), GID: mustMap(Range{0, 200000, 65536})}
	acl := func(entries ...string) []byte {
		b, _ := hex.DecodeString("02000000" + strings.Join(entries, ""))
		return b
	}
	tests := []struct {
		name string
		f    func([]byte, IDMap) ([]byte, error)
		in   []byte
		want string
	}{
		{"acl user unmapped", ACLToDisk, acl("01000600ffffffff", "02000700e8030000"), "posix acl: ACL_USER uid 1000 at offset 12: id has no mapping"},
		{"acl group unmapped", ACLToDisk, acl("08000700a0860100"), "posix acl: ACL_GROUP gid 100000 at offset 4: id has no mapping"},
		{"acl unknown tag", ACLToHost, acl("01000600ffffffff", "03000700e8030000"), "posix acl: unknown tag 0x3 at offset 12: malformed xattr value"},
		{"acl bad version", ACLToHost, []byte{1, 0, 0, 0}, "posix acl: version 1 at offset 0, want 2: malformed xattr value"},
		{"acl bad length", ACLToHost, []byte{2, 0, 0, 0, 1}, "posix acl: length 5 is not 4+8n: malformed xattr value"},
		{"acl empty", ACLToHost, nil, "posix acl: empty value: malformed xattr value"},
		{"acl too big", ACLToHost, make([]byte, maxXattrSize+4), "posix acl: 65540 bytes, more than the kernel's 65536: malformed xattr value"},
		{"cap rootid", CapToHost, []byte{0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa0, 0x86, 1, 0}, "file capability: rootid 100000: id has no mapping"},
		{"cap size", CapToHost, []byte{0, 0, 0, 2, 0, 0, 0, 0}, "file capability: revision 2 value is 8 bytes, want 20: malformed xattr value"},
		{"cap revision", CapToHost, []byte{0, 0, 0, 0}, "file capability: unknown revision 0x0 at offset 0: malformed xattr value"},
		{"cap short", CapToDisk, []byte{0, 0}, "file capability: 2 bytes, too short for magic_etc: malformed xattr value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f(tt.in, m)
			if err == nil || err.Error() != tt.want {
				t.Errorf("(%x) = %x, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestCapFlagsKept checks that flag bits other than the effective flag
// survive both ways.
func TestCapFlagsKept(t *testing.T) {
	m := IDMap{UID: mustMap(Range{0, 100000, 65536})}
	in, _ := hex.DecodeString("0300000201002000010020000000000000000000") // v2, flags 0x000003
	h, err := CapToHost(in, m)
	if want := "0300000301002000010020000000000000000000a0860100"; err != nil || hex.EncodeToString(h) != want {
		t.Fatalf("CapToHost(%x) = %x, %v; want %s", in, h, err, want)
	}
	d, err := CapToDisk(h, m)
	if err != nil || !bytes.Equal(d, in) {
		t.Fatalf("CapToDisk(%x) = %x, %v; want %x", h, d, err, in)
	}
}
