// Package wire serves a drive over opalwire v1, the sedsim socket protocol
// (DESIGN.md, "opalwire v1"; the client and the codec are in
// tcg/transport/wire).
//
// [Serve] accepts connections on a listener, usually one from [Listen], and
// answers each connection's requests in order, one at a time; connections
// run concurrently and share one [Device]. A request with an unknown op gets
// INVALID_OP and the connection goes on. A payload over 1 MiB gets
// INVALID_FIELD and the connection is closed, since skipping it would mean
// reading a peer-chosen amount of data.
package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/shiftlock/shiftlock/tcg/transport"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

// Device is the drive behind the socket. Its methods are called from many
// connections at once and must be safe for concurrent use. Slices passed in
// are only valid during the call.
//
// Errors become response statuses through errors.Is / errors.As:
// ErrInvalidField (or transport.ErrInvalidField, transport.ErrNotSupported)
// gives INVALID_FIELD, ErrAccessDenied gives ACCESS_DENIED, ErrInvalidOp
// gives INVALID_OP, and anything else DEVICE_ERROR (logged as a warning
// unless it is ErrDeviceError).
type Device interface {
	// IFSend takes an IF-SEND payload (Core 3.3.10.3).
	IFSend(proto uint8, spsp uint16, data []byte) error
	// IFRecv answers an IF-RECV with at most alloc bytes.
	IFRecv(proto uint8, spsp uint16, alloc int) ([]byte, error)
	// Info returns the drive's identity. Its geometry (BlockSize, Blocks)
	// must not change while Serve runs.
	Info() transport.Identity
	// Reset power-cycles the drive.
	Reset() error
	// Read fills dst, a whole number of blocks, from lba. Serve has
	// checked that the blocks exist. Locked LBAs fail with ErrAccessDenied.
	Read(lba uint64, dst []byte) error
	// Write stores data, a whole number of blocks, from lba. Serve has
	// checked that the blocks exist. Locked LBAs fail with ErrAccessDenied.
	Write(lba uint64, data []byte) error
}

// Errors for Device implementations; they are the client's, so that
// errors.Is holds on both sides of the socket.
var (
	ErrInvalidField = opalwire.ErrInvalidField
	ErrInvalidOp    = opalwire.ErrInvalidOp
	ErrDeviceError  = opalwire.ErrDeviceError
	ErrAccessDenied = opalwire.ErrAccessDenied
)

// Serve answers opalwire requests for d on every connection l accepts, until
// ctx ends or accepting fails. Then it closes l and every connection, waits
// for their handlers and returns: nil after ctx ended, the accept error
// otherwise. log may be nil.
func Serve(ctx context.Context, l net.Listener, d Device, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := d.Info()
	if id.BlockSize == 0 || id.BlockSize > opalwire.MaxPayload-opalwire.BlockRangeLen {
		l.Close()
		return fmt.Errorf("opalwire serve: device block size %d is not usable", id.BlockSize)
	}
	s := &server{d: d, log: log, blockSize: id.BlockSize, blocks: id.Blocks, conns: map[net.Conn]struct{}{}}

	stop := context.AfterFunc(ctx, func() {
		l.Close()
		s.closeAll()
	})
	defer stop()

	var err error
	backoff := time.Duration(0)
	for {
		nc, aerr := l.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			if retryAccept(aerr) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				log.Warn("opalwire accept failed; retrying", "err", aerr, "in", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-ctx.Done():
				}
				break
			}
			err = fmt.Errorf("opalwire serve: accept: %w", aerr)
			break
		}
		backoff = 0
		if !s.track(nc) {
			nc.Close()
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(nc)
		}()
	}
	l.Close()
	s.closeAll()
	s.wg.Wait()
	return err
}

// retryAccept reports whether an accept error is a passing shortage.
func retryAccept(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

type server struct {
	d         Device
	log       *slog.Logger
	blockSize uint32
	blocks    uint64

	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	shutdown bool
}

// track registers a connection, or reports false when shutting down.
func (s *server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.conns[nc] = struct{}{}
	return true
}

func (s *server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

// closeAll closes every connection and refuses new ones.
func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown = true
	for nc := range s.conns {
		nc.Close()
	}
}

// payloadPool holds MaxPayload-sized buffers for request payloads and READ
// responses, so a connection holds one only while a request is in flight.
var payloadPool = sync.Pool{New: func() any { return new([opalwire.MaxPayload]byte) }}

// serveConn answers requests on nc until it fails, the peer closes it, or a
// request leaves the stream unusable.
func (s *server) serveConn(nc net.Conn) {
	defer s.untrack(nc)
	defer nc.Close()
	log := s.log
	if a := nc.RemoteAddr(); a != nil && a.String() != "" {
		log = log.With("peer", a.String())
	}
	log.Debug("opalwire connection opened")
	var hdr [opalwire.HeaderLen]byte
	for {
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				log.Debug("opalwire connection closed")
			} else {
				log.Info("opalwire connection dropped", "err", err)
			}
			return
		}
		h, _ := opalwire.ParseRequestHeader(hdr[:])
		if !s.serveRequest(nc, h, log) {
			return
		}
	}
}

// serveRequest reads the payload of the request h from nc, runs it and
// writes the response. It reports whether the connection can go on.
func (s *server) serveRequest(nc net.Conn, h opalwire.RequestHeader, log *slog.Logger) bool {
	n := h.PayloadLen()
	if n > opalwire.MaxPayload || (h.Op == opalwire.OpIFRecv && h.Len > opalwire.MaxPayload) {
		log.Info("opalwire request over the 1 MiB limit; closing the connection", "op", h.Op, "len", h.Len)
		s.respond(nc, opalwire.StatusInvalidField, nil, log)
		return false
	}
	var buf *[opalwire.MaxPayload]byte
	if n > 0 || h.Op == opalwire.OpRead {
		buf = payloadPool.Get().(*[opalwire.MaxPayload]byte)
		defer payloadPool.Put(buf)
	}
	var payload []byte
	if n > 0 {
		payload = buf[:n]
		if _, err := io.ReadFull(nc, payload); err != nil {
			log.Info("opalwire connection dropped in a request payload", "op", h.Op, "err", err)
			return false
		}
	}
	st, out := s.run(h, payload, buf, log)
	return s.respond(nc, st, out, log)
}

// run executes one request whose payload has been read. For READ, the blocks
// go into buf, whose payload part has been parsed by then.
func (s *server) run(h opalwire.RequestHeader, payload []byte, buf *[opalwire.MaxPayload]byte, log *slog.Logger) (opalwire.Status, []byte) {
	switch h.Op {
	case opalwire.OpIFSend:
		return s.status(h, s.d.IFSend(h.Proto, h.SPSP, payload), log), nil

	case opalwire.OpIFRecv:
		out, err := s.d.IFRecv(h.Proto, h.SPSP, int(h.Len))
		if err != nil {
			return s.status(h, err, log), nil
		}
		if len(out) > int(h.Len) {
			log.Error("opalwire device answered IF_RECV with more than the allocation length", "proto", h.Proto, "spsp", h.SPSP, "len", len(out), "alloc", h.Len)
			return opalwire.StatusDeviceError, nil
		}
		return opalwire.StatusOK, out

	case opalwire.OpInfo, opalwire.OpReset:
		if len(payload) != 0 {
			return opalwire.StatusInvalidField, nil
		}
		if h.Op == opalwire.OpReset {
			return s.status(h, s.d.Reset(), log), nil
		}
		out, err := opalwire.AppendInfo(nil, s.d.Info())
		if err != nil {
			log.Error("opalwire INFO", "err", err)
			return opalwire.StatusDeviceError, nil
		}
		return opalwire.StatusOK, out

	case opalwire.OpRead, opalwire.OpWrite:
		if len(payload) < opalwire.BlockRangeLen {
			return opalwire.StatusInvalidField, nil
		}
		r, _ := opalwire.ParseBlockRange(payload)
		data := payload[opalwire.BlockRangeLen:]
		size := uint64(r.Count) * uint64(s.blockSize)
		switch {
		case r.LBA > s.blocks || uint64(r.Count) > s.blocks-r.LBA:
			return opalwire.StatusInvalidField, nil
		case h.Op == opalwire.OpRead && (len(data) != 0 || size > opalwire.MaxPayload):
			return opalwire.StatusInvalidField, nil
		case h.Op == opalwire.OpWrite && uint64(len(data)) != size:
			return opalwire.StatusInvalidField, nil
		case r.Count == 0:
			return opalwire.StatusOK, nil
		}
		if h.Op == opalwire.OpWrite {
			return s.status(h, s.d.Write(r.LBA, data), log), nil
		}
		out := buf[:size]
		if err := s.d.Read(r.LBA, out); err != nil {
			return s.status(h, err, log), nil
		}
		return opalwire.StatusOK, out
	}
	return opalwire.StatusInvalidOp, nil
}

// status maps a Device error to a response status.
func (s *server) status(h opalwire.RequestHeader, err error, log *slog.Logger) opalwire.Status {
	if err == nil {
		return opalwire.StatusOK
	}
	var st opalwire.Status
	switch {
	case errors.As(err, &st) && st != opalwire.StatusOK:
	case errors.Is(err, transport.ErrInvalidField), errors.Is(err, transport.ErrNotSupported):
		st = opalwire.StatusInvalidField
	default:
		log.Warn("opalwire device error", "op", h.Op, "proto", h.Proto, "spsp", h.SPSP, "err", err)
		return opalwire.StatusDeviceError
	}
	log.Debug("opalwire request refused", "op", h.Op, "status", st.Name(), "err", err)
	return st
}

// respond writes one response. It reports whether the write succeeded.
func (s *server) respond(nc net.Conn, st opalwire.Status, out []byte, log *slog.Logger) bool {
	var hdr [opalwire.HeaderLen]byte
	bufs := net.Buffers{opalwire.ResponseHeader{Status: st, Len: uint32(len(out))}.Append(hdr[:0])}
	if len(out) > 0 {
		bufs = append(bufs, out)
	}
	if _, err := bufs.WriteTo(nc); err != nil {
		if !errors.Is(err, net.ErrClosed) {
			log.Info("opalwire connection dropped while answering", "err", err)
		}
		return false
	}
	return true
}
