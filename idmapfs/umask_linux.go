package idmapfs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The kernel applies the caller's umask before a create reaches a FUSE
// filesystem, unless the filesystem asks for FUSE_DONT_MASK. That is wrong
// in a directory with a default ACL, where a local filesystem ignores the
// umask and masks the mode with the ACL instead. idmapfs asks for the
// unmasked mode and the umask, and lets the backing filesystem decide, by
// creating with the process umask set to the caller's.
//
// go-fuse's node API passes the mode but not the umask, so rawFS carries the
// umask to the node in the mode word's unused high bits.

const (
	umaskFlag  = 1 << 31
	umaskShift = 20
)

func stashUmask(mode, umask uint32) uint32 {
	return mode&0xFFFF | (umask&0o777)<<umaskShift | umaskFlag
}

// splitUmask returns the plain mode and, when the request carried one, the
// caller's umask.
func splitUmask(mode uint32) (plain, umask uint32, ok bool) {
	if mode&umaskFlag == 0 {
		return mode & 0xFFFF, 0, false
	}
	return mode & 0xFFFF, (mode >> umaskShift) & 0o777, true
}

// rawFS stashes the umask of every creating request into its mode.
type rawFS struct{ fuse.RawFileSystem }

func (r rawFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	in.Mode = stashUmask(in.Mode, in.Umask)
	return r.RawFileSystem.Create(cancel, in, name, out)
}

func (r rawFS) Tmpfile(cancel <-chan struct{}, in *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	in.Mode = stashUmask(in.Mode, in.Umask)
	return r.RawFileSystem.Tmpfile(cancel, in, out)
}

func (r rawFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	in.Mode = stashUmask(in.Mode, in.Umask)
	return r.RawFileSystem.Mkdir(cancel, in, name, out)
}

func (r rawFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	in.Mode = stashUmask(in.Mode, in.Umask)
	return r.RawFileSystem.Mknod(cancel, in, name, out)
}

// withUmask runs a create with the process umask set to the caller's. The
// umask is shared by all of the daemon's threads, so creates serialise
// here; the daemon's umask is 0 otherwise.
func (f *FS) withUmask(mode uint32, fn func(mode uint32) error) error {
	plain, umask, ok := splitUmask(mode)
	f.umaskMu.Lock()
	defer f.umaskMu.Unlock()
	if ok && umask != 0 {
		syscall.Umask(int(umask))
		defer syscall.Umask(0)
	}
	return fn(plain)
}
