package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shiftlock/shiftlock/sim/media"
	"github.com/shiftlock/shiftlock/tcg/method"
)

// Files in a drive's directory.
const (
	stateName  = "state"  // driveState as JSON: the drive's "secure storage"
	mediaName  = "media"  // user data, XTS-AES-256 per locking range (sim/media)
	tablesName = "tables" // MBR and DataStore byte tables, encrypted likewise
	lockName   = "lock"   // flock(2) held while the drive is open
)

// The state file's identification. A file without this format string is
// not a sedsim drive; a newer version is refused rather than misread.
const (
	stateFormat  = "sedsim drive state"
	stateVersion = 1
)

// Life cycle states of an SP (Core 5.2.2.3; PROTOCOL.md 1.11).
const (
	lifeManufacturedInactive = 8
	lifeManufactured         = 9
)

// Reset types of LockOnReset and DoneOnReset (PROTOCOL.md 1.9).
const (
	resetPowerCycle   = 0
	resetHardware     = 1
	resetHotPlug      = 2
	resetProgrammatic = 3
)

// driveState is everything a drive keeps across power cycles. It is the
// drive's secure storage: PIN verifiers, media keys, tables, life cycle.
//
// Where a real drive wraps each media key with a key-encryption key derived
// from the PINs allowed to unlock its range, sedsim keeps the keys as they
// are in this file (mode 0600), apart from the media they encrypt: the
// media file alone reveals nothing, the state file alone holds no user
// data, but both together do. PINs are kept only as HMAC-SHA256 verifiers
// (salted per drive); the MSID is kept as it is because Anybody may read it.
type driveState struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Config  Config `json:"config"`

	// Salt keys the PIN verifiers.
	Salt []byte `json:"salt"`

	Admin   adminSPState   `json:"admin_sp"`
	Locking lockingSPState `json:"locking_sp"`

	// RangeKeys holds the media key of each locking range, the global
	// range first (media.KeySize bytes each). Pyrite has a single nil
	// entry: its media is not encrypted.
	RangeKeys [][]byte `json:"range_keys"`

	// Tables holds the MBR (index tableMBR) and DataStore (tableDataStore)
	// byte tables' keys and which chunks have been written since they were
	// last reset (unwritten chunks read as zeros).
	Tables [2]byteTableState `json:"tables"`
}

// credential is a C_PIN row.
type credential struct {
	Verifier    []byte `json:"verifier"` // pinVerifier of the PIN
	TryLimit    uint32 `json:"try_limit"`
	Tries       uint32 `json:"tries"`
	Persistence bool   `json:"persistence"` // Tries survive power cycles
}

// authState is an authority with a password credential.
type authState struct {
	Enabled bool       `json:"enabled"`
	PIN     credential `json:"pin"`
}

type adminSPState struct {
	MSID   []byte     `json:"msid"`   // C_PIN_MSID.PIN, readable by Anybody
	SID    credential `json:"sid"`    // C_PIN_SID
	PSID   credential `json:"psid"`   // C_PIN_PSID: only Revert of the Admin SP
	Admin1 authState  `json:"admin1"` // the Admin SP's Admin1, disabled as shipped
	// ProgrammaticResetEnable is TPerInfo column 8: TPer Reset allowed.
	ProgrammaticResetEnable bool `json:"programmatic_reset_enable"`
}

type lockingSPState struct {
	LifeCycle uint8        `json:"life_cycle"`
	Admins    []authState  `json:"admins"` // Admin1..n
	Users     []authState  `json:"users"`  // User1..n
	Ranges    []rangeState `json:"ranges"` // the global range first
	MBR       mbrState     `json:"mbr_control"`
	ACEs      []aceState   `json:"aces"`
	// SUMPolicy is RangeStartRangeLengthPolicy: true when admins, not the
	// owning user, set the start and length of ranges in Single User Mode.
	SUMPolicy bool `json:"sum_policy"`
}

type rangeState struct {
	Start            uint64  `json:"start"`
	Length           uint64  `json:"length"`
	ReadLockEnabled  bool    `json:"read_lock_enabled"`
	WriteLockEnabled bool    `json:"write_lock_enabled"`
	ReadLocked       bool    `json:"read_locked"`
	WriteLocked      bool    `json:"write_locked"`
	LockOnReset      []uint8 `json:"lock_on_reset"`
	SUM              bool    `json:"sum"` // in Single User Mode, owned by User(n+1)
}

type mbrState struct {
	Enable      bool    `json:"enable"`
	Done        bool    `json:"done"`
	DoneOnReset []uint8 `json:"done_on_reset"`
}

type aceState struct {
	UID     method.UID       `json:"uid"`
	Expr    []method.ACETerm `json:"expr"`
	Columns []uint64         `json:"columns,omitempty"` // none = all columns
}

// Byte tables.
const (
	tableMBR       = 0
	tableDataStore = 1
)

type byteTableState struct {
	Key     []byte `json:"key"`
	Written []byte `json:"written"` // bitmap of chunkSize chunks
}

// pinVerifier returns what the drive stores for pin.
func (st *driveState) pinVerifier(pin []byte) []byte {
	m := hmac.New(sha256.New, st.Salt)
	m.Write(pin)
	return m.Sum(nil)
}

// pinMatches reports whether pin is the credential's PIN, in constant time.
func (st *driveState) pinMatches(c *credential, pin []byte) bool {
	return subtle.ConstantTimeCompare(st.pinVerifier(pin), c.Verifier) == 1
}

// newDriveState returns a factory-fresh drive for cfg (already defaulted)
// and its PSID.
func newDriveState(cfg Config) (*driveState, []byte) {
	st := &driveState{
		Format:  stateFormat,
		Version: stateVersion,
		Config:  cfg,
		Salt:    randomBytes(32),
	}
	st.Admin.MSID = randomCredential(32)
	psid := randomCredential(32)
	st.Admin.PSID = credential{Verifier: st.pinVerifier(psid)}
	st.factoryReset()
	return st, psid
}

// factoryReset returns the drive to its factory state (Revert on the Admin
// SP): SID = MSID, the Admin SP's Admin1 disabled, the Locking SP
// Manufactured-Inactive, fresh media keys (crypto-erase) and empty byte
// tables. The MSID, the PSID and the configuration stay.
func (st *driveState) factoryReset() {
	st.Admin.SID = credential{Verifier: st.pinVerifier(st.Admin.MSID), TryLimit: st.Config.TryLimit}
	st.Admin.Admin1 = authState{PIN: credential{Verifier: st.pinVerifier(nil), TryLimit: st.Config.TryLimit}}
	st.Admin.ProgrammaticResetEnable = false
	st.Admin.PSID.Tries = 0
	st.resetLockingSP(false, nil)
	st.newRangeKeys(false)
}

// resetLockingSP puts the Locking SP into its Manufactured-Inactive state
// (active false; RevertSP, Revert) or into the state Activate leaves it in
// (active true; Admin1's PIN then has the verifier admin1). The byte tables
// are emptied either way. Media keys are the caller's business.
func (st *driveState) resetLockingSP(active bool, admin1 []byte) {
	cfg := &st.Config
	l := &st.Locking
	l.LifeCycle = lifeManufacturedInactive
	if active {
		l.LifeCycle = lifeManufactured
	}
	empty := st.pinVerifier(nil)
	l.Admins = make([]authState, cfg.Admins)
	for i := range l.Admins {
		l.Admins[i] = authState{PIN: credential{Verifier: empty, TryLimit: cfg.TryLimit}}
	}
	if active {
		l.Admins[0] = authState{Enabled: true, PIN: credential{Verifier: admin1, TryLimit: cfg.TryLimit}}
	}
	l.Users = make([]authState, cfg.Users)
	for i := range l.Users {
		l.Users[i] = authState{PIN: credential{Verifier: empty, TryLimit: cfg.TryLimit}}
	}
	l.Ranges = make([]rangeState, cfg.Ranges+1)
	for i := range l.Ranges {
		l.Ranges[i] = rangeState{LockOnReset: []uint8{resetPowerCycle}}
	}
	l.MBR = mbrState{DoneOnReset: []uint8{resetPowerCycle}}
	l.ACEs = defaultACEs(cfg)
	l.SUMPolicy = false
	for i := range st.Tables {
		st.resetTable(i)
	}
}

// newRangeKeys replaces every range's media key (crypto-erase), except the
// global range's when keepGlobal.
func (st *driveState) newRangeKeys(keepGlobal bool) {
	n := st.Config.Ranges + 1
	if !st.Config.Profile.encrypts() {
		st.RangeKeys = [][]byte{nil}
		return
	}
	old := st.RangeKeys
	st.RangeKeys = make([][]byte, n)
	for i := range st.RangeKeys {
		if i == 0 && keepGlobal && len(old) > 0 {
			st.RangeKeys[0] = old[0]
			continue
		}
		st.RangeKeys[i] = newKeyBytes()
	}
}

// resetTable empties byte table i: a new key, no chunk written.
func (st *driveState) resetTable(i int) {
	st.Tables[i] = byteTableState{Key: newKeyBytes(), Written: make([]byte, (st.tableChunks(i)+7)/8)}
}

func newKeyBytes() []byte {
	k := media.NewKey()
	defer k.Wipe()
	return k.Bytes()
}

// active reports whether the Locking SP has been activated.
func (st *driveState) active() bool { return st.Locking.LifeCycle == lifeManufactured }

// errCorrupt marks a state file that is not a usable sedsim state.
var errCorrupt = errors.New("not a valid sedsim drive state")

// loadState reads and checks the state file of the drive in dir.
func loadState(dir string) (*driveState, []byte, error) {
	path := filepath.Join(dir, stateName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("open drive %s: no drive state (%s); create the drive first: %w", dir, stateName, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open drive %s: %w", dir, err)
	}
	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil || head.Format != stateFormat {
		return nil, nil, fmt.Errorf("open drive %s: %s is %w (a foreign or damaged file); it was left untouched", dir, path, errCorrupt)
	}
	if head.Version != stateVersion {
		return nil, nil, fmt.Errorf("open drive %s: state format version %d, this sedsim reads version %d: %w", dir, head.Version, stateVersion, errCorrupt)
	}
	st := new(driveState)
	if err := json.Unmarshal(b, st); err != nil {
		return nil, nil, fmt.Errorf("open drive %s: %s: %w: %v", dir, path, errCorrupt, err)
	}
	if err := st.check(); err != nil {
		return nil, nil, fmt.Errorf("open drive %s: %s: %w: %v", dir, path, errCorrupt, err)
	}
	return st, b, nil
}

// check verifies the invariants the rest of the package relies on, so that
// a damaged or edited state file is an error and never a panic.
func (st *driveState) check() error {
	cfg, err := st.Config.withDefaults()
	if err != nil {
		return fmt.Errorf("configuration: %v", err)
	}
	if cfg != st.Config {
		return errors.New("configuration is incomplete")
	}
	if len(st.Salt) < 16 || len(st.Admin.MSID) == 0 {
		return errors.New("missing salt or MSID")
	}
	creds := []*credential{&st.Admin.SID, &st.Admin.PSID, &st.Admin.Admin1.PIN}
	l := &st.Locking
	if l.LifeCycle != lifeManufactured && l.LifeCycle != lifeManufacturedInactive {
		return fmt.Errorf("life cycle %d of the Locking SP", l.LifeCycle)
	}
	if len(l.Admins) != cfg.Admins || len(l.Users) != cfg.Users || len(l.Ranges) != cfg.Ranges+1 {
		return errors.New("authority or range count differs from the configuration")
	}
	for i := range l.Admins {
		creds = append(creds, &l.Admins[i].PIN)
	}
	for i := range l.Users {
		creds = append(creds, &l.Users[i].PIN)
	}
	for _, c := range creds {
		if len(c.Verifier) != sha256.Size {
			return errors.New("malformed PIN verifier")
		}
	}
	for i, r := range l.Ranges {
		if r.Start > cfg.Blocks || r.Length > cfg.Blocks-r.Start {
			return fmt.Errorf("range %d beyond the capacity", i)
		}
	}
	if len(st.RangeKeys) != cfg.Ranges+1 && cfg.Profile.encrypts() || !cfg.Profile.encrypts() && len(st.RangeKeys) != 1 {
		return errors.New("wrong number of media keys")
	}
	for _, k := range st.RangeKeys {
		if cfg.Profile.encrypts() && len(k) != media.KeySize || !cfg.Profile.encrypts() && k != nil {
			return errors.New("malformed media key")
		}
	}
	for i, t := range st.Tables {
		if len(t.Key) != media.KeySize || len(t.Written) != int((st.tableChunks(i)+7)/8) {
			return errors.New("malformed byte table state")
		}
	}
	for _, a := range l.ACEs {
		if _, err := method.EvalBooleanExpr(a.Expr, func(method.UID) bool { return false }); err != nil {
			return fmt.Errorf("ACE %v: %v", a.UID, err)
		}
	}
	return nil
}

// writeState replaces the state file atomically: a temporary file is
// written and synced, renamed over the old one, and the directory synced.
func writeState(dir string, b []byte) error {
	tmp, err := os.CreateTemp(dir, stateName+".tmp*")
	if err != nil {
		return fmt.Errorf("save drive state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save drive state: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save drive state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save drive state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save drive state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateName)); err != nil {
		return fmt.Errorf("save drive state: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
