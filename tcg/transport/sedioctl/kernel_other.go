//go:build !linux

package sedioctl

import (
	"errors"
	"fmt"
	"unsafe"
)

// Kernel is the sed-opal ioctl path, which exists on Linux only.
type Kernel struct{}

// Open fails: the sed-opal ioctls exist on Linux only.
func Open(path string) (*Kernel, error) {
	return nil, fmt.Errorf("sed-opal %s: %w", path, errors.ErrUnsupported)
}

// NewWithIoctl fails: the sed-opal ioctls exist on Linux only.
func NewWithIoctl(path string, fn func(fd uintptr, req uint32, arg unsafe.Pointer) (int, error)) (*Kernel, error) {
	return nil, fmt.Errorf("sed-opal %s: %w", path, errors.ErrUnsupported)
}
