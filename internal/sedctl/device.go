package sedctl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/transport"
	"github.com/shiftlock/shiftlock/tcg/transport/nvme"
	"github.com/shiftlock/shiftlock/tcg/transport/scsi"
	"github.com/shiftlock/shiftlock/tcg/transport/sedioctl"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

// device is one open drive: its transport, a session Client on it, and its
// identity, read once. With --via kernel it is the kernel's sed-opal
// ioctls instead (k), and t and c are nil (kernel_cmd.go).
type device struct {
	spec string // the argument as given
	t    transport.Transport
	c    *session.Client
	k    *sedioctl.Kernel

	idOnce sync.Once
	id     transport.Identity
	idErr  error
}

// Device transports other than sedsim's: the single switch point from a
// device node to a tcg/transport backend. Variables, so that tests can put
// a fake drive behind a node.
var (
	openNVMe = deviceOpener("NVMe", nvme.Open)
	openSCSI = deviceOpener("SCSI/SATA", scsi.Open)
)

// deviceOpener gives a backend's errors their exit codes: a drive that is
// no SED (or whose path to its security commands is blocked) is
// unsupported, anything else an I/O error.
func deviceOpener(what string, open func(string) (transport.Transport, error)) func(string) (transport.Transport, error) {
	return func(path string) (transport.Transport, error) {
		t, err := open(path)
		switch {
		case err == nil:
			return t, nil
		case errors.Is(err, scsi.ErrTrustedBlocked):
			return nil, withCode(ExitUnsupported, err, "boot with libata.allow_tpm=1, or load libata with allow_tpm=1")
		case errors.Is(err, transport.ErrNotSupported):
			return nil, withCode(ExitUnsupported, err, "'sedctl scan' lists the drives that are self-encrypting")
		case errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0:
			return nil, withCode(ExitIO, err, "security commands need root (CAP_SYS_ADMIN)")
		case errors.Is(err, fs.ErrPermission):
			return nil, withCode(ExitUnsupported, err, "its driver refuses security commands even to root: give the drive itself ('sedctl scan' lists the self-encrypting ones)")
		}
		return nil, withCode(ExitIO, fmt.Errorf("%s device: %w", what, err), "")
	}
}

// openTransport maps a device argument to a transport: the only place that
// does. "sim:PATH" or a Unix socket is sedsim over opalwire; /dev/nvme* is
// NVMe Security Send/Receive; /dev/sd* SCSI SECURITY PROTOCOL IN/OUT (with
// ATA pass-through as the backend's fallback). --via kernel is no
// transport: the commands it covers open the kernel's sed-opal ioctls
// instead (openKernel), and run refuses the others before they get here.
func openTransport(ctx context.Context, spec, via string) (transport.Transport, error) {
	if path, ok := strings.CutPrefix(spec, "sim:"); ok {
		if via != "" {
			return nil, usageError(fmt.Errorf("--via %s does not apply to a sedsim socket", via))
		}
		return dialSim(ctx, path)
	}
	switch via {
	case "":
	case "kernel":
		return nil, withCode(ExitUnsupported, fmt.Errorf("%s: the kernel's sed-opal ioctls carry whole Opal operations, not Security Send/Receive", spec),
			"leave out --via kernel for this command")
	default:
		return nil, usageError(fmt.Errorf("--via %q: the only alternative path is 'kernel'", via))
	}
	fi, err := os.Stat(spec)
	if err != nil {
		return nil, withCode(ExitIO, fmt.Errorf("device %s: %w", spec, err),
			"give a device such as /dev/nvme0 or /dev/sda, or a sedsim socket as sim:PATH; 'sedctl scan' lists them")
	}
	if fi.Mode().Type() == fs.ModeSocket {
		return dialSim(ctx, spec)
	}
	// /dev/disk/by-id/... names say nothing of the transport: decide by
	// the node they lead to.
	base := filepath.Base(spec)
	if real, err := filepath.EvalSymlinks(spec); err == nil {
		base = filepath.Base(real)
	}
	isDev := fi.Mode()&fs.ModeDevice != 0
	switch {
	case isDev && strings.HasPrefix(base, "nvme"):
		return openNVMe(spec)
	case isDev && (strings.HasPrefix(base, "sd") || strings.HasPrefix(base, "sg")):
		return openSCSI(spec)
	case fi.Mode().Type() == fs.ModeDevice: // another block device: SCSI commands are the common ground
		t, err := openSCSI(spec)
		if err != nil {
			return nil, withCode(ExitUnsupported, fmt.Errorf("%s is not a drive that takes TCG security commands: %w", spec, err),
				"loop, virtio, device-mapper and md devices pass none; give the drive underneath (lsblk -s "+spec+" shows it), or see 'sedctl scan'")
		}
		return t, nil
	}
	return nil, usageError(fmt.Errorf("%s is neither a drive (/dev/nvme*, /dev/sd*, /dev/sg*) nor a sedsim socket", spec))
}

func dialSim(ctx context.Context, path string) (transport.Transport, error) {
	c, err := opalwire.Dial(ctx, path)
	if err != nil {
		return nil, withCode(ExitIO, fmt.Errorf("sedsim socket %s: %w", path, err), "is sedsim serving it? sedsim serve --state DIR --socket "+path)
	}
	return c, nil
}

// openDevice opens the device argument and puts a session Client on it.
func (e *env) openDevice(spec string) (*device, error) {
	t, err := openTransport(e.ctx, spec, e.opts.get("via"))
	if err != nil {
		return nil, err
	}
	opts := &session.Options{}
	if e.opts.bool("trace") {
		opts.Trace = (&session.TraceDecoder{}).Hook(e.stderr)
	}
	d := &device{spec: spec, t: t, c: session.NewClient(t, opts)}
	e.closers = append(e.closers, func() { t.Close() })
	return d, nil
}

// identity returns the device's identity (its serial salts the password
// hashes), read once.
func (d *device) identity(ctx context.Context) (transport.Identity, error) {
	d.idOnce.Do(func() {
		if d.t == nil {
			d.id, d.idErr = identifyKernelDevice(ctx, d.spec)
			if d.idErr != nil {
				d.idErr = noSerialError(d.spec, d.idErr)
			}
			return
		}
		d.id, d.idErr = d.t.Identify(ctx)
		if d.idErr != nil {
			d.idErr = fmt.Errorf("identify %s: %w", d.spec, d.idErr)
		}
	})
	return d.id, d.idErr
}

// level0 runs Level 0 discovery.
func (d *device) level0(ctx context.Context) (*discovery.Discovery, error) {
	l0, err := d.c.Discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("level 0 discovery on %s: %w", d.spec, err)
	}
	return l0, nil
}

// requireRanges refuses range n > 0 on a drive without locking ranges
// (Pyrite), before any session is opened.
func (d *device) requireRanges(ctx context.Context, n uint32) error {
	if n == 0 {
		return nil
	}
	l0, err := d.level0(ctx)
	if err != nil {
		return err
	}
	switch l0.SSC() {
	case discovery.SSCPyriteV1, discovery.SSCPyriteV2:
		return withCode(ExitUnsupported, fmt.Errorf("%s is a %v drive: it has no locking ranges besides the global range (0), so range %d does not exist", d.spec, l0.SSC(), n),
			"Pyrite drives lock the whole drive only: use range 0")
	}
	return nil
}

// requireMBR refuses shadow MBR commands on a drive without one.
func (d *device) requireMBR(ctx context.Context) error {
	l0, err := d.level0(ctx)
	if err != nil {
		return err
	}
	if l0.Locking == nil || l0.Locking.MBRShadowingNotSupported {
		return withCode(ExitUnsupported, fmt.Errorf("%s (%v) has no shadow MBR", d.spec, l0.SSC()), "")
	}
	return nil
}
