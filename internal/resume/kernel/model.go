package kernel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
)

// kernelHSN is the host session number the kernel uses (PROTOCOL.md 3.1).
const kernelHSN = 105

// Model behaves as block/sed-opal.c does for one device, as far as unlock on
// resume goes: a SAVE list with the kernel's replace-on-same-range semantics
// (add_suspend_info), IOC_OPAL_LOCK_UNLOCK, and opal_unlock_from_suspend.
// The drive is reached through tcg/opal on a session.Client set up the
// kernel's way: no Properties exchange (Core minimums), HSN 105.
//
// It is safe for concurrent use; like the kernel's dev->dev_lock, one mutex
// serialises every operation.
type Model struct {
	mu      sync.Mutex
	c       *session.Client
	list    []LockUnlock // in insertion order, as the kernel's unlk_lst
	flags   uint32       // from the last discovery, as dev->flags
	replays int
}

// NewModel returns a model of the kernel's opal_dev for the drive behind t.
func NewModel(t session.Transport) *Model {
	return &Model{c: session.NewClient(t, &session.Options{NoProperties: true, HostSessionID: kernelHSN})}
}

// statusFlags computes opal_status flags from Level 0, as the kernel's
// opal_get_status does from dev->flags.
func statusFlags(d *discovery.Discovery) uint32 {
	var f uint32
	if d.OpalV1 == nil && d.OpalV2 == nil {
		return 0
	}
	f |= FlagSupported
	if d.LockingSupported() {
		f |= FlagLockingSupported
	}
	if d.LockingEnabled() {
		f |= FlagLockingEnabled
	}
	if d.Locked() {
		f |= FlagLocked
	}
	if d.MBREnabled() {
		f |= FlagMBREnabled
	}
	if d.MBRDone() {
		f |= FlagMBRDone
	}
	if d.SingleUserMode != nil {
		f |= FlagSUMSupported
	}
	return f
}

// discover re-runs Level 0, as the kernel does in opal_unlock_from_suspend
// and at init. Pyrite, Ruby and Enterprise drives are not supported.
func (m *Model) discover(ctx context.Context) error {
	d, err := m.c.Discover(ctx)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	m.flags = statusFlags(d)
	if m.flags&FlagSupported == 0 {
		return fmt.Errorf("%v drive: %w", d.SSC(), ErrUnsupported)
	}
	return nil
}

// Probe is IOC_OPAL_GET_STATUS after the kernel's discovery.
func (m *Model) Probe(ctx context.Context) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.discover(ctx); err != nil {
		return Status{}, err
	}
	return Status{Flags: m.flags}, nil
}

// Save is IOC_OPAL_SAVE: no drive I/O; the entry for the same range is
// replaced, otherwise lu is appended (add_suspend_info).
func (m *Model) Save(ctx context.Context, lu LockUnlock) error {
	if err := lu.Validate(); err != nil {
		return fmt.Errorf("IOC_OPAL_SAVE: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	lu.Key = hash.PIN(slices.Clone([]byte(lu.Key)))
	for i := range m.list {
		if m.list[i].LR == lu.LR {
			m.list[i].Key.Wipe()
			m.list[i] = lu
			return nil
		}
	}
	m.list = append(m.list, lu)
	return nil
}

// Saved returns a copy of the SAVE list, keys included (for tests).
func (m *Model) Saved() []LockUnlock {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]LockUnlock, len(m.list))
	for i, lu := range m.list {
		lu.Key = hash.PIN(slices.Clone([]byte(lu.Key)))
		out[i] = lu
	}
	return out
}

// Replays counts opal_unlock_from_suspend calls.
func (m *Model) Replays() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.replays
}

// Client returns the model's session client, the kernel's view of the
// drive (for tests that count its exchanges).
func (m *Model) Client() *session.Client { return m.c }

func toOpal(l LockState) (opal.LockState, error) {
	switch l {
	case RW:
		return opal.ReadWrite, nil
	case RO:
		return opal.ReadOnly, nil
	case LK:
		return opal.Locked, nil
	}
	return 0, fmt.Errorf("lock state %d", uint32(l))
}

// lockUnlock is the kernel's lock_unlock_locking_range sequence: a session as
// Admin1/who to the Locking SP, Set ReadLocked/WriteLocked of range lr.
func (m *Model) lockUnlock(ctx context.Context, lu LockUnlock) error {
	st, err := toOpal(lu.State)
	if err != nil {
		return err
	}
	a := opal.Auth{Authority: lu.Authority(), PIN: lu.Key}
	return opal.SetLockState(ctx, m.c, a, uint32(lu.LR), st)
}

// LockUnlock is IOC_OPAL_LOCK_UNLOCK. With flags & SaveForLock, state LK
// and an empty key, the key saved for the range is used.
func (m *Model) LockUnlock(ctx context.Context, lu LockUnlock) error {
	if err := lu.Validate(); err != nil {
		return fmt.Errorf("IOC_OPAL_LOCK_UNLOCK: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if lu.Flags&SaveForLock != 0 && lu.State == LK && len(lu.Key) == 0 {
		found := false
		for _, s := range m.list {
			if s.LR == lu.LR && s.Flags&SaveForLock != 0 {
				lu.Key, found = s.Key, true
			}
		}
		if !found {
			return fmt.Errorf("IOC_OPAL_LOCK_UNLOCK: no key saved for range %d", lu.LR)
		}
	}
	return m.lockUnlock(ctx, lu)
}

// UnlockFromSuspend is opal_unlock_from_suspend: Level 0 again, then for
// each saved entry the lock/unlock sequence with its key, authority and
// state, and, when Level 0 says the shadow MBR is enabled, an Admin1
// session with the same key that sets MBRControl Done = True (PROTOCOL.md
// 3.5). Like the kernel it carries on past failures and reports whether an
// unlock failed (a failed MBR Done is not counted); errs says what failed
// (the kernel only pr_debugs it).
func (m *Model) UnlockFromSuspend(ctx context.Context) (failed bool, errs []error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replays++
	if err := m.discover(ctx); err != nil {
		if errors.Is(err, ErrUnsupported) {
			return false, nil // returns at once unless Opal-supported
		}
		return true, []error{err}
	}
	done := true
	for _, lu := range m.list {
		if err := m.lockUnlock(ctx, lu); err != nil {
			errs = append(errs, fmt.Errorf("range %d as %v: %w", lu.LR, opal.Auth{Authority: lu.Authority()}, err))
			failed = true
		}
		// The kernel tries MBR Done after every entry, whether or not
		// the unlock worked, and does not count its failure.
		if m.flags&FlagMBREnabled != 0 {
			a := opal.Auth{Authority: method.Admin(1), PIN: lu.Key}
			if err := opal.SetMBRControl(ctx, m.c, a, opal.MBRSettings{Done: &done}); err != nil {
				errs = append(errs, fmt.Errorf("MBR done with the key of range %d: %w", lu.LR, err))
			}
		}
	}
	return failed, errs
}

// Revert is what a successful IOC_OPAL_REVERT_TPR does to the list: clears
// it (the only way the kernel ever deletes entries).
func (m *Model) Revert() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.list {
		m.list[i].Key.Wipe()
	}
	m.list = nil
}

var _ Opal = (*Model)(nil)
