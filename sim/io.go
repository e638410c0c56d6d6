package sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shiftlock/shiftlock/sim/media"
	simwire "github.com/shiftlock/shiftlock/sim/wire"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Byte tables (MBR, DataStore) live in their own encrypted file, one
// region per table, in chunks of chunkSize bytes. A chunk never written
// since the table was last reset reads as zeros (the state records which
// chunks hold data): Activate and Revert empty a table by forgetting its
// chunks and replacing its key.
const (
	tableBlockSize = 512
	chunkSize      = 64 << 10
	chunkBlocks    = chunkSize / tableBlockSize
)

func (st *driveState) tableSize(i int) uint64 {
	if i == tableMBR {
		return st.Config.MBRSize
	}
	return st.Config.DataStoreSize
}

func (st *driveState) tableChunks(i int) uint64 {
	return (st.tableSize(i) + chunkSize - 1) / chunkSize
}

// tableBase returns the first chunk of table i in the tables file.
func (st *driveState) tableBase(i int) uint64 {
	if i == tableMBR {
		return 0
	}
	return st.tableChunks(tableMBR)
}

// openMedia opens (create: creates) the media and tables files and loads
// the keys.
func (d *Drive) openMedia(create bool) error {
	cfg := &d.st.Config
	open := func(name string, bs uint32, blocks uint64) (*media.Media, error) {
		path := filepath.Join(d.dir, name)
		if !create {
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("open drive %s: the drive's %s file is missing: %w", d.dir, name, err)
			}
		}
		return media.Open(path, bs, blocks)
	}
	var err error
	if d.media, err = open(mediaName, cfg.BlockSize, cfg.Blocks); err != nil {
		return err
	}
	if n := d.st.tableChunks(tableMBR) + d.st.tableChunks(tableDataStore); n > 0 {
		if d.tableMedia, err = open(tablesName, tableBlockSize, n*chunkBlocks); err != nil {
			d.media.Close()
			return err
		}
	}
	if err := d.loadKeys(); err != nil {
		d.closeMedia()
		return fmt.Errorf("open drive %s: %w", d.dir, err)
	}
	return nil
}

func (d *Drive) closeMedia() error {
	err := d.media.Close()
	if d.tableMedia != nil {
		if terr := d.tableMedia.Close(); err == nil {
			err = terr
		}
	}
	for _, k := range d.keys {
		if k != nil {
			k.Wipe()
		}
	}
	for _, k := range d.tableKeys {
		if k != nil {
			k.Wipe()
		}
	}
	return err
}

// loadKeys rebuilds the media keys from the state and wipes the old ones.
func (d *Drive) loadKeys() error {
	keys := make([]*media.Key, len(d.st.RangeKeys))
	for i, b := range d.st.RangeKeys {
		if b == nil {
			continue
		}
		k, err := media.KeyFromBytes(b)
		if err != nil {
			return fmt.Errorf("media key of range %d: %w", i, err)
		}
		keys[i] = k
	}
	var tk [2]*media.Key
	for i, t := range d.st.Tables {
		k, err := media.KeyFromBytes(t.Key)
		if err != nil {
			return fmt.Errorf("byte table key: %w", err)
		}
		tk[i] = k
	}
	d.ioMu.Lock()
	old, oldT := d.keys, d.tableKeys
	d.keys, d.tableKeys = keys, tk
	d.ioMu.Unlock()
	for _, k := range append(old, oldT[:]...) {
		if k != nil {
			k.Wipe()
		}
	}
	return nil
}

// rekey gives range i a new media key (crypto-erase of the range).
func (d *Drive) rekey(i int) {
	if !d.st.Config.Profile.encrypts() {
		return
	}
	k := media.NewKey()
	d.st.RangeKeys[i] = k.Bytes()
	d.dirty = true
	d.ioMu.Lock()
	old := d.keys[i]
	d.keys[i] = k
	d.ioMu.Unlock()
	if old != nil {
		old.Wipe()
	}
}

// eraseMedia makes every block read as zeros: the block erase of a Pyrite
// drive, which has no keys to replace. The sparse media file is cut to
// nothing and grown again.
func (d *Drive) eraseMedia() error {
	d.ioMu.Lock()
	defer d.ioMu.Unlock()
	path := filepath.Join(d.dir, mediaName)
	size := int64(d.st.Config.Blocks) * int64(d.st.Config.BlockSize)
	if err := os.Truncate(path, 0); err != nil {
		return fmt.Errorf("erase media: %w", err)
	}
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("erase media: %w", err)
	}
	return d.media.Sync()
}

// errIO builds the error of a refused transfer.
func errIO(op string, lba uint64, why string, err error) error {
	return fmt.Errorf("%s lba %d: %s: %w", op, lba, why, err)
}

// A segment is a piece of a transfer that maps to one key, or to the
// shadow MBR.
type segment struct {
	lba    uint64 // first block
	blocks uint64
	key    *media.Key
	mbr    bool
}

// plan splits a transfer of count blocks at lba into segments and checks
// the locks. The caller holds d.mu.
func (d *Drive) plan(op string, lba, count uint64, write bool) ([]segment, error) {
	cfg := &d.st.Config
	if lba > cfg.Blocks || count > cfg.Blocks-lba {
		return nil, errIO(op, lba, fmt.Sprintf("%d blocks beyond the capacity of %d", count, cfg.Blocks), transport.ErrInvalidField)
	}
	l := &d.st.Locking
	active := d.st.active()
	pos, end := lba, lba+count
	var segs []segment
	if sh := d.shadowBlocks(); pos < sh && pos < end {
		if write {
			return nil, errIO(op, pos, "the shadow MBR is shown (MBR Enable and not Done) and is read-only", simwire.ErrAccessDenied)
		}
		n := min(end, sh)
		segs = append(segs, segment{lba: pos, blocks: n - pos, mbr: true})
		pos = n
	}
	for pos < end {
		i, runEnd := d.rangeAt(pos)
		runEnd = min(runEnd, end)
		if active {
			r := &l.Ranges[i]
			if !write && r.ReadLockEnabled && r.ReadLocked {
				return nil, errIO(op, pos, fmt.Sprintf("locking range %d is read-locked", i), simwire.ErrAccessDenied)
			}
			if write && r.WriteLockEnabled && r.WriteLocked {
				return nil, errIO(op, pos, fmt.Sprintf("locking range %d is write-locked", i), simwire.ErrAccessDenied)
			}
		}
		segs = append(segs, segment{lba: pos, blocks: runEnd - pos, key: d.keys[i]})
		pos = runEnd
	}
	return segs, nil
}

// shadowBlocks returns how many blocks from LBA 0 show the MBR table: its
// size in blocks while Enable and not Done, else 0.
func (d *Drive) shadowBlocks() uint64 {
	if !d.st.active() || !d.st.Config.Profile.hasMBR() {
		return 0
	}
	m := &d.st.Locking.MBR
	if !m.Enable || m.Done {
		return 0
	}
	bs := uint64(d.st.Config.BlockSize)
	return min((d.st.Config.MBRSize+bs-1)/bs, d.st.Config.Blocks)
}

// rangeAt returns the locking range that holds block lba and the first
// block after lba where that may change.
func (d *Drive) rangeAt(lba uint64) (int, uint64) {
	next := d.st.Config.Blocks
	for i, r := range d.st.Locking.Ranges {
		if i == 0 || r.Length == 0 {
			continue
		}
		if lba >= r.Start && lba-r.Start < r.Length {
			return i, r.Start + r.Length
		}
		if r.Start > lba && r.Start < next {
			next = r.Start
		}
	}
	return 0, next
}

// Read fills dst, a whole number of blocks, from lba. Blocks of a
// read-locked range fail with sim/wire's ErrAccessDenied; while the shadow
// MBR is shown, LBA 0 onwards return the MBR table.
func (d *Drive) Read(lba uint64, dst []byte) error {
	return d.transfer("read", lba, dst, false)
}

// Write stores data, a whole number of blocks, from lba. Blocks of a
// write-locked range, and the shadow MBR while it is shown, fail with
// sim/wire's ErrAccessDenied.
func (d *Drive) Write(lba uint64, data []byte) error {
	return d.transfer("write", lba, data, true)
}

// Sync commits written blocks to stable storage: an fsync of the media
// file (the drive's volatile write cache, flushed). The exposed disk's
// fsync calls it.
func (d *Drive) Sync() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.ioMu.RLock()
	d.mu.Unlock()
	defer d.ioMu.RUnlock()
	return d.media.Sync()
}

// ReadBlocks returns count blocks from lba (Read into a new buffer).
func (d *Drive) ReadBlocks(lba uint64, count uint32) ([]byte, error) {
	bs := d.Info().BlockSize
	buf := make([]byte, uint64(count)*uint64(bs))
	if err := d.Read(lba, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func (d *Drive) transfer(op string, lba uint64, buf []byte, write bool) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	bs := uint64(d.st.Config.BlockSize)
	if uint64(len(buf))%bs != 0 {
		d.mu.Unlock()
		return errIO(op, lba, fmt.Sprintf("%d bytes is not a whole number of %d-byte blocks", len(buf), bs), transport.ErrInvalidField)
	}
	segs, err := d.plan(op, lba, uint64(len(buf))/bs, write)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	for _, s := range segs {
		if s.mbr {
			part := buf[(s.lba-lba)*bs : (s.lba-lba+s.blocks)*bs]
			clear(part)
			off := s.lba * bs
			if size := d.st.Config.MBRSize; off < size {
				if err := d.tableRead(tableMBR, off, part[:min(uint64(len(part)), size-off)]); err != nil {
					d.mu.Unlock()
					return fmt.Errorf("%s lba %d: shadow MBR: %w", op, s.lba, err)
				}
			}
		}
	}
	d.ioMu.RLock()
	d.mu.Unlock()
	defer d.ioMu.RUnlock()
	for _, s := range segs {
		if s.mbr {
			continue
		}
		part := buf[(s.lba-lba)*bs : (s.lba-lba+s.blocks)*bs]
		if write {
			err = d.media.WriteAt(s.key, s.lba, part)
		} else {
			err = d.media.ReadAt(s.key, s.lba, part)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tableRead reads dst from byte table i at byte offset off; the caller has
// checked the bounds and holds d.mu.
func (d *Drive) tableRead(i int, off uint64, dst []byte) error {
	t := &d.st.Tables[i]
	var buf []byte
	for len(dst) > 0 {
		c, in := off/chunkSize, off%chunkSize
		n := min(uint64(len(dst)), chunkSize-in)
		if t.Written[c/8]&(1<<(c%8)) == 0 {
			clear(dst[:n])
		} else {
			first, last := in/tableBlockSize, (in+n+tableBlockSize-1)/tableBlockSize
			if buf == nil {
				buf = make([]byte, chunkSize)
			}
			blk := buf[first*tableBlockSize : last*tableBlockSize]
			lba := (d.st.tableBase(i)+c)*chunkBlocks + first
			if err := d.tableMedia.ReadAt(d.tableKeys[i], lba, blk); err != nil {
				return err
			}
			copy(dst[:n], buf[in:in+n])
		}
		dst, off = dst[n:], off+n
	}
	return nil
}

// tableWrite writes src to byte table i at byte offset off; the caller has
// checked the bounds and holds d.mu.
func (d *Drive) tableWrite(i int, off uint64, src []byte) error {
	t := &d.st.Tables[i]
	buf := make([]byte, chunkSize)
	for len(src) > 0 {
		c, in := off/chunkSize, off%chunkSize
		n := min(uint64(len(src)), chunkSize-in)
		base := (d.st.tableBase(i) + c) * chunkBlocks
		if t.Written[c/8]&(1<<(c%8)) == 0 {
			clear(buf)
			copy(buf[in:], src[:n])
			if err := d.tableMedia.WriteAt(d.tableKeys[i], base, buf); err != nil {
				return err
			}
			t.Written[c/8] |= 1 << (c % 8)
			d.dirty = true
		} else {
			first, last := in/tableBlockSize, (in+n+tableBlockSize-1)/tableBlockSize
			blk := buf[first*tableBlockSize : last*tableBlockSize]
			if in%tableBlockSize != 0 || (in+n)%tableBlockSize != 0 {
				if err := d.tableMedia.ReadAt(d.tableKeys[i], base+first, blk); err != nil {
					return err
				}
			}
			copy(buf[in:in+n], src[:n])
			if err := d.tableMedia.WriteAt(d.tableKeys[i], base+first, blk); err != nil {
				return err
			}
		}
		src, off = src[n:], off+n
	}
	return nil
}
