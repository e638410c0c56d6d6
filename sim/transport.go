package sim

import (
	"context"
	"sync/atomic"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Transport returns an in-process handle to the drive for the host
// library and tests: the same IF-SEND and IF-RECV as over opalwire, without
// a socket. Closing it leaves the drive open.
func (d *Drive) Transport() transport.Transport { return &localTransport{d: d} }

type localTransport struct {
	d      *Drive
	closed atomic.Bool
}

var _ transport.Transport = (*localTransport)(nil)

func (t *localTransport) check(ctx context.Context) error {
	if t.closed.Load() {
		return transport.ErrClosed
	}
	return ctx.Err()
}

func (t *localTransport) IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error {
	if err := t.check(ctx); err != nil {
		return err
	}
	return t.d.IFSend(proto, spsp, data)
}

func (t *localTransport) IFRecv(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error) {
	if err := t.check(ctx); err != nil {
		return 0, err
	}
	out, err := t.d.IFRecv(proto, spsp, len(buf))
	if err != nil {
		return 0, err
	}
	return copy(buf, out), nil
}

func (t *localTransport) Identify(ctx context.Context) (transport.Identity, error) {
	if err := t.check(ctx); err != nil {
		return transport.Identity{}, err
	}
	return t.d.Info(), nil
}

func (t *localTransport) Close() error {
	if t.closed.Swap(true) {
		return transport.ErrClosed
	}
	return nil
}
