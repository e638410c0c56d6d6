// Package sedioctl is the Linux kernel's own TCG Opal path: the IOC_OPAL_*
// ioctls of block/sed-opal.c on a block device (/dev/nvme0n1, /dev/sda),
// mirrored from include/uapi/linux/sed-opal.h (shared/opal/PROTOCOL.md
// section 3).
//
// The kernel runs whole Opal operations itself (it opens the session,
// authenticates, sets the columns and closes), so this path does not
// implement [transport.Transport]: there is no IF-SEND or IF-RECV to pass
// through, and only Level 0 discovery returns raw protocol bytes. [Kernel]
// exposes the operations the kernel covers, one method per ioctl. Its
// unique capability is [Kernel.Save]: the kernel replays saved unlocks on
// resume from suspend before any I/O (PROTOCOL.md 3.5).
//
// Limits of the kernel path, worth knowing before choosing it:
//   - only Opal 1 and Opal 2 drives; Pyrite, Opalite, Ruby and Enterprise
//     fail with EOPNOTSUPP ([ErrNotOpal]);
//   - keys are used as given: hash a password into a PIN first (tcg/hash)
//     exactly as the drive was set up;
//   - every ioctl needs CAP_SYS_ADMIN; the ioctls exist from kernel 4.11,
//     with later additions (GET_STATUS 6.0, DISCOVERY 6.6...), so [Open]
//     probes with IOC_OPAL_GET_STATUS and each method reports ENOTTY as
//     [ErrNoKernelSupport].
//
// A failed ioctl returns either a negative errno, which methods explain,
// or a positive TCG method status, returned as a method.MethodStatus so
// that errors.Is(err, method.StatusNotAuthorized) works. (NOT_AUTHORIZED
// is 1, like EPERM: the two never mix here, because the ioctl layer keeps
// errno and return value apart.)
//
// The structs are the C structs field by field, with padding as _ fields
// and MarshalBinary methods that write the same bytes explicitly; tests pin
// sizes, offsets and request numbers to PROTOCOL.md 3.2 and 3.3. The
// layouts hold for the 64-bit architectures and 386 (where Go and C align
// 8-byte integers alike); 32-bit arm and mips differ in opal_geometry.
package sedioctl
