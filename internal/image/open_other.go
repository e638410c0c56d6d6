//go:build !linux

package image

import "os"

func openNoatime(path string) (*os.File, error) { return os.Open(path) }
