package overlay

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// A Layer is one directory tree of an overlay, held by a descriptor of its
// root directory (O_PATH|O_DIRECTORY). Every access to the layer is relative
// to that descriptor.
type Layer struct {
	path     string
	fd       int
	readOnly bool
}

// OpenLayer opens the directory at path as a layer that may be written (an
// upper or a work layer).
func OpenLayer(path string) (*Layer, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open layer: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	return &Layer{path: path, fd: fd}, nil
}

// OpenLowerLayer opens the directory at path as a lower layer. It is reached
// through a private, detached clone of its mount (open_tree(2) with
// OPEN_TREE_CLONE, recursive) made read-only and noatime with
// mount_setattr(2): nothing done through the layer can write to it or update
// an access time, not even readlink of a symlink (which O_NOATIME cannot
// cover). The clone disappears when the layer is closed. It needs
// CAP_SYS_ADMIN.
func OpenLowerLayer(path string) (*Layer, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("open lower layer %s: clone its mount read-only (needs root): %w", path, os.NewSyscallError("open_tree", err))
	}
	attr := unix.MountAttr{
		Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOATIME,
		Attr_clr: unix.MOUNT_ATTR__ATIME,
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open lower layer %s: make it read-only: %w", path, os.NewSyscallError("mount_setattr", err))
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open lower layer %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return nil, fmt.Errorf("open lower layer %s: %w", path, unix.ENOTDIR)
	}
	return &Layer{path: path, fd: fd, readOnly: true}, nil
}

// Fd returns the descriptor of the layer's root directory. It stays owned
// by the layer.
func (l *Layer) Fd() int { return l.fd }

// Path returns the path the layer was opened from, for messages.
func (l *Layer) Path() string { return l.path }

// ReadOnly reports whether the layer was opened with OpenLowerLayer.
func (l *Layer) ReadOnly() bool { return l.readOnly }

// Close releases the layer's descriptor (and, for a lower layer, its private
// mount clone once no other descriptor refers to it).
func (l *Layer) Close() error {
	if l.fd < 0 {
		return nil
	}
	err := unix.Close(l.fd)
	l.fd = -1
	if err != nil {
		return fmt.Errorf("close layer %s: %w", l.path, err)
	}
	return nil
}
