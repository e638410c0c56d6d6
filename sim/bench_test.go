package sim

import (
	"bytes"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// BenchmarkSequentialIO measures in-process encrypted sequential writes and
// reads through Drive.Write and Drive.Read, 1 MiB at a time (opalwire's
// largest transfer), in the global range of an activated drive.
func BenchmarkSequentialIO(b *testing.B) {
	d, _ := newTestDrive(b, Config{Blocks: 1 << 21}) // 1 GiB
	h := newHost(b, d)
	h.takeOwnership([]byte("sid"))
	buf := bytes.Repeat([]byte{0x42}, 1<<20)
	blocks := uint64(len(buf) / 512)
	for _, op := range []string{"write", "read"} {
		b.Run(op, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			lba := uint64(0)
			for b.Loop() {
				var err error
				if op == "write" {
					err = d.Write(lba, buf)
				} else {
					err = d.Read(lba, buf)
				}
				if err != nil {
					b.Fatal(err)
				}
				lba = (lba + blocks) % (1 << 21)
			}
		})
	}
}

// BenchmarkMBRLoad measures loading a PBA image into the MBR table the way
// sedutil does: Set calls of 61440-byte chunks in one Admin1 session.
func BenchmarkMBRLoad(b *testing.B) {
	d, _ := newTestDrive(b, Config{MBRSize: 32 << 20})
	h := newHost(b, d)
	h.takeOwnership([]byte("sid"))
	s := h.admin1([]byte("sid"))
	chunk := bytes.Repeat([]byte{0x11}, 61440)
	b.SetBytes(int64(len(chunk)))
	off := uint64(0)
	for b.Loop() {
		s.must(method.NewSetBytes(method.MBR, off, chunk))
		off += uint64(len(chunk))
		if off+uint64(len(chunk)) > 32<<20 {
			off = 0
		}
	}
}

// BenchmarkUnlock measures a whole unlock as a host does it after
// discovery: StartSession as Admin1, Set RL=WL=False, EndOfSession.
func BenchmarkUnlock(b *testing.B) {
	d, _ := newTestDrive(b, Config{})
	h := newHost(b, d)
	h.takeOwnership([]byte("sid"))
	for b.Loop() {
		s := h.admin1([]byte("sid"))
		s.mustSet(method.GlobalRange, named(7, token.Bool(false)), named(8, token.Bool(false)))
		s.end()
	}
}
