//go:build !ppc64 && !ppc64le && !mips && !mipsle && !mips64 && !mips64le

package ioctl

// _IOC encoding of include/uapi/asm-generic/ioctl.h.
const (
	iocNone      = 0
	iocWrite     = 1
	iocRead      = 2
	iocSizeShift = 16
	iocDirShift  = 30
)
