package idmapfs

import (
	"errors"
	"log/slog"
	"syscall"

	"github.com/shiftlock/shiftlock/idmap"
)

// toErrno converts an error from the backing tree into the errno FUSE
// returns. Errnos pass through; our own sentinels map on purpose; anything
// else is logged and becomes EIO.
func toErrno(log *slog.Logger, op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	switch {
	case errors.Is(err, idmap.ErrUnmapped):
		return syscall.EOVERFLOW
	case errors.Is(err, idmap.ErrBadXattr):
		return syscall.EINVAL
	}
	log.Error("unexpected error", "op", op, "error", err)
	return syscall.EIO
}
