package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
)

// Transport is the part of a tcg/transport Transport that sessions use:
// IF-SEND and IF-RECV on a security protocol and its SPSP field (the ComID
// for protocols 1 and 2). IFRecv returns how many bytes of buf the drive
// filled.
type Transport interface {
	IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error
	IFRecv(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error)
}

// TraceFunc sees one transfer: dir is [DirSend] or [DirRecv], data the bytes
// sent or received (for IF-RECV, the part the drive filled). data holds
// credentials as they go to the drive, and is valid only during the call
// (the Client wipes its send buffers afterwards): render it with a
// [TraceDecoder], never log it raw.
type TraceFunc func(dir string, proto uint8, spsp uint16, data []byte)

// Transfer directions a TraceFunc sees.
const (
	DirSend = "IF-SEND"
	DirRecv = "IF-RECV"
)

// Security protocols (PROTOCOL.md 1.1).
const (
	ProtocolInfo  uint8 = 0x00 // supported protocol list, certificates
	ProtocolTCG   uint8 = 0x01 // Level 0 discovery and session traffic
	ProtocolComID uint8 = 0x02 // ComID management
)

// Level0ComID is the fixed ComID of Level 0 discovery (Core 3.3.6).
const Level0ComID uint16 = 0x0001

// Defaults for [Options].
const (
	DefaultTimeout         = 60 * time.Second
	DefaultPollInterval    = time.Millisecond
	DefaultMaxPollInterval = 50 * time.Millisecond
	DefaultEmptyGrace      = 2 * time.Second
	// DefaultHostSessionID is the first host session number a Client hands
	// out (sedutil's 0x69); later sessions count up from it.
	DefaultHostSessionID = 0x69
)

// Bounds on what a Client allocates for the drive.
const (
	level0Alloc    = 2048    // the kernel's IO_BUFFER_LENGTH (PROTOCOL.md 1.2)
	maxLevel0Alloc = 1 << 16 // a Level 0 answer is at most a few hundred bytes in practice
	// MaxReceive is the largest IF-RECV allocation a Client makes, however
	// much MinTransfer asks for (opalwire carries at most 1 MiB).
	MaxReceive = 1 << 24
	// transferBlock is what IF-SEND transfers are padded to, as sedutil
	// does, when the drive's MaxComPacketSize leaves room.
	transferBlock = 512
)

// Errors a Client returns besides wrapped transport and method errors.
var (
	// ErrNoResponse: the drive keeps answering that nothing is queued
	// (OutstandingData = 0 and no Packets) for the request just sent.
	ErrNoResponse = errors.New("drive answered with an empty ComPacket: no response queued")
	// ErrNoSSC: Level 0 discovery names no security subsystem class, so
	// there is no ComID to talk to.
	ErrNoSSC = errors.New("drive announces no TCG security subsystem class (not a self-encrypting drive, or not one this tool knows)")
	// ErrTooLarge: a request does not fit the drive's MaxComPacketSize,
	// MaxPacketSize or MaxIndTokenSize.
	ErrTooLarge = errors.New("request exceeds the drive's negotiated size limits")
	// ErrSessionEnded: the session was ended, by Close or by the drive.
	ErrSessionEnded = errors.New("session has ended")
	// ErrMalformed: the drive's answer is not a well-formed response.
	ErrMalformed = errors.New("malformed response from the drive")
)

// Options configure a [Client]. The zero value is ready to use.
type Options struct {
	// ComID is the ComID for sessions; 0 takes the base ComID from Level 0
	// discovery.
	ComID uint16
	// HostProperties are sent in the Properties exchange; nil sends
	// DefaultHostProperties.
	HostProperties method.PropertyList
	// NoProperties skips the Properties exchange: the Client assumes the
	// Core minimums (as the Linux kernel does, which never calls
	// Properties).
	NoProperties bool
	// Timeout bounds each exchange (one request and its response) when
	// the context has no earlier deadline; 0 means DefaultTimeout.
	Timeout time.Duration
	// PollInterval is the first wait between IF-RECV polls, doubling up
	// to MaxPollInterval; 0 means the defaults.
	PollInterval    time.Duration
	MaxPollInterval time.Duration
	// EmptyGrace is how long the Client keeps polling while the drive
	// answers that nothing is queued (some drives do before the response
	// is ready); 0 means DefaultEmptyGrace.
	EmptyGrace time.Duration
	// HostSessionID is the first host session number; 0 means
	// DefaultHostSessionID.
	HostSessionID uint32
	// Trace, if set, sees every transfer.
	Trace TraceFunc
	// Logger receives debug and warning messages, never credentials; nil
	// discards them.
	Logger *slog.Logger
}

// A Client talks to one drive through a Transport: discovery, Properties,
// sessions and ComID management. Its methods may be called from several
// goroutines; exchanges are serialised, as the synchronous protocol needs.
type Client struct {
	t    Transport
	opts Options
	log  *slog.Logger

	xmu   sync.Mutex // held for a whole exchange (send + polling)
	recv  []byte     // receive buffer, under xmu
	stale bool       // under xmu: an exchange failed, a response may be left over

	mu       sync.Mutex // guards the fields below
	comID    uint16
	level0   *discovery.Discovery
	props    *Properties
	nextHSN  uint32
	sessions map[*Session]struct{}
	stats    Stats
}

// Stats count a Client's traffic.
type Stats struct {
	Sends    int // IF-SEND transfers
	Receives int // IF-RECV transfers, polls included
}

// NewClient returns a Client for t. opts may be nil.
func NewClient(t Transport, opts *Options) *Client {
	c := &Client{t: t, sessions: map[*Session]struct{}{}}
	if opts != nil {
		c.opts = *opts
	}
	o := &c.opts
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.MaxPollInterval <= 0 {
		o.MaxPollInterval = DefaultMaxPollInterval
	}
	if o.MaxPollInterval < o.PollInterval {
		o.MaxPollInterval = o.PollInterval
	}
	if o.EmptyGrace <= 0 {
		o.EmptyGrace = DefaultEmptyGrace
	}
	if o.HostSessionID == 0 {
		o.HostSessionID = DefaultHostSessionID
	}
	if o.HostProperties == nil {
		o.HostProperties = DefaultHostProperties
	}
	c.nextHSN = o.HostSessionID
	c.comID = o.ComID
	c.log = o.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Stats returns the traffic so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Discover reads Level 0 discovery (IF-RECV protocol 1, ComID 1; Core
// 3.3.6) and returns it parsed. The first successful call also fixes the
// Client's ComID, unless Options.ComID did. Every call asks the drive
// anew: the locking flags change as the drive is used.
func (c *Client) Discover(ctx context.Context) (*discovery.Discovery, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	c.xmu.Lock()
	defer c.xmu.Unlock()
	size := level0Alloc
	for {
		buf := make([]byte, size)
		n, err := c.ifRecv(ctx, ProtocolTCG, Level0ComID, buf)
		if err != nil {
			return nil, fmt.Errorf("level 0 discovery: %w", err)
		}
		d, err := discovery.Parse(buf[:n])
		if errors.Is(err, discovery.ErrTruncated) && n == size && size < maxLevel0Alloc && n >= 4 {
			// The answer is longer than we asked for: ask for all of it.
			want := int(binary.BigEndian.Uint32(buf)) + 4
			if want > size {
				size = min(roundUp(want, transferBlock), maxLevel0Alloc)
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("level 0 discovery: %w", err)
		}
		c.mu.Lock()
		c.level0 = d
		if c.comID == 0 {
			if base, ok := d.BaseComID(); ok {
				c.comID = base
			}
		}
		c.mu.Unlock()
		return d, nil
	}
}

// Level0 returns the last Level 0 discovery read by Discover, or nil.
func (c *Client) Level0() *discovery.Discovery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.level0
}

// ComID returns the ComID for sessions, running Level 0 discovery first if
// neither Options.ComID nor an earlier discovery fixed it.
func (c *Client) ComID(ctx context.Context) (uint16, error) {
	c.mu.Lock()
	id := c.comID
	c.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	d, err := c.Discover(ctx)
	if err != nil {
		return 0, err
	}
	if _, ok := d.BaseComID(); !ok {
		return 0, ErrNoSSC
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.comID, nil
}

// withTimeout bounds ctx by Options.Timeout.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.opts.Timeout,
		fmt.Errorf("drive did not answer within %v: %w", c.opts.Timeout, context.DeadlineExceeded))
}

func (c *Client) trace(dir string, proto uint8, spsp uint16, data []byte) {
	if c.opts.Trace != nil {
		c.opts.Trace(dir, proto, spsp, data)
	}
}

// ifSend sends data and counts it. Call with xmu held.
func (c *Client) ifSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error {
	c.trace(DirSend, proto, spsp, data)
	c.mu.Lock()
	c.stats.Sends++
	c.mu.Unlock()
	if err := c.t.IFSend(ctx, proto, spsp, data); err != nil {
		return fmt.Errorf("IF-SEND protocol %d ComID %#04x: %w", proto, spsp, err)
	}
	return nil
}

// ifRecv receives into buf and counts it. Call with xmu held.
func (c *Client) ifRecv(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error) {
	c.mu.Lock()
	c.stats.Receives++
	c.mu.Unlock()
	n, err := c.t.IFRecv(ctx, proto, spsp, buf)
	if err != nil {
		return 0, fmt.Errorf("IF-RECV protocol %d ComID %#04x: %w", proto, spsp, err)
	}
	if n < 0 || n > len(buf) {
		return 0, fmt.Errorf("IF-RECV protocol %d ComID %#04x: transport reports %d bytes for a %d-byte buffer", proto, spsp, n, len(buf))
	}
	c.trace(DirRecv, proto, spsp, buf[:n])
	return n, nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// exchange sends payload in one Packet (tsn, hsn) on the session ComID and
// polls for the response (Core 3.3.10.2.1, PROTOCOL.md 1.3). It returns the
// response's Packet header and a copy of its SubPacket data. lim is what the
// drive accepts. what names the request in errors.
func (c *Client) exchange(ctx context.Context, what string, tsn, hsn uint32, payload []byte, lim Limits) (packet.Packet, []byte, error) {
	comID, err := c.ComID(ctx)
	if err != nil {
		return packet.Packet{}, nil, err
	}
	if err := checkFrame(len(payload), lim); err != nil {
		return packet.Packet{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := packet.Build(comID, tsn, hsn, payload)
	if err != nil {
		return packet.Packet{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	if padded := roundUp(len(out), transferBlock); uint64(padded) <= lim.MaxComPacketSize {
		out = append(out, make([]byte, padded-len(out))...)
	}
	defer clear(out)

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	c.xmu.Lock()
	defer c.xmu.Unlock()
	if c.stale {
		c.drain(ctx, comID)
	}
	if err := c.ifSend(ctx, ProtocolTCG, comID, out); err != nil {
		c.stale = true
		return packet.Packet{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	pkt, data, err := c.poll(ctx, comID)
	if err != nil {
		c.stale = true
		return packet.Packet{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	return pkt, data, nil
}

// drain reads and discards whatever responses an earlier, failed exchange
// left queued on comID, so that they are not taken for the answer to the
// next request. Call with xmu held.
func (c *Client) drain(ctx context.Context, comID uint16) {
	delay := c.opts.PollInterval
	for range 64 {
		if len(c.recv) < level0Alloc {
			c.recv = make([]byte, level0Alloc)
		}
		n, err := c.ifRecv(ctx, ProtocolTCG, comID, c.recv)
		if err != nil {
			return
		}
		cp, err := packet.Parse(c.recv[:n])
		if err != nil {
			return
		}
		switch {
		case len(cp.Packets) > 0:
			c.log.Debug("discarding a response left over from a failed exchange")
			continue
		case cp.MinTransfer > uint32(len(c.recv)) && cp.MinTransfer <= MaxReceive:
			c.recv = make([]byte, roundUp(int(cp.MinTransfer), transferBlock))
			continue
		case cp.OutstandingData == 0:
			c.stale = false
			return
		}
		if sleep(ctx, delay) != nil {
			return
		}
		delay = min(2*delay, c.opts.MaxPollInterval)
	}
}

// poll receives on comID until a response arrives. Call with xmu held.
func (c *Client) poll(ctx context.Context, comID uint16) (packet.Packet, []byte, error) {
	c.mu.Lock()
	size := level0Alloc
	if c.props != nil {
		size = int(min(max(c.props.Host.MaxComPacketSize, uint64(size)), MaxReceive))
	}
	c.mu.Unlock()
	if len(c.recv) < size {
		c.recv = make([]byte, roundUp(size, transferBlock))
	}
	delay := c.opts.PollInterval
	var emptySince time.Time
	for {
		buf := c.recv
		n, err := c.ifRecv(ctx, ProtocolTCG, comID, buf)
		if err != nil {
			return packet.Packet{}, nil, err
		}
		cp, err := packet.Parse(buf[:n])
		if err != nil {
			return packet.Packet{}, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if cp.ComID != comID {
			return packet.Packet{}, nil, fmt.Errorf("%w: answer on ComID %#04x is for ComID %#04x", ErrMalformed, comID, cp.ComID)
		}
		if len(cp.Packets) > 0 {
			pkt, data, err := cp.Payload()
			if err != nil {
				return packet.Packet{}, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			data = append([]byte(nil), data...)
			clear(buf[:n])
			return pkt, data, nil
		}
		switch {
		case cp.MinTransfer > uint32(len(buf)):
			// The response is ready but bigger than our allocation.
			if cp.MinTransfer > MaxReceive {
				return packet.Packet{}, nil, fmt.Errorf("%w: response needs %d bytes, more than the %d this host receives", ErrMalformed, cp.MinTransfer, MaxReceive)
			}
			c.log.Debug("growing IF-RECV buffer", "from", len(buf), "to", cp.MinTransfer)
			c.recv = make([]byte, min(roundUp(int(cp.MinTransfer), transferBlock), MaxReceive))
			continue
		case cp.OutstandingData == 0 && cp.MinTransfer == 0:
			// Nothing queued. Real drives sometimes say so before the
			// response is ready; keep asking for a while.
			if emptySince.IsZero() {
				emptySince = time.Now()
			} else if time.Since(emptySince) > c.opts.EmptyGrace {
				return packet.Packet{}, nil, ErrNoResponse
			}
		}
		if err := sleep(ctx, delay); err != nil {
			return packet.Packet{}, nil, err
		}
		delay = min(2*delay, c.opts.MaxPollInterval)
	}
}

// checkFrame checks that a payload of n bytes, framed, fits lim.
func checkFrame(n int, lim Limits) error {
	pkt := packet.PacketHeaderLen + packet.SubPacketHeaderLen + roundUp(n, 4)
	com := packet.ComPacketHeaderLen + pkt
	if uint64(com) > lim.MaxComPacketSize {
		return fmt.Errorf("%w: %d-byte ComPacket, the drive takes at most %d (MaxComPacketSize)", ErrTooLarge, com, lim.MaxComPacketSize)
	}
	if uint64(pkt) > lim.MaxPacketSize {
		return fmt.Errorf("%w: %d-byte Packet, the drive takes at most %d (MaxPacketSize)", ErrTooLarge, pkt, lim.MaxPacketSize)
	}
	return nil
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }
