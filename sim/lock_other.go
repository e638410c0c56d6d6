//go:build !linux

package sim

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens dir/lock. Without flock(2) nothing stops a second Drive on
// the same directory; don't do that.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open drive %s: %w", dir, err)
	}
	return f, nil
}

func unlockDir(f *os.File) {
	if f != nil {
		f.Close()
	}
}
