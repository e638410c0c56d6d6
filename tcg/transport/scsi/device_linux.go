package scsi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/tcg/transport"
	"github.com/shiftlock/shiftlock/tcg/transport/internal/ioctl"
)

// MaxTransfer caps one IF-SEND or IF-RECV: IFSend refuses more, IFRecv
// lowers its allocation length to it. It is a whole number of ATA blocks.
const MaxTransfer = 1 << 20

// DefaultTimeout is the command timeout without a context deadline.
const DefaultTimeout = 60 * time.Second

// openTimeout bounds the probing commands of Open.
const openTimeout = 30 * time.Second

// unitAttentionRetries is how often a command that met UNIT ATTENTION (a
// reset or media change reported to the first command after it, which the
// device did not execute) is reissued.
const unitAttentionRetries = 2

// ErrTrustedBlocked means ATA TRUSTED SEND/RECEIVE inside ATA PASS-THROUGH
// was refused with INVALID FIELD IN CDB, which is what Linux libata does
// unless libata.allow_tpm=1.
var ErrTrustedBlocked = errors.New("ATA PASS-THROUGH with TRUSTED SEND/RECEIVE was refused; Linux libata blocks these commands unless libata.allow_tpm=1 " +
	"(add it to the kernel command line, or as root: echo 1 > /sys/module/libata/parameters/allow_tpm)")

// Mode is the command set a Device uses for IF-SEND and IF-RECV.
type Mode uint8

// Modes.
const (
	ModeSecurityProtocol Mode = iota + 1 // SECURITY PROTOCOL IN/OUT
	ModeATA16                            // TRUSTED RECEIVE/SEND in ATA PASS-THROUGH(16)
	ModeATA12                            // TRUSTED RECEIVE/SEND in ATA PASS-THROUGH(12)
)

func (m Mode) String() string {
	switch m {
	case ModeSecurityProtocol:
		return "SECURITY PROTOCOL IN/OUT"
	case ModeATA16:
		return "ATA PASS-THROUGH(16) TRUSTED RECEIVE/SEND"
	case ModeATA12:
		return "ATA PASS-THROUGH(12) TRUSTED RECEIVE/SEND"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Device is an open SCSI disk or generic SCSI node. It implements
// [transport.Transport].
type Device struct {
	path   string
	fd     uintptr
	closer io.Closer
	ioctl  ioctl.Func

	mu     sync.Mutex // one command at a time; Close waits for it
	closed bool
	mode   Mode
	pt     Mode // pass-through CDB that works for IDENTIFY (ModeATA16 or ModeATA12), 0 if none
	ataDev bool // an ATA drive behind a translation layer
}

var _ transport.Transport = (*Device)(nil)

// Open opens /dev/sdX or /dev/sgN and finds the security command set the
// drive answers: SECURITY PROTOCOL IN, or for an ATA drive the ATA
// PASS-THROUGH fallback. A drive without either fails with an error
// matching transport.ErrNotSupported, or ErrTrustedBlocked when libata
// refuses the pass-through.
func Open(path string) (transport.Transport, error) {
	d, err := OpenDevice(path)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// OpenDevice is Open returning the concrete type.
func OpenDevice(path string) (*Device, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS) {
		// CAP_SYS_RAWIO allows these commands on a read-only open too.
		f, err = os.OpenFile(path, os.O_RDONLY, 0)
	}
	if err != nil {
		if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
			return nil, fmt.Errorf("scsi: %w (SG_IO with security commands needs root)", err)
		}
		return nil, fmt.Errorf("scsi: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("scsi: %w", err)
	}
	if fi.Mode()&os.ModeDevice == 0 {
		f.Close()
		return nil, fmt.Errorf("scsi: %s is not a device node (%s); give a disk such as /dev/sda or a generic node such as /dev/sg0", path, ioctl.DescribeMode(fi.Mode()))
	}
	d, err := newDevice(path, f.Fd(), f, ioctl.Syscall)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// newDevice probes an open node: INQUIRY, IDENTIFY DEVICE for ATA drives,
// then the protocol list through SECURITY PROTOCOL IN or pass-through.
func newDevice(path string, fd uintptr, closer io.Closer, fn ioctl.Func) (*Device, error) {
	d := &Device{path: path, fd: fd, closer: closer, ioctl: fn}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()

	inq, err := d.inquiry(ctx)
	if err != nil {
		return nil, fmt.Errorf("scsi %s: %w", path, err)
	}
	d.ataDev = inq.IsATA()
	name := strings.TrimSpace(inq.Vendor + " " + inq.Product)
	if d.ataDev {
		if a, err := d.ataIdentify(ctx); err == nil {
			name = a.Model
			if !a.Trusted {
				return nil, fmt.Errorf("scsi %s (%s): ATA IDENTIFY DEVICE word 48 reports no Trusted Computing feature set, so it is not a TCG self-encrypting drive: %w",
					path, name, transport.ErrNotSupported)
			}
		}
	}

	probe := make([]byte, ATABlock)
	d.mode = ModeSecurityProtocol
	_, secErr := d.recv(ctx, 0x00, 0x0000, probe)
	if secErr == nil {
		return d, nil
	}
	var s Sense
	if !errors.As(secErr, &s) || s.Key != IllegalRequest {
		return nil, fmt.Errorf("scsi %s (%s): SECURITY PROTOCOL IN: %w", path, name, secErr)
	}
	if !d.ataDev {
		return nil, fmt.Errorf("scsi %s (%s): the drive rejected SECURITY PROTOCOL IN (%v), so it is not a TCG self-encrypting drive: %w",
			path, name, secErr, transport.ErrNotSupported)
	}
	modes := []Mode{ModeATA16, ModeATA12}
	if d.pt == ModeATA12 {
		modes = []Mode{ModeATA12, ModeATA16}
	}
	var ptErr error
	for _, m := range modes {
		d.mode = m
		_, ptErr = d.recv(ctx, 0x00, 0x0000, probe)
		if ptErr == nil {
			return d, nil
		}
		if !errors.As(ptErr, &s) || s.Key != IllegalRequest {
			break
		}
	}
	if errors.As(ptErr, &s) && s.Key == IllegalRequest && s.ASC == ASCInvalidFieldInCDB && d.pt != 0 {
		// Pass-through works (IDENTIFY went through), the trusted
		// opcodes are filtered: libata without allow_tpm.
		return nil, fmt.Errorf("scsi %s (%s): SECURITY PROTOCOL IN was rejected (%v), and %v: %w", path, name, secErr, ptErr, ErrTrustedBlocked)
	}
	return nil, fmt.Errorf("scsi %s (%s): the drive rejected SECURITY PROTOCOL IN (%v) and ATA TRUSTED RECEIVE through pass-through (%v), so it is not usable as a TCG self-encrypting drive: %w",
		path, name, secErr, ptErr, transport.ErrNotSupported)
}

// Path returns the device path given to Open.
func (d *Device) Path() string { return d.path }

// Mode returns the command set Open chose.
func (d *Device) Mode() Mode { return d.mode }

// Close closes the device node. It waits for a command in progress.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.closer != nil {
		return d.closer.Close()
	}
	return nil
}

// IFSend issues SECURITY PROTOCOL OUT, or TRUSTED SEND. Data for an ATA
// drive (either way) is padded with zeros to whole 512-byte blocks, which
// TCG allows beyond ComPacket.Length.
func (d *Device) IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error {
	if len(data) > MaxTransfer {
		return fmt.Errorf("scsi if-send proto 0x%02x comid 0x%04x on %s: %d bytes is over the %d-byte limit", proto, spsp, d.path, len(data), MaxTransfer)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("scsi if-send on %s: %w", d.path, transport.ErrClosed)
	}
	var err error
	if d.mode == ModeSecurityProtocol {
		if d.ataDev && len(data)%ATABlock != 0 {
			// libata turns the byte count into whole blocks for the
			// drive: send the zero padding rather than leave it short.
			padded := make([]byte, int(blocksFor(len(data)))*ATABlock)
			copy(padded, data)
			data = padded
		}
		cdb := SecurityProtocolCDB(OpSecurityProtocolOut, proto, spsp, uint32(len(data)))
		dir := int32(DxferToDev)
		if len(data) == 0 {
			dir = DxferNone
		}
		_, err = d.exec(ctx, cdb[:], dir, data)
	} else {
		padded := make([]byte, int(blocksFor(len(data)))*ATABlock)
		copy(padded, data)
		_, err = d.exec(ctx, d.ataCDB(TrustedCmd(true, proto, spsp, blocksFor(len(data)))), DxferToDev, padded)
	}
	if err != nil {
		return fmt.Errorf("scsi if-send (%s) proto 0x%02x comid 0x%04x on %s: %w", d.mode, proto, spsp, d.path, err)
	}
	return nil
}

// IFRecv issues SECURITY PROTOCOL IN with an allocation length of
// len(buf), lowered to MaxTransfer, and returns the bytes transferred; or
// TRUSTED RECEIVE of whole blocks, returning len(buf). For an ATA drive the
// allocation length is rounded up to whole blocks and the excess dropped.
// buf is zeroed first.
func (d *Device) IFRecv(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error) {
	if len(buf) > MaxTransfer {
		buf = buf[:MaxTransfer]
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, fmt.Errorf("scsi if-recv on %s: %w", d.path, transport.ErrClosed)
	}
	n, err := d.recv(ctx, proto, spsp, buf)
	if err != nil {
		return 0, fmt.Errorf("scsi if-recv (%s) proto 0x%02x comid 0x%04x on %s: %w", d.mode, proto, spsp, d.path, err)
	}
	return n, nil
}

// recv is IF-RECV in the current mode, with d.mu held.
func (d *Device) recv(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error) {
	clear(buf)
	if d.mode == ModeSecurityProtocol && d.ataDev && len(buf)%ATABlock != 0 {
		// libata transfers whole blocks: receive into a rounded buffer.
		tmp := make([]byte, int(blocksFor(len(buf)))*ATABlock)
		n, err := d.recvBytes(ctx, proto, spsp, tmp)
		return copy(buf, tmp[:n]), err
	}
	if d.mode == ModeSecurityProtocol {
		return d.recvBytes(ctx, proto, spsp, buf)
	}
	blocks := blocksFor(len(buf))
	tmp := make([]byte, int(blocks)*ATABlock)
	if _, err := d.exec(ctx, d.ataCDB(TrustedCmd(false, proto, spsp, blocks)), DxferFromDev, tmp); err != nil {
		return 0, err
	}
	return copy(buf, tmp), nil
}

// recvBytes is SECURITY PROTOCOL IN of len(buf) bytes, returning the bytes
// transferred.
func (d *Device) recvBytes(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error) {
	cdb := SecurityProtocolCDB(OpSecurityProtocolIn, proto, spsp, uint32(len(buf)))
	dir := int32(DxferFromDev)
	if len(buf) == 0 {
		dir = DxferNone
	}
	resid, err := d.exec(ctx, cdb[:], dir, buf)
	if err != nil {
		return 0, err
	}
	return len(buf) - resid, nil
}

// blocksFor returns the 512-byte blocks that hold n bytes, at least one.
// n is at most MaxTransfer, so the count fits 16 bits.
func blocksFor(n int) uint16 {
	return uint16(max(1, (n+ATABlock-1)/ATABlock))
}

// ataCDB returns the pass-through CDB for a in the current mode.
func (d *Device) ataCDB(a ATACmd) []byte {
	if d.mode == ModeATA12 {
		c := a.CDB12()
		return c[:]
	}
	c := a.CDB16()
	return c[:]
}

// Identify returns the drive's identity: from IDENTIFY DEVICE for an ATA
// drive (raw serial words 10-19), otherwise from INQUIRY (vendor and
// product as the model, revision as the firmware) and the Unit Serial
// Number page. A SCSI serial shorter than 20 bytes is padded with spaces,
// a longer one keeps its first 20 bytes.
func (d *Device) Identify(ctx context.Context) (transport.Identity, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return transport.Identity{}, fmt.Errorf("scsi identify on %s: %w", d.path, transport.ErrClosed)
	}
	id := transport.Identity{Kind: transport.KindSCSI}
	if d.mode == ModeATA16 || d.mode == ModeATA12 {
		id.Kind = transport.KindATA
	}
	if d.ataDev {
		if a, err := d.ataIdentify(ctx); err == nil {
			id.Serial, id.Model, id.Firmware = a.Serial, a.Model, a.Firmware
			return id, nil
		}
	}
	inq, err := d.inquiry(ctx)
	if err != nil {
		return transport.Identity{}, fmt.Errorf("scsi identify on %s: %w", d.path, err)
	}
	id.Model = strings.TrimSpace(inq.Vendor + " " + inq.Product)
	id.Firmware = inq.Revision
	sn, err := d.unitSerial(ctx)
	if err != nil {
		return transport.Identity{}, fmt.Errorf("scsi identify on %s: %w", d.path, err)
	}
	for i := range id.Serial {
		id.Serial[i] = ' '
	}
	copy(id.Serial[:], sn)
	return id, nil
}

// inquiry reads standard INQUIRY data.
func (d *Device) inquiry(ctx context.Context) (Inquiry, error) {
	buf := make([]byte, 96)
	cdb := InquiryCDB(false, 0, uint16(len(buf)))
	resid, err := d.exec(ctx, cdb[:], DxferFromDev, buf)
	if err != nil {
		return Inquiry{}, fmt.Errorf("INQUIRY: %w", err)
	}
	return ParseInquiry(buf[:len(buf)-resid])
}

// unitSerial reads the Unit Serial Number VPD page.
func (d *Device) unitSerial(ctx context.Context) ([]byte, error) {
	buf := make([]byte, 255)
	cdb := InquiryCDB(true, 0x80, uint16(len(buf)))
	resid, err := d.exec(ctx, cdb[:], DxferFromDev, buf)
	if err != nil {
		return nil, fmt.Errorf("INQUIRY VPD page 0x80 (unit serial number): %w", err)
	}
	return ParseUnitSerial(buf[:len(buf)-resid])
}

// ataIdentify reads IDENTIFY DEVICE through ATA PASS-THROUGH(16), or (12)
// for bridges that reject the 16-byte CDB, and remembers which worked.
func (d *Device) ataIdentify(ctx context.Context) (ATAIdentity, error) {
	buf := make([]byte, ATABlock)
	var err error
	for _, m := range []Mode{ModeATA16, ModeATA12} {
		if d.pt != 0 && d.pt != m {
			continue
		}
		var cdb []byte
		if m == ModeATA16 {
			c := IdentifyCmd().CDB16()
			cdb = c[:]
		} else {
			c := IdentifyCmd().CDB12()
			cdb = c[:]
		}
		if _, err = d.exec(ctx, cdb, DxferFromDev, buf); err == nil {
			d.pt = m
			return ParseIdentifyDevice(buf)
		}
	}
	return ATAIdentity{}, fmt.Errorf("ATA IDENTIFY DEVICE through pass-through: %w", err)
}

// exec runs one command through SG_IO and returns the residual count (the
// bytes of data not transferred, within [0, len(data)]). Commands that
// meet UNIT ATTENTION are reissued a few times. d.mu is held, or d is not
// shared yet.
func (d *Device) exec(ctx context.Context, cdb []byte, dir int32, data []byte) (int, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var sense [SenseLen]byte
		h := SgIOHdr{
			InterfaceID:    interfaceIDOrig,
			DxferDirection: dir,
			CmdLen:         uint8(len(cdb)),
			MxSbLen:        SenseLen,
			DxferLen:       uint32(len(data)),
			Cmdp:           unsafe.Pointer(&cdb[0]),
			Sbp:            unsafe.Pointer(&sense[0]),
			Timeout:        ioctl.TimeoutMS(ctx, uint32(DefaultTimeout/time.Millisecond)),
		}
		if len(data) > 0 {
			h.Dxferp = unsafe.Pointer(&data[0])
		}
		if _, err := d.ioctl(d.fd, IoctlSGIO, unsafe.Pointer(&h)); err != nil {
			return 0, errnoError(err)
		}
		err := checkResult(&h, sense[:])
		var s Sense
		if errors.As(err, &s) && s.Key == UnitAttention && attempt < unitAttentionRetries {
			continue
		}
		if err != nil {
			return 0, err
		}
		return min(max(int(h.Resid), 0), len(data)), nil
	}
}

// errnoError explains the errnos of SG_IO that people meet.
func errnoError(err error) error {
	switch {
	case errors.Is(err, unix.ENOTTY):
		return fmt.Errorf("not a SCSI device (SG_IO: %w)", err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("SG_IO with security commands needs root (CAP_SYS_RAWIO) and the device opened read-write: %w", err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("the kernel rejected the SG_IO request (transfer too large for the host adapter?): %w", err)
	}
	return fmt.Errorf("SG_IO: %w", err)
}
