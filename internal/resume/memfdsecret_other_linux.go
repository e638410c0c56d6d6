//go:build linux && !(amd64 || arm64 || riscv64)

package resume

import "golang.org/x/sys/unix"

// memfdSecret is not wired up for this architecture in x/sys.
func memfdSecret() (int, error) { return -1, unix.ENOSYS }
