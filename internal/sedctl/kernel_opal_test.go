package sedctl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/internal/resume/kernel"
	"github.com/shiftlock/shiftlock/internal/testutil"
	"github.com/shiftlock/shiftlock/tcg/hash"
)

// TestToSedioctlLayout: the resume engine's LockUnlock becomes the bytes
// of struct opal_lock_unlock the kernel expects (PROTOCOL.md 3.2):
// opal_session_info {sum u32, who u32, opal_key {lr u8, key_len u8,
// key_type u8, 5 pad, key[256]}}, l_state u32, flags u16, 2 pad.
func TestToSedioctlLayout(t *testing.T) {
	for _, lu := range []kernel.LockUnlock{
		{Who: 0, LR: 0, Key: hash.PIN("admin1 pin"), State: kernel.RW, Flags: kernel.SaveForLock},
		{Who: 3, LR: 2, Key: hash.PIN(bytes.Repeat([]byte{0xAB}, 32)), State: kernel.LK},
		{SUM: true, LR: 8, Key: hash.PIN(bytes.Repeat([]byte{1}, 256)), State: kernel.RO},
	} {
		l, err := toSedioctl(lu)
		if err != nil {
			t.Fatalf("%+v: %v", lu.LR, err)
		}
		got, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 280)
		if lu.SUM {
			binary.LittleEndian.PutUint32(want[0:], 1)
		}
		binary.LittleEndian.PutUint32(want[4:], lu.Who)
		want[8], want[9], want[10] = lu.LR, byte(len(lu.Key)), 0
		copy(want[16:272], lu.Key)
		binary.LittleEndian.PutUint32(want[272:], uint32(lu.State))
		binary.LittleEndian.PutUint16(want[276:], lu.Flags)
		if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
			t.Skip("layout vectors are little-endian")
		}
		if !bytes.Equal(got, want) {
			t.Errorf("range %d: opal_lock_unlock\n got %x\nwant %x", lu.LR, got, want)
		}
	}
	// What the kernel would refuse is refused here, before any ioctl.
	for _, bad := range []kernel.LockUnlock{
		{LR: 9, Key: hash.PIN("k"), State: kernel.RW},
		{Who: 10, Key: hash.PIN("k"), State: kernel.RW},
		{Key: hash.PIN(bytes.Repeat([]byte{1}, 257)), State: kernel.RW},
		{Key: hash.PIN("k"), State: 3},
	} {
		if _, err := toSedioctl(bad); err == nil {
			t.Errorf("toSedioctl(%+v) accepted", bad.LR)
		}
	}
}

// TestOpenKernelOpalFallsBack: devices without a kernel path say so with
// kernel.ErrUnsupported (so enable takes the daemon path): a sedsim
// device, a socket, and a real loop device, which the kernel's sed-opal
// does not drive (ENOTTY).
func TestOpenKernelOpalFallsBack(t *testing.T) {
	if _, err := openKernelOpal(t.Context(), "sim:/run/x.sock"); !errors.Is(err, kernel.ErrUnsupported) {
		t.Errorf("sim: device: %v; want kernel.ErrUnsupported", err)
	}
	testutil.RequireRoot(t)
	img := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	k, err := openKernelOpal(t.Context(), loop)
	if err == nil {
		k.(kernelOpal).Close()
		t.Fatalf("%s: a loop device answered the sed-opal ioctls", loop)
	}
	if !errors.Is(err, kernel.ErrUnsupported) {
		t.Errorf("%s: %v; want kernel.ErrUnsupported", loop, err)
	}
	// A regular file is no block device: an error, but not a quiet
	// fallback.
	if _, err := openKernelOpal(t.Context(), img); err == nil || errors.Is(err, kernel.ErrUnsupported) {
		t.Errorf("regular file: %v; want a plain error", err)
	}
}
