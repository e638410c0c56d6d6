// Package media is the storage medium of sedsim, the software Opal drive: a
// sparse backing file of fixed-size logical blocks, encrypted at rest the
// way a self-encrypting drive encrypts its flash.
//
// # Encryption
//
// Every read and write names the [Key] of the locking range it falls in; the
// drive (package sim) keeps the ranges, picks the key and splits I/O at
// range boundaries. Data is encrypted with XTS-AES-256 (IEEE Std 1619): the
// XTS data unit is one logical block (512 or 4096 bytes) and its tweak the
// block's LBA, as a 128-bit little-endian number. That is dm-crypt's
// aes-xts-plain64 with sector_size equal to the block size and
// iv_large_sectors, so one range of the backing file can be inspected with
// cryptsetup's plain mode given that range's key.
//
// The backing file never holds plaintext written under a key. Crypto-erase
// (GenKey, Revert) is the caller replacing a range's key: the old
// ciphertext then decrypts to noise. For the same reason a block never
// written (a hole in the sparse file, all zeros on disk) reads back as the
// decryption of zeros under the current key: deterministic noise, as on a
// real SED after GenKey, not zeros.
//
// A nil key stores the data as it is. That is the Pyrite SSC, which defines
// no media encryption (a Pyrite drive keeps plaintext on its flash too), and
// there fresh blocks read as zeros.
//
// # Concurrency and speed
//
// A Media is safe for concurrent use. I/O goes straight to pread(2) and
// pwrite(2) with no lock: transfers to disjoint blocks are independent, and
// concurrent transfers to the same block behave as on a disk without a
// write cache guarantee: a read racing a write of a block returns the old
// or the new block, or noise where it saw half of a new ciphertext block.
// Large transfers are split across GOMAXPROCS goroutines and encrypted in
// chunks through pooled buffers, so steady I/O allocates nothing. On amd64
// with AES-NI the encryption runs in an assembly loop (xts_amd64.s; build
// with -tags purego to leave it out), checked against golang.org/x/crypto/xts.
package media

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"runtime"
	"sync"
)

// Errors for transfers that do not fit the medium.
var (
	ErrOutOfRange = errors.New("transfer goes beyond the last block")
	ErrLength     = errors.New("transfer is not a whole number of blocks")
)

// Media is an open backing file of Blocks blocks of BlockSize bytes.
type Media struct {
	f         *os.File
	blockSize int
	blocks    uint64
}

// Open opens the backing file at path, creating it (mode 0600, sparse: no
// block is allocated until written) if it does not exist. An existing file
// must have exactly blockSize*blocks bytes. blockSize is 512 or 4096.
func Open(path string, blockSize uint32, blocks uint64) (*Media, error) {
	if blockSize != 512 && blockSize != 4096 {
		return nil, fmt.Errorf("open media %s: block size %d is not 512 or 4096", path, blockSize)
	}
	if blocks == 0 || blocks > math.MaxInt64/uint64(blockSize) {
		return nil, fmt.Errorf("open media %s: %d blocks of %d bytes is not a usable size", path, blocks, blockSize)
	}
	size := int64(blocks) * int64(blockSize)

	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Truncate(size); err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("create media: %w", err)
		}
	case errors.Is(err, fs.ErrExist):
		if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
			return nil, fmt.Errorf("open media: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open media: %w", err)
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("open media %s: not a regular file", path)
		}
		if fi.Size() != size {
			f.Close()
			return nil, fmt.Errorf("open media %s: file has %d bytes, the drive %d (%d blocks of %d); is it another drive's media?",
				path, fi.Size(), size, blocks, blockSize)
		}
	default:
		return nil, fmt.Errorf("create media: %w", err)
	}
	return &Media{f: f, blockSize: int(blockSize), blocks: blocks}, nil
}

// BlockSize returns the logical block size in bytes.
func (m *Media) BlockSize() uint32 { return uint32(m.blockSize) }

// Blocks returns the capacity in blocks.
func (m *Media) Blocks() uint64 { return m.blocks }

// Sync commits the backing file to stable storage (fsync).
func (m *Media) Sync() error {
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("sync media: %w", err)
	}
	return nil
}

// Close closes the backing file.
func (m *Media) Close() error { return m.f.Close() }

// ReadAt reads len(dst)/BlockSize blocks from lba into dst, decrypting them
// with key (nil: stored as plaintext). dst is the only buffer used.
func (m *Media) ReadAt(key *Key, lba uint64, dst []byte) error {
	c, err := m.check(key, lba, dst)
	if err != nil || len(dst) == 0 {
		return wrapIO("read", lba, dst, err)
	}
	err = m.parallel(len(dst), func(start, end int) error {
		off := m.offset(lba) + int64(start)
		if key == nil {
			_, err := m.f.ReadAt(dst[start:end], off)
			return err
		}
		ch := getChunk()
		defer putChunk(ch)
		// Chunk by chunk, so the decryption finds the data in cache.
		for start < end {
			n := min(end-start, chunkSize)
			seg := dst[start : start+n]
			if _, err := m.f.ReadAt(seg, off); err != nil {
				return err
			}
			c.decrypt(seg, seg, lba+uint64(start/m.blockSize), m.blockSize, ch.tweak[:])
			start += n
			off += int64(n)
		}
		return nil
	})
	return wrapIO("read", lba, dst, err)
}

// WriteAt writes src, a whole number of blocks, from lba, encrypting it
// with key (nil: stored as plaintext). src is not modified.
func (m *Media) WriteAt(key *Key, lba uint64, src []byte) error {
	c, err := m.check(key, lba, src)
	if err != nil || len(src) == 0 {
		return wrapIO("write", lba, src, err)
	}
	err = m.parallel(len(src), func(start, end int) error {
		off := m.offset(lba) + int64(start)
		if key == nil {
			_, err := m.f.WriteAt(src[start:end], off)
			return err
		}
		ch := getChunk()
		defer putChunk(ch)
		for start < end {
			n := min(end-start, chunkSize)
			enc := ch.data[:n]
			c.encrypt(enc, src[start:start+n], lba+uint64(start/m.blockSize), m.blockSize, ch.tweak[:])
			if _, err := m.f.WriteAt(enc, off); err != nil {
				return err
			}
			start += n
			off += int64(n)
		}
		return nil
	})
	return wrapIO("write", lba, src, err)
}

// check validates a transfer and returns the key's cipher.
func (m *Media) check(key *Key, lba uint64, b []byte) (xtsCipher, error) {
	if len(b)%m.blockSize != 0 {
		return xtsCipher{}, fmt.Errorf("%w: %d bytes, blocks of %d", ErrLength, len(b), m.blockSize)
	}
	if n := uint64(len(b) / m.blockSize); lba > m.blocks || n > m.blocks-lba {
		return xtsCipher{}, fmt.Errorf("%w: %d blocks from %d, capacity %d", ErrOutOfRange, n, lba, m.blocks)
	}
	if key == nil {
		return xtsCipher{}, nil
	}
	return key.cipher()
}

func (m *Media) offset(lba uint64) int64 { return int64(lba) * int64(m.blockSize) }

func wrapIO(op string, lba uint64, b []byte, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("media %s lba %d (%d bytes): %w", op, lba, len(b), err)
}

// Tuning. A chunk is the unit of encryption before a pwrite: small enough
// to stay in the L2 cache, large enough that syscalls cost little. Transfers
// of at least parallelMin bytes per extra goroutine are split.
const (
	chunkSize   = 128 << 10
	parallelMin = 128 << 10
)

type chunk struct {
	data  [chunkSize]byte
	tweak [4096]byte // one block's tweaks
}

var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

func getChunk() *chunk  { return chunkPool.Get().(*chunk) }
func putChunk(c *chunk) { chunkPool.Put(c) }

// parallel runs fn over [0,n) cut into block-aligned segments, one per
// goroutine, up to GOMAXPROCS of them, and returns the first error.
func (m *Media) parallel(n int, fn func(start, end int) error) error {
	parts := min(runtime.GOMAXPROCS(0), n/parallelMin)
	if parts <= 1 {
		return fn(0, n)
	}
	blocks := n / m.blockSize
	per := (blocks + parts - 1) / parts * m.blockSize
	errs := make(chan error, parts)
	var wg sync.WaitGroup
	for start := per; start < n; start += per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- fn(start, min(start+per, n))
		}()
	}
	err := fn(0, min(per, n))
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	return err
}
