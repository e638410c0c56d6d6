// Package overlay implements the on-disk logic of an overlay filesystem on
// directory file descriptors, independent of FUSE: lookups across layers,
// merged directory listings, whiteouts, opaque directories and copy-up.
//
// The on-disk format is the kernel overlayfs format
// (Documentation/filesystems/overlayfs.rst), so the same layers mount with the
// kernel's overlayfs and with this package interchangeably:
//   - a whiteout is a character device with device number 0/0;
//   - an opaque directory carries the xattr "trusted.overlay.opaque" = "y"
//     ("user.overlay.opaque" with [Options].UserXattr, as overlayfs
//     "userxattr");
//   - the upper holds on-disk ids, unshifted.
//
// Not supported (documented differences from the kernel): redirects
// ("overlay.redirect" is ignored, as with redirect_dir=off), metacopy files
// (an upper file with "overlay.metacopy" is shown as it is on disk), the
// inodes index and "overlay.origin", and the alternative "xwhiteouts"
// (overlay.whiteout xattr on a regular file or fifo): such entries are shown as
// ordinary files. Hard links to one lower inode are copied up separately.
//
// All access is relative to directory descriptors opened with O_NOFOLLOW one
// component at a time; no path from the layers is ever resolved from a root.
// Lower layers are never opened for writing and never get atime updates:
// [OpenLowerLayer] reaches them through a private, detached, read-only and
// noatime clone of their mount, and lower files and directories are opened
// with O_NOATIME as well (allowed to root, which this package requires).
package overlay
