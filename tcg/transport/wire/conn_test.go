package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// answerFunc returns the raw response bytes for one request; nil answers
// nothing and leaves the client waiting.
type answerFunc func(h RequestHeader, payload []byte) []byte

// scripted returns a Conn whose peer, across a net.Pipe, answers requests
// with answer. The peer stops at the first I/O error.
func scripted(t testing.TB, answer answerFunc) *Conn {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		var hdr [HeaderLen]byte
		for {
			if _, err := io.ReadFull(server, hdr[:]); err != nil {
				return
			}
			h, _ := ParseRequestHeader(hdr[:])
			payload := make([]byte, min(h.PayloadLen(), 2*MaxPayload))
			if _, err := io.ReadFull(server, payload); err != nil {
				return
			}
			if out := answer(h, payload); out != nil {
				if _, err := server.Write(out); err != nil {
					return
				}
			}
		}
	}()
	c := NewConn(client)
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

func response(st Status, payload []byte) []byte {
	return append(ResponseHeader{Status: st, Len: uint32(len(payload))}.Append(nil), payload...)
}

// memDisk is a scripted drive: 4096-byte blocks, an IF_RECV answer that
// names the request, and a log of the requests it saw.
type memDisk struct {
	mu     sync.Mutex
	blocks map[uint64][]byte
	log    []string
}

func (d *memDisk) answer(h RequestHeader, payload []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch h.Op {
	case OpIFSend:
		d.log = append(d.log, fmt.Sprintf("IF_SEND %d %04x %x", h.Proto, h.SPSP, payload))
		return response(StatusOK, nil)
	case OpIFRecv:
		d.log = append(d.log, fmt.Sprintf("IF_RECV %d %04x %d", h.Proto, h.SPSP, h.Len))
		out := fmt.Appendf(nil, "recv %d %04x", h.Proto, h.SPSP)
		return response(StatusOK, out[:min(len(out), int(h.Len))])
	case OpInfo:
		d.log = append(d.log, "INFO")
		info, _ := AppendInfo(nil, sedsimIdentity)
		return response(StatusOK, info)
	case OpReset:
		d.log = append(d.log, "RESET")
		return response(StatusOK, nil)
	case OpRead, OpWrite:
		r, err := ParseBlockRange(payload)
		if err != nil {
			return response(StatusInvalidField, nil)
		}
		d.log = append(d.log, fmt.Sprintf("%v %d %d", h.Op, r.LBA, r.Count))
		if r.LBA == 666 {
			return response(StatusAccessDenied, nil)
		}
		if h.Op == OpWrite {
			data := payload[BlockRangeLen:]
			for i := range uint64(r.Count) {
				d.blocks[r.LBA+i] = bytes.Clone(data[i*4096 : (i+1)*4096])
			}
			return response(StatusOK, nil)
		}
		var out []byte
		for i := range uint64(r.Count) {
			b := d.blocks[r.LBA+i]
			if b == nil {
				b = make([]byte, 4096)
			}
			out = append(out, b...)
		}
		return response(StatusOK, out)
	}
	return response(StatusInvalidOp, nil)
}

func (d *memDisk) takeLog() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.log
	d.log = nil
	return l
}

func TestConnOps(t *testing.T) {
	d := &memDisk{blocks: map[uint64][]byte{}}
	c := scripted(t, d.answer)
	ctx := context.Background()

	if err := c.IFSend(ctx, 1, 0x07FE, []byte{0xF8, 0xA8}); err != nil {
		t.Fatalf("IFSend: %v", err)
	}
	buf := make([]byte, 100)
	n, err := c.IFRecv(ctx, 1, 0x07FE, buf)
	if err != nil || string(buf[:n]) != "recv 1 07fe" {
		t.Fatalf("IFRecv = %q, %v; want %q", buf[:n], err, "recv 1 07fe")
	}
	if n, err := c.IFRecv(ctx, 1, 1, make([]byte, 4)); err != nil || n != 4 {
		t.Fatalf("IFRecv(alloc 4) = %d, %v; want 4 bytes", n, err)
	}
	if _, err := c.IFRecv(ctx, 1, 1, make([]byte, 3*MaxPayload)); err != nil {
		t.Fatalf("IFRecv(3 MiB) = %v", err)
	}
	id, err := c.Identify(ctx)
	if err != nil || id != sedsimIdentity {
		t.Fatalf("Identify = %+v, %v; want %+v", id, err, sedsimIdentity)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	want := []string{
		"IF_SEND 1 07fe f8a8", "IF_RECV 1 07fe 100", "IF_RECV 1 0001 4",
		fmt.Sprintf("IF_RECV 1 0001 %d", MaxPayload), "INFO", "RESET",
	}
	if got := d.takeLog(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests = %q; want %q", got, want)
	}

	// 600 blocks: WRITE goes as 255+255+90 (1 MiB less the range), READ
	// as 256+256+88.
	data := make([]byte, 600*4096)
	for i := range data {
		data[i] = byte(i / 4096)
	}
	if err := c.WriteBlocks(ctx, 1000, data); err != nil {
		t.Fatalf("WriteBlocks: %v", err)
	}
	got := make([]byte, len(data))
	if err := c.ReadBlocks(ctx, 1000, 600, got); err != nil {
		t.Fatalf("ReadBlocks: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Error("ReadBlocks returned other data than WriteBlocks wrote")
	}
	want = []string{"WRITE 1000 255", "WRITE 1255 255", "WRITE 1510 90", "READ 1000 256", "READ 1256 256", "READ 1512 88"}
	if got := d.takeLog(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests = %q; want %q", got, want)
	}
	if err := c.ReadBlocks(ctx, 5, 0, nil); err != nil {
		t.Errorf("ReadBlocks(count 0) = %v", err)
	}
	if got := d.takeLog(); len(got) != 0 {
		t.Errorf("count 0 sent %q; want nothing", got)
	}
}

func TestConnStatusErrors(t *testing.T) {
	d := &memDisk{blocks: map[uint64][]byte{}}
	c := scripted(t, d.answer)
	ctx := context.Background()
	err := c.ReadBlocks(ctx, 666, 1, make([]byte, 4096))
	if !errors.Is(err, ErrAccessDenied) {
		t.Errorf("ReadBlocks(locked) = %v; want ErrAccessDenied", err)
	}
	if err := c.WriteBlocks(ctx, 666, make([]byte, 4096)); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("WriteBlocks(locked) = %v; want ErrAccessDenied", err)
	}
	// Status errors leave the connection usable.
	if _, err := c.Identify(ctx); err != nil {
		t.Errorf("Identify after a status error: %v", err)
	}
	if err := c.ReadBlocks(ctx, 0, 2, make([]byte, 4096)); err == nil {
		t.Error("ReadBlocks into a short buffer succeeded")
	}
	if err := c.WriteBlocks(ctx, 0, make([]byte, 100)); err == nil {
		t.Error("WriteBlocks of a partial block succeeded")
	}
	if err := c.ReadBlocks(ctx, ^uint64(0), 2, make([]byte, 2*4096)); !errors.Is(err, ErrInvalidField) {
		t.Errorf("ReadBlocks past LBA 2^64 = %v; want ErrInvalidField", err)
	}
	err = c.IFSend(ctx, 1, 1, make([]byte, MaxPayload+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("IFSend(1 MiB + 1) = %v; want ErrTooLarge", err)
	}
	d.takeLog()
	if err := c.IFSend(ctx, 1, 1, make([]byte, MaxPayload)); err != nil {
		t.Errorf("IFSend(1 MiB) = %v", err)
	}
	if got := d.takeLog(); len(got) != 1 {
		t.Errorf("requests after the refused IF_SEND: %d; want only the 1 MiB one", len(got))
	}
}

// TestConnProtocolViolations: a peer that breaks the protocol gets
// ErrProtocol, and the Conn is closed after it.
func TestConnProtocolViolations(t *testing.T) {
	info, _ := AppendInfo(nil, sedsimIdentity)
	tests := []struct {
		name string
		resp []byte
		call func(*Conn) error
	}{
		{"IF_RECV over the allocation", response(StatusOK, make([]byte, 11)), func(c *Conn) error {
			_, err := c.IFRecv(context.Background(), 1, 1, make([]byte, 10))
			return err
		}},
		{"payload over 1 MiB", ResponseHeader{Status: StatusOK, Len: MaxPayload + 1}.Append(nil), func(c *Conn) error {
			_, err := c.IFRecv(context.Background(), 1, 1, make([]byte, MaxPayload))
			return err
		}},
		{"error payload over 1 MiB", ResponseHeader{Status: StatusDeviceError, Len: 0xFFFFFFFF}.Append(nil), func(c *Conn) error {
			return c.Reset(context.Background())
		}},
		{"IF_SEND answered with data", response(StatusOK, []byte{1}), func(c *Conn) error {
			return c.IFSend(context.Background(), 1, 1, []byte{1})
		}},
		{"short INFO", response(StatusOK, info[:100]), func(c *Conn) error {
			_, err := c.Identify(context.Background())
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := scripted(t, func(RequestHeader, []byte) []byte { return tc.resp })
			if err := tc.call(c); !errors.Is(err, ErrProtocol) {
				t.Fatalf("call = %v; want ErrProtocol", err)
			}
			if err := c.Reset(context.Background()); !errors.Is(err, transport.ErrClosed) {
				t.Errorf("next call = %v; want transport.ErrClosed", err)
			}
		})
	}

	t.Run("short READ", func(t *testing.T) {
		c := scripted(t, func(h RequestHeader, _ []byte) []byte {
			if h.Op == OpInfo {
				return response(StatusOK, info)
			}
			return response(StatusOK, make([]byte, 4096))
		})
		if err := c.ReadBlocks(context.Background(), 0, 2, make([]byte, 8192)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ReadBlocks = %v; want ErrProtocol", err)
		}
	})
	t.Run("block size 0", func(t *testing.T) {
		id := sedsimIdentity
		id.BlockSize = 0
		zero, _ := AppendInfo(nil, id)
		c := scripted(t, func(RequestHeader, []byte) []byte { return response(StatusOK, zero) })
		if err := c.ReadBlocks(context.Background(), 0, 1, make([]byte, 4096)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ReadBlocks = %v; want ErrProtocol", err)
		}
	})
	t.Run("error status with a payload is skipped", func(t *testing.T) {
		first := true
		c := scripted(t, func(RequestHeader, []byte) []byte {
			if first {
				first = false
				return response(StatusDeviceError, []byte("explanation"))
			}
			return response(StatusOK, nil)
		})
		if err := c.Reset(context.Background()); !errors.Is(err, ErrDeviceError) {
			t.Fatalf("Reset = %v; want ErrDeviceError", err)
		}
		if err := c.Reset(context.Background()); err != nil {
			t.Errorf("Reset after the skipped payload = %v", err)
		}
	})
}

// silent answers nothing until released, then hangs up.
func silent(release <-chan struct{}) answerFunc {
	return func(RequestHeader, []byte) []byte {
		<-release
		return nil
	}
}

func TestConnContext(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		c := scripted(t, silent(release))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := c.Reset(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Reset = %v; want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Reset took %v to time out", d)
		}
		if err := c.Reset(context.Background()); !errors.Is(err, transport.ErrClosed) {
			t.Errorf("next call = %v; want transport.ErrClosed", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		c := scripted(t, silent(release))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := c.IFRecv(ctx, 1, 1, make([]byte, 16)); !errors.Is(err, context.Canceled) {
			t.Fatalf("IFRecv = %v; want Canceled", err)
		}
	})
	t.Run("already done", func(t *testing.T) {
		d := &memDisk{}
		c := scripted(t, d.answer)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Reset(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Reset = %v; want Canceled", err)
		}
		if len(d.takeLog()) != 0 {
			t.Error("a request was sent with a done context")
		}
		if err := c.Reset(context.Background()); err != nil {
			t.Errorf("Reset after the refused call = %v; the Conn should be intact", err)
		}
	})
	t.Run("deadline then more calls", func(t *testing.T) {
		// A context that ends after its call returned must not disturb
		// the next call.
		d := &memDisk{}
		c := scripted(t, d.answer)
		for range 50 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			if err := c.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			cancel()
		}
	})
}

func TestConnClose(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := scripted(t, silent(release))
	errc := make(chan error, 1)
	go func() { errc <- c.Reset(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := <-errc; !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Reset interrupted by Close = %v; want transport.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
	if _, err := c.Identify(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Identify after Close = %v; want transport.ErrClosed", err)
	}
}

// TestConnConcurrent: requests from many goroutines each get their own
// response.
func TestConnConcurrent(t *testing.T) {
	d := &memDisk{blocks: map[uint64][]byte{}}
	c := scripted(t, d.answer)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			blk := make([]byte, 4096)
			for i := range 50 {
				spsp := uint16(g<<8 | i)
				n, err := c.IFRecv(context.Background(), 2, spsp, buf)
				if want := fmt.Sprintf("recv 2 %04x", spsp); err != nil || string(buf[:n]) != want {
					t.Errorf("IFRecv = %q, %v; want %q", buf[:n], err, want)
					return
				}
				binary.BigEndian.PutUint32(blk, uint32(spsp))
				lba := uint64(g*100 + i)
				if err := c.WriteBlocks(context.Background(), lba, blk); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, 4096)
				if err := c.ReadBlocks(context.Background(), lba, 1, got); err != nil || !bytes.Equal(got, blk) {
					t.Errorf("ReadBlocks(%d) = %v, equal %v", lba, err, bytes.Equal(got, blk))
					return
				}
			}
		}()
	}
	wg.Wait()
}
