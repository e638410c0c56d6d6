//go:build !linux

package nvme

import (
	"errors"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Open fails: NVMe passthrough is implemented for Linux only.
func Open(path string) (transport.Transport, error) {
	return nil, fmt.Errorf("nvme %s: %w", path, errors.ErrUnsupported)
}
