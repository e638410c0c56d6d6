package image

// Options tune Attach. The zero value is what a lower layer wants.
type Options struct {
	// Type, if set, is the filesystem the image must hold (Squashfs, EROFS
	// or Ext4); Attach refuses an image of another type. Empty accepts any
	// of the three, detected from the superblock.
	Type string
	// BlockSize is the logical block size of the loop device: 512, 1024,
	// 2048 or 4096; 0 is the kernel's default (512).
	BlockSize uint32
	// DirectIO makes the loop device read the image with O_DIRECT, so its
	// data is not cached twice (once for the image file, once for the
	// filesystem). The kernel quietly falls back to buffered reads where
	// the image's filesystem cannot do direct I/O.
	DirectIO bool
}
