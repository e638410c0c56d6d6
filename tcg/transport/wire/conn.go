package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Conn is one open opalwire device handle. It implements
// [transport.Transport] and adds block I/O and power cycles.
//
// A Conn is safe for concurrent use: requests go one at a time, as the
// protocol requires. ReadBlocks and WriteBlocks split transfers over
// MaxPayload into several requests, which other goroutines' requests may
// interleave with.
//
// When ctx ends in the middle of a request, or the peer breaks the protocol,
// the stream's position is lost: the Conn closes itself and every later
// call fails with an error matching [transport.ErrClosed].
type Conn struct {
	nc     net.Conn
	closed atomic.Bool

	mu        sync.Mutex // held for one request-response exchange
	broken    error      // sticky; non-nil once the stream is unusable
	blockSize uint32     // from INFO, 0 until the first one
	hdr       [HeaderLen + BlockRangeLen]byte
}

var _ transport.Transport = (*Conn)(nil)

// Dial connects to the opalwire server listening on the Unix socket path.
// ctx bounds the connect only.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("opalwire: %w", err)
	}
	return NewConn(nc), nil
}

// NewConn returns a Conn speaking opalwire over an established connection,
// which it owns from then on.
func NewConn(nc net.Conn) *Conn {
	return &Conn{nc: nc}
}

// Close closes the connection. It interrupts a request in progress, which
// then fails. Closing twice is not an error.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.nc.Close()
}

// IFSend sends data with IF_SEND. A payload over MaxPayload fails with
// ErrTooLarge before anything is sent.
func (c *Conn) IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error {
	if len(data) > MaxPayload {
		return fmt.Errorf("opalwire IF_SEND proto 0x%02x spsp 0x%04x: %d bytes: %w", proto, spsp, len(data), ErrTooLarge)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := RequestHeader{Op: OpIFSend, Proto: proto, SPSP: spsp, Len: uint32(len(data))}
	if _, err := c.exchange(ctx, h, data, nil); err != nil {
		return fmt.Errorf("opalwire IF_SEND proto 0x%02x spsp 0x%04x: %w", proto, spsp, err)
	}
	return nil
}

// IFRecv receives into buf with IF_RECV and returns the number of bytes the
// server sent, at most len(buf). Allocation lengths over MaxPayload are
// lowered to MaxPayload, since no response can be longer.
func (c *Conn) IFRecv(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error) {
	if len(buf) > MaxPayload {
		buf = buf[:MaxPayload]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := RequestHeader{Op: OpIFRecv, Proto: proto, SPSP: spsp, Len: uint32(len(buf))}
	n, err := c.exchange(ctx, h, nil, buf)
	if err != nil {
		return 0, fmt.Errorf("opalwire IF_RECV proto 0x%02x spsp 0x%04x: %w", proto, spsp, err)
	}
	return n, nil
}

// Identify asks the server for the drive's identity with INFO.
func (c *Conn) Identify(ctx context.Context) (transport.Identity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.identify(ctx)
}

// identify is Identify with c.mu held.
func (c *Conn) identify(ctx context.Context) (transport.Identity, error) {
	var buf [InfoLen]byte
	n, err := c.exchange(ctx, RequestHeader{Op: OpInfo}, nil, buf[:])
	if err == nil && n != InfoLen {
		err = c.fail(fmt.Errorf("%w: INFO response is %d bytes, want %d", ErrProtocol, n, InfoLen))
	}
	if err != nil {
		return transport.Identity{}, fmt.Errorf("opalwire INFO: %w", err)
	}
	id, err := ParseInfo(buf[:])
	if err != nil {
		return transport.Identity{}, fmt.Errorf("opalwire INFO: %w", err)
	}
	c.blockSize = id.BlockSize
	return id, nil
}

// Reset power-cycles the drive (RESET): ranges with LockOnReset lock, the
// MBR shadow comes back, every session on every connection ends.
func (c *Conn) Reset(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.exchange(ctx, RequestHeader{Op: OpReset}, nil, nil); err != nil {
		return fmt.Errorf("opalwire RESET: %w", err)
	}
	return nil
}

// geometry returns the block size, asking INFO the first time. Called with
// c.mu held.
func (c *Conn) geometry(ctx context.Context) (uint32, error) {
	if c.blockSize == 0 {
		if _, err := c.identify(ctx); err != nil {
			return 0, err
		}
		if c.blockSize == 0 || c.blockSize > MaxPayload {
			return 0, c.fail(fmt.Errorf("%w: drive reports a block size of %d", ErrProtocol, c.blockSize))
		}
	}
	return c.blockSize, nil
}

// ReadBlocks reads count blocks from lba into buf, which must hold
// count*BlockSize bytes. Reads of locked LBAs fail with ErrAccessDenied,
// reads beyond the end with ErrInvalidField. Transfers over MaxPayload go
// as several requests; on an error, buf may hold some of the blocks.
func (c *Conn) ReadBlocks(ctx context.Context, lba uint64, count uint32, buf []byte) error {
	if err := c.blockIO(ctx, OpRead, lba, count, buf); err != nil {
		return fmt.Errorf("opalwire READ lba %d count %d: %w", lba, count, err)
	}
	return nil
}

// WriteBlocks writes data, a whole number of blocks, from lba. Errors are
// those of ReadBlocks; on an error, some of the blocks may have been
// written.
func (c *Conn) WriteBlocks(ctx context.Context, lba uint64, data []byte) error {
	if err := c.blockIO(ctx, OpWrite, lba, 0, data); err != nil {
		return fmt.Errorf("opalwire WRITE lba %d (%d bytes): %w", lba, len(data), err)
	}
	return nil
}

// blockIO runs READ (count blocks into buf) or WRITE (all of buf) in
// requests of at most MaxPayload bytes.
func (c *Conn) blockIO(ctx context.Context, op Op, lba uint64, count uint32, buf []byte) error {
	c.mu.Lock()
	bs, err := c.geometry(ctx)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	var total uint64
	perRequest := uint64(MaxPayload / bs) // READ: the response is all blocks
	if op == OpRead {
		total = uint64(count)
		if uint64(len(buf)) < total*uint64(bs) {
			return fmt.Errorf("buffer of %d bytes is too small for %d blocks of %d bytes", len(buf), count, bs)
		}
	} else {
		if len(buf)%int(bs) != 0 {
			return fmt.Errorf("%d bytes is not a whole number of %d-byte blocks", len(buf), bs)
		}
		total = uint64(len(buf)) / uint64(bs)
		perRequest = uint64((MaxPayload - BlockRangeLen) / bs) // WRITE: the request carries the range too
	}
	if perRequest == 0 {
		return fmt.Errorf("%w: %d-byte blocks do not fit a request", ErrProtocol, bs)
	}
	if lba > math.MaxUint64-total {
		return fmt.Errorf("range overflows the LBA space: %w", ErrInvalidField)
	}
	for done := uint64(0); done < total; {
		n := min(total-done, perRequest)
		chunk := buf[done*uint64(bs) : (done+n)*uint64(bs)]
		if err := c.blocks(ctx, op, BlockRange{LBA: lba + done, Count: uint32(n)}, chunk); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// blocks runs one READ or WRITE request of r, chunk being the blocks.
func (c *Conn) blocks(ctx context.Context, op Op, r BlockRange, chunk []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := RequestHeader{Op: op, Len: BlockRangeLen}
	if op == OpWrite {
		h.Len += uint32(len(chunk))
		_, err := c.exchange(ctx, h, chunk, nil, r)
		return err
	}
	n, err := c.exchange(ctx, h, nil, chunk, r)
	if err == nil && n != len(chunk) {
		err = c.fail(fmt.Errorf("%w: READ response is %d bytes, want %d", ErrProtocol, n, len(chunk)))
	}
	return err
}

// exchange sends a request, with the optional block range and then body as
// its payload, reads the response and its payload into recv, and returns
// the payload length. A non-OK status is returned as a Status error. Called
// with c.mu held.
func (c *Conn) exchange(ctx context.Context, h RequestHeader, body, recv []byte, r ...BlockRange) (int, error) {
	if c.broken != nil {
		return 0, c.broken
	}
	if c.closed.Load() {
		return 0, transport.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	defer c.watch(ctx)()

	out := h.Append(c.hdr[:0])
	for _, br := range r {
		out = br.Append(out)
	}
	bufs := net.Buffers{out}
	if len(body) > 0 {
		bufs = append(bufs, body)
	}
	if _, err := bufs.WriteTo(c.nc); err != nil {
		return 0, c.fail(c.ioError(ctx, err))
	}
	if _, err := io.ReadFull(c.nc, c.hdr[:HeaderLen]); err != nil {
		return 0, c.fail(c.ioError(ctx, err))
	}
	resp, _ := ParseResponseHeader(c.hdr[:HeaderLen])
	if resp.Len > MaxPayload {
		return 0, c.fail(fmt.Errorf("%w: response payload of %d bytes is over the %d-byte limit", ErrProtocol, resp.Len, MaxPayload))
	}
	if resp.Status != StatusOK {
		// Error responses carry no payload; skip one if a server sends it.
		if _, err := io.CopyN(io.Discard, c.nc, int64(resp.Len)); err != nil {
			return 0, c.fail(c.ioError(ctx, err))
		}
		return 0, resp.Status
	}
	if int64(resp.Len) > int64(len(recv)) {
		return 0, c.fail(fmt.Errorf("%w: %s response payload of %d bytes is over the %d bytes asked for", ErrProtocol, h.Op, resp.Len, len(recv)))
	}
	if _, err := io.ReadFull(c.nc, recv[:resp.Len]); err != nil {
		return 0, c.fail(c.ioError(ctx, err))
	}
	return int(resp.Len), nil
}

// watch makes ctx bound the exchange: its deadline becomes the connection's,
// and its cancellation sets a deadline in the past, which interrupts any
// read or write. The returned func undoes the watching; once it has
// returned, nothing touches the deadline any more.
func (c *Conn) watch(ctx context.Context) (stop func()) {
	d, _ := ctx.Deadline() // zero: no deadline
	_ = c.nc.SetDeadline(d)
	if ctx.Done() == nil {
		return func() {}
	}
	fired := make(chan struct{})
	unhook := context.AfterFunc(ctx, func() {
		_ = c.nc.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !unhook() {
			<-fired
		}
	}
}

// ioError explains an I/O error: the context's error when ctx ended or its
// deadline passed, transport.ErrClosed after Close.
func (c *Conn) ioError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	if c.closed.Load() {
		return transport.ErrClosed
	}
	return err
}

// fail marks the stream unusable after err, closes the connection and
// returns err. Called with c.mu held.
func (c *Conn) fail(err error) error {
	c.broken = fmt.Errorf("%w: an earlier request failed: %v", transport.ErrClosed, err)
	c.closed.Store(true)
	_ = c.nc.Close()
	return err
}
