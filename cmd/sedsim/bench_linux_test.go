package main

// Benchmarks of sedsim as a whole: encrypted sequential I/O through each
// layer a host can use (the raw encrypted media, the drive in process, the
// opalwire socket, the exposed FUSE file beside a plain file on the same
// filesystem), and the cost of an unlock. Sub-benchmarks report their
// speed relative to the layer below (speed-vs-media, speed-vs-plain-file).

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/internal/testutil"
	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/sim/expose"
	"github.com/shiftlock/shiftlock/sim/media"
	simwire "github.com/shiftlock/shiftlock/sim/wire"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

const (
	benchSize = 64 << 20 // bytes of media the benchmarks cycle through
	benchXfer = 1 << 20  // one transfer: opalwire's largest
	benchBS   = 512
)

// benchDrive creates a drive of benchSize bytes, its media written once so
// that reads hit allocated blocks.
func benchDrive(b *testing.B, cfg sim.Config) *sim.Drive {
	b.Helper()
	cfg.Blocks = benchSize / benchBS
	d, _, err := sim.Create(filepath.Join(b.TempDir(), "drive"), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	buf := bytes.Repeat([]byte{0x5A}, benchXfer)
	for off := 0; off < benchSize; off += benchXfer {
		if err := d.Write(uint64(off/benchBS), buf); err != nil {
			b.Fatal(err)
		}
	}
	return d
}

// serveDrive serves d on a Unix socket until the benchmark ends and
// returns a connection to it.
func serveDrive(b *testing.B, d simwire.Device) (*opalwire.Conn, context.Context) {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "sock")
	l, err := simwire.Listen(sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		simwire.Serve(ctx, l, d, nil)
		close(done)
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	c, err := opalwire.Dial(ctx, sock)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c, ctx
}

// blockIO is a sequential transfer of benchXfer bytes at byte offset off.
type blockIO func(off int64, buf []byte) error

// nsPerOp records each sub-benchmark's final ns/op for the ratios.
type nsPerOp map[string]float64

// run runs one sequential write or read sub-benchmark over fn. With a
// baseline (a sub-benchmark run before), it also reports its speed
// relative to the baseline's as "speed-vs-BASELINE" (2 = twice as fast).
func (r nsPerOp) run(b *testing.B, name, baseline string, fn blockIO) {
	b.Run(name, func(b *testing.B) {
		buf := bytes.Repeat([]byte{0xA5}, benchXfer)
		b.SetBytes(benchXfer)
		off := int64(0)
		for b.Loop() {
			if err := fn(off, buf); err != nil {
				b.Fatal(err)
			}
			off = (off + benchXfer) % benchSize
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		r[name] = ns
		if base := r[baseline]; baseline != "" && base > 0 && ns > 0 {
			b.ReportMetric(base/ns, "speed-vs-"+strings.Split(baseline, "/")[0])
		}
	})
}

// BenchmarkSedsimIO: XTS-AES-256 sequential 1 MiB transfers on the raw
// media (sim/media, one key), through the drive in process (lock checks,
// range split) and through opalwire over a Unix socket.
func BenchmarkSedsimIO(b *testing.B) {
	d := benchDrive(b, sim.Config{})
	m, err := media.Open(filepath.Join(b.TempDir(), "raw"), benchBS, benchSize/benchBS)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	key := media.NewKey()
	fill := bytes.Repeat([]byte{0x5A}, benchXfer)
	for off := uint64(0); off < benchSize; off += benchXfer {
		if err := m.WriteAt(key, off/benchBS, fill); err != nil {
			b.Fatal(err)
		}
	}
	conn, ctx := serveDrive(b, d)
	r := nsPerOp{}
	for _, op := range []string{"write", "read"} {
		w := op == "write"
		r.run(b, "media/"+op, "", func(off int64, buf []byte) error {
			if w {
				return m.WriteAt(key, uint64(off/benchBS), buf)
			}
			return m.ReadAt(key, uint64(off/benchBS), buf)
		})
		r.run(b, "drive/"+op, "media/"+op, func(off int64, buf []byte) error {
			if w {
				return d.Write(uint64(off/benchBS), buf)
			}
			return d.Read(uint64(off/benchBS), buf)
		})
		r.run(b, "opalwire/"+op, "media/"+op, func(off int64, buf []byte) error {
			if w {
				return conn.WriteBlocks(ctx, uint64(off/benchBS), buf)
			}
			return conn.ReadBlocks(ctx, uint64(off/benchBS), uint32(len(buf)/benchBS), buf)
		})
	}
}

// BenchmarkSedsimExposed: sequential 1 MiB pwrite/pread on the exposed
// FUSE file (direct I/O, through the drive) and on a plain file of the
// same size in the same directory (page cache, as the drive's media file
// also is).
func BenchmarkSedsimExposed(b *testing.B) {
	testutil.RequireFUSE(b)
	d := benchDrive(b, sim.Config{})
	disk, err := expose.Mount(filepath.Join(b.TempDir(), "mnt"), d, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { disk.Close() })
	plainPath := filepath.Join(filepath.Dir(d.Dir()), "plain")
	plain, err := os.OpenFile(plainPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { plain.Close() })
	fuse, err := os.OpenFile(disk.Path(), os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fuse.Close() })
	fill := bytes.Repeat([]byte{0x5A}, benchXfer)
	for off := int64(0); off < benchSize; off += benchXfer {
		if _, err := plain.WriteAt(fill, off); err != nil {
			b.Fatal(err)
		}
	}
	r := nsPerOp{}
	for _, op := range []string{"write", "read"} {
		for _, f := range []struct {
			name string
			f    *os.File
		}{{"plain-file", plain}, {"fuse", fuse}} {
			base := ""
			if f.name == "fuse" {
				base = "plain-file/" + op
			}
			r.run(b, f.name+"/"+op, base, func(off int64, buf []byte) error {
				var err error
				if op == "write" {
					_, err = f.f.WriteAt(buf, off)
				} else {
					_, err = f.f.ReadAt(buf, off)
				}
				return err
			})
		}
	}
}

// BenchmarkSedsimUnlock: opal.Unlock of 1 and 2 locked ranges over
// opalwire, as unlock-on-resume does it after a power cycle: Level 0
// discovery, StartSession as Admin1, the Sets, EndOfSession, on a Client
// that has exchanged Properties already. sends/op counts IF-SENDs (the
// exchanges), recvs/op IF-RECVs including discovery.
func BenchmarkSedsimUnlock(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(map[int]string{1: "ranges=1", 2: "ranges=2"}[n], func(b *testing.B) {
			d, _, err := sim.Create(filepath.Join(b.TempDir(), "drive"), sim.Config{Blocks: benchSize / benchBS})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { d.Close() })
			conn, ctx := serveDrive(b, d)
			ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			c := session.NewClient(conn, nil)
			sid := hash.PIN("bench-sid-0123456789abcdef012345")
			admin := opal.Auth{Authority: method.Admin(1), PIN: sid}
			must := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			must(opal.TakeOwnership(ctx, c, sid))
			must(opal.Activate(ctx, c, sid, nil))
			ranges := []uint32{1, 2}[:n]
			for i, r := range ranges {
				must(opal.SetupRange(ctx, c, admin, r, uint64(i)*8192, 8192))
				must(opal.SetLockEnabled(ctx, c, admin, r, true, true))
			}
			var sends, recvs int
			for b.Loop() {
				b.StopTimer()
				must(d.Reset()) // power cycle: LockOnReset locks the ranges
				b.StartTimer()
				res, err := opal.Unlock(ctx, c, admin, ranges, nil)
				must(err)
				sends += res.Exchanges
				recvs += res.Receives
			}
			b.ReportMetric(float64(sends)/float64(b.N), "sends/op")
			b.ReportMetric(float64(recvs)/float64(b.N), "recvs/op")
			for _, r := range d.Status().Ranges[1 : n+1] {
				if r.ReadLockedNow() {
					b.Fatalf("range %d still locked after Unlock", r.N)
				}
			}
		})
	}
}
