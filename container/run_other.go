//go:build !linux

package container

import (
	"context"
	"errors"
)

// errUnsupported is returned by Run on systems without Linux namespaces.
var errUnsupported = errors.New("idmapfs run needs Linux user, mount and pid namespaces")

// Run is only implemented on Linux.
func Run(ctx context.Context, cfg Config) (int, error) {
	if _, err := initSettings(&cfg); err != nil {
		return ExitSetupFailed, err
	}
	return ExitSetupFailed, errUnsupported
}

// MaybeInit does nothing outside Linux.
func MaybeInit() {}
