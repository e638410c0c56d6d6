package idmap

import (
	"encoding/binary"
	"fmt"
)

// File capability xattr format, include/uapi/linux/capability.h: a
// little-endian
//
//	struct vfs_ns_cap_data {
//		__le32 magic_etc;
//		struct { __le32 permitted; __le32 inheritable; } data[VFS_CAP_U32];
//		__le32 rootid;
//	};
//
// Revision 1 has one data pair and no rootid (12 bytes), revision 2 has two
// data pairs (20 bytes, struct vfs_cap_data), revision 3 adds rootid (24
// bytes). Values of revision 1 and 2 belong to rootid 0.
const (
	capRevisionMask   = 0xFF000000 // VFS_CAP_REVISION_MASK
	capRevision1      = 0x01000000 // VFS_CAP_REVISION_1
	capRevision2      = 0x02000000 // VFS_CAP_REVISION_2
	capRevision3      = 0x03000000 // VFS_CAP_REVISION_3
	capFlagsEffective = 0x000001   // VFS_CAP_FLAGS_EFFECTIVE

	capSize1 = 12 // XATTR_CAPS_SZ_1
	capSize2 = 20 // XATTR_CAPS_SZ_2
	capSize3 = 24 // XATTR_CAPS_SZ_3
)

// fileCap is a decoded security.capability value.
type fileCap struct {
	flags  uint32   // magic_etc without the revision
	data   [16]byte // data[2] as stored; the second pair is zero for revision 1
	rootid uint32   // 0 for revision 1 and 2
}

func decodeCap(value []byte) (fileCap, error) {
	if len(value) < 4 {
		return fileCap{}, fmt.Errorf("file capability: %d bytes, too short for magic_etc: %w", len(value), ErrBadXattr)
	}
	magic := binary.LittleEndian.Uint32(value)
	var want int
	switch magic & capRevisionMask {
	case capRevision1:
		want = capSize1
	case capRevision2:
		want = capSize2
	case capRevision3:
		want = capSize3
	default:
		return fileCap{}, fmt.Errorf("file capability: unknown revision %#x at offset 0: %w", magic&capRevisionMask, ErrBadXattr)
	}
	if len(value) != want {
		return fileCap{}, fmt.Errorf("file capability: revision %d value is %d bytes, want %d: %w", magic>>24, len(value), want, ErrBadXattr)
	}
	c := fileCap{flags: magic &^ capRevisionMask}
	copy(c.data[:], value[4:min(len(value), capSize2)])
	if want == capSize3 {
		c.rootid = binary.LittleEndian.Uint32(value[capSize2:])
	}
	return c, nil
}

// encode returns the value as revision 2 if v2 is set (rootid must be 0),
// else as revision 3.
func (c fileCap) encode(v2 bool) []byte {
	if v2 {
		b := make([]byte, capSize2)
		binary.LittleEndian.PutUint32(b, capRevision2|c.flags)
		copy(b[4:], c.data[:])
		return b
	}
	b := make([]byte, capSize3)
	binary.LittleEndian.PutUint32(b, capRevision3|c.flags)
	copy(b[4:], c.data[:])
	binary.LittleEndian.PutUint32(b[capSize2:], c.rootid)
	return b
}

// CapToHost rewrites a security.capability value read from disk for the
// mount. A revision 1 or 2 value belongs to disk root and becomes revision 3
// with rootid ToHost(0), so that the root of the mapped container gets the
// capabilities; a revision 3 value gets its rootid mapped ToHost. Flags and
// capability sets are kept (for revision 1 the second pair is zero). A rootid
// without a mapping is an error wrapping ErrUnmapped (the kernel reports
// EOVERFLOW).
func CapToHost(value []byte, m IDMap) ([]byte, error) {
	c, err := decodeCap(value)
	if err != nil {
		return nil, err
	}
	h, ok := m.UID.ToHost(c.rootid)
	if !ok {
		return nil, fmt.Errorf("file capability: rootid %d: %w", c.rootid, ErrUnmapped)
	}
	c.rootid = h
	return c.encode(false), nil
}

// CapToDisk rewrites a security.capability value written through the mount
// for storing on disk. Its rootid (0 for revision 1 and 2) is mapped ToDisk;
// a rootid without a mapping is an error wrapping ErrUnmapped. A disk rootid
// of 0 is stored as revision 2 (revision 1 is upgraded), as the kernel's
// idmapped mounts do, so the image stays portable; any other as revision 3.
func CapToDisk(value []byte, m IDMap) ([]byte, error) {
	c, err := decodeCap(value)
	if err != nil {
		return nil, err
	}
	d, ok := m.UID.ToDisk(c.rootid)
	if !ok {
		return nil, fmt.Errorf("file capability: rootid %d: %w", c.rootid, ErrUnmapped)
	}
	c.rootid = d
	return c.encode(d == 0), nil
}
