package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiftlock/shiftlock/tcg/transport"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

// testDevice is a Device made of a map of blocks and a queue of IF-RECV
// responses. Protocols other than 1 and 2 are INVALID_FIELD; ComID 0xDEAD
// fails with a plain error (DEVICE_ERROR) and ComID 0xB16 answers IF-RECV
// with more than the allocation length (a device bug).
type testDevice struct {
	info transport.Identity

	mu     sync.Mutex
	blocks map[uint64][]byte
	locked map[uint64]bool
	sent   []string
	recvq  [][]byte
	resets int
	gate   chan struct{} // when set, IFRecv waits for it to close
}

const testBlockSize = 512

func newTestDevice(blocks uint64) *testDevice {
	return &testDevice{
		info: transport.Identity{
			Serial:    [20]byte([]byte("SIM-0001            ")),
			Model:     "sedsim test drive",
			Firmware:  "0.1",
			BlockSize: testBlockSize,
			Blocks:    blocks,
			PCIVendor: 0x1B36,
		},
		blocks: map[uint64][]byte{},
		locked: map[uint64]bool{},
	}
}

func (d *testDevice) IFSend(proto uint8, spsp uint16, data []byte) error {
	if proto != 1 && proto != 2 {
		return fmt.Errorf("proto 0x%02x: %w", proto, transport.ErrInvalidField)
	}
	if spsp == 0xDEAD {
		return errors.New("simulated firmware crash")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent = append(d.sent, fmt.Sprintf("%d/%04x/%x", proto, spsp, data))
	return nil
}

func (d *testDevice) IFRecv(proto uint8, spsp uint16, alloc int) ([]byte, error) {
	if proto != 1 && proto != 2 {
		return nil, ErrInvalidField
	}
	d.mu.Lock()
	gate := d.gate
	d.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if spsp == 0xB16 {
		return make([]byte, alloc+1), nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.recvq) == 0 {
		return nil, nil
	}
	out := d.recvq[0]
	d.recvq = d.recvq[1:]
	return out[:min(len(out), alloc)], nil
}

func (d *testDevice) Info() transport.Identity { return d.info }

func (d *testDevice) Reset() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resets++
	return nil
}

func (d *testDevice) Read(lba uint64, dst []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := uint64(0); i < uint64(len(dst))/testBlockSize; i++ {
		if d.locked[lba+i] {
			return fmt.Errorf("lba %d: %w", lba+i, ErrAccessDenied)
		}
	}
	for i := uint64(0); i < uint64(len(dst))/testBlockSize; i++ {
		b := dst[i*testBlockSize : (i+1)*testBlockSize]
		if src, ok := d.blocks[lba+i]; ok {
			copy(b, src)
		} else {
			clear(b)
		}
	}
	return nil
}

func (d *testDevice) Write(lba uint64, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := uint64(0); i < uint64(len(data))/testBlockSize; i++ {
		if d.locked[lba+i] {
			return fmt.Errorf("lba %d: %w", lba+i, ErrAccessDenied)
		}
	}
	for i := uint64(0); i < uint64(len(data))/testBlockSize; i++ {
		d.blocks[lba+i] = bytes.Clone(data[i*testBlockSize : (i+1)*testBlockSize])
	}
	return nil
}

// testServer is a Serve running on a socket in t.TempDir until the test
// ends, when it must stop cleanly.
type testServer struct {
	path   string
	dev    *testDevice
	cancel context.CancelFunc
	done   chan error
	log    *lockedWriter
}

func newTestServer(t *testing.T, d Device) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sedsim.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{path: path, cancel: cancel, done: make(chan error, 1), log: &lockedWriter{w: new(bytes.Buffer)}}
	s.dev, _ = d.(*testDevice)
	logger := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { s.done <- Serve(ctx, l, d, logger) }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("Serve = %v; want nil after cancel", err)
		}
	})
	return s
}

// stop cancels Serve and waits for it; it may be called more than once.
func (s *testServer) stop() error {
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
		}
		return err
	case <-time.After(10 * time.Second):
		return errors.New("Serve did not return 10s after cancel")
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func dial(t *testing.T, path string) *opalwire.Conn {
	t.Helper()
	c, err := opalwire.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServeOps(t *testing.T) {
	d := newTestDevice(4096)
	d.recvq = [][]byte{[]byte("level0"), []byte("0123456789")}
	d.locked[100] = true
	s := newTestServer(t, d)
	c := dial(t, s.path)
	ctx := context.Background()

	if err := c.IFSend(ctx, 1, 0x07FE, []byte{0xF8, 0xA8}); err != nil {
		t.Fatalf("IFSend: %v", err)
	}
	buf := make([]byte, 64)
	if n, err := c.IFRecv(ctx, 1, 1, buf); err != nil || string(buf[:n]) != "level0" {
		t.Fatalf("IFRecv = %q, %v; want level0", buf[:n], err)
	}
	if n, err := c.IFRecv(ctx, 1, 1, buf[:4]); err != nil || string(buf[:n]) != "0123" {
		t.Fatalf("IFRecv(alloc 4) = %q, %v; want 0123", buf[:n], err)
	}
	if n, err := c.IFRecv(ctx, 1, 1, buf); err != nil || n != 0 {
		t.Fatalf("IFRecv(empty queue) = %d, %v; want 0 bytes", n, err)
	}
	id, err := c.Identify(ctx)
	want := d.info
	want.Kind = transport.KindSim
	if err != nil || id != want {
		t.Fatalf("Identify = %+v, %v; want %+v", id, err, want)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}

	// 3000 blocks of 512 bytes: 1.5 MiB, two requests each way.
	data := make([]byte, 3000*testBlockSize)
	for i := range data {
		data[i] = byte(i * 7 / testBlockSize)
	}
	if err := c.WriteBlocks(ctx, 1000, data); err != nil {
		t.Fatalf("WriteBlocks: %v", err)
	}
	got := make([]byte, len(data))
	if err := c.ReadBlocks(ctx, 1000, 3000, got); err != nil {
		t.Fatalf("ReadBlocks: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("ReadBlocks returned other data than WriteBlocks wrote")
	}
	if err := c.ReadBlocks(ctx, 4095, 1, got); err != nil {
		t.Errorf("ReadBlocks(last block) = %v", err)
	}

	d.mu.Lock()
	if len(d.sent) != 1 || d.sent[0] != "1/07fe/f8a8" || d.resets != 1 {
		t.Errorf("device saw sent %q, %d resets; want [1/07fe/f8a8], 1", d.sent, d.resets)
	}
	d.mu.Unlock()

	errs := []struct {
		name string
		err  error
		want error
	}{
		{"read locked", c.ReadBlocks(ctx, 99, 2, got), ErrAccessDenied},
		{"write locked", c.WriteBlocks(ctx, 100, got[:testBlockSize]), ErrAccessDenied},
		{"read past the end", c.ReadBlocks(ctx, 4095, 2, got), ErrInvalidField},
		{"write past the end", c.WriteBlocks(ctx, 4096, got[:testBlockSize]), ErrInvalidField},
		{"IF_SEND protocol 3", c.IFSend(ctx, 3, 1, []byte{1}), transport.ErrInvalidField},
		{"IF_SEND device failure", c.IFSend(ctx, 1, 0xDEAD, []byte{1}), ErrDeviceError},
		{"IF_RECV protocol 0xEE", recvErr(c, 0xEE, 1), ErrInvalidField},
		{"IF_RECV over the allocation", recvErr(c, 1, 0xB16), ErrDeviceError},
	}
	for _, e := range errs {
		if !errors.Is(e.err, e.want) {
			t.Errorf("%s = %v; want %v", e.name, e.err, e.want)
		}
	}
	// After all those errors the connection still works.
	if _, err := c.Identify(ctx); err != nil {
		t.Errorf("Identify after errors: %v", err)
	}
	if !strings.Contains(s.log.String(), "simulated firmware crash") {
		t.Errorf("the unexpected device error was not logged:\n%s", s.log)
	}
}

func recvErr(c *opalwire.Conn, proto uint8, spsp uint16) error {
	_, err := c.IFRecv(context.Background(), proto, spsp, make([]byte, 16))
	return err
}

// rawConn is a plain connection to the server for hand-made requests.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, path string) *rawConn {
	t.Helper()
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

// roundTrip sends raw bytes and returns the response status and payload.
func (r *rawConn) roundTrip(req []byte) (opalwire.Status, []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(req); err != nil {
		r.t.Fatalf("write: %v", err)
	}
	var hdr [opalwire.HeaderLen]byte
	if _, err := io.ReadFull(r.nc, hdr[:]); err != nil {
		r.t.Fatalf("read response header: %v", err)
	}
	h, _ := opalwire.ParseResponseHeader(hdr[:])
	if hdr[1]|hdr[2]|hdr[3] != 0 {
		r.t.Errorf("reserved response bytes = %x; want zeros", hdr[1:4])
	}
	payload := make([]byte, h.Len)
	if _, err := io.ReadFull(r.nc, payload); err != nil {
		r.t.Fatalf("read response payload: %v", err)
	}
	return h.Status, payload
}

// expectClosed checks the server hung up.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	if n, err := r.nc.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		r.t.Errorf("after the request: read %d, %v; want the server to close the connection", n, err)
	}
}

func req(op opalwire.Op, proto uint8, spsp uint16, length uint32, payload ...[]byte) []byte {
	b := opalwire.RequestHeader{Op: op, Proto: proto, SPSP: spsp, Len: length}.Append(nil)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func blockRange(lba uint64, count uint32) []byte {
	return opalwire.BlockRange{LBA: lba, Count: count}.Append(nil)
}

// TestServeMalformed sends hand-made requests; each gets its status and the
// connection goes on (the INFO after it must work).
func TestServeMalformed(t *testing.T) {
	d := newTestDevice(64)
	s := newTestServer(t, d)
	tests := []struct {
		name string
		req  []byte
		want opalwire.Status
	}{
		{"unknown op with payload", req(0x7F, 1, 2, 5, []byte("hello")), opalwire.StatusInvalidOp},
		{"op 0", req(0, 0, 0, 0), opalwire.StatusInvalidOp},
		{"op 0xFF", req(0xFF, 0, 0, 3, []byte{1, 2, 3}), opalwire.StatusInvalidOp},
		{"INFO with a payload", req(opalwire.OpInfo, 0, 0, 3, []byte{1, 2, 3}), opalwire.StatusInvalidField},
		{"RESET with a payload", req(opalwire.OpReset, 0, 0, 1, []byte{1}), opalwire.StatusInvalidField},
		{"READ without a range", req(opalwire.OpRead, 0, 0, 0), opalwire.StatusInvalidField},
		{"READ with a short range", req(opalwire.OpRead, 0, 0, 5, []byte{0, 0, 0, 0, 0}), opalwire.StatusInvalidField},
		{"READ with trailing bytes", req(opalwire.OpRead, 0, 0, 13, blockRange(0, 1), []byte{0}), opalwire.StatusInvalidField},
		{"READ over 1 MiB", req(opalwire.OpRead, 0, 0, 12, blockRange(0, 2049)), opalwire.StatusInvalidField},
		{"READ beyond the end", req(opalwire.OpRead, 0, 0, 12, blockRange(60, 5)), opalwire.StatusInvalidField},
		{"READ at LBA 2^64-1", req(opalwire.OpRead, 0, 0, 12, blockRange(^uint64(0), 2)), opalwire.StatusInvalidField},
		{"READ of 2^32-1 blocks", req(opalwire.OpRead, 0, 0, 12, blockRange(0, ^uint32(0))), opalwire.StatusInvalidField},
		{"READ of 0 blocks", req(opalwire.OpRead, 0, 0, 12, blockRange(64, 0)), opalwire.StatusOK},
		{"WRITE with too little data", req(opalwire.OpWrite, 0, 0, 12+511, blockRange(0, 1), make([]byte, 511)), opalwire.StatusInvalidField},
		{"WRITE with too much data", req(opalwire.OpWrite, 0, 0, 12+1024, blockRange(0, 1), make([]byte, 1024)), opalwire.StatusInvalidField},
		{"WRITE of one block", req(opalwire.OpWrite, 0, 0, 12+512, blockRange(63, 1), make([]byte, 512)), opalwire.StatusOK},
		{"IF_SEND of nothing", req(opalwire.OpIFSend, 1, 1, 0), opalwire.StatusOK},
		{"IF_RECV of 1 MiB", req(opalwire.OpIFRecv, 1, 1, opalwire.MaxPayload), opalwire.StatusOK},
	}
	r := dialRaw(t, s.path)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			if st, _ := r.roundTrip(tc.req); st != tc.want {
				t.Errorf("status = %v; want %v", st, tc.want)
			}
			st, info := r.roundTrip(req(opalwire.OpInfo, 0, 0, 0))
			if st != opalwire.StatusOK || len(info) != opalwire.InfoLen {
				t.Errorf("INFO after it = %v, %d bytes; want OK, 128", st, len(info))
			}
		})
	}
}

// TestServeOversize: a payload over 1 MiB gets INVALID_FIELD and the
// connection is closed without reading it; other connections go on.
func TestServeOversize(t *testing.T) {
	d := newTestDevice(64)
	s := newTestServer(t, d)
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{"IF_SEND", req(opalwire.OpIFSend, 1, 1, opalwire.MaxPayload+1)},
		{"WRITE", req(opalwire.OpWrite, 0, 0, 0xFFFFFFFF)},
		{"unknown op", req(0x42, 0, 0, opalwire.MaxPayload+1)},
		{"IF_RECV allocation", req(opalwire.OpIFRecv, 1, 1, opalwire.MaxPayload+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s.path)
			if st, _ := r.roundTrip(tc.req); st != opalwire.StatusInvalidField {
				t.Errorf("status = %v; want INVALID_FIELD", st)
			}
			r.expectClosed()
		})
	}
	c := dial(t, s.path)
	if _, err := c.Identify(context.Background()); err != nil {
		t.Errorf("Identify on a new connection: %v", err)
	}
}

// TestServeBrokenPeers: connections that hang up mid-header or mid-payload
// cost the server nothing.
func TestServeBrokenPeers(t *testing.T) {
	d := newTestDevice(64)
	s := newTestServer(t, d)
	for _, b := range [][]byte{
		{0x01},
		req(opalwire.OpIFSend, 1, 1, 100)[:7],
		req(opalwire.OpIFSend, 1, 1, 100, make([]byte, 50)),
		req(opalwire.OpWrite, 0, 0, 12+512, blockRange(0, 1)),
	} {
		r := dialRaw(t, s.path)
		r.nc.Write(b)
		r.nc.Close()
	}
	c := dial(t, s.path)
	if _, err := c.Identify(context.Background()); err != nil {
		t.Errorf("Identify after broken peers: %v", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.sent) != 0 || len(d.blocks) != 0 {
		t.Errorf("partial requests reached the device: sent %q, %d blocks", d.sent, len(d.blocks))
	}
}

// TestServeConcurrentClients: many connections at once, each with its own
// blocks and IF-SEND payloads, on one device.
func TestServeConcurrentClients(t *testing.T) {
	const clients, rounds = 8, 25
	d := newTestDevice(clients * 1000)
	s := newTestServer(t, d)
	var wg sync.WaitGroup
	for i := range clients {
		c := dial(t, s.path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			data := make([]byte, 40*testBlockSize)
			got := make([]byte, len(data))
			for r := range rounds {
				binary.BigEndian.PutUint64(data, uint64(i<<32|r))
				lba := uint64(i*1000 + r*40)
				if err := c.WriteBlocks(ctx, lba, data); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				if err := c.IFSend(ctx, 2, uint16(i), []byte{byte(r)}); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				if err := c.ReadBlocks(ctx, lba, 40, got); err != nil || !bytes.Equal(got, data) {
					t.Errorf("client %d: ReadBlocks = %v, equal %v", i, err, bytes.Equal(got, data))
					return
				}
				if _, err := c.Identify(ctx); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.sent) != clients*rounds {
		t.Errorf("device saw %d IF-SENDs; want %d", len(d.sent), clients*rounds)
	}
}

// TestServeClientContext: a client whose context ends while the device is
// busy gets the context's error; the server finishes the request, finds
// the peer gone and goes on serving.
func TestServeClientContext(t *testing.T) {
	d := newTestDevice(64)
	gate := make(chan struct{})
	d.gate = gate
	s := newTestServer(t, d)
	c := dial(t, s.path)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.IFRecv(ctx, 1, 1, make([]byte, 16)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("IFRecv = %v; want DeadlineExceeded", err)
	}
	d.mu.Lock()
	d.gate = nil
	d.mu.Unlock()
	close(gate)
	c2 := dial(t, s.path)
	if _, err := c2.IFRecv(context.Background(), 1, 1, make([]byte, 16)); err != nil {
		t.Errorf("IFRecv on a new connection: %v", err)
	}
}

// TestServeShutdown: cancelling Serve's context closes the listener and
// every connection, including one whose request is in the device, and
// Serve returns once the device call is done.
func TestServeShutdown(t *testing.T) {
	d := newTestDevice(64)
	gate := make(chan struct{})
	d.gate = gate
	s := newTestServer(t, d)
	idle := dial(t, s.path)
	busy := dial(t, s.path)
	busyErr := make(chan error, 1)
	go func() {
		_, err := busy.IFRecv(context.Background(), 1, 1, make([]byte, 16))
		busyErr <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the request reach the device

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) while a device call was running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(gate)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err := <-busyErr; err == nil {
		t.Error("the busy request succeeded after shutdown")
	}
	if _, err := idle.Identify(context.Background()); err == nil {
		t.Error("Identify on a connection open at shutdown succeeded")
	}
	if _, err := os.Lstat(s.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after shutdown: %v; want it removed", err)
	}
}

func TestServeRejectsBadGeometry(t *testing.T) {
	d := newTestDevice(64)
	d.info.BlockSize = 0
	l, err := Listen(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Serve(context.Background(), l, d, nil); err == nil {
		t.Error("Serve with block size 0 succeeded")
	}
}

func TestListen(t *testing.T) {
	dir := t.TempDir()

	t.Run("mode 0600 before anyone can connect", func(t *testing.T) {
		// The ListenConfig hook alone, without Listen's chmod after.
		path := filepath.Join(dir, "hook.sock")
		l, err := (&net.ListenConfig{Control: restrictMode}).Listen(context.Background(), "unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("socket mode = %v; want 0600", fi.Mode().Perm())
		}
	})

	t.Run("mode", func(t *testing.T) {
		path := filepath.Join(dir, "a.sock")
		l, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket mode = %v; want socket, 0600", fi.Mode())
		}
	})

	t.Run("stale socket is replaced", func(t *testing.T) {
		path := filepath.Join(dir, "stale.sock")
		old, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close()
		l, err := Listen(path)
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		l.Close()
	})

	t.Run("live socket is kept", func(t *testing.T) {
		path := filepath.Join(dir, "live.sock")
		live, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		go func() { // answer the probe
			if c, err := live.Accept(); err == nil {
				c.Close()
			}
		}()
		if l, err := Listen(path); !errors.Is(err, ErrSocketInUse) {
			if l != nil {
				l.Close()
			}
			t.Fatalf("Listen over a live socket = %v; want ErrSocketInUse", err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("live socket removed: %v", err)
		}
	})

	t.Run("regular file is kept", func(t *testing.T) {
		path := filepath.Join(dir, "file")
		if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		if l, err := Listen(path); err == nil {
			l.Close()
			t.Fatal("Listen over a regular file succeeded")
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
			t.Errorf("regular file after Listen: %q, %v", b, err)
		}
	})
}
