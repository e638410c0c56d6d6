package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shiftlock/shiftlock/sim/media"
	simwire "github.com/shiftlock/shiftlock/sim/wire"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// ErrClosed is returned by every method of a closed Drive.
var ErrClosed = errors.New("sedsim drive is closed")

// ErrExists is returned by Create for a directory that already holds a
// drive.
var ErrExists = errors.New("directory already holds a sedsim drive")

// ErrInUse is returned by Create and Open when another Drive (in this or
// another process) has the directory open.
var ErrInUse = errors.New("sedsim drive is in use by another process")

// Drive is a software TPer with its media. It is safe for concurrent use:
// several opalwire connections may share it. One mutex guards the TPer
// state; media I/O runs outside it.
type Drive struct {
	dir  string
	lock *os.File // flock(2)ed while open

	mu     sync.Mutex
	log    *slog.Logger
	now    func() time.Time
	closed bool
	st     *driveState
	saved  []byte // the state file's content: st as last committed
	dirty  bool   // st differs from saved

	// Quirks of this power-on (Config.NotReadyPolls, ShortProperties).
	notReadyPolls   int
	shortProperties bool

	adminACEs []aceState

	// Volatile TPer state, lost at a power cycle.
	sessions   map[uint32]*session // by TSN
	nextTSN    uint32
	com        comState
	sidBlocked bool // Block SID until the next power cycle
	sidBlockHW bool // ... or hardware reset

	// ioMu is held shared by media I/O and exclusively to swap keys or
	// erase the media, so that I/O never runs with a key being replaced.
	// Lock order: mu, then ioMu.
	ioMu       sync.RWMutex
	media      *media.Media
	keys       []*media.Key // per range; nil entries for Pyrite
	tableMedia *media.Media // nil if the drive has no byte tables
	tableKeys  [2]*media.Key
}

// Compile-time check: a Drive is what sim/wire serves.
var _ simwire.Device = (*Drive)(nil)

// Create makes a new drive in dir (created if missing, mode 0700): a state
// file and a sparse media file of cfg.Blocks blocks. It returns the drive,
// open and powered on, and its PSID, the credential printed on a real
// drive's label that can always revert it to the factory state. Create
// fails if dir already holds a drive.
func Create(dir string, cfg Config) (d *Drive, psid string, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, "", fmt.Errorf("create drive %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create drive: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			unlockDir(lock)
		}
	}()
	for _, name := range []string{stateName, mediaName, tablesName} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return nil, "", fmt.Errorf("create drive %s: %s exists: %w", dir, name, ErrExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("create drive: %w", err)
		}
	}
	st, psidBytes := newDriveState(cfg)
	psid = string(psidBytes)
	b, err := json.Marshal(st)
	if err != nil {
		return nil, "", fmt.Errorf("create drive %s: %w", dir, err)
	}
	d = newDrive(dir, lock, st, b)
	if err := d.openMedia(true); err != nil {
		return nil, "", err
	}
	// The state file goes last: a directory with a state file holds a
	// complete drive.
	if err := writeState(dir, b); err != nil {
		d.closeMedia()
		os.Remove(filepath.Join(dir, mediaName))
		os.Remove(filepath.Join(dir, tablesName))
		return nil, "", fmt.Errorf("create drive %s: %w", dir, err)
	}
	return d, psid, nil
}

// Open powers on the drive in dir, as after a power cycle: locking ranges
// with LockOnReset lock, MBR shadowing with DoneOnReset shows again, Tries
// counters reset. It never resets the drive to its factory state; a missing,
// foreign or damaged state file is an error and is left as it is.
func Open(dir string) (*Drive, error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	st, b, err := loadState(dir)
	if err != nil {
		unlockDir(lock)
		return nil, err
	}
	d := newDrive(dir, lock, st, b)
	if err := d.openMedia(false); err != nil {
		unlockDir(lock)
		return nil, err
	}
	d.mu.Lock()
	d.reset(resetPowerCycle)
	err = d.commit() // so that Inspect shows the drive as it powered on
	d.mu.Unlock()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open drive %s: saving the power-on state: %w", dir, err)
	}
	return d, nil
}

func newDrive(dir string, lock *os.File, st *driveState, saved []byte) *Drive {
	return &Drive{
		dir:       dir,
		lock:      lock,
		log:       slog.New(slog.DiscardHandler),
		now:       time.Now,
		st:        st,
		saved:     saved,
		adminACEs: adminSPACEs(),
		sessions:  map[uint32]*session{},
		nextTSN:   0x1000 + uint32(randomBytes(1)[0]),

		notReadyPolls:   st.Config.NotReadyPolls,
		shortProperties: st.Config.ShortProperties,
	}
}

// SetLogger makes the drive log to l: session starts and ends, refused
// requests, resets. Credentials are never logged.
func (d *Drive) SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	d.mu.Lock()
	d.log = l
	d.mu.Unlock()
}

// SetQuirks changes the "difficult drive" behaviour of Config
// (NotReadyPolls, ShortProperties) until the drive is closed; the values
// stored with the drive stay as they are.
func (d *Drive) SetQuirks(notReadyPolls int, shortProperties bool) {
	d.mu.Lock()
	d.notReadyPolls = max(notReadyPolls, 0)
	d.shortProperties = shortProperties
	d.mu.Unlock()
}

// Config returns the drive's configuration, with the quirks in effect.
func (d *Drive) Config() Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.st.Config
	c.NotReadyPolls, c.ShortProperties = d.notReadyPolls, d.shortProperties
	return c
}

// Dir returns the drive's directory.
func (d *Drive) Dir() string { return d.dir }

// MSID returns the drive's MSID, the factory credential anybody may read
// (C_PIN_MSID.PIN).
func (d *Drive) MSID() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.st.Admin.MSID...)
}

// Close saves anything not yet saved and closes the drive's files. The
// drive is powered off: sessions are lost.
func (d *Drive) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	err := d.commit()
	d.closed = true
	d.sessions = nil
	d.ioMu.Lock()
	if cerr := d.closeMedia(); err == nil {
		err = cerr
	}
	d.ioMu.Unlock()
	unlockDir(d.lock)
	return err
}

// PowerCycle removes and restores the drive's power: sessions and queued
// responses are dropped, ranges whose LockOnReset lists PowerCycle lock,
// MBRControl.Done clears where DoneOnReset lists it, Tries counters reset
// (unless Persistence), Block SID clears.
func (d *Drive) PowerCycle() {
	if err := d.Reset(); err != nil {
		d.mu.Lock()
		d.log.Error("power cycle: saving the drive state failed", "err", err)
		d.mu.Unlock()
	}
}

// Reset is PowerCycle for sim/wire (the opalwire RESET op). It fails only
// if the new state cannot be saved.
func (d *Drive) Reset() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.reset(resetPowerCycle)
	return d.commit()
}

// reset applies a reset of the given type (PROTOCOL.md 1.12).
func (d *Drive) reset(kind uint8) {
	d.sessions = map[uint32]*session{}
	d.com = comState{}
	if kind == resetPowerCycle || kind == resetHardware {
		if kind == resetPowerCycle || d.sidBlockHW {
			d.sidBlocked, d.sidBlockHW = false, false
		}
		for _, c := range d.credentials() {
			if !c.Persistence && c.Tries != 0 {
				c.Tries = 0
				d.dirty = true
			}
		}
	}
	if !d.st.active() {
		return
	}
	l := &d.st.Locking
	for i := range l.Ranges {
		r := &l.Ranges[i]
		if containsReset(r.LockOnReset, kind) && (!r.ReadLocked || !r.WriteLocked) {
			r.ReadLocked, r.WriteLocked = true, true
			d.dirty = true
		}
	}
	if d.st.Config.Profile.hasMBR() && containsReset(l.MBR.DoneOnReset, kind) && l.MBR.Done {
		l.MBR.Done = false
		d.dirty = true
	}
	d.log.Info("drive reset", "type", resetName(kind))
}

func containsReset(l []uint8, kind uint8) bool {
	for _, k := range l {
		if k == kind {
			return true
		}
	}
	return false
}

func resetName(kind uint8) string {
	switch kind {
	case resetPowerCycle:
		return "power cycle"
	case resetHardware:
		return "hardware"
	case resetHotPlug:
		return "hot plug"
	case resetProgrammatic:
		return "programmatic"
	}
	return fmt.Sprint(kind)
}

// credentials returns every C_PIN row with a TryLimit.
func (d *Drive) credentials() []*credential {
	st := d.st
	cs := []*credential{&st.Admin.SID, &st.Admin.PSID, &st.Admin.Admin1.PIN}
	for i := range st.Locking.Admins {
		cs = append(cs, &st.Locking.Admins[i].PIN)
	}
	for i := range st.Locking.Users {
		cs = append(cs, &st.Locking.Users[i].PIN)
	}
	return cs
}

// commit saves the state if it changed. On failure the in-memory state
// goes back to the last saved one, so that nothing the host was told failed
// survives, and the error is returned.
func (d *Drive) commit() error {
	if !d.dirty {
		return nil
	}
	b, err := json.Marshal(d.st)
	if err == nil && bytes.Equal(b, d.saved) {
		d.dirty = false
		return nil // a Set of the values already there
	}
	if err == nil {
		err = writeState(d.dir, b)
	}
	if err != nil {
		d.rollback()
		return err
	}
	d.saved = b
	d.dirty = false
	return nil
}

// rollback restores the last saved state.
func (d *Drive) rollback() {
	st := new(driveState)
	if err := json.Unmarshal(d.saved, st); err != nil {
		// The saved bytes were produced by json.Marshal of a valid state.
		panic(fmt.Sprintf("sedsim: saved state does not decode: %v", err))
	}
	d.st = st
	d.dirty = false
	if err := d.loadKeys(); err != nil {
		d.log.Error("reloading media keys after a failed save", "err", err)
	}
}

// Info returns the drive's identity as IDENTIFY reports it.
func (d *Drive) Info() transport.Identity {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := &d.st.Config
	return transport.Identity{
		Serial:    cfg.serial20(),
		Model:     cfg.Model,
		Firmware:  cfg.Firmware,
		Kind:      transport.KindSim,
		BlockSize: cfg.BlockSize,
		Blocks:    cfg.Blocks,
	}
}
