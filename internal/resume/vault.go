package resume

import (
	"errors"
	"fmt"
	"sync"
)

// slotSize is the room one key gets in a Vault: OPAL_KEY_MAX bytes, the
// longest PIN the kernel takes and more than any drive's MaxPINLength.
const slotSize = 256

// vaultSlots is how many keys a Vault holds: 16 pages' worth.
const vaultSlots = 256

// ErrVaultFull: every slot of the Vault holds a key.
var ErrVaultFull = errors.New("no room for another key (256 are held)")

// A Vault keeps derived PINs in memory the rest of the process cannot page
// out or dump: memfd_secret(2) memory where the kernel offers it (the pages
// leave the kernel's direct map, so not even the kernel reads them by
// accident), otherwise an anonymous mapping that is mlocked, excluded from
// core dumps (MADV_DONTDUMP) and wiped in a forked child (MADV_WIPEONFORK).
// Slots are zeroised when freed and when the Vault is closed.
type Vault struct {
	mu      sync.Mutex
	mem     []byte // slotSize * vaultSlots bytes, outside the Go heap
	lens    [vaultSlots]int
	used    [vaultSlots]bool
	backend string
	release func() error
}

// Slot names a key in a Vault.
type Slot int

// NewVault maps the Vault's memory.
func NewVault() (*Vault, error) {
	mem, backend, release, err := mapSecret(slotSize * vaultSlots)
	if err != nil {
		return nil, fmt.Errorf("key memory: %w", err)
	}
	return &Vault{mem: mem, backend: backend, release: release}, nil
}

// Backend names the kind of memory: "memfd_secret", "mlock" or "heap" (only
// where neither is available).
func (v *Vault) Backend() string { return v.backend }

// Put copies key into a free slot. The caller wipes its own copy.
func (v *Vault) Put(key []byte) (Slot, error) {
	if len(key) > slotSize {
		return -1, fmt.Errorf("key of %d bytes: at most %d", len(key), slotSize)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem == nil {
		return -1, errors.New("key memory is closed")
	}
	for i := range v.used {
		if !v.used[i] {
			v.used[i] = true
			v.lens[i] = copy(v.mem[i*slotSize:(i+1)*slotSize], key)
			return Slot(i), nil
		}
	}
	return -1, ErrVaultFull
}

// Key returns the key in slot s: the Vault's own memory, not a copy. It
// stays valid until the slot is freed; callers serialise that themselves.
func (v *Vault) Key(s Slot) []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem == nil || s < 0 || int(s) >= vaultSlots || !v.used[s] {
		return nil
	}
	i := int(s)
	return v.mem[i*slotSize : i*slotSize+v.lens[i] : i*slotSize+v.lens[i]]
}

// Free zeroises slot s and makes it available.
func (v *Vault) Free(s Slot) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem == nil || s < 0 || int(s) >= vaultSlots {
		return
	}
	i := int(s)
	clear(v.mem[i*slotSize : (i+1)*slotSize])
	v.used[i], v.lens[i] = false, 0
}

// InUse counts the keys held.
func (v *Vault) InUse() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, u := range v.used {
		if u {
			n++
		}
	}
	return n
}

// Close zeroises every slot and unmaps the memory.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mem == nil {
		return nil
	}
	clear(v.mem)
	v.used, v.lens = [vaultSlots]bool{}, [vaultSlots]int{}
	v.mem = nil
	if v.release != nil {
		return v.release()
	}
	return nil
}

// HardenReport says what Harden achieved.
type HardenReport struct {
	// LockedAll: mlockall(MCL_CURRENT|MCL_FUTURE) worked, so nothing of
	// the process (Go heap copies of PINs on their way to the drive
	// included) can be swapped out.
	LockedAll bool
	// LockErr is why mlockall failed (often RLIMIT_MEMLOCK for non-root).
	LockErr error
}
