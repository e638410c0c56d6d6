// Package idmap translates user and group ids between the ids stored in a
// backing tree ("disk" ids, the image's own view) and the ids the kernel sees
// on an idmapfs mount ("host" ids), following the kernel's idmapped mounts
// (mount_setattr with MOUNT_ATTR_IDMAP, Linux 5.12+).
//
// A [Map] holds the ranges for one id kind, in the same form as
// /proc/PID/uid_map lines ("inside outside count", here disk:host:count);
// an [IDMap] pairs the uid and gid maps. [Map.ToHost] and [Map.ToDisk] are
// meant for the filesystem's hot path and never allocate.
//
// The package also rewrites the xattr values that carry ids, exactly as the
// kernel stores them on disk: POSIX ACLs ([ACLToHost], [ACLToDisk], for
// system.posix_acl_access and system.posix_acl_default) and file
// capabilities ([CapToHost], [CapToDisk], for security.capability).
//
// The package is pure: it does no I/O, has no platform code and uses only
// the standard library. The rules it implements are in
// shared/idmap/SEMANTICS.md (rules 1, 5 and 6).
package idmap
