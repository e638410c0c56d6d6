//go:build ppc64 || ppc64le || mips || mipsle || mips64 || mips64le

package ioctl

// _IOC encoding of arch/powerpc and arch/mips uapi asm/ioctl.h: three
// direction bits and a 13-bit size.
const (
	iocNone      = 1
	iocWrite     = 4
	iocRead      = 2
	iocSizeShift = 16
	iocDirShift  = 29
)
