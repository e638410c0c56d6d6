package wire

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrSocketInUse is returned by Listen when a server already answers on the
// socket path.
var ErrSocketInUse = errors.New("another server is listening on the socket")

// Listen creates the Unix socket path for Serve, mode 0600 (only its owner
// may connect). A socket left behind by a server that is gone is removed
// first; a live one gives ErrSocketInUse, and anything that is not a socket
// is left alone and reported. The listener removes the socket when closed.
func Listen(path string) (net.Listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// restrictMode sets the mode before bind(2), so no one can connect
	// while the socket is still open to the umask's permissions.
	lc := net.ListenConfig{Control: restrictMode}
	l, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, fmt.Errorf("opalwire listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("opalwire listen: %w", err)
	}
	return l, nil
}

// removeStale removes path if it is a socket that nobody answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opalwire listen: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("opalwire listen: %s exists and is not a socket; remove it or choose another path", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("opalwire listen: %s: %w", path, ErrSocketInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("opalwire listen: probing the existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("opalwire listen: removing the stale socket: %w", err)
	}
	return nil
}
