package media

import (
	"bytes"
	"crypto/aes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/xts"
)

// newTestMedia opens a fresh backing file in t.TempDir and closes it in
// t.Cleanup.
func newTestMedia(t testing.TB, blockSize uint32, blocks uint64) (*Media, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "media")
	m, err := Open(path, blockSize, blocks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, path
}

func TestOpenCreatesSparseFile(t *testing.T) {
	const blocks = 1 << 18 // 1 GiB of 4096-byte blocks
	m, path := newTestMedia(t, 4096, blocks)
	if m.BlockSize() != 4096 || m.Blocks() != blocks {
		t.Fatalf("geometry = %d x %d; want 4096 x %d", m.BlockSize(), m.Blocks(), blocks)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != blocks*4096 {
		t.Errorf("size = %d; want %d", fi.Size(), blocks*4096)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v; want 0600", fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks*512 > 1<<20 {
		t.Errorf("new media occupies %d bytes on disk; want a sparse file", st.Blocks*512)
	}
	m.Close()

	// Reopening keeps the data; a different geometry is refused.
	m2, err := Open(path, 4096, blocks)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	m2.Close()
	if _, err := Open(path, 4096, blocks+1); err == nil {
		t.Error("Open with another size succeeded; want an error")
	}
	if _, err := Open(path, 512, blocks*8); err != nil {
		t.Errorf("Open with the same byte size in 512-byte blocks: %v", err)
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name      string
		path      string
		blockSize uint32
		blocks    uint64
	}{
		{"block size 1024", filepath.Join(dir, "a"), 1024, 8},
		{"block size 0", filepath.Join(dir, "b"), 0, 8},
		{"zero blocks", filepath.Join(dir, "c"), 512, 0},
		{"size overflows", filepath.Join(dir, "d"), 4096, math.MaxUint64 / 2},
		{"directory", dir, 512, 8},
		{"missing parent", filepath.Join(dir, "no", "media"), 512, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Open(tc.path, tc.blockSize, tc.blocks)
			if err == nil {
				m.Close()
				t.Fatalf("Open(%q, %d, %d) succeeded; want an error", tc.path, tc.blockSize, tc.blocks)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, bs := range []uint32{512, 4096} {
		for _, encrypted := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d/encrypted=%v", bs, encrypted), func(t *testing.T) {
				const blocks = 2048
				m, _ := newTestMedia(t, bs, blocks)
				var key *Key
				if encrypted {
					key = NewKey()
				}
				r := rand.New(rand.NewPCG(3, 4))
				cases := []struct{ lba, count uint64 }{
					{0, 1}, {1, 7}, {blocks - 1, 1}, {100, 600}, // 600 blocks: split across goroutines
					{0, blocks},
				}
				for _, c := range cases {
					data := make([]byte, c.count*uint64(bs))
					fill(r, data)
					orig := bytes.Clone(data)
					if err := m.WriteAt(key, c.lba, data); err != nil {
						t.Fatalf("WriteAt(%d, %d blocks): %v", c.lba, c.count, err)
					}
					if !bytes.Equal(data, orig) {
						t.Fatalf("WriteAt(%d) modified its source", c.lba)
					}
					got := make([]byte, len(data))
					if err := m.ReadAt(key, c.lba, got); err != nil {
						t.Fatalf("ReadAt(%d, %d blocks): %v", c.lba, c.count, err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("ReadAt(%d, %d blocks) differs from what was written", c.lba, c.count)
					}
				}
			})
		}
	}
}

func TestTransferErrors(t *testing.T) {
	m, _ := newTestMedia(t, 512, 64)
	key := NewKey()
	tests := []struct {
		name string
		lba  uint64
		n    int
		want error
	}{
		{"partial block", 0, 100, ErrLength},
		{"one byte over", 0, 513, ErrLength},
		{"past the end", 64, 512, ErrOutOfRange},
		{"crosses the end", 60, 5 * 512, ErrOutOfRange},
		{"lba overflow", math.MaxUint64, 512, ErrOutOfRange},
		{"huge lba", 1 << 62, 512, ErrOutOfRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, tc.n)
			if err := m.WriteAt(key, tc.lba, buf); !errors.Is(err, tc.want) {
				t.Errorf("WriteAt(%d, %d bytes) = %v; want %v", tc.lba, tc.n, err, tc.want)
			}
			if err := m.ReadAt(key, tc.lba, buf); !errors.Is(err, tc.want) {
				t.Errorf("ReadAt(%d, %d bytes) = %v; want %v", tc.lba, tc.n, err, tc.want)
			}
		})
	}
	// Empty transfers at the very end are fine.
	if err := m.ReadAt(key, 64, nil); err != nil {
		t.Errorf("ReadAt(64, 0 bytes) = %v; want nil", err)
	}
}

// canary is a pattern nobody would find in ciphertext by chance.
var canary = []byte("SHIFTLOCK-PLAINTEXT-CANARY:0123456789abcdefghijklmnopqrstuvwxyz!")

func pattern(n int) []byte {
	return bytes.Repeat(canary, n/len(canary)+1)[:n]
}

// TestNoPlaintextOnDisk writes a recognisable pattern under a key and
// searches the whole backing file for any 32-byte piece of it. The same
// search must find the pattern when it is stored without a key (Pyrite), or
// the test would prove nothing.
func TestNoPlaintextOnDisk(t *testing.T) {
	for _, bs := range []uint32{512, 4096} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			m, path := newTestMedia(t, bs, 512)
			data := pattern(64 * int(bs))
			if err := m.WriteAt(NewKey(), 10, data); err != nil {
				t.Fatal(err)
			}
			if err := m.WriteAt(NewKey(), 300, data[:bs]); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+32 <= len(canary); i += 8 {
				if bytes.Contains(raw, canary[i:i+32]) {
					t.Fatalf("backing file contains plaintext %q", canary[i:i+32])
				}
			}
			if err := m.WriteAt(nil, 400, data[:bs]); err != nil {
				t.Fatal(err)
			}
			raw, err = os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(raw, canary) {
				t.Fatal("the plaintext (nil key) write is not in the backing file; the search is broken")
			}
		})
	}
}

// TestCryptoErase: data written under key A does not read back under key B
// (the new key of a GenKey), block by block, while A still reads it.
func TestCryptoErase(t *testing.T) {
	m, _ := newTestMedia(t, 4096, 64)
	a, b := NewKey(), NewKey()
	data := pattern(16 * 4096)
	if err := m.WriteAt(a, 8, data); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if err := m.ReadAt(b, 8, got); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(data); i += 4096 {
		if bytes.Equal(got[i:i+4096], data[i:i+4096]) {
			t.Fatalf("block %d reads back under another key", 8+i/4096)
		}
		if bytes.Contains(got[i:i+4096], canary[:16]) {
			t.Fatalf("block %d under another key still contains plaintext", 8+i/4096)
		}
	}
	if err := m.ReadAt(a, 8, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the original key no longer reads the data")
	}
	// The key persists through Bytes: a reloaded key reads the data.
	a2, err := KeyFromBytes(a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	clear(got)
	if err := m.ReadAt(a2, 8, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reloaded key: err %v, data equal %v", err, bytes.Equal(got, data))
	}
}

// TestFreshBlocks: a never-written block is zeros on disk, so it reads as
// XTS-decrypt(zeros) under a key and as zeros without one.
func TestFreshBlocks(t *testing.T) {
	m, _ := newTestMedia(t, 512, 16)
	key := NewKey()
	got := make([]byte, 2*512)
	if err := m.ReadAt(key, 5, got); err != nil {
		t.Fatal(err)
	}
	ref, err := xts.NewCipher(aes.NewCipher, key.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(got))
	ref.Decrypt(want[:512], want[:512], 5)
	ref.Decrypt(want[512:], want[512:], 6)
	if !bytes.Equal(got, want) {
		t.Error("fresh blocks under a key are not the XTS decryption of zeros")
	}
	if bytes.Equal(got, make([]byte, len(got))) {
		t.Error("fresh blocks under a key read as zeros")
	}
	if err := m.ReadAt(nil, 5, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, make([]byte, len(got))) {
		t.Error("fresh plaintext blocks are not zeros")
	}
}

// TestOnDiskFormat pins the layout: block lba at byte lba*BlockSize,
// encrypted as one XTS data unit numbered lba.
func TestOnDiskFormat(t *testing.T) {
	m, path := newTestMedia(t, 4096, 16)
	key := NewKey()
	data := pattern(2 * 4096)
	if err := m.WriteAt(key, 3, data); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := xts.NewCipher(aes.NewCipher, key.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(data))
	ref.Encrypt(want[:4096], data[:4096], 3)
	ref.Encrypt(want[4096:], data[4096:], 4)
	if !bytes.Equal(raw[3*4096:5*4096], want) {
		t.Error("on-disk blocks 3-4 are not x/crypto/xts ciphertext with tweak = LBA")
	}
}

func TestKey(t *testing.T) {
	k := NewKey()
	raw := k.Bytes()
	if len(raw) != KeySize {
		t.Fatalf("len(Bytes()) = %d; want %d", len(raw), KeySize)
	}
	if bytes.Equal(raw[:32], raw[32:]) {
		t.Fatal("NewKey made equal halves")
	}
	if bytes.Equal(NewKey().Bytes(), raw) {
		t.Fatal("two NewKey calls made the same key")
	}
	for _, bad := range [][]byte{nil, raw[:63], append(bytes.Clone(raw), 0), bytes.Repeat([]byte{7}, 64)} {
		if _, err := KeyFromBytes(bad); err == nil {
			t.Errorf("KeyFromBytes(%d bytes) succeeded; want an error", len(bad))
		}
	}

	// The key never prints.
	hexKey := fmt.Sprintf("%x", raw[:8])
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "k", k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logged.String()} {
		if strings.Contains(s, hexKey) || !strings.Contains(s, "redacted") {
			t.Errorf("key printed as %q", s)
		}
	}

	m, _ := newTestMedia(t, 512, 4)
	k.Wipe()
	k.Wipe() // twice is fine
	if k.Bytes() != nil {
		t.Error("Bytes after Wipe is not nil")
	}
	if err := m.WriteAt(k, 0, make([]byte, 512)); !errors.Is(err, ErrKeyWiped) {
		t.Errorf("WriteAt with a wiped key = %v; want ErrKeyWiped", err)
	}
	if err := m.ReadAt(k, 0, make([]byte, 512)); !errors.Is(err, ErrKeyWiped) {
		t.Errorf("ReadAt with a wiped key = %v; want ErrKeyWiped", err)
	}
}

// TestConcurrent runs writers on disjoint ranges (each must read back its
// own data) and writers and readers on one shared range (only the race
// detector judges), while another goroutine wipes an unrelated key.
func TestConcurrent(t *testing.T) {
	const bs, per, workers = 512, 64, 6
	m, _ := newTestMedia(t, bs, per*(workers+1))
	key := NewKey()
	var wg sync.WaitGroup
	errs := make(chan error, 3*workers)
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			lba := uint64(w * per)
			data := make([]byte, per*bs)
			got := make([]byte, len(data))
			for range 20 {
				fill(r, data)
				if err := m.WriteAt(key, lba, data); err != nil {
					errs <- err
					return
				}
				if err := m.ReadAt(key, lba, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, data) {
					errs <- fmt.Errorf("worker %d: read back other data", w)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			shared := uint64(workers * per)
			buf := make([]byte, 8*bs)
			for i := range 20 {
				var err error
				if (i+w)%2 == 0 {
					err = m.WriteAt(key, shared+uint64(i%8), buf)
				} else {
					err = m.ReadAt(key, shared+uint64(i%8), buf)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	other := NewKey()
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, bs)
		for range 10 {
			if err := m.ReadAt(other, 0, buf); err != nil && !errors.Is(err, ErrKeyWiped) {
				errs <- err
			}
		}
		other.Wipe()
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Benchmarks: 1 MiB transfers over a 64 MiB file (in the page cache after the
// first pass), encrypted with 4096- and 512-byte blocks, and as plaintext to
// show the cost of the I/O alone.
func BenchmarkMediaWrite(b *testing.B) { benchMedia(b, true) }
func BenchmarkMediaRead(b *testing.B)  { benchMedia(b, false) }

func benchMedia(b *testing.B, write bool) {
	for _, c := range []struct {
		name string
		bs   uint32
		enc  bool
	}{{"xts-4096", 4096, true}, {"xts-512", 512, true}, {"plain-4096", 4096, false}} {
		b.Run(c.name, func(b *testing.B) {
			const size, xfer = 64 << 20, 1 << 20
			m, _ := newTestMedia(b, c.bs, size/uint64(c.bs))
			var key *Key
			if c.enc {
				key = NewKey()
			}
			buf := pattern(xfer)
			for off := 0; off < size; off += xfer { // populate
				if err := m.WriteAt(key, uint64(off)/uint64(c.bs), buf); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(xfer)
			b.ReportAllocs()
			off := 0
			cpu0 := cpuTime()
			for b.Loop() {
				lba := uint64(off) / uint64(c.bs)
				var err error
				if write {
					err = m.WriteAt(key, lba, buf)
				} else {
					err = m.ReadAt(key, lba, buf)
				}
				if err != nil {
					b.Fatal(err)
				}
				off = (off + xfer) % size
			}
			reportCPU(b, cpu0, xfer)
		})
	}
}

// cpuTime returns the CPU time, user and system, this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds MB per CPU-second since cpu0: the throughput one core
// would reach, which MB/s hides when the machine is shared.
func reportCPU(b *testing.B, cpu0 time.Duration, bytesPerOp int) {
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(b.N)*float64(bytesPerOp)/1e6/d.Seconds(), "MB/cpu-s")
	}
}
