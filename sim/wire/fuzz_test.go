package wire

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

// FuzzServeConn feeds arbitrary bytes to one connection's request loop:
// headers with any op and length, truncated payloads, several requests in
// a row. The handler must not panic, must answer only well-formed
// responses, and must return once the peer is gone.
func FuzzServeConn(f *testing.F) {
	f.Add(req(opalwire.OpInfo, 0, 0, 0))
	f.Add(req(opalwire.OpIFSend, 1, 0x07FE, 4, []byte{0xF8, 0xA8, 0, 0}))
	f.Add(append(req(opalwire.OpIFRecv, 1, 1, 64), req(opalwire.OpReset, 0, 0, 0)...))
	f.Add(req(opalwire.OpWrite, 0, 0, 12+512, blockRange(3, 1), make([]byte, 512)))
	f.Add(append(req(opalwire.OpRead, 0, 0, 12, blockRange(3, 1)), req(0x99, 0, 0, 2, []byte{1, 2})...))
	f.Add(req(opalwire.OpRead, 0, 0, 12, blockRange(1<<63, 1<<31)))
	f.Add(req(opalwire.OpIFSend, 1, 1, 0xFFFFFFFF))
	f.Add([]byte{0x05, 0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		d := newTestDevice(64)
		d.recvq = [][]byte{[]byte("queued")}
		d.locked[5] = true
		s := &server{d: d, log: slog.New(slog.DiscardHandler), blockSize: testBlockSize, blocks: 64, conns: map[net.Conn]struct{}{}}
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.serveConn(server)
		}()
		// Read and check responses while the stream is written.
		checked := make(chan struct{})
		go func() {
			defer close(checked)
			var hdr [opalwire.HeaderLen]byte
			for {
				if _, err := io.ReadFull(client, hdr[:]); err != nil {
					return
				}
				h, _ := opalwire.ParseResponseHeader(hdr[:])
				if h.Len > opalwire.MaxPayload || h.Status > opalwire.StatusAccessDenied || hdr[1]|hdr[2]|hdr[3] != 0 {
					t.Errorf("bad response header %x", hdr)
					return
				}
				if _, err := io.CopyN(io.Discard, client, int64(h.Len)); err != nil {
					return
				}
			}
		}()
		client.Write(stream)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("serveConn did not return after the peer closed")
		}
		<-checked
	})
}
