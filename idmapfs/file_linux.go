package idmapfs

import (
	"context"
	"sync"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }

// File is an open regular file of the backing tree.
type File struct {
	fsys  *FS
	io    *ioState // of the file's node
	flags uint32
	mu    sync.Mutex
	fd    int
	mode  ioMode
}

// ioMode is how the kernel does I/O on a handle. The kernel refuses to mix
// passthrough and page-cache handles of one inode, so a node's handles
// all share one mode while any is open.
type ioMode uint8

const (
	ioCached ioMode = iota
	ioPassthrough
	ioDirect
)

var (
	_ fs.FileReader          = (*File)(nil)
	_ fs.FileWriter          = (*File)(nil)
	_ fs.FileFsyncer         = (*File)(nil)
	_ fs.FileReleaser        = (*File)(nil)
	_ fs.FilePassthroughFder = (*File)(nil)
)

// ioState tracks the I/O mode of the open handles of one inode.
type ioState struct {
	ioMu       sync.Mutex
	ptOpen     int  // open passthrough handles
	cachedOpen int  // open page-cache handles
	ptLower    bool // overlay mode: the passthrough handles share a lower's read-only file
}

// passthroughFile is a File whose reads and writes the kernel sends straight
// to the backing file.
type passthroughFile struct {
	*File
	backing int  // a read-write descriptor registered as the backing file, or -1
	lower   bool // fd is a lower layer's file: never opened for writing
}

// newFile wraps fd, just opened with flags on node n. wantPT says whether
// passthrough is worth it for this handle when the node's other handles
// leave the choice open.
func (n *Node) newFile(fd int, flags uint32, wantPT bool) (fs.FileHandle, uint32, syscall.Errno) {
	return n.fsys.newHandle(&n.ioState, fd, flags, wantPT, false)
}

// newHandle wraps fd, just opened with flags, as a handle of the inode
// whose handles io tracks. wantPT says whether passthrough is worth it for
// this handle when the inode's other handles leave the choice open; lower
// says fd is a lower layer's file (overlay mode), which is only read.
//
// In overlay mode, while the passthrough handles of an inode share a
// lower's read-only file, nothing may change the file's data: the kernel
// would go on reading the lower copy through them, and a handle that
// writes can neither share their backing file nor use another I/O mode. Such
// an open fails with ETXTBSY, as it would on a running executable;
// overlayNode checks it before it copies up or truncates.
func (f *FS) newHandle(io *ioState, fd int, flags uint32, wantPT, lower bool) (fs.FileHandle, uint32, syscall.Errno) {
	h := &File{fsys: f, io: io, flags: flags, fd: fd}
	// No FLUSH on close(2): every write is already in the backing file
	// (passthrough or write-through), so a flush has nothing to report,
	// and it costs a round trip per close. With --writeback the kernel
	// still writes dirty pages back before close returns.
	fuseFlags := uint32(fuse.FOPEN_NOFLUSH)
	if f.opts.DirectIO {
		h.mode = ioDirect
		return h, fuseFlags | fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES, 0
	}
	io.ioMu.Lock()
	defer io.ioMu.Unlock()
	if io.ptOpen > 0 && io.ptLower && flags&writeFlags != 0 {
		return nil, 0, syscall.ETXTBSY
	}
	pt := f.passthrough && (io.ptOpen > 0 || (io.cachedOpen == 0 && wantPT && f.canPassthrough(fd, flags)))
	if pt {
		if io.ptOpen == 0 {
			io.ptLower = lower
		}
		io.ptOpen++
		h.mode = ioPassthrough
		return &passthroughFile{File: h, backing: -1, lower: io.ptLower}, fuseFlags, 0
	}
	io.cachedOpen++
	h.mode = ioCached
	if f.opts.Writeback || (f.ov != nil && f.ov.upper == nil) {
		// The kernel's page cache is the only writer (or nothing
		// writes): keep it across opens.
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	return h, fuseFlags, 0
}

// canPassthrough refuses passthrough for a writable handle on a setuid or
// setgid-executable file: the kernel writes a passthrough file with the
// daemon's credentials, so it would not clear those bits as a write by the
// caller must.
func (f *FS) canPassthrough(fd int, flags uint32) bool {
	if flags&(unix.O_WRONLY|unix.O_RDWR) == 0 {
		return true
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	if st.Mode&unix.S_ISUID != 0 || st.Mode&(unix.S_ISGID|unix.S_IXGRP) == unix.S_ISGID|unix.S_IXGRP {
		return false
	}
	return true
}

// PassthroughFd gives go-fuse the descriptor to register as the node's
// backing file. go-fuse registers one backing file per inode and shares it
// with every later passthrough handle, so it must allow writing even when
// this handle does not: a read-write descriptor where one can be had.
func (p *passthroughFile) PassthroughFd() (int, bool) {
	p.fsys.probePassthrough(p.fd)
	if p.flags&unix.O_ACCMODE == unix.O_RDWR || p.fsys.opts.ReadOnly || p.lower {
		return p.fd, true
	}
	if p.backing < 0 {
		if fd, err := reopen(p.fd, unix.O_RDWR); err == nil {
			p.backing = fd
		}
	}
	if p.backing >= 0 {
		return p.backing, true
	}
	return p.fd, true
}

// probePassthrough registers the first backing file once on its own, so that
// a kernel refusal is logged: go-fuse turns passthrough off for the whole
// mount after the first failed registration without saying so.
func (f *FS) probePassthrough(fd int) {
	f.passthroughOnce.Do(func() {
		if f.server == nil {
			return
		}
		id, errno := f.server.RegisterBackingFd(&fuse.BackingMap{Fd: int32(fd)})
		if errno != 0 {
			f.log.Warn("FUSE passthrough refused by the kernel; regular-file I/O goes through the daemon",
				"error", errno.Error())
			return
		}
		f.server.UnregisterBackingFd(id)
	})
}

func (p *passthroughFile) Release(ctx context.Context) syscall.Errno {
	if p.backing >= 0 {
		unix.Close(p.backing)
		p.backing = -1
	}
	return p.File.Release(ctx)
}

func (h *File) PassthroughFd() (int, bool) { return 0, false }

func (h *File) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultFd(uintptr(h.fd), off, len(dest)), 0
}

func (h *File) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	var n int
	err := retryEINTR(func() error {
		var err error
		n, err = unix.Pwrite(h.fd, data, off)
		return err
	})
	if err != nil {
		return uint32(n), toErrno(h.fsys.log, "write", err)
	}
	return uint32(n), 0
}

func (h *File) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	var err error
	if flags&1 != 0 {
		err = retryEINTR(func() error { return unix.Fdatasync(h.fd) })
	} else {
		err = retryEINTR(func() error { return unix.Fsync(h.fd) })
	}
	if err != nil {
		return toErrno(h.fsys.log, "fsync", err)
	}
	return 0
}

func (h *File) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fd < 0 {
		return syscall.EBADF
	}
	err := unix.Close(h.fd)
	h.fd = -1
	if io := h.io; io != nil {
		io.ioMu.Lock()
		switch h.mode {
		case ioPassthrough:
			io.ptOpen--
			if io.ptOpen == 0 {
				io.ptLower = false
			}
		case ioCached:
			io.cachedOpen--
		}
		io.ioMu.Unlock()
	}
	if err != nil {
		return toErrno(h.fsys.log, "close", err)
	}
	return 0
}

func fileOf(fh fs.FileHandle) *File {
	switch h := fh.(type) {
	case *File:
		return h
	case *passthroughFile:
		return h.File
	}
	return nil
}
