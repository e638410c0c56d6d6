// Package image attaches filesystem images (squashfs, erofs, ext4) read-only,
// for use as overlay lower layers, and verifies their checksums.
//
// The image file is only ever opened O_RDONLY|O_NOATIME, the loop device is
// bound read-only, and the filesystem is mounted read-only as a detached
// mount (no mountpoint), so neither its data nor its timestamps change.
package image

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Filesystem types, as the kernel names them for fsopen(2).
const (
	Squashfs = "squashfs"
	EROFS    = "erofs"
	Ext4     = "ext4" // also ext2 and ext3: the ext4 driver mounts all three
)

// ErrUnknownType is returned for data that carries none of the superblock
// magics we accept.
var ErrUnknownType = errors.New("not a squashfs, erofs or ext4 image")

// HeaderSize is how many bytes from the start of an image ParseHeader wants
// to see; fewer is fine for a short file, and is reported as truncation if a
// magic is found but its superblock does not fit.
const HeaderSize = 4096

// Header is what the superblock says about an image.
type Header struct {
	Type string // Squashfs, EROFS or Ext4
	// Size is the number of bytes the filesystem says it spans (a lower
	// bound for erofs). A file shorter than this is truncated.
	Size uint64
}

// Superblock layouts. Offsets are from the start of the image.
const (
	// squashfs 4.0: fs/squashfs/squashfs_fs.h struct squashfs_super_block,
	// little endian, at offset 0.
	sqMagic        = 0x73717368 // "hsqs"
	sqOffMajor     = 28         // __le16 s_major
	sqOffMinor     = 30         // __le16 s_minor
	sqOffBytesUsed = 40         // __le64 bytes_used
	sqSuperSize    = 96

	// erofs: fs/erofs/erofs_fs.h struct erofs_super_block,
	// little endian, at EROFS_SUPER_OFFSET 1024.
	erofsSuperOff    = 1024
	erofsMagic       = 0xE0F5E1E2
	erofsOffBlkbits  = 12 // __u8 blkszbits
	erofsOffBlocksLo = 36 // __le32 blocks (blocks_lo with 48BIT)
	erofsSuperSize   = 128

	// ext2/3/4: fs/ext4/ext4.h struct ext4_super_block, little endian, at
	// offset 1024.
	extSuperOff        = 1024
	extMagic           = 0xEF53
	extOffBlocksLo     = 0x04  // __le32 s_blocks_count_lo
	extOffLogBlockSize = 0x18  // __le32 s_log_block_size
	extOffMagic        = 0x38  // __le16 s_magic
	extOffIncompat     = 0x60  // __le32 s_feature_incompat
	extOffBlocksHi     = 0x150 // __le32 s_blocks_count_hi
	extSuperSize       = 0x154 // through s_blocks_count_hi
	extIncompat64bit   = 0x80  // EXT4_FEATURE_INCOMPAT_64BIT
)

// DetectType names the filesystem whose superblock starts b (the first
// HeaderSize bytes of an image, or all of a shorter file).
func DetectType(b []byte) (string, error) {
	h, err := ParseHeader(b)
	return h.Type, err
}

// ParseHeader reads the superblock at the start of b. It checks every length
// before reading and never panics; errors name the offset that was missing.
func ParseHeader(b []byte) (Header, error) {
	le := binary.LittleEndian
	switch {
	case len(b) >= 4 && le.Uint32(b) == sqMagic:
		if len(b) < sqSuperSize {
			return Header{}, truncErr(Squashfs, 0, sqSuperSize, len(b))
		}
		major, minor := le.Uint16(b[sqOffMajor:]), le.Uint16(b[sqOffMinor:])
		if major != 4 {
			return Header{}, fmt.Errorf("squashfs version %d.%d is not supported; the kernel reads only 4.0 (rebuild it with mksquashfs)", major, minor)
		}
		return Header{Type: Squashfs, Size: le.Uint64(b[sqOffBytesUsed:])}, nil

	case len(b) >= erofsSuperOff+4 && le.Uint32(b[erofsSuperOff:]) == erofsMagic:
		if len(b) < erofsSuperOff+erofsSuperSize {
			return Header{}, truncErr(EROFS, erofsSuperOff, erofsSuperSize, len(b))
		}
		sb := b[erofsSuperOff:]
		bits := uint(sb[erofsOffBlkbits])
		if bits < 9 || bits > 16 {
			return Header{}, fmt.Errorf("erofs superblock at offset %d: block size 2^%d is out of range", erofsSuperOff+erofsOffBlkbits, bits)
		}
		return Header{Type: EROFS, Size: uint64(le.Uint32(sb[erofsOffBlocksLo:])) << bits}, nil

	case len(b) >= extSuperOff+extOffMagic+2 && le.Uint16(b[extSuperOff+extOffMagic:]) == extMagic:
		if len(b) < extSuperOff+extSuperSize {
			return Header{}, truncErr(Ext4, extSuperOff, extSuperSize, len(b))
		}
		sb := b[extSuperOff:]
		logbs := le.Uint32(sb[extOffLogBlockSize:])
		if logbs > 6 { // 1 KiB << 6 = 64 KiB, the largest ext4 block
			return Header{}, fmt.Errorf("ext4 superblock at offset %d: block size 1024<<%d is out of range", extSuperOff+extOffLogBlockSize, logbs)
		}
		blocks := uint64(le.Uint32(sb[extOffBlocksLo:]))
		if le.Uint32(sb[extOffIncompat:])&extIncompat64bit != 0 {
			blocks |= uint64(le.Uint32(sb[extOffBlocksHi:])) << 32
		}
		shift := 10 + uint(logbs)
		if blocks > (^uint64(0))>>shift {
			return Header{}, fmt.Errorf("ext4 superblock at offset %d: block count %d overflows", extSuperOff+extOffBlocksLo, blocks)
		}
		return Header{Type: Ext4, Size: blocks << shift}, nil
	}
	return Header{}, ErrUnknownType
}

func truncErr(fstype string, off, need, have int) error {
	return fmt.Errorf("%s superblock truncated: needs bytes %d..%d, have %d", fstype, off, off+need, have)
}
