package resume

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Harden prepares the daemon's process to hold keys: no core dumps
// (RLIMIT_CORE 0), not dumpable (PR_SET_DUMPABLE 0: no core, no ptrace
// attach by non-root, /proc/PID/mem root-only), and all memory locked
// (mlockall, MCL_ONFAULT where the kernel has it). A failed mlockall is reported, not fatal: the keys themselves
// live in a Vault, which is locked on its own.
func Harden() (HardenReport, error) {
	var r HardenReport
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return r, fmt.Errorf("setrlimit RLIMIT_CORE 0: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return r, fmt.Errorf("prctl PR_SET_DUMPABLE 0: %w", err)
	}
	// MCL_ONFAULT (4.4) locks pages as they are touched instead of
	// populating every mapping now: the Go runtime maps its heap arenas
	// in 64 MiB pieces, which would otherwise all become resident.
	err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE)
	}
	if err != nil {
		r.LockErr = fmt.Errorf("mlockall: %w", err)
	} else {
		r.LockedAll = true
	}
	return r, nil
}

// peerCred reads the credentials of the process at the other end of a Unix
// socket connection (SO_PEERCRED: as of connect(2), set by the kernel).
func peerCred(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("peer credentials: %T is not a Unix socket", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", os.NewSyscallError("getsockopt SO_PEERCRED", serr))
	}
	return Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}, nil
}

// sysClock reads the kernel's clocks.
type sysClock struct{}

// Suspended returns CLOCK_BOOTTIME - CLOCK_MONOTONIC in nanoseconds: the
// time spent suspended since boot, which only grows across a suspend.
func (sysClock) Suspended() (int64, error) {
	var boot, mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
		return 0, fmt.Errorf("clock_gettime CLOCK_BOOTTIME: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return 0, fmt.Errorf("clock_gettime CLOCK_MONOTONIC: %w", err)
	}
	return boot.Nano() - mono.Nano(), nil
}
