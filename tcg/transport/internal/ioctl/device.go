package ioctl

import (
	"context"
	"math"
	"os"
	"time"
)

// DescribeMode names the kind of file a mode describes, for errors about a
// path that should have been a device node.
func DescribeMode(m os.FileMode) string {
	switch {
	case m&os.ModeDevice != 0 && m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a device"
}

// TimeoutMS returns a command timeout in milliseconds for ctx: the time
// left to its deadline (at least 1 ms), or def without a deadline.
func TimeoutMS(ctx context.Context, def uint32) uint32 {
	dl, ok := ctx.Deadline()
	if !ok {
		return def
	}
	ms := time.Until(dl).Milliseconds()
	return uint32(min(max(ms, 1), math.MaxUint32))
}
