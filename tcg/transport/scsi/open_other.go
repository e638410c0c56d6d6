//go:build !linux

package scsi

import (
	"errors"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Open fails: SG_IO is implemented for Linux only.
func Open(path string) (transport.Transport, error) {
	return nil, fmt.Errorf("scsi %s: %w", path, errors.ErrUnsupported)
}
