package ioctl

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestIOC(t *testing.T) {
	if iocDirShift != 30 {
		t.Skip("the values below are the asm-generic encoding; powerpc and mips are pinned in the nvme and sedioctl tests")
	}
	tests := []struct {
		name string
		got  uint32
		want uint32
	}{
		{"_IOWR('N', 0x41, 72)", IOWR('N', 0x41, 72), 0xC0484E41}, // NVME_IOCTL_ADMIN_CMD
		{"_IO('N', 0x40)", IO('N', 0x40), 0x00004E40},             // NVME_IOCTL_ID
		{"_IOW('p', 220, 280)", IOW('p', 220, 280), 0x411870DC},   // IOC_OPAL_SAVE
		{"_IOR('p', 236, 8)", IOR('p', 236, 8), 0x800870EC},       // IOC_OPAL_GET_STATUS
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = 0x%08X; want 0x%08X", tt.name, tt.got, tt.want)
		}
	}
}

func TestAddrBytes(t *testing.T) {
	var p runtime.Pinner
	defer p.Unpin()
	buf := []byte("hello, kernel")
	a := Addr(&p, buf)
	if a == 0 {
		t.Fatal("Addr = 0")
	}
	got := Bytes(a, len(buf))
	if !bytes.Equal(got, buf) {
		t.Fatalf("Bytes = %q; want %q", got, buf)
	}
	got[0] = 'H' // the fake writes through to the buffer
	if buf[0] != 'H' {
		t.Errorf("write through Bytes did not reach the buffer")
	}
	if Addr(&p, nil) != 0 || Bytes(0, 5) != nil || Bytes(a, 0) != nil {
		t.Errorf("empty cases: Addr(nil) or Bytes(0, n) not empty")
	}
}

func TestTimeoutMS(t *testing.T) {
	if got := TimeoutMS(context.Background(), 60000); got != 60000 {
		t.Errorf("TimeoutMS without deadline = %d; want 60000", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if got := TimeoutMS(ctx, 60000); got == 0 || got > 2000 {
		t.Errorf("TimeoutMS with 2 s left = %d", got)
	}
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if got := TimeoutMS(past, 0); got != 1 {
		t.Errorf("TimeoutMS past deadline = %d; want 1", got)
	}
}

func TestDescribeMode(t *testing.T) {
	tests := []struct {
		m    os.FileMode
		want string
	}{
		{0o644, "a regular file"},
		{os.ModeDir, "a directory"},
		{os.ModeDevice, "a block device"},
		{os.ModeDevice | os.ModeCharDevice, "a character device"},
		{os.ModeSocket, "a socket"},
		{os.ModeNamedPipe, "a named pipe"},
	}
	for _, tt := range tests {
		if got := DescribeMode(tt.m); got != tt.want {
			t.Errorf("DescribeMode(%v) = %q; want %q", tt.m, got, tt.want)
		}
	}
}
