package wire

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/sim/media"
	"github.com/shiftlock/shiftlock/tcg/transport"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

// mediaDevice serves encrypted media, one key for the whole disk.
type mediaDevice struct {
	*testDevice
	m   *media.Media
	key *media.Key
}

func (d *mediaDevice) Read(lba uint64, dst []byte) error   { return d.m.ReadAt(d.key, lba, dst) }
func (d *mediaDevice) Write(lba uint64, data []byte) error { return d.m.WriteAt(d.key, lba, data) }
func (d *mediaDevice) Info() transport.Identity            { return d.info }

// Sequential 1 MiB transfers through opalwire over a Unix socket to
// XTS-encrypted media with 4096-byte blocks (64 MiB, in the page cache).
// MB/cpu-s counts the client's and the server's CPU time together.
func BenchmarkOpalwireWrite(b *testing.B) { benchOpalwire(b, true) }
func BenchmarkOpalwireRead(b *testing.B)  { benchOpalwire(b, false) }

func benchOpalwire(b *testing.B, write bool) {
	const size, xfer, bs = 64 << 20, 1 << 20, 4096
	dir := b.TempDir()
	m, err := media.Open(filepath.Join(dir, "media"), bs, size/bs)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	d := &mediaDevice{testDevice: newTestDevice(size / bs), m: m, key: media.NewKey()}
	d.info.BlockSize = bs
	l, err := Listen(filepath.Join(dir, "sock"))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, d, nil) }()
	defer func() {
		cancel()
		<-done
	}()
	c, err := opalwire.Dial(ctx, filepath.Join(dir, "sock"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	buf := make([]byte, xfer)
	for off := 0; off < size; off += xfer {
		if err := c.WriteBlocks(ctx, uint64(off/bs), buf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(xfer)
	off := 0
	cpu0 := cpuTime()
	for b.Loop() {
		if write {
			err = c.WriteBlocks(ctx, uint64(off/bs), buf)
		} else {
			err = c.ReadBlocks(ctx, uint64(off/bs), xfer/bs, buf)
		}
		if err != nil {
			b.Fatal(err)
		}
		off = (off + xfer) % size
	}
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(b.N)*xfer/1e6/d.Seconds(), "MB/cpu-s")
	}
}

// cpuTime returns the CPU time, user and system, this process (client and
// server) has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
