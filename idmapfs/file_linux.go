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
	node  *Node
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

// passthroughFile is a File whose reads and writes the kernel sends straight
// to the backing file.
type passthroughFile struct {
	*File
	backing int // a read-write descriptor registered as the backing file, or -1
}

// newFile wraps fd, just opened with flags on node n. wantPT says whether
// passthrough is worth it for this handle when the node's other handles
// leave the choice open.
func (n *Node) newFile(fd int, flags uint32, wantPT bool) (fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	h := &File{fsys: f, node: n, flags: flags, fd: fd}
	// No FLUSH on close(2): every write is already in the backing file
	// (passthrough or write-through), so a flush has nothing to report,
	// and it costs a round trip per close. With --writeback the kernel
	// still writes dirty pages back before close returns.
	fuseFlags := uint32(fuse.FOPEN_NOFLUSH)
	if f.opts.DirectIO {
		h.mode = ioDirect
		return h, fuseFlags | fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES, 0
	}
	n.ioMu.Lock()
	defer n.ioMu.Unlock()
	pt := f.passthrough && (n.ptOpen > 0 || (n.cachedOpen == 0 && wantPT && f.canPassthrough(fd, flags)))
	if pt {
		n.ptOpen++
		h.mode = ioPassthrough
		return &passthroughFile{File: h, backing: -1}, fuseFlags, 0
	}
	n.cachedOpen++
	h.mode = ioCached
	if f.opts.Writeback {
		// The kernel's page cache is the only writer: keep it across
		// opens.
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
	if p.flags&unix.O_ACCMODE == unix.O_RDWR || p.fsys.opts.ReadOnly {
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
	if n := h.node; n != nil {
		n.ioMu.Lock()
		switch h.mode {
		case ioPassthrough:
			n.ptOpen--
		case ioCached:
			n.cachedOpen--
		}
		n.ioMu.Unlock()
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
