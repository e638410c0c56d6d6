// Package ioctl is the ioctl(2) layer the Linux device transports share:
// request numbers encoded as the kernel's _IOC macros do, for the generic
// encoding and the powerpc/mips one, a Func type so that tests replace the
// system call with a fake that inspects the exact bytes, and the bookkeeping
// for user buffers whose addresses travel inside kernel structs.
package ioctl

import (
	"runtime"
	"unsafe"
)

// Func issues ioctl(fd, req, arg). It returns the call's non-negative
// result (NVMe and sed-opal ioctls report device status or a length there)
// or the errno as a syscall.Errno.
//
// Implementations other than [Syscall] are fakes for tests: they read and
// write the kernel struct at arg as the driver would.
type Func func(fd uintptr, req uint32, arg unsafe.Pointer) (int, error)

// Request number directions, as the _IO, _IOW, _IOR and _IOWR macros use
// them (include/uapi/asm-generic/ioctl.h; arch/powerpc and arch/mips
// uapi/asm/ioctl.h use other bit values, selected by build tag).
const (
	DirNone  = iocNone
	DirWrite = iocWrite
	DirRead  = iocRead
)

// IOC encodes an ioctl request number as the kernel's _IOC(dir, typ, nr,
// size) macro does.
func IOC(dir, typ, nr, size uint32) uint32 {
	return dir<<iocDirShift | size<<iocSizeShift | typ<<8 | nr
}

// IO is _IO(typ, nr).
func IO(typ, nr uint32) uint32 { return IOC(DirNone, typ, nr, 0) }

// IOW is _IOW(typ, nr, type) with size = sizeof(type).
func IOW(typ, nr, size uint32) uint32 { return IOC(DirWrite, typ, nr, size) }

// IOR is _IOR(typ, nr, type) with size = sizeof(type).
func IOR(typ, nr, size uint32) uint32 { return IOC(DirRead, typ, nr, size) }

// IOWR is _IOWR(typ, nr, type) with size = sizeof(type).
func IOWR(typ, nr, size uint32) uint32 { return IOC(DirRead|DirWrite, typ, nr, size) }

// Addr returns the address of b's first byte for a kernel struct field of
// type __u64 (nvme_passthru_cmd.addr, opal_discovery.data), and pins b's
// memory with p so that it neither moves nor is freed until p.Unpin. It
// returns 0 for an empty b.
func Addr(p *runtime.Pinner, b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	p.Pin(&b[0])
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

// Bytes returns the n bytes at addr, an address that [Addr] produced. It is
// for fakes standing in for the kernel in tests, which must reach the user
// buffers a struct names; addr must point into a live, pinned Go buffer of
// at least n bytes.
func Bytes(addr uint64, n int) []byte {
	if addr == 0 || n <= 0 {
		return nil
	}
	// Reinterpret the integer's memory as a pointer (64-bit hosts); the
	// buffer is pinned and alive for the duration of the call.
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	return unsafe.Slice((*byte)(p), n)
}
