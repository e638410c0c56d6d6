//go:build !linux

package image

import (
	"context"
	"errors"
)

// Image is a filesystem image mounted read-only; only Linux has them.
type Image struct{}

var errUnsupported = errors.New("attaching images needs Linux (loop devices and the new mount API)")

// Attach is not supported outside Linux.
func Attach(ctx context.Context, path string, opts Options) (*Image, error) {
	return nil, errUnsupported
}

// Type is the filesystem type.
func (im *Image) Type() string { return "" }

// Device is the loop device.
func (im *Image) Device() string { return "" }

// Root is the root directory fd.
func (im *Image) Root() int { return -1 }

// Path names the root directory.
func (im *Image) Path() string { return "" }

// Close does nothing.
func (im *Image) Close() error { return nil }
