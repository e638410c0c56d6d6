package image

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openNoatime opens path read-only without updating its access time, so
// neither attaching nor verifying an image changes any of its timestamps.
// O_NOATIME needs ownership or CAP_FOWNER; without them the open goes ahead
// without it (atime then follows the mount's atime policy).
func openNoatime(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EPERM) {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	return f, err
}
