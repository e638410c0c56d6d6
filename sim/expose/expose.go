// Package expose shows a drive's media as one regular file, "disk", on a
// small FUSE mount, so that losetup(8) turns a software drive into a real
// block device that takes mkfs and mount.
//
// Reads and writes of the file become block reads and writes on the
// [Device]: byte ranges that do not start or end on a block boundary are
// read, patched and written back. Every open of the file is direct I/O
// (FOPEN_DIRECT_IO), so the kernel's page cache never answers a read the
// drive would refuse. A transfer the drive refuses, such as one that touches
// a locked range, fails with EIO: what a locked drive gives the block layer.
// While the drive shows its shadow MBR, LBA 0 onwards read as the MBR table
// and refuse writes; the drive decides that, not this package.
package expose

import (
	"errors"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// FileName is the name of the file that shows the media.
const FileName = "disk"

// Device is the drive behind the file. Its methods are called from many
// goroutines at once. Its geometry (Info's BlockSize and Blocks) must not
// change while it is exposed.
type Device interface {
	// Info returns the drive's identity; expose uses its geometry.
	Info() transport.Identity
	// Read fills dst, a whole number of blocks, from lba.
	Read(lba uint64, dst []byte) error
	// Write stores data, a whole number of blocks, from lba.
	Write(lba uint64, data []byte) error
}

// Syncer is a Device that can flush written blocks to stable storage. An
// fsync of the file calls Sync when the Device has it; without it, fsync
// succeeds once the Device's Write has returned.
type Syncer interface {
	Sync() error
}

// ErrNotSupported is returned by Mount where FUSE exposure is not built.
var ErrNotSupported = errors.New("exposing a drive as a file needs Linux FUSE")
