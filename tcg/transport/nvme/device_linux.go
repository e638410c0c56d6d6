package nvme

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/tcg/transport"
	"github.com/shiftlock/shiftlock/tcg/transport/internal/ioctl"
)

// MaxTransfer caps one Security Send or Receive: IFSend refuses more,
// IFRecv lowers its allocation length to it. TCG ComPackets are far
// smaller; most controllers' MDTS allows at least this much.
const MaxTransfer = 1 << 20

// openTimeout bounds the Identify commands that Open issues.
const openTimeout = 30 * time.Second

// Device is an open NVMe controller, reached through its character device
// or one of its namespaces. It implements [transport.Transport].
type Device struct {
	path   string
	fd     uintptr
	closer io.Closer
	ioctl  ioctl.Func
	nsid   uint32 // namespace of the node, 0 for the controller device

	mu     sync.Mutex // one command at a time; Close waits for it
	closed bool
}

var _ transport.Transport = (*Device)(nil)

// Open opens an NVMe device (/dev/nvme0, /dev/nvme0n1, /dev/ng0n1) and
// checks with Identify Controller that it implements Security Send and
// Receive. A controller without them fails with an error matching
// transport.ErrNotSupported; a node that is not an NVMe device, or a
// caller without CAP_SYS_ADMIN, fails with an explanation.
func Open(path string) (transport.Transport, error) {
	d, err := OpenDevice(path)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// OpenDevice is Open returning the concrete type.
func OpenDevice(path string) (*Device, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("nvme: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("nvme: %w", err)
	}
	if fi.Mode()&os.ModeDevice == 0 {
		f.Close()
		return nil, fmt.Errorf("nvme: %s is not a device node (%s); give a controller such as /dev/nvme0 or a namespace such as /dev/nvme0n1", path, ioctl.DescribeMode(fi.Mode()))
	}
	d, err := newDevice(path, f.Fd(), f, ioctl.Syscall)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// newDevice probes an open node: NVME_IOCTL_ID for the namespace, then
// Identify Controller for the OACS check.
func newDevice(path string, fd uintptr, closer io.Closer, fn ioctl.Func) (*Device, error) {
	d := &Device{path: path, fd: fd, closer: closer, ioctl: fn}
	// NVME_IOCTL_ID answers on namespace nodes only; the controller
	// device fails with ENOTTY, which leaves nsid 0.
	if n, err := fn(fd, IoctlID, nil); err == nil && n > 0 && uint64(n) <= math.MaxUint32 {
		d.nsid = uint32(n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	c, err := d.identifyController(ctx)
	if err != nil {
		return nil, err
	}
	if !c.SecuritySupported() {
		return nil, fmt.Errorf("nvme %s (%s, serial %s): the controller does not implement Security Send/Receive (OACS bit 0 is clear), so it is not a TCG self-encrypting drive: %w",
			path, c.Model, c.Identity().SerialString(), transport.ErrNotSupported)
	}
	return d, nil
}

// Path returns the device path given to Open.
func (d *Device) Path() string { return d.path }

// NamespaceID returns the namespace of the node Open was given, or 0 for
// the controller device.
func (d *Device) NamespaceID() uint32 { return d.nsid }

// Close closes the device node. It waits for a command in progress.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.closer != nil {
		return d.closer.Close()
	}
	return nil
}

// IFSend issues Security Send with data.
func (d *Device) IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error {
	if len(data) > MaxTransfer {
		return fmt.Errorf("nvme security send proto 0x%02x comid 0x%04x on %s: %d bytes is over the %d-byte limit", proto, spsp, d.path, len(data), MaxTransfer)
	}
	cmd := SecuritySendCmd(proto, spsp, uint32(len(data)))
	if err := d.admin(ctx, &cmd, data); err != nil {
		return fmt.Errorf("nvme security send proto 0x%02x comid 0x%04x on %s: %w", proto, spsp, d.path, err)
	}
	return nil
}

// IFRecv issues Security Receive with an allocation length of len(buf),
// lowered to MaxTransfer. The command reports no transfer count, so it
// returns the allocation length; buf is zeroed first, so bytes the device
// did not send read as zeros.
func (d *Device) IFRecv(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error) {
	if len(buf) > MaxTransfer {
		buf = buf[:MaxTransfer]
	}
	clear(buf)
	cmd := SecurityReceiveCmd(proto, spsp, uint32(len(buf)))
	if err := d.admin(ctx, &cmd, buf); err != nil {
		return 0, fmt.Errorf("nvme security receive proto 0x%02x comid 0x%04x on %s: %w", proto, spsp, d.path, err)
	}
	return len(buf), nil
}

// Identify reads Identify Controller, and Identify Namespace when the node
// is a namespace, for the capacity.
func (d *Device) Identify(ctx context.Context) (transport.Identity, error) {
	c, err := d.identifyController(ctx)
	if err != nil {
		return transport.Identity{}, err
	}
	id := c.Identity()
	if d.nsid != 0 {
		if ns, err := d.IdentifyNamespace(ctx); err == nil {
			id.BlockSize, id.Blocks = ns.BlockSize, ns.Size
		}
	}
	return id, nil
}

// IdentifyController reads and decodes Identify Controller.
func (d *Device) IdentifyController(ctx context.Context) (Controller, error) {
	return d.identifyController(ctx)
}

func (d *Device) identifyController(ctx context.Context) (Controller, error) {
	buf := make([]byte, IdentifyLen)
	cmd := IdentifyCmd(CNSController, 0)
	if err := d.admin(ctx, &cmd, buf); err != nil {
		return Controller{}, fmt.Errorf("nvme identify controller on %s: %w", d.path, err)
	}
	return ParseIdentifyController(buf)
}

// IdentifyNamespace reads Identify Namespace for the node's namespace.
func (d *Device) IdentifyNamespace(ctx context.Context) (Namespace, error) {
	if d.nsid == 0 {
		return Namespace{}, fmt.Errorf("nvme identify namespace on %s: not a namespace device", d.path)
	}
	buf := make([]byte, IdentifyLen)
	cmd := IdentifyCmd(CNSNamespace, d.nsid)
	if err := d.admin(ctx, &cmd, buf); err != nil {
		return Namespace{}, fmt.Errorf("nvme identify namespace %d on %s: %w", d.nsid, d.path, err)
	}
	return ParseIdentifyNamespace(buf)
}

// admin runs one admin command with buf as its data buffer. A positive
// ioctl result is an NVMe [Status], never success.
func (d *Device) admin(ctx context.Context, cmd *PassthruCmd, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return transport.ErrClosed
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	cmd.Addr = ioctl.Addr(&pin, buf)
	cmd.DataLen = uint32(len(buf))
	cmd.TimeoutMS = ioctl.TimeoutMS(ctx, 0) // 0: the driver's admin timeout
	r, err := d.ioctl(d.fd, IoctlAdminCmd, unsafe.Pointer(cmd))
	runtime.KeepAlive(buf)
	if err != nil {
		return errnoError(err)
	}
	if r > 0 {
		if r > math.MaxUint16 {
			return fmt.Errorf("NVME_IOCTL_ADMIN_CMD returned %d, which is not an NVMe status", r)
		}
		return Status(r)
	}
	return nil
}

// errnoError explains the errnos of NVME_IOCTL_ADMIN_CMD that people meet.
func errnoError(err error) error {
	switch {
	case errors.Is(err, unix.ENOTTY):
		return fmt.Errorf("not an NVMe device (NVME_IOCTL_ADMIN_CMD: %w)", err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("NVMe admin passthrough needs root (CAP_SYS_ADMIN): %w", err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("the kernel rejected the passthrough command: %w", err)
	}
	return fmt.Errorf("NVME_IOCTL_ADMIN_CMD: %w", err)
}
