//go:build linux && (amd64 || arm64 || riscv64)

package resume

import "golang.org/x/sys/unix"

func memfdSecret() (int, error) { return unix.MemfdSecret(unix.O_CLOEXEC) }
