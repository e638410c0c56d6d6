package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel ABI of the loop driver, include/uapi/linux/loop.h.
const (
	loNameSize = 64 // LO_NAME_SIZE
	loKeySize  = 32 // LO_KEY_SIZE

	loFlagsReadOnly  = 1  // LO_FLAGS_READ_ONLY
	loFlagsAutoclear = 4  // LO_FLAGS_AUTOCLEAR
	loFlagsDirectIO  = 16 // LO_FLAGS_DIRECT_IO

	loopClrFD      = 0x4C01 // LOOP_CLR_FD
	loopConfigure  = 0x4C0A // LOOP_CONFIGURE (Linux 5.8)
	loopCtlGetFree = 0x4C82 // LOOP_CTL_GET_FREE
)

// loopInfo64 mirrors struct loop_info64 from include/uapi/linux/loop.h.
// Sizes and offsets are pinned by TestLoopABI.
type loopInfo64 struct {
	Device         uint64           // lo_device: ioctl r/o
	Inode          uint64           // lo_inode: ioctl r/o
	Rdevice        uint64           // lo_rdevice: ioctl r/o
	Offset         uint64           // lo_offset: where the device starts in the file
	SizeLimit      uint64           // lo_sizelimit: bytes, 0 == to the end of the file
	Number         uint32           // lo_number: ioctl r/o
	EncryptType    uint32           // lo_encrypt_type: obsolete, ignored
	EncryptKeySize uint32           // lo_encrypt_key_size: ioctl w/o
	Flags          uint32           // lo_flags: LO_FLAGS_*
	FileName       [loNameSize]byte // lo_file_name: shown by losetup
	CryptName      [loNameSize]byte // lo_crypt_name
	EncryptKey     [loKeySize]byte  // lo_encrypt_key: ioctl w/o
	Init           [2]uint64        // lo_init
}

// loopConfig mirrors struct loop_config from include/uapi/linux/loop.h, the
// argument of LOOP_CONFIGURE.
type loopConfig struct {
	FD        uint32     // fd: the backing file
	BlockSize uint32     // block_size: logical block size, 0 == 512
	Info      loopInfo64 // info
	_         [8]uint64  // __reserved: must be zero
}

// ioctlPtr issues an ioctl with a pointer argument, retrying EINTR.
func ioctlPtr(fd uintptr, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// ioctlInt issues an ioctl with an integer argument and returns its result,
// retrying EINTR.
func ioctlInt(fd uintptr, req uintptr, arg uintptr) (int, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, arg)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// errNoLoop is wrapped into every failure to find a free loop device.
var errNoLoop = errors.New("no free loop device: load the loop module (modprobe loop) or free one (losetup -D)")

// maxLoopTries bounds the retries when another process grabs the free
// device between LOOP_CTL_GET_FREE and LOOP_CONFIGURE.
const maxLoopTries = 32

// busyRetries counts LOOP_CONFIGURE calls lost to another process (EBUSY);
// tests read it.
var busyRetries atomic.Int64

// loopDevice is a loop device bound to an image.
type loopDevice struct {
	num int
	dev *os.File // the opened /dev/loopN; held until release
}

func (l *loopDevice) path() string { return fmt.Sprintf("/dev/loop%d", l.num) }

// attachLoop binds backing (opened read-only) to a free loop device,
// read-only and with autoclear, so the device comes free once the last user
// closes it, even if this process dies.
func attachLoop(ctx context.Context, backing *os.File, name string, opts Options) (*loopDevice, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoLoop, err)
	}
	defer ctl.Close()

	cfg := loopConfig{FD: uint32(backing.Fd()), BlockSize: opts.BlockSize}
	cfg.Info.Flags = loFlagsReadOnly | loFlagsAutoclear
	if opts.DirectIO {
		cfg.Info.Flags |= loFlagsDirectIO
	}
	copy(cfg.Info.FileName[:loNameSize-1], name)

	var lastErr error
	for try := 0; try < maxLoopTries; try++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := ioctlInt(ctl.Fd(), loopCtlGetFree, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errNoLoop, os.NewSyscallError("ioctl LOOP_CTL_GET_FREE", err))
		}
		l := &loopDevice{num: n}
		l.dev, err = openLoopNode(ctx, l.path())
		if err != nil {
			return nil, err
		}
		err = ioctlPtr(l.dev.Fd(), loopConfigure, unsafe.Pointer(&cfg))
		if err == nil {
			return l, nil
		}
		l.dev.Close()
		switch {
		case errors.Is(err, unix.EBUSY):
			// Another process bound this device after GET_FREE
			// handed it to us as well: ask again.
			lastErr = err
			busyRetries.Add(1)
			continue
		case errors.Is(err, unix.EINVAL) && cfg.BlockSize != 0:
			return nil, fmt.Errorf("configure %s: block size %d: %w (use 512, 1024, 2048 or 4096, or 0 for the default)", l.path(), cfg.BlockSize, err)
		}
		return nil, &os.PathError{Op: "ioctl LOOP_CONFIGURE", Path: l.path(), Err: err}
	}
	return nil, fmt.Errorf("%w: every free device was taken by another process %d times in a row (last: %v)", errNoLoop, maxLoopTries, lastErr)
}

// openLoopNode opens /dev/loopN. LOOP_CTL_GET_FREE may have just created the
// device, and devtmpfs may show its node a moment later, so ENOENT is retried
// briefly.
func openLoopNode(ctx context.Context, path string) (*os.File, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.ENOENT) || time.Now().After(deadline) {
			return nil, fmt.Errorf("open loop device: %w (is /dev a devtmpfs?)", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// release unbinds the device. If a filesystem still uses it (a file of the
// image is still open somewhere), LOOP_CLR_FD only confirms autoclear and the
// kernel unbinds it when that user lets go.
func (l *loopDevice) release() error {
	if l == nil || l.dev == nil {
		return nil
	}
	err := ioctlPtr(l.dev.Fd(), loopClrFD, nil)
	if errors.Is(err, unix.ENXIO) { // already unbound
		err = nil
	}
	if err != nil {
		err = &os.PathError{Op: "ioctl LOOP_CLR_FD", Path: l.path(), Err: err}
	}
	// The actual unbind happens here, on the last close.
	if cerr := l.dev.Close(); err == nil {
		err = cerr
	}
	l.dev = nil
	return err
}
