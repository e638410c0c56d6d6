package ioctl

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Syscall is the real ioctl(2). EINTR is not retried: the command may have
// reached the device already, and a security command must never be sent
// twice (the drivers wait for completion uninterruptibly, so EINTR is not
// expected in practice).
func Syscall(fd uintptr, req uint32, arg unsafe.Pointer) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
