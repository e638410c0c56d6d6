package resume

import (
	"fmt"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// mapSecret maps size bytes of secret memory: memfd_secret(2) (Linux 5.14,
// CONFIG_SECRETMEM, on by default since 6.5), else an mlocked anonymous
// mapping. Both are MADV_DONTDUMP, and MADV_WIPEONFORK where possible.
func mapSecret(size int) ([]byte, string, func() error, error) {
	if fd, err := memfdSecret(); err == nil {
		mem, merr := mapSecretFD(fd, size)
		unix.Close(fd) // the mapping keeps the memory
		if merr == nil {
			return mem, "memfd_secret", func() error { return unix.Munmap(mem) }, nil
		}
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, "", nil, fmt.Errorf("mmap: %w", err)
	}
	if err := unix.Mlock(mem); err != nil {
		unix.Munmap(mem)
		return nil, "", nil, fmt.Errorf("mlock %d bytes (raise LimitMEMLOCK or run as root): %w", size, err)
	}
	_ = unix.Madvise(mem, unix.MADV_DONTDUMP)
	_ = unix.Madvise(mem, unix.MADV_WIPEONFORK)
	return mem, "mlock", func() error { return unix.Munmap(mem) }, nil
}

func mapSecretFD(fd, size int) ([]byte, error) {
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	// Fault every page in now: secretmem allocates on first access and
	// raises SIGBUS there if it cannot (neither mlock nor
	// MADV_POPULATE_WRITE work on it); touch turns that into an error,
	// and the caller falls back to the anonymous mapping. The pages are
	// locked and left out of core dumps by secretmem itself.
	if err := touch(mem); err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	return mem, nil
}

// touch writes to every page of mem, returning a fault as an error.
func touch(mem []byte) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("secret memory fault: %v", r)
		}
	}()
	page := os.Getpagesize()
	for i := 0; i < len(mem); i += page {
		mem[i] = 0
	}
	return nil
}
