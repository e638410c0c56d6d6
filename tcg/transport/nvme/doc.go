// Package nvme is the NVMe backend of [transport.Transport]: IF-SEND and
// IF-RECV as the admin commands Security Send (0x81) and Security Receive
// (0x82), issued with the kernel's NVME_IOCTL_ADMIN_CMD passthrough
// (shared/opal/PROTOCOL.md 4.1).
//
// [Open] takes the controller character device (/dev/nvme0), a namespace
// block device (/dev/nvme0n1, or one of its partitions) or a namespace
// generic character device (/dev/ng0n1); admin commands reach the controller
// through any of them. It reads Identify Controller (CNS 01h) for the serial
// number, model, firmware and the OACS bit that says whether the controller
// implements the security commands at all.
//
// The kernel returns an NVMe completion status that is not success as a
// positive ioctl(2) result. This package turns it into a [Status] error,
// never into success (go-tcg-storage ignores the positive case).
//
// Passthrough needs CAP_SYS_ADMIN. The device is opened read-only: the
// kernel does not ask for write access for admin commands when the caller
// has CAP_SYS_ADMIN, and a read-only open never conflicts with a mounted
// file system.
//
// Everything that builds or parses bytes is pure and portable; the device
// itself is Linux-only, on 64-bit architectures.
package nvme
