//go:build !linux

package expose

import (
	"fmt"
	"log/slog"
)

// Options tune Mount.
type Options struct {
	Source     string
	AllowOther bool
	Logger     *slog.Logger
	Debug      bool
}

// Disk is a mounted exposure of a Device (Linux only).
type Disk struct{}

// Mount fails: exposing a drive needs Linux FUSE.
func Mount(dir string, dev Device, opts *Options) (*Disk, error) {
	return nil, fmt.Errorf("expose %s: %w", dir, ErrNotSupported)
}

// Path returns "".
func (d *Disk) Path() string { return "" }

// Size returns 0.
func (d *Disk) Size() int64 { return 0 }

// Unmounted returns a closed channel.
func (d *Disk) Unmounted() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Close does nothing.
func (d *Disk) Close() error { return nil }
