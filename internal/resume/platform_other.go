//go:build !linux

package resume

import (
	"errors"
	"net"
)

var errNotLinux = errors.New("unlock on resume needs Linux")

func mapSecret(size int) ([]byte, string, func() error, error) {
	return make([]byte, size), "heap", nil, nil
}

// Harden is Linux-only.
func Harden() (HardenReport, error) { return HardenReport{}, errNotLinux }

func peerCred(c net.Conn) (Peer, error) { return Peer{}, errNotLinux }

type sysClock struct{}

func (sysClock) Suspended() (int64, error) { return 0, errNotLinux }
