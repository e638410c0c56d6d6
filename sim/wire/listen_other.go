//go:build !linux

package wire

import "syscall"

// restrictMode does nothing where bind(2) ignores the socket's own mode;
// Listen chmods the socket file right after creating it.
func restrictMode(_, _ string, _ syscall.RawConn) error { return nil }
