package sedctl

// The kernel path of unlock on resume: tcg/transport/sedioctl adapted to
// internal/resume's kernel.Opal (Probe and Save), opened for block devices
// only.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/shiftlock/shiftlock/internal/resume/kernel"
	"github.com/shiftlock/shiftlock/tcg/transport/sedioctl"
)

// openSedIoctlKernel opens a block device's sed-opal ioctls; a variable so
// that tests can put a fake kernel behind it.
var openSedIoctlKernel = sedioctl.Open

// openKernelOpal opens the kernel's sed-opal facility for a device: the
// kernel path of unlock on resume. sedsim sockets and devices the kernel
// does not drive with Opal give an error wrapping kernel.ErrUnsupported,
// and enable then takes the daemon path.
func openKernelOpal(ctx context.Context, device string) (kernel.Opal, error) {
	if strings.HasPrefix(device, "sim:") {
		return nil, fmt.Errorf("%s is a sedsim socket, which the kernel does not know: %w", device, kernel.ErrUnsupported)
	}
	if fi, err := os.Stat(device); err == nil && fi.Mode().Type() == fs.ModeSocket {
		return nil, fmt.Errorf("%s is a sedsim socket, which the kernel does not know: %w", device, kernel.ErrUnsupported)
	}
	k, err := openSedIoctlKernel(device)
	if err != nil {
		return nil, kernelUnsupported(err)
	}
	return kernelOpal{k}, nil
}

// kernelUnsupported marks the errors that mean "no kernel path here" (no
// sed-opal in the kernel, no Opal drive behind the device, a kernel before
// 6.0 without IOC_OPAL_GET_STATUS) so that enable falls back to the daemon.
func kernelUnsupported(err error) error {
	if errors.Is(err, sedioctl.ErrNoKernelSupport) || errors.Is(err, sedioctl.ErrNotOpal) || errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("%w (%w)", kernel.ErrUnsupported, err)
	}
	return err
}

// kernelOpal is a sedioctl.Kernel as internal/resume's kernel.Opal.
type kernelOpal struct{ k *sedioctl.Kernel }

func (o kernelOpal) Probe(ctx context.Context) (kernel.Status, error) {
	st, err := o.k.Status(ctx)
	if err != nil {
		return kernel.Status{}, kernelUnsupported(err)
	}
	return kernel.Status{Flags: uint32(st.Flags)}, nil
}

func (o kernelOpal) Save(ctx context.Context, lu kernel.LockUnlock) error {
	l, err := toSedioctl(lu)
	if err != nil {
		return err
	}
	return o.k.Save(ctx, l) // Save wipes its copy
}

func (o kernelOpal) Close() error { return o.k.Close() }

// toSedioctl is kernel.LockUnlock as struct opal_lock_unlock. The caller
// wipes the result (sedioctl's calls do).
func toSedioctl(lu kernel.LockUnlock) (sedioctl.LockUnlock, error) {
	if err := lu.Validate(); err != nil {
		return sedioctl.LockUnlock{}, err
	}
	key, err := sedioctl.NewKey(lu.LR, lu.Key)
	if err != nil {
		return sedioctl.LockUnlock{}, err
	}
	l := sedioctl.LockUnlock{
		Session: sedioctl.SessionInfo{Who: sedioctl.User(lu.Who), Key: key},
		LState:  sedioctl.LockState(lu.State),
		Flags:   lu.Flags,
	}
	if lu.SUM {
		l.Session.SUM = 1
	}
	return l, nil
}
