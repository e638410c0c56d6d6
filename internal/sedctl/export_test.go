package sedctl

import (
	"context"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/transport"
	"github.com/shiftlock/shiftlock/tcg/transport/sedioctl"
)

// SetKernelForTest puts open behind --via kernel's sed-opal ioctls and
// identify behind its identity reads (the serial that salts the hashes)
// until the test ends.
func SetKernelForTest(t testing.TB, open func(string) (*sedioctl.Kernel, error), identify func(context.Context, string) (transport.Identity, error)) {
	oldOpen, oldIdentify := openSedIoctlKernel, identifyKernelDevice
	openSedIoctlKernel, identifyKernelDevice = open, identify
	t.Cleanup(func() { openSedIoctlKernel, identifyKernelDevice = oldOpen, oldIdentify })
}
