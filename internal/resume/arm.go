package resume

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
)

// Verify checks a credential with a real session: StartSession to the
// Locking SP as a.Authority with a.PIN, then EndOfSession. A wrong PIN costs
// one try of the authority's TryLimit, as any authentication does; it is
// never retried.
func Verify(ctx context.Context, c *session.Client, a opal.Auth) error {
	s, err := c.StartSession(ctx, session.Params{SP: method.LockingSP, Authority: a.Authority, Challenge: a.PIN})
	if err != nil {
		if errors.Is(err, method.StatusNotAuthorized) {
			return fmt.Errorf("the drive refused the password for %s (wrong password, wrong --hash, or the authority is disabled): %w", a, err)
		}
		return err
	}
	return s.Close(ctx)
}

// LockingRanges returns the ranges whose locking is enabled (read or
// write), read as a: what "all" arms.
func LockingRanges(ctx context.Context, c *session.Client, a opal.Auth) ([]uint32, error) {
	rs, err := opal.ListRanges(ctx, c, a)
	if err != nil {
		return nil, fmt.Errorf("list ranges (give the ranges explicitly if %s may not read them): %w", a, err)
	}
	var out []uint32
	for _, r := range rs {
		if r.ReadLockEnabled || r.WriteLockEnabled {
			out = append(out, r.N)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no range has locking enabled: there is nothing to unlock on resume")
	}
	return out, nil
}

// CheckRangesExist refuses ranges the drive does not have: above
// LockingInfo's MaxRanges (Opal 2 4.3.5.1; 0 on a Pyrite drive, which has
// the global range only). LockingInfo is read by Anybody, so this costs no
// try; a drive that does not answer leaves the check to the unlock.
func CheckRangesExist(ctx context.Context, c *session.Client, ranges []uint32) error {
	r, err := opal.Get(ctx, c, method.LockingSP, opal.Auth{}, method.LockingInfo,
		method.Columns(opal.ColLockingInfoMaxRanges, opal.ColLockingInfoMaxRanges))
	if err != nil {
		return nil
	}
	v, ok := r.Column(opal.ColLockingInfoMaxRanges)
	if !ok {
		return nil
	}
	maxRanges, err := v.AsUint()
	if err != nil {
		return nil
	}
	for _, n := range ranges {
		if uint64(n) > maxRanges {
			return fmt.Errorf("range %d does not exist: the drive has ranges 0..%d (0 is the global range)", n, maxRanges)
		}
	}
	return nil
}

// loadKey reads an entry's stored key: key file or credential. Prompt mode
// has none.
func loadKey(e ConfigEntry, owner uint32, credDir string) (hash.PIN, error) {
	switch e.Storage {
	case StorageFile:
		return ReadKeyFile(e.KeyFile, owner)
	case StorageCredential:
		return ReadCredentialKey(credDir, e.Credential)
	}
	return nil, fmt.Errorf("its key is entered at each boot (prompt mode), so it cannot be re-armed without you: run 'sedctl resume enable %s'", e.Device)
}

// rearm arms the daemon-path entries of the configuration from their key
// files or credentials, each verified with a session first. What cannot be
// armed is logged and shown by status.
func (d *Daemon) rearm(ctx context.Context) {
	if d.opts.Config == "-" {
		return
	}
	cfg, err := LoadConfig(d.opts.Config, d.opts.KeyFileOwner)
	if err != nil {
		d.log.Error("cannot re-arm from the configuration", "err", err)
		return
	}
	for _, e := range cfg.Entries {
		if e.Path != PathDaemon {
			continue
		}
		a, _ := parseAuthority(e.Authority) // validated by LoadConfig
		unarmed := func(err error) {
			d.log.Error("cannot re-arm", "device", e.Device, "authority", authName(a), "err", err)
			d.mu.Lock()
			d.unarmed = append(d.unarmed, UnarmedEntry{Device: e.Device, Authority: authName(a), Reason: err.Error()})
			d.mu.Unlock()
		}
		pin, err := loadKey(e, d.opts.KeyFileOwner, d.opts.CredentialsDir)
		if err != nil {
			unarmed(err)
			continue
		}
		src := e.Storage + ":" + e.KeyFile + e.Credential
		err = d.Register(ctx, e.Device, a, e.Ranges, e.All, pin, src, true)
		pin.Wipe()
		if err != nil {
			unarmed(err)
		}
	}
}

// listenPrivate listens on a Unix socket and makes it mode 0600. The peer
// check on every connection holds even in the moment before the chmod.
func listenPrivate(path string) (net.Listener, error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
