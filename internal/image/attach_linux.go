package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Image is a filesystem image mounted read-only as a detached mount: it has
// no mountpoint and is reached only through Root.
type Image struct {
	name   string // the path given to Attach, for messages
	fstype string
	file   *os.File // the image, O_RDONLY|O_NOATIME
	loop   *loopDevice
	mnt    int // fsmount(2) fd
	root   int // O_PATH|O_DIRECTORY fd of the root directory

	closeOnce sync.Once
	closeErr  error
}

// Attach opens the image file at path read-only, binds it to a free loop
// device read-only, detects its filesystem and mounts it read-only (nodev,
// nosuid, noatime; ext4 also noload, so its journal is never replayed) as a
// detached mount. The caller must Close the Image.
func Attach(ctx context.Context, path string, opts Options) (_ *Image, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	im := &Image{name: path, mnt: -1, root: -1}
	defer func() {
		if err != nil {
			im.Close()
		}
	}()

	im.file, err = openNoatime(path)
	if err != nil {
		return nil, fmt.Errorf("attach image: %w", err)
	}
	fi, err := im.file.Stat()
	if err != nil {
		return nil, fmt.Errorf("attach image: %w", err)
	}
	switch {
	case fi.IsDir():
		return nil, fmt.Errorf("%s: is a directory; pass it as a directory lower, not as an image", path)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file (%v); an image must be a squashfs, erofs or ext4 file", path, fi.Mode().Type())
	case fi.Size() == 0:
		return nil, fmt.Errorf("%s: empty file, %w", path, ErrUnknownType)
	}

	hdr := make([]byte, min(fi.Size(), HeaderSize))
	if _, err := im.file.ReadAt(hdr, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read superblock of %s: %w", path, err)
	}
	h, err := ParseHeader(hdr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if opts.Type != "" && opts.Type != h.Type {
		return nil, fmt.Errorf("%s: is a %s image, not %s", path, h.Type, opts.Type)
	}
	if h.Size > uint64(fi.Size()) {
		return nil, fmt.Errorf("%s: truncated: its %s superblock says it spans %d bytes but the file has %d; fetch or build it again", path, h.Type, h.Size, fi.Size())
	}
	im.fstype = h.Type

	im.loop, err = attachLoop(ctx, im.file, filepath.Base(path), opts)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	im.mnt, err = mountDetached(h.Type, im.loop.path())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	im.root, err = openat(im.mnt, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open root of %s: %w", path, err)
	}
	return im, nil
}

// mountDetached mounts the block device at source read-only with the new
// mount API and returns the fsmount(2) fd.
func mountDetached(fstype, source string) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, os.NewSyscallError("fsopen", err))
	}
	defer unix.Close(fsfd)

	step := func(what string, err error) error {
		if err == nil {
			return nil
		}
		msg := fmt.Sprintf("mount %s from %s: %s: %v", fstype, source, what, err)
		if log := fsLog(fsfd); log != "" {
			msg += " (kernel says: " + log + ")"
		}
		if what == "create" && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIO) || errors.Is(err, unix.EUCLEAN)) {
			msg += "; the image looks corrupt: check its checksum or build it again"
		}
		return &mountError{msg: msg, err: err}
	}
	if err := step("source", unix.FsconfigSetString(fsfd, "source", source)); err != nil {
		return -1, err
	}
	if err := step("ro", unix.FsconfigSetFlag(fsfd, "ro")); err != nil {
		return -1, err
	}
	if fstype == Ext4 {
		// Never replay (and so never write) the journal of a lower.
		if err := step("noload", unix.FsconfigSetFlag(fsfd, "noload")); err != nil {
			return -1, err
		}
	}
	if err := step("create", unix.FsconfigCreate(fsfd)); err != nil {
		return -1, err
	}
	attrs := unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOATIME
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return -1, step("fsmount", err)
	}
	return mfd, nil
}

// mountError keeps the errno of a failed mount step for errors.Is.
type mountError struct {
	msg string
	err error
}

func (e *mountError) Error() string { return e.msg }
func (e *mountError) Unwrap() error { return e.err }

// fsLog drains the messages the kernel queued on an fs context fd
// (Documentation/filesystems/mount_api.rst, "Messages"): lines prefixed
// "e ", "w " or "i ".
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for len(msgs) < 16 {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		sc := bufio.NewScanner(bytes.NewReader(buf[:n]))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				msgs = append(msgs, l)
			}
		}
	}
	return strings.Join(msgs, "; ")
}

func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat", Path: name, Err: err}
		}
		return fd, nil
	}
}

// Type is the filesystem type: Squashfs, EROFS or Ext4.
func (im *Image) Type() string { return im.fstype }

// Device is the loop device the image is bound to, e.g. "/dev/loop3".
func (im *Image) Device() string {
	if im.loop == nil {
		return ""
	}
	return im.loop.path()
}

// Root is an O_PATH|O_DIRECTORY fd of the image's root directory, for
// openat(2) and friends relative to it. It belongs to the Image and is
// closed by Close; dup it to keep it longer (which also keeps the mount and
// the loop device until the dup is closed).
func (im *Image) Root() int { return im.root }

// Path names the root directory as "/proc/self/fd/N", for code in this
// process that wants a path. It is valid until Close.
func (im *Image) Path() string { return fmt.Sprintf("/proc/self/fd/%d", im.root) }

// Close unmounts the image and frees its loop device. The detached mount
// goes away with its last fd; if files of it are still open elsewhere, the
// mount and the device stay until they are closed, and then the kernel frees
// the device by itself (autoclear). Close is safe to call more than once.
func (im *Image) Close() error {
	im.closeOnce.Do(func() {
		var errs []error
		for _, fd := range []*int{&im.root, &im.mnt} {
			if *fd >= 0 {
				if err := unix.Close(*fd); err != nil {
					errs = append(errs, os.NewSyscallError("close", err))
				}
				*fd = -1
			}
		}
		if err := im.loop.release(); err != nil {
			errs = append(errs, err)
		}
		if im.file != nil {
			errs = append(errs, im.file.Close())
		}
		if err := errors.Join(errs...); err != nil {
			im.closeErr = fmt.Errorf("detach %s: %w", im.name, err)
		}
	})
	return im.closeErr
}
