package wire

import (
	"errors"
	"os"
	"syscall"
)

// restrictMode is a net.ListenConfig.Control hook: it runs on the new socket
// before bind(2), and on Linux the socket file that bind creates takes the
// socket inode's mode (less the umask), so fchmod here leaves no moment in
// which the socket is open to others.
func restrictMode(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		for {
			err = syscall.Fchmod(int(fd), 0o600)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return os.NewSyscallError("fchmod", err)
	}
	return nil
}
