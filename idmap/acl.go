package idmap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadXattr reports an xattr value that does not have the format the
// kernel expects; errors wrap it with what is wrong and where.
var ErrBadXattr = errors.New("malformed xattr value")

// maxXattrSize is XATTR_SIZE_MAX from include/uapi/linux/limits.h.
const maxXattrSize = 65536

// POSIX ACL xattr format, include/uapi/linux/posix_acl_xattr.h and
// include/uapi/linux/posix_acl.h: a little-endian header
//
//	struct posix_acl_xattr_header { __le32 a_version; };
//
// followed by entries
//
//	struct posix_acl_xattr_entry { __le16 e_tag; __le16 e_perm; __le32 e_id; };
const (
	aclXattrVersion = 0x0002 // POSIX_ACL_XATTR_VERSION
	aclHeaderSize   = 4
	aclEntrySize    = 8

	aclUserObj  = 0x01 // ACL_USER_OBJ
	aclUser     = 0x02 // ACL_USER
	aclGroupObj = 0x04 // ACL_GROUP_OBJ
	aclGroup    = 0x08 // ACL_GROUP
	aclMask     = 0x10 // ACL_MASK
	aclOther    = 0x20 // ACL_OTHER
)

// ACLToHost rewrites a system.posix_acl_access or system.posix_acl_default
// value read from disk for the mount: ACL_USER and ACL_GROUP ids are mapped
// disk to host, and an id without a mapping becomes InvalidID, as the
// kernel's idmapped mounts show it. Other entries pass through untouched. It
// returns a new slice.
func ACLToHost(value []byte, m IDMap) ([]byte, error) {
	return convertACL(value, m, true)
}

// ACLToDisk rewrites an ACL value written through the mount for storing on
// disk: ACL_USER and ACL_GROUP ids are mapped host to disk. An id without a
// mapping (InvalidID included) is an error wrapping ErrUnmapped. It returns a
// new slice.
func ACLToDisk(value []byte, m IDMap) ([]byte, error) {
	return convertACL(value, m, false)
}

func convertACL(value []byte, m IDMap, toHost bool) ([]byte, error) {
	switch {
	case len(value) == 0:
		return nil, fmt.Errorf("posix acl: empty value: %w", ErrBadXattr)
	case len(value) > maxXattrSize:
		return nil, fmt.Errorf("posix acl: %d bytes, more than the kernel's %d: %w", len(value), maxXattrSize, ErrBadXattr)
	case len(value) < aclHeaderSize || (len(value)-aclHeaderSize)%aclEntrySize != 0:
		return nil, fmt.Errorf("posix acl: length %d is not 4+8n: %w", len(value), ErrBadXattr)
	}
	if v := binary.LittleEndian.Uint32(value); v != aclXattrVersion {
		return nil, fmt.Errorf("posix acl: version %d at offset 0, want %d: %w", v, aclXattrVersion, ErrBadXattr)
	}
	// Check every tag before mapping any id, so that a malformed value is
	// reported as such whatever the map.
	for off := aclHeaderSize; off < len(value); off += aclEntrySize {
		switch tag := binary.LittleEndian.Uint16(value[off:]); tag {
		case aclUserObj, aclUser, aclGroupObj, aclGroup, aclMask, aclOther:
		default:
			return nil, fmt.Errorf("posix acl: unknown tag %#x at offset %d: %w", tag, off, ErrBadXattr)
		}
	}
	out := make([]byte, len(value))
	copy(out, value)
	for off := aclHeaderSize; off < len(out); off += aclEntrySize {
		var idm Map
		var kind string
		switch binary.LittleEndian.Uint16(out[off:]) {
		case aclUser:
			idm, kind = m.UID, "ACL_USER uid"
		case aclGroup:
			idm, kind = m.GID, "ACL_GROUP gid"
		default:
			continue
		}
		id := binary.LittleEndian.Uint32(out[off+4:])
		if toHost {
			h, _ := idm.ToHost(id) // InvalidID when unmapped
			binary.LittleEndian.PutUint32(out[off+4:], h)
			continue
		}
		d, ok := idm.ToDisk(id)
		if !ok {
			return nil, fmt.Errorf("posix acl: %s %d at offset %d: %w", kind, id, off, ErrUnmapped)
		}
		binary.LittleEndian.PutUint32(out[off+4:], d)
	}
	return out, nil
}
