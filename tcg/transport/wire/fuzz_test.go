package wire

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzParseInfo: any 128 bytes parse, and what parses re-encodes to bytes
// that parse to the same identity.
func FuzzParseInfo(f *testing.F) {
	f.Add(readGolden(f, "testdata/info_sedsim.hex"))
	f.Add(make([]byte, InfoLen))
	f.Add(bytes.Repeat([]byte{0xFF}, InfoLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseInfo(b)
		if err != nil {
			if len(b) == InfoLen {
				t.Fatalf("ParseInfo(%x) = %v; every 128 bytes should parse", b, err)
			}
			return
		}
		enc, err := AppendInfo(nil, id)
		if err != nil {
			t.Fatalf("AppendInfo(ParseInfo(%x)) = %v", b, err)
		}
		again, err := ParseInfo(enc)
		if err != nil || again != id {
			t.Fatalf("round trip of %x: %+v, %v; want %+v", b, again, err, id)
		}
	})
}

// FuzzConnResponse feeds arbitrary bytes to the client as the server's
// answer to a sequence of requests: no panic, no hang, no allocation from
// a peer-chosen length, and every call returns.
func FuzzConnResponse(f *testing.F) {
	info, _ := AppendInfo(nil, sedsimIdentity)
	f.Add(response(StatusOK, []byte("hello")))
	f.Add(append(response(StatusOK, nil), response(StatusOK, info)...))
	f.Add(append(response(StatusOK, []byte("x")), response(StatusAccessDenied, []byte("why"))...))
	f.Add(ResponseHeader{Status: StatusOK, Len: 0xFFFFFFFF}.Append(nil))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		client, server := net.Pipe()
		go func() {
			// Drain requests, send the stream once, then hang up.
			go io.Copy(io.Discard, server)
			server.Write(stream)
			server.Close()
		}()
		c := NewConn(client)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		buf := make([]byte, 64)
		if n, err := c.IFRecv(ctx, 1, 1, buf); err == nil && n > len(buf) {
			t.Fatalf("IFRecv returned %d bytes into %d", n, len(buf))
		}
		c.IFSend(ctx, 1, 1, []byte{1, 2, 3})
		c.Identify(ctx)
		c.ReadBlocks(ctx, 0, 2, make([]byte, 2*4096))
		c.WriteBlocks(ctx, 0, make([]byte, 4096))
		c.Reset(ctx)
	})
}
