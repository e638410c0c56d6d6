package sedctl_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/internal/sedctl"
	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/hash"
)

// These tests drive sedctl end to end: sedctl.Main with a command line,
// over a real Unix socket (sim/wire, the opalwire protocol sedsim serves)
// to an in-process sedsim drive. Effects are checked on the drive itself
// (its blocks, its shadow MBR) as well as through sedctl's JSON output.

// TestDiscoveryCommands: scan, query, is-valid, msid, hash, version and
// help on a factory-fresh drive, all without a password.
func TestDiscoveryCommands(t *testing.T) {
	s := newSim(t, sim.Config{Serial: "SEDCTLTEST01"})

	var scan struct {
		Drives []struct {
			Device, Kind, SSC, Model, Serial, Firmware, Error string
			LockingEnabled                                    bool `json:"locking_enabled"`
		} `json:"drives"`
	}
	runJSON(t, &scan, "scan", "--sim", s.sock)
	found := false
	for _, d := range scan.Drives {
		if d.Device == s.dev {
			found = true
			if d.SSC != "opal2" || d.Serial != "SEDCTLTEST01" || d.Kind != "sim" || d.LockingEnabled || d.Error != "" {
				t.Errorf("scan entry %+v; want opal2, serial SEDCTLTEST01, kind sim, locking inactive", d)
			}
		}
	}
	if !found {
		t.Errorf("scan --sim %s: drive not listed: %+v", s.sock, scan.Drives)
	}
	// SEDCTL_SIM_SOCKETS is the one environment variable sedctl reads.
	r := run(t, nil, map[string]string{"SEDCTL_SIM_SOCKETS": s.sock}, "scan")
	if r.code != 0 || !strings.Contains(r.stdout, s.dev) || !strings.Contains(r.stdout, "SEDCTLTEST01") || !strings.Contains(r.stdout, "inactive") {
		t.Errorf("scan with SEDCTL_SIM_SOCKETS: %v", r)
	}

	var q struct {
		Identity struct {
			Serial    string `json:"serial"`
			SerialHex string `json:"serial_hex"`
			Blocks    uint64 `json:"blocks"`
			BlockSize uint32 `json:"block_size"`
		} `json:"identity"`
		SSC            string         `json:"ssc"`
		LockingSPState string         `json:"locking_sp_state"`
		Level0         map[string]any `json:"level0"`
		Properties     struct {
			TPer struct {
				MaxComPacketSize uint64 `json:"max_compacket_size"`
			} `json:"tper"`
			TPerProperties []struct {
				Name  string `json:"name"`
				Value uint64 `json:"value"`
			} `json:"tper_properties"`
		} `json:"properties"`
	}
	runJSON(t, &q, "query", s.dev)
	if q.SSC != "opal2" || q.LockingSPState != "Manufactured-Inactive" || q.Identity.Blocks != 1<<16 || q.Identity.BlockSize != 512 {
		t.Errorf("query: %+v", q)
	}
	if want := hex.EncodeToString([]byte("SEDCTLTEST01        ")); q.Identity.SerialHex != want {
		t.Errorf("query serial_hex %q; want the raw 20 bytes %q", q.Identity.SerialHex, want)
	}
	for _, f := range []string{"tper", "locking", "geometry", "opal_v2", "datastore"} {
		if _, ok := q.Level0[f]; !ok {
			t.Errorf("query level0 lacks %q: %v", f, q.Level0)
		}
	}
	if q.Properties.TPer.MaxComPacketSize == 0 || len(q.Properties.TPerProperties) == 0 {
		t.Errorf("query properties: %+v", q.Properties)
	}
	r = mustRun(t, "query", s.dev)
	for _, want := range []string{"Serial:", `"SEDCTLTEST01        "`, "opal_v2:", "base_comid:", "MaxComPacketSize", "Manufactured-Inactive"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("query output lacks %q:\n%s", want, r.stdout)
		}
	}

	var valid struct {
		SED  bool     `json:"sed"`
		SSC  string   `json:"ssc"`
		SSCs []string `json:"sscs"`
	}
	runJSON(t, &valid, "is-valid", s.dev)
	if !valid.SED || valid.SSC != "opal2" {
		t.Errorf("is-valid: %+v", valid)
	}

	var msid struct {
		MSID    string `json:"msid"`
		MSIDHex string `json:"msid_hex"`
	}
	runJSON(t, &msid, "msid", s.dev)
	if msid.MSID != string(s.d.MSID()) || msid.MSIDHex != hex.EncodeToString(s.d.MSID()) {
		t.Errorf("msid: %+v; want %q", msid, s.d.MSID())
	}
	if r := mustRun(t, "--printDefaultPassword", s.dev); !strings.Contains(r.stdout, string(s.d.MSID())) {
		t.Errorf("--printDefaultPassword: %v", r)
	}

	// hash: the PIN sedutil-cli would send, for the device's raw serial or
	// one given; PROTOCOL.md 2.2's vectors.
	pw := secretFile(t, "dummy")
	for _, c := range []struct {
		scheme, want string
	}{
		{"", "4f2accfd1a1764dc5b5bb38f40f9068d2d1a1f6dd5392707dea14c3bb7deeacc"},
		{"sedutil-sha1", "4f2accfd1a1764dc5b5bb38f40f9068d2d1a1f6dd5392707dea14c3bb7deeacc"},
		{"sha512-75k", "f4570f71e55f1db53b8adb1b42d7525a6324244b9bb8c9837a5509dc97b43810"},
		{"sedutil-sha512", "55c44674a296a05dae1fca033cf5598d5a06d5aee9baba6a3be90cdefde2ae2a"},
	} {
		args := []string{"hash", "--serial", "S2RBNB0HA12200B", "--password-file", pw}
		if c.scheme != "" {
			args = append(args, "--hash", c.scheme)
		}
		var h struct {
			Scheme string `json:"scheme"`
			PINHex string `json:"pin_hex"`
		}
		runJSON(t, &h, args...)
		if h.PINHex != c.want {
			t.Errorf("hash --hash %q: %s; want %s", c.scheme, h.PINHex, c.want)
		}
	}
	var h struct {
		Serial string `json:"serial"`
		PINHex string `json:"pin_hex"`
	}
	runJSON(t, &h, "hash", "--password-file", pw, s.dev)
	if want := hex.EncodeToString(s.pin(hash.SedutilSHA1, "dummy")); h.PINHex != want || h.Serial != "SEDCTLTEST01        " {
		t.Errorf("hash DEV: %+v; want PIN %s for the untrimmed serial", h, want)
	}
	runJSON(t, &h, "hash", "--hash", "hex", "--password-file", secretFile(t, "00ff"))
	if h.PINHex != "00ff" {
		t.Errorf("hash --hash hex 00ff: %+v", h)
	}
	var list struct {
		Schemes []struct {
			Name    string `json:"name"`
			Default bool   `json:"default"`
		} `json:"schemes"`
	}
	runJSON(t, &list, "hash", "--list")
	var names []string
	for _, s := range list.Schemes {
		names = append(names, s.Name)
		if s.Default && s.Name != "sedutil-sha1" {
			t.Errorf("default scheme %s; want sedutil-sha1", s.Name)
		}
	}
	for _, want := range []string{"sedutil-sha1", "sedutil-sha512", "sha512-75k", "none", "hex"} {
		if !slices.Contains(names, want) {
			t.Errorf("hash --list lacks %s: %v", want, names)
		}
	}
	if r := mustRun(t, "--validatePBKDF2"); strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stdout, "sedutil-sha1") {
		t.Errorf("--validatePBKDF2: %v", r)
	}
	wantCode(t, sedctl.ExitUsage, []string{"salts with the drive's serial"}, "hash", "--password-file", pw)

	var v struct {
		Version string `json:"version"`
	}
	runJSON(t, &v, "version")
	if v.Version == "" {
		t.Error("version: empty")
	}
	if r := mustRun(t, "help"); !strings.Contains(r.stdout, "range lock N DEV") || !strings.Contains(r.stdout, "--password-fd") {
		t.Errorf("help: %v", r)
	}
	if r := mustRun(t, "--help"); !strings.Contains(r.stdout, "Commands:") {
		t.Errorf("--help: %v", r)
	}
	for _, args := range [][]string{{"range", "--help"}, {"help", "range"}} {
		if r := mustRun(t, args...); !strings.Contains(r.stdout, "sedctl range add-user") {
			t.Errorf("%v: %v", args, r)
		}
	}
	for _, args := range [][]string{{"range", "set", "--help"}, {"help", "range", "set"}, {"RANGE", "SET", "--HELP"}} {
		r := mustRun(t, args...)
		if !strings.Contains(r.stdout, "Usage: sedctl range set N RW|RO|LK DEV") || !strings.Contains(r.stdout, "--password-fd") ||
			!strings.Contains(r.stdout, "Example") || !strings.Contains(r.stdout, "--setLockingRange") {
			t.Errorf("%v: %v", args, r)
		}
	}
}

// TestOwnershipLifecycle: setup (and its refusal on an owned drive),
// passwords, users, revert and PSID revert, each checked through JSON and
// on the drive.
func TestOwnershipLifecycle(t *testing.T) {
	s := newSim(t, sim.Config{})
	pw := secretFile(t, "correct horse")

	var setup struct {
		Device     string   `json:"device"`
		Owned      bool     `json:"owned"`
		Activated  bool     `json:"activated"`
		MBREnabled bool     `json:"mbr_enabled"`
		Steps      []string `json:"steps"`
	}
	runJSON(t, &setup, "setup", "--password-file", pw, s.dev)
	if !setup.Owned || !setup.Activated || setup.MBREnabled || len(setup.Steps) != 3 {
		t.Errorf("setup: %+v", setup)
	}
	rs := s.ranges(pw)
	if len(rs) != 9 || rs[0].Range != 0 || rs[0].ReadLockEnabled || rs[0].WriteLockEnabled || rs[0].ReadLocked || !rs[0].Readable {
		t.Fatalf("ranges after setup: %+v", rs)
	}

	// A second setup is refused politely, without a try spent (tries are
	// checked below through user list).
	je := failJSON(t, sedctl.ExitRefused, "setup", "--password-file", pw, s.dev)
	if !strings.Contains(je.Error.Message, "already set up") || len(je.Error.Hints) == 0 || !strings.Contains(je.Error.Hints[0], "revert") {
		t.Errorf("second setup: %+v", je.Error)
	}
	var users struct {
		Authorities []struct {
			Authority string  `json:"authority"`
			Enabled   *bool   `json:"enabled"`
			TryLimit  *uint64 `json:"try_limit"`
			Tries     *uint64 `json:"tries"`
			TriesLeft *uint64 `json:"tries_left"`
		} `json:"authorities"`
	}
	runJSON(t, &users, "user", "list", "--as", "sid", "--password-file", pw, s.dev)
	if len(users.Authorities) != 1 || users.Authorities[0].Authority != "SID" || users.Authorities[0].Tries == nil || *users.Authorities[0].Tries != 0 {
		t.Errorf("user list --as sid: %+v", users)
	}

	// Passwords: SID, Admin1, a user; the old one stops working.
	pw2 := secretFile(t, "battery staple")
	var d done
	runJSON(t, &d, "password", "set", "--authority", "sid", "--password-file", pw, "--new-password-file", pw2, s.dev)
	if d.Action != "password set" || !strings.Contains(d.Detail, "SID") {
		t.Errorf("password set sid: %+v", d)
	}
	runJSON(t, &d, "password", "set", "--authority", "admin1", "--password-file", pw, "--new-password-file", pw2, s.dev)
	wantCode(t, 1, []string{"refused the password for Admin1"}, "range", "list", "--password-file", pw, s.dev)
	s.ranges(pw2)

	user := secretFile(t, "user one")
	runJSON(t, &d, "user", "enable", "user1", "--password-file", pw2, s.dev)
	runJSON(t, &d, "password", "set", "--authority", "user1", "--password-file", pw2, "--new-password-file", user, s.dev)
	// User1 may set its own password, but not Admin1's.
	runJSON(t, &d, "password", "set", "--authority", "user1", "--as", "user1", "--password-file", user, "--new-password-file", user, s.dev)
	wantCode(t, 1, []string{"may not do this"}, "password", "set", "--authority", "admin1", "--as", "user1", "--password-file", user, "--new-password-file", user, s.dev)
	runJSON(t, &users, "user", "list", "--password-file", pw2, s.dev)
	enabled := map[string]bool{}
	for _, a := range users.Authorities {
		if a.Enabled == nil {
			t.Fatalf("user list: %s without enabled state", a.Authority)
		}
		enabled[a.Authority] = *a.Enabled
	}
	if !enabled["Admin1"] || !enabled["User1"] || enabled["User2"] || len(users.Authorities) != 13 {
		t.Errorf("user list: %+v", enabled)
	}
	runJSON(t, &d, "user", "disable", "user1", "--password-file", pw2, s.dev)
	wantCode(t, 1, []string{"User1 is disabled"}, "range", "list", "--as", "user1", "--password-file", user, s.dev)
	// sedutil's --enableuser takes the user as "User1".
	mustRun(t, "--enableuser", "User1", "--password-file", pw2, s.dev)

	// take-ownership and activate on their own are refused on an owned
	// drive; a mismatched new password file is not an issue here.
	wantCode(t, sedctl.ExitRefused, []string{"already has an owner"}, "take-ownership", "--password-file", pw2, s.dev)
	wantCode(t, sedctl.ExitRefused, []string{"nothing was changed"}, "activate", "--password-file", pw2, s.dev)

	// revert --tper without --yes and without a terminal: refused, drive
	// untouched.
	wantCode(t, sedctl.ExitRefused, []string{"needs confirmation", "--yes"}, "revert", "--tper", "--password-file", pw2, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"--tper", "--locking-sp"}, "revert", "--yes", "--password-file", pw2, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"--keep-data"}, "revert", "--tper", "--keep-data", "--yes", "--password-file", pw2, s.dev)
	s.ranges(pw2)

	// Data written to the global range survives revert --locking-sp
	// --keep-data, and not revert --tper.
	data := bytes.Repeat([]byte("keep me!"), 64)
	if err := s.d.Write(100, data); err != nil {
		t.Fatal(err)
	}
	runJSON(t, &d, "revert", "--locking-sp", "--keep-data", "--yes", "--password-file", pw2, s.dev)
	if d.Action != "revert locking-sp" {
		t.Errorf("revert --locking-sp: %+v", d)
	}
	if !bytes.Equal(s.block(100), data) {
		t.Error("revert --locking-sp --keep-data lost the global range's data")
	}
	var q struct {
		LockingSPState string `json:"locking_sp_state"`
	}
	runJSON(t, &q, "query", s.dev)
	if q.LockingSPState != "Manufactured-Inactive" {
		t.Errorf("after revert --locking-sp: Locking SP %s", q.LockingSPState)
	}
	runJSON(t, &d, "activate", "--password-file", pw2, s.dev)
	runJSON(t, &d, "revert", "--tper", "--yes", "--password-file", pw2, s.dev)
	if bytes.Equal(s.block(100), data) {
		t.Error("revert --tper kept the data")
	}
	runJSON(t, &msidOut{}, "msid", s.dev)
	// Factory state again: setup works, with take-ownership and activate
	// as separate steps this time.
	runJSON(t, &d, "take-ownership", "--password-file", pw, s.dev)
	runJSON(t, &d, "activate", "--password-file", pw, s.dev)
	if err := s.d.Write(100, data); err != nil {
		t.Fatal(err)
	}
	runJSON(t, &d, "revert", "--locking-sp", "--yes", "--password-file", pw, s.dev)
	if bytes.Equal(s.block(100), data) {
		t.Error("revert --locking-sp without --keep-data kept the data")
	}

	// PSID revert: a wrong PSID is refused (and never hashed); the right
	// one resets everything.
	wantCode(t, 1, []string{"PSID"}, "psid-revert", "--yes", "--password-file", secretFile(t, strings.Repeat("X", 32)), s.dev)
	psid := secretFile(t, s.psid)
	runJSON(t, &d, "psid-revert", "--yes", "--password-file", psid, s.dev)
	if d.Action != "psid-revert" {
		t.Errorf("psid-revert: %+v", d)
	}
	runJSON(t, &setup, "setup", "--password-file", pw, s.dev)
}

type msidOut struct {
	MSID string `json:"msid"`
}

// TestRanges: setup, enable, lock, unlock, read-only, erase and add-user,
// checked on the drive's blocks, including across power cycles.
func TestRanges(t *testing.T) {
	s := newSim(t, sim.Config{})
	pw := s.setup("admin password")
	var d done

	runJSON(t, &d, "range", "setup", "1", "1024", "2048", "--password-file", pw, s.dev)
	if d.Range == nil || *d.Range != 1 || d.Action != "range setup" {
		t.Errorf("range setup: %+v", d)
	}
	var one struct {
		Ranges []rangeJSON `json:"ranges"`
	}
	runJSON(t, &one, "range", "list", "1", "--password-file", pw, s.dev)
	if len(one.Ranges) != 1 || one.Ranges[0].Start != 1024 || one.Ranges[0].Length != 2048 || one.Ranges[0].ReadLockEnabled {
		t.Fatalf("range list 1: %+v", one.Ranges)
	}

	// Locking disabled: "lock" changes the state, the blocks stay readable.
	runJSON(t, &d, "range", "lock", "1", "--password-file", pw, s.dev)
	if !s.readable(1024) || !strings.Contains(d.Detail, "locking is disabled") {
		t.Errorf("lock with locking disabled: readable %v, detail %q", s.readable(1024), d.Detail)
	}
	runJSON(t, &d, "range", "enable", "1", "--password-file", pw, s.dev)
	if s.readable(1024) || s.readable(3071) || !s.readable(1023) || !s.readable(3072) {
		t.Error("range 1 enabled and locked: blocks 1024..3071 should be refused, their neighbours not")
	}
	runJSON(t, &d, "range", "unlock", "1", "--password-file", pw, s.dev)
	if !s.readable(1024) {
		t.Error("range 1 unlocked: block 1024 refused")
	}
	data := bytes.Repeat([]byte{0xA5}, 512)
	if err := s.d.Write(2000, data); err != nil {
		t.Fatal(err)
	}
	// LockOnReset: a power cycle locks it again.
	mustRun(t, "reset", "--power-cycle", s.dev)
	if s.readable(2000) {
		t.Error("range 1 readable after a power cycle")
	}
	rs := s.ranges(pw)
	if !rs[1].ReadLocked || !rs[1].WriteLocked || rs[1].LockOnReset[0] != "power_cycle" {
		t.Errorf("range 1 after power cycle: %+v", rs[1])
	}
	// range set RO: readable, not writable.
	runJSON(t, &d, "range", "set", "1", "RO", "--password-file", pw, s.dev)
	if !bytes.Equal(s.block(2000), data) || s.d.Write(2000, data) == nil {
		t.Error("range 1 RO: want readable, not writable")
	}
	runJSON(t, &d, "range", "set", "1", "rw", "--password-file", pw, s.dev)
	if s.d.Write(2000, data) != nil {
		t.Error("range 1 RW: not writable")
	}
	// readonly: only write locking enabled, so locked means read-only.
	runJSON(t, &d, "range", "readonly", "1", "--password-file", pw, s.dev)
	runJSON(t, &d, "range", "lock", "1", "--password-file", pw, s.dev)
	if !s.readable(2000) || s.d.Write(2000, data) == nil {
		t.Error("readonly range locked: want readable, not writable")
	}
	rs = s.ranges(pw)
	if rs[1].ReadLockEnabled || !rs[1].WriteLockEnabled {
		t.Errorf("range readonly: %+v", rs[1])
	}
	runJSON(t, &d, "range", "disable", "1", "--password-file", pw, s.dev)
	if s.d.Write(2000, data) != nil {
		t.Error("range disabled: not writable")
	}
	// erase: a new key, the data is gone; asks unless --yes.
	wantCode(t, sedctl.ExitRefused, []string{"needs confirmation"}, "range", "erase", "1", "--password-file", pw, s.dev)
	if !bytes.Equal(s.block(2000), data) {
		t.Fatal("unconfirmed erase changed the data")
	}
	runJSON(t, &d, "range", "erase", "1", "--yes", "--password-file", pw, s.dev)
	if bytes.Equal(s.block(2000), data) {
		t.Error("range erase kept the data")
	}
	// sedutil names: rekey (erase) and listLockingRange.
	mustRun(t, "--rekeyLockingRange", "1", "--password-file", pw, s.dev)
	if r := mustRun(t, "--listLockingRange", "1", "--password-file", pw, s.dev); !strings.Contains(r.stdout, "1024") {
		t.Errorf("--listLockingRange 1: %v", r)
	}

	// add-user: User1 may lock and unlock range 1, and nothing else.
	user := secretFile(t, "user password")
	mustRun(t, "user", "enable", "user1", "--password-file", pw, s.dev)
	mustRun(t, "password", "set", "--authority", "user1", "--password-file", pw, "--new-password-file", user, s.dev)
	wantCode(t, 1, []string{"may not do this"}, "range", "lock", "1", "--as", "user1", "--password-file", user, s.dev)
	// User1 is enabled already: no hint to enable it. User2 is not.
	if r := mustRun(t, "range", "add-user", "1", "user1", "--password-file", pw, s.dev); strings.Contains(r.stdout, "user enable") {
		t.Errorf("add-user of an enabled user hints to enable it: %v", r)
	}
	if r := mustRun(t, "range", "add-user", "2", "user2", "--password-file", pw, s.dev); !strings.Contains(r.stdout, "once enabled: 'sedctl user enable user2'") {
		t.Errorf("add-user of a disabled user gives no hint to enable it: %v", r)
	}
	runJSON(t, &d, "range", "enable", "1", "--password-file", pw, s.dev)
	runJSON(t, &d, "range", "lock", "1", "--as", "user1", "--password-file", user, s.dev)
	if s.readable(1024) {
		t.Error("User1 locked range 1: still readable")
	}
	runJSON(t, &d, "range", "unlock", "1", "--as", "user1", "--password-file", user, s.dev)
	if !s.readable(1024) {
		t.Error("User1 unlocked range 1: still refused")
	}
	wantCode(t, 1, []string{"may not do this"}, "range", "lock", "2", "--as", "user1", "--password-file", user, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"not a user"}, "range", "add-user", "1", "admin2", "--password-file", pw, s.dev)

	// The global range locks the rest of the drive.
	runJSON(t, &d, "range", "enable", "0", "--password-file", pw, s.dev)
	runJSON(t, &d, "range", "lock", "global", "--password-file", pw, s.dev)
	if s.readable(0) || !s.readable(1024) {
		t.Error("global range locked: block 0 should be refused, range 1's blocks not")
	}
	mustRun(t, "--setLockingRange", "0", "RW", "--password-file", pw, s.dev)
	if !s.readable(0) {
		t.Error("--setLockingRange 0 RW: block 0 still refused")
	}
	wantCode(t, sedctl.ExitUsage, []string{"global range"}, "range", "setup", "0", "0", "8", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"RW (unlocked)"}, "range", "set", "1", "XX", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"Locking SP"}, "range", "lock", "1", "--as", "sid", "--password-file", pw, s.dev)
}

// TestMBRAndDataStore: the shadow MBR (load with read-back, enable, done,
// what the host sees at LBA 0 across power cycles) and the DataStore.
func TestMBRAndDataStore(t *testing.T) {
	s := newSim(t, sim.Config{})
	pw := s.setup("pba")
	img := filepath.Join(t.TempDir(), "pba.img")
	pba := bytes.Repeat([]byte("PBA image block "), 300*1024/16) // 300 KiB: several chunks
	if err := os.WriteFile(img, pba, 0o644); err != nil {
		t.Fatal(err)
	}
	var load struct {
		Device    string `json:"device"`
		Bytes     int    `json:"bytes"`
		TableSize uint64 `json:"table_size"`
		Verified  bool   `json:"verified"`
	}
	runJSON(t, &load, "mbr", "load", img, "--password-file", pw, s.dev)
	if load.Bytes != len(pba) || !load.Verified || load.TableSize != 1<<20 {
		t.Errorf("mbr load: %+v", load)
	}
	var d done
	runJSON(t, &d, "mbr", "enable", "--password-file", pw, s.dev)
	var st struct {
		Enable      bool     `json:"enable"`
		Done        bool     `json:"done"`
		DoneOnReset []string `json:"done_on_reset"`
		Shadowing   bool     `json:"shadowing"`
		TableSize   uint64   `json:"table_size"`
	}
	runJSON(t, &st, "mbr", "status", "--password-file", pw, s.dev)
	if !st.Enable || !st.Done || st.Shadowing || st.TableSize != 1<<20 || len(st.DoneOnReset) != 1 {
		t.Errorf("mbr status after enable: %+v", st)
	}
	// After a power cycle the host sees the PBA at LBA 0.
	mustRun(t, "reset", "--power-cycle", s.dev)
	if got := s.block(0); !bytes.Equal(got, pba[:512]) {
		t.Errorf("LBA 0 after power cycle with the shadow MBR enabled: %q; want the PBA", got[:32])
	}
	runJSON(t, &d, "mbr", "done", "on", "--password-file", pw, s.dev)
	if bytes.Equal(s.block(0), pba[:512]) {
		t.Error("mbr done on: LBA 0 still shows the PBA")
	}
	mustRun(t, "--setMBRDone", "off", "--password-file", pw, s.dev)
	if !bytes.Equal(s.block(0), pba[:512]) {
		t.Error("--setMBRDone off: LBA 0 does not show the PBA")
	}
	mustRun(t, "--setMBREnable", "off", "--password-file", pw, s.dev)
	runJSON(t, &st, "mbr", "status", "--password-file", pw, s.dev)
	if st.Enable || !st.Done {
		t.Errorf("after --setMBREnable off: %+v", st)
	}
	runJSON(t, &d, "mbr", "disable", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"on or off"}, "--setMBREnable", "maybe", "--password-file", pw, s.dev)

	// An image larger than the table is refused before anything is
	// written: the table still holds the old image.
	big := filepath.Join(t.TempDir(), "big.img")
	if err := os.WriteFile(big, make([]byte, 1<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	je := failJSON(t, sedctl.ExitData, "mbr", "load", big, "--password-file", pw, s.dev)
	if !strings.Contains(je.Error.Message, "larger than the drive's shadow MBR table") || !strings.Contains(je.Error.Message, "nothing was written") {
		t.Errorf("oversized image: %+v", je.Error)
	}
	mustRun(t, "mbr", "enable", "--password-file", pw, s.dev)
	mustRun(t, "mbr", "done", "off", "--password-file", pw, s.dev)
	if !bytes.Equal(s.block(0), pba[:512]) {
		t.Error("a refused oversized image changed the shadow MBR")
	}
	wantCode(t, sedctl.ExitNoInput, []string{"PBA image"}, "mbr", "load", filepath.Join(t.TempDir(), "missing"), "--password-file", pw, s.dev)
	// sedutil's --loadPBAimage takes the file, then the device.
	small := filepath.Join(t.TempDir(), "small.img")
	if err := os.WriteFile(small, []byte("tiny PBA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, "--loadPBAimage", small, "--password-file", pw, s.dev); !strings.Contains(r.stdout, "verified") {
		t.Errorf("--loadPBAimage: %v", r)
	}

	// DataStore: write, read back (raw and JSON), bounds.
	blob := []byte("sedctl datastore \x00\x01\x02 test")
	f := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(f, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	var w struct {
		Table  uint32 `json:"table"`
		Offset uint64 `json:"offset"`
		Bytes  int    `json:"bytes"`
	}
	runJSON(t, &w, "datastore", "write", f, "--offset", "100", "--password-file", pw, s.dev)
	if w.Bytes != len(blob) || w.Offset != 100 || w.Table != 1 {
		t.Errorf("datastore write: %+v", w)
	}
	var rd struct {
		Length    uint64 `json:"length"`
		TableSize uint64 `json:"table_size"`
		DataHex   string `json:"data_hex"`
	}
	runJSON(t, &rd, "datastore", "read", "--offset", "100", "--length", itoa(len(blob)), "--password-file", pw, s.dev)
	if rd.DataHex != hex.EncodeToString(blob) || rd.TableSize != 64<<10 {
		t.Errorf("datastore read: %+v; want %x", rd, blob)
	}
	r := mustRun(t, "datastore", "read", "--offset", "100", "--length", itoa(len(blob)), "--password-file", pw, s.dev)
	if r.stdout != string(blob) {
		t.Errorf("datastore read (raw): %q; want %q", r.stdout, blob)
	}
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, "datastore", "read", "--out", out, "--password-file", pw, s.dev)
	if got, err := os.ReadFile(out); err != nil || len(got) != 64<<10 || !bytes.Equal(got[100:100+len(blob)], blob) {
		t.Errorf("datastore read --out: %d bytes, %v", len(got), err)
	}
	// From stdin.
	var so bytes.Buffer
	rr := run(t, strings.NewReader("from stdin"), nil, "datastore", "write", "-", "--password-file", pw, s.dev)
	if rr.code != 0 {
		t.Fatalf("datastore write -: %v", rr)
	}
	so.WriteString(mustRun(t, "datastore", "read", "--length", "10", "--password-file", pw, s.dev).stdout)
	if so.String() != "from stdin" {
		t.Errorf("datastore after write -: %q", so.String())
	}
	wantCode(t, sedctl.ExitData, []string{"do not fit"}, "datastore", "write", f, "--offset", itoa(64<<10-2), "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitData, []string{"beyond"}, "datastore", "read", "--offset", itoa(64<<10+1), "--password-file", pw, s.dev)
	// An endless input is read only as far as the table has room, then
	// refused; a directory and an offset past the end are refused too.
	wantCode(t, sedctl.ExitData, []string{"do not fit"}, "datastore", "write", "/dev/zero", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitNoInput, []string{"is a directory"}, "datastore", "write", t.TempDir(), "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitData, []string{"beyond"}, "datastore", "write", f, "--offset", itoa(64<<10+1), "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitData, []string{"runs past"}, "datastore", "read", "--offset", "10", "--length", "18446744073709551615", "--password-file", pw, s.dev)
}

// TestRawAndReset: raw get/set/call (sedutil --objDump, --rawCmd) and the
// resets.
func TestRawAndReset(t *testing.T) {
	s := newSim(t, sim.Config{})
	pw := s.setup("raw")

	var raw struct {
		Invoking  string `json:"invoking"`
		Method    string `json:"method"`
		Status    string `json:"status"`
		Authority string `json:"authority"`
		Values    []any  `json:"values"`
	}
	runJSON(t, &raw, "raw", "get", "admin", "anybody", "C_PIN_MSID", s.dev)
	if raw.Status != "SUCCESS" || raw.Authority != "Anybody" || !strings.Contains(string(mustJSON(t, raw.Values)), hex.EncodeToString(s.d.MSID())) {
		t.Errorf("raw get C_PIN_MSID: %+v", raw)
	}
	// --objDump SP AUTH UID DEV, the password from the file.
	if r := mustRun(t, "--objDump", "1", "Admin1", "0000080200000001", "--password-file", pw, s.dev); !strings.Contains(r.stdout, "SUCCESS") {
		t.Errorf("--objDump: %v", r)
	}
	// raw set: ReadLockEnabled of range 1, visible to range list.
	runJSON(t, &raw, "raw", "set", "locking", "admin1", "Locking_Range1", "5=true", "--password-file", pw, s.dev)
	if raw.Status != "SUCCESS" {
		t.Errorf("raw set: %+v", raw)
	}
	if rs := s.ranges(pw); !rs[1].ReadLockEnabled || rs[1].WriteLockEnabled {
		t.Errorf("after raw set 5=true: %+v", rs[1])
	}
	runJSON(t, &raw, "raw", "call", "locking", "admin1", "ThisSP", "Random", "16", "--password-file", pw, s.dev)
	if raw.Status != "SUCCESS" || len(raw.Values) != 1 {
		t.Fatalf("raw call Random: %+v", raw)
	}
	if m, ok := raw.Values[0].(map[string]any); !ok || len(m["hex"].(string)) != 32 {
		t.Errorf("raw call Random 16: %v", raw.Values)
	}
	// --rawCmd with sedutil's hex parameter list: Random [ 8 ].
	if r := mustRun(t, "--rawCmd", "1", "Admin1", "0000000000000001", "0000000600000601", "F008F1", "--password-file", pw, s.dev); !strings.Contains(r.stdout, "SUCCESS") {
		t.Errorf("--rawCmd: %v", r)
	}
	// A method status is reported, with its code as the exit code.
	r := run(t, nil, nil, "raw", "set", "locking", "admin1", "Locking_Range1", "3=1", "4=8", "--json", "--password-file", pw, s.dev)
	if r.code != 12 {
		t.Errorf("raw set of an unaligned RangeStart: exit %d; want 12 (INVALID_PARAMETER)\n%v", r.code, r)
	}
	decode(t, r, &raw)
	if raw.Status != "INVALID_PARAMETER" {
		t.Errorf("raw set of an unaligned RangeStart: status %q; want INVALID_PARAMETER", raw.Status)
	}
	wantCode(t, sedctl.ExitUsage, []string{"COLUMN=VALUE"}, "raw", "set", "locking", "admin1", "Locking_Range1", "true", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"not closed"}, "raw", "call", "locking", "admin1", "ThisSP", "Random", "[", "1", "--password-file", pw, s.dev)
	wantCode(t, sedctl.ExitUsage, []string{"bad hex"}, "raw", "call", "locking", "admin1", "ThisSP", "Random", "0xZZ", "--password-file", pw, s.dev)

	// reset: STACK_RESET (default), power cycle, and a TPer reset once
	// SID has allowed it.
	var d done
	runJSON(t, &d, "reset", s.dev)
	if d.Action != "reset stack" {
		t.Errorf("reset: %+v", d)
	}
	mustRun(t, "--TCGreset", s.dev)
	runJSON(t, &d, "reset", "--power-cycle", s.dev)
	wantCode(t, sedctl.ExitUnsupported, []string{"ProgrammaticResetEnable"}, "reset", "--tper", s.dev)
	runJSON(t, &raw, "raw", "set", "admin", "sid", "TPerInfo", "8=true", "--password-file", pw, s.dev)
	mustRun(t, "range", "enable", "1", "--password-file", pw, s.dev)
	mustRun(t, "range", "unlock", "1", "--password-file", pw, s.dev)
	runJSON(t, &d, "reset", "--tper", s.dev)
	if d.Action != "reset tper" {
		t.Errorf("reset --tper: %+v", d)
	}
	wantCode(t, sedctl.ExitUsage, []string{"one of"}, "reset", "--tper", "--stack", s.dev)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSingleUserMode: sum setup-drive (sedutil --setup_SUM), then the
// range owner's commands; admins lose the range.
func TestSingleUserMode(t *testing.T) {
	s := newSim(t, sim.Config{})
	sid := secretFile(t, "sid password")
	owner := secretFile(t, "owner password")
	var out struct {
		Range uint32   `json:"range"`
		Owner string   `json:"owner"`
		Steps []string `json:"steps"`
	}
	runJSON(t, &out, "sum", "setup-drive", "1", "0", "64", "--password-file", sid, "--new-password-file", owner, s.dev)
	if out.Range != 1 || out.Owner != "User2" || len(out.Steps) != 4 {
		t.Errorf("sum setup-drive: %+v", out)
	}
	var d done
	runJSON(t, &d, "sum", "lock", "1", "--password-file", owner, s.dev)
	if s.readable(0) {
		t.Error("SUM range 1 locked: block 0 readable")
	}
	// Admin1 may neither read nor unlock it.
	rs := s.ranges(sid)
	if rs[1].Readable || !rs[0].Readable || !rs[2].Readable {
		t.Errorf("range list as Admin1 on a SUM drive: %+v", rs)
	}
	wantCode(t, 1, nil, "range", "unlock", "1", "--password-file", sid, s.dev)
	if r := mustRun(t, "range", "list", "--password-file", sid, s.dev); !strings.Contains(r.stdout, "not readable as Admin1") {
		t.Errorf("range list table: %v", r)
	}
	rs = s.ranges(owner, "--as", "user2")
	if !rs[1].Readable || !rs[1].ReadLocked || rs[2].Readable {
		t.Errorf("range list as the owner: %+v", rs)
	}
	runJSON(t, &d, "sum", "unlock", "1", "--password-file", owner, s.dev)
	if !s.readable(0) {
		t.Error("SUM range 1 unlocked: block 0 refused")
	}
	runJSON(t, &d, "sum", "set", "1", "RO", "--password-file", owner, s.dev)
	if s.d.Write(0, make([]byte, 512)) == nil {
		t.Error("SUM range 1 RO: writable")
	}
	mustRun(t, "--setLockingRange_SUM", "1", "RW", "--password-file", owner, s.dev)
	data := bytes.Repeat([]byte{7}, 512)
	if err := s.d.Write(8, data); err != nil {
		t.Fatal(err)
	}
	runJSON(t, &d, "sum", "erase", "1", "--yes", "--password-file", owner, s.dev)
	if bytes.Equal(s.block(8), data) {
		t.Error("sum erase kept the data")
	}
	owner2 := secretFile(t, "owner password 2")
	runJSON(t, &d, "sum", "password", "1", "--password-file", owner, "--new-password-file", owner2, s.dev)
	wantCode(t, 1, []string{"refused the password for User2"}, "sum", "lock", "1", "--password-file", owner, s.dev)
	runJSON(t, &d, "sum", "setup", "1", "64", "64", "--password-file", owner2, s.dev)
	if rs := s.ranges(owner2, "--as", "user2"); rs[1].Start != 64 || rs[1].Length != 64 {
		t.Errorf("after sum setup 1 64 64: %+v", rs[1])
	}

	// sum activate on a fresh drive: every listed range in SUM.
	s2 := newSim(t, sim.Config{})
	mustRun(t, "take-ownership", "--password-file", sid, s2.dev)
	runJSON(t, &d, "sum", "activate", "2,3", "--password-file", sid, s2.dev)
	if !strings.Contains(d.Detail, "Single User Mode") {
		t.Errorf("sum activate: %+v", d)
	}
	rs = s2.ranges(sid)
	if !rs[1].Readable || rs[2].Readable || rs[3].Readable {
		t.Errorf("after sum activate 2,3, as Admin1: %+v", rs)
	}
	// The owners' passwords are empty until they set them.
	mustRun(t, "sum", "password", "2", "--password-file", secretFile(t, ""), "--new-password-file", owner, s2.dev)
	mustRun(t, "sum", "lock", "2", "--password-file", owner, s2.dev)
	// Pyrite has no Single User Mode.
	p := newSim(t, sim.Config{Profile: sim.Pyrite2})
	mustRun(t, "take-ownership", "--password-file", sid, p.dev)
	wantCode(t, sedctl.ExitUnsupported, []string{"Single User Mode"}, "sum", "activate", "all", "--password-file", sid, p.dev)
}
