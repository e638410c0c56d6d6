package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive flock(2) on dir/lock, so that two Drives (in
// one process or two) never share a directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open drive %s: %w", dir, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("open drive %s: %w", dir, ErrInUse)
		}
		return nil, fmt.Errorf("open drive %s: lock: %w", dir, os.NewSyscallError("flock", err))
	}
	return f, nil
}

// unlockDir releases the lock (closing the file drops the flock).
func unlockDir(f *os.File) {
	if f != nil {
		f.Close()
	}
}
