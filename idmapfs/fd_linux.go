package idmapfs

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// A node acts on its backing inode through an O_PATH descriptor, so that no
// operation resolves a path the container controls. A file's node opens it
// on first use (a lookup only stats the name); a directory's at lookup.
// Descriptors are a bounded resource (RLIMIT_NOFILE, which a sandboxed root
// may not raise), while the kernel may cache far more inodes. So a node's
// descriptor can be evicted when it is idle, and reopened on its next use by
// name from its parent, which is itself a node with a descriptor (or
// reopened the same way, up to the root, which is never evicted). A reopen
// is accepted only if it finds the same inode (device and inode number).
//
// refs counts 1 while the node holds its descriptor (hasFd) plus one per
// operation in flight; the descriptor is closed when refs drops to 0. fdMu
// serialises the changes of hasFd. Lock order: FS.mu before Node.fdMu, and
// a child's fdMu before its parent's.

// tryGet pins the node's descriptor for one operation, if it has one.
func (n *Node) tryGet() (int, bool) {
	for {
		r := n.refs.Load()
		if r <= 0 {
			return -1, false
		}
		if n.refs.CompareAndSwap(r, r+1) {
			if !n.used.Load() {
				n.used.Store(true)
			}
			return n.fd, true
		}
	}
}

// get pins the node's descriptor for one operation, reopening it if it was
// evicted. A node whose descriptor was closed by OnForget can come back
// too: go-fuse may hand it to the kernel again when a lookup raced with the
// forget.
func (n *Node) get() (int, syscall.Errno) {
	if fd, ok := n.tryGet(); ok {
		return fd, 0
	}
	return n.revive()
}

// put ends an operation started with get or tryGet.
func (n *Node) put() {
	fd := n.fd // stable while we hold a reference
	if n.refs.Add(-1) == 0 {
		unix.Close(fd)
		n.fsys.openFds.Add(-1)
	}
}

func (n *Node) revive() (int, syscall.Errno) {
	f := n.fsys
	n.fdMu.Lock()
	if fd, ok := n.tryGet(); ok {
		n.fdMu.Unlock()
		return fd, 0
	}
	if n == f.root {
		n.fdMu.Unlock()
		return -1, syscall.ESTALE
	}
	fd, e := n.reopenByName()
	if e != 0 {
		n.fdMu.Unlock()
		return -1, e
	}
	n.fd = fd
	n.hasFd = true
	n.refs.Store(2) // the node's own reference and this operation's
	f.openFds.Add(1)
	wasForgotten := n.forgotten
	n.forgotten = false
	n.fdMu.Unlock()
	if wasForgotten {
		f.mu.Lock()
		if f.nodes[n.key] == nil {
			f.nodes[n.key] = n
		}
		f.mu.Unlock()
	}
	f.maybeEvict()
	return fd, 0
}

// reopenByName opens the node's inode again through its parent.
func (n *Node) reopenByName() (int, syscall.Errno) {
	name, parent := n.Parent()
	p, ok := parentNode(parent)
	if !ok || p == n {
		return -1, syscall.ESTALE
	}
	pfd, e := p.get()
	if e != 0 {
		return -1, e
	}
	fd, err := openBeneath(pfd, name, unix.O_PATH, 0)
	p.put()
	if err != nil {
		return -1, syscall.ESTALE
	}
	var st unix.Stat_t
	birth, err := statAt(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, &st)
	if err != nil || (devIno{st.Dev, st.Ino}) != n.key || !n.sameInode(&st, birth) {
		unix.Close(fd)
		return -1, syscall.ESTALE
	}
	return fd, 0
}

// adopt is called under FS.mu when a lookup found the inode n already
// stands for, opened as fd. It reports whether n is still that inode (and
// takes fd or closes it); false means the inode number was reused.
func (n *Node) adopt(fd int, st *unix.Stat_t, birth int64) bool {
	n.fdMu.Lock()
	defer n.fdMu.Unlock()
	if n.forgotten || !n.sameInode(st, birth) {
		return false
	}
	if pfd, ok := n.tryGet(); ok {
		var pst unix.Stat_t
		same := fstatPath(pfd, &pst) == nil && pst.Nlink > 0
		n.put()
		if same && fd >= 0 {
			unix.Close(fd)
		}
		return same
	}
	// Without a descriptor (evicted, or never opened): a fresh descriptor
	// of the same inode becomes the node's.
	if fd >= 0 {
		n.fd = fd
		n.hasFd = true
		n.refs.Store(1)
		n.fsys.openFds.Add(1)
	}
	return true
}

// sameInode reports whether st (with birth time birth) is the inode n
// stands for: same type, and the same birth time where both are known. An
// inode number alone can be reused by a new file at any moment.
func (n *Node) sameInode(st *unix.Stat_t, birth int64) bool {
	if st.Mode&unix.S_IFMT != n.typ {
		return false
	}
	return n.birth == 0 || birth == 0 || n.birth == birth
}

// dropFd gives up the node's own reference to its descriptor. With force
// it does so even while operations are in flight (the descriptor closes
// when they end); otherwise only an idle node is evicted.
func (n *Node) dropFd(force bool) bool {
	n.fdMu.Lock()
	defer n.fdMu.Unlock()
	if !n.hasFd {
		return false
	}
	if force {
		n.hasFd = false
		n.put()
		return true
	}
	if n.refs.CompareAndSwap(1, 0) {
		n.hasFd = false
		unix.Close(n.fd)
		n.fsys.openFds.Add(-1)
		return true
	}
	return false
}

// OnForget runs when the kernel has dropped every reference to the node.
func (n *Node) OnForget() {
	f := n.fsys
	f.mu.Lock()
	if f.nodes[n.key] == n {
		delete(f.nodes, n.key)
	}
	f.mu.Unlock()
	n.fdMu.Lock()
	n.forgotten = true
	n.fdMu.Unlock()
	n.dropFd(true)
}

// setFdLimits sets the eviction thresholds from the descriptor limit.
func (f *FS) setFdLimits(limit int64) {
	if limit < 256 {
		limit = 256
	}
	// Leave room for open files, directories being read and the runtime.
	f.fdHigh = limit * 3 / 4
	f.fdLow = limit / 2
}

// maybeEvict starts an eviction sweep when too many descriptors are open.
func (f *FS) maybeEvict() {
	if f.fdHigh == 0 || f.openFds.Load() < f.fdHigh {
		return
	}
	if !f.sweeping.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer f.sweeping.Store(false)
		f.sweep()
	}()
}

// sweep closes idle descriptors until at most fdLow are open: first those
// of nodes not used since the last sweep, files before directories (a
// directory's descriptor serves all its children), then any idle ones.
func (f *FS) sweep() {
	f.mu.Lock()
	nodes := make([]*Node, 0, len(f.nodes))
	for _, n := range f.nodes {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	for pass := 0; pass < 4; pass++ {
		recentToo, dirs := pass >= 2, pass%2 == 1
		for _, n := range nodes {
			if f.openFds.Load() <= f.fdLow {
				return
			}
			if n.isDir != dirs || n.hasOpenFiles() {
				continue
			}
			if n.used.Swap(false) && !recentToo {
				continue
			}
			n.dropFd(false)
		}
	}
}

func (n *Node) hasOpenFiles() bool {
	n.ioMu.Lock()
	defer n.ioMu.Unlock()
	return n.ptOpen+n.cachedOpen > 0
}

// retryEMFILE runs open; if the process is out of descriptors, it evicts
// idle node descriptors and tries once more.
func (f *FS) retryEMFILE(open func() (int, error)) (int, error) {
	fd, err := open()
	if err == unix.EMFILE || err == unix.ENFILE { //nolint:errorlint // raw errno
		f.log.Warn("out of file descriptors; closing idle ones", "open", f.openFds.Load())
		f.sweep()
		fd, err = open()
	}
	return fd, err
}

// EvictIdle closes the descriptors of every idle node (none of whose
// operations or open files is in flight) and returns how many it closed.
// The nodes reopen them by name when next used.
func (f *FS) EvictIdle() int {
	f.mu.Lock()
	nodes := make([]*Node, 0, len(f.nodes))
	for _, n := range f.nodes {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	closed := 0
	for _, n := range nodes {
		if !n.hasOpenFiles() && n.dropFd(false) {
			closed++
		}
	}
	return closed
}
