//go:build !linux

package ioctl

import (
	"errors"
	"unsafe"
)

// Syscall fails: the device transports exist on Linux only.
func Syscall(fd uintptr, req uint32, arg unsafe.Pointer) (int, error) {
	return 0, errors.ErrUnsupported
}
