//go:build !ppc64 && !ppc64le && !mips && !mipsle && !mips64 && !mips64le

package nvme

import "testing"

// TestIoctlNumbers pins the request numbers to include/uapi/linux/nvme_ioctl.h
// as the C macros expand them (PROTOCOL.md 4.1).
func TestIoctlNumbers(t *testing.T) {
	if IoctlAdminCmd != 0xC0484E41 {
		t.Errorf("NVME_IOCTL_ADMIN_CMD = 0x%08X; want 0xC0484E41", IoctlAdminCmd)
	}
	if IoctlID != 0x00004E40 {
		t.Errorf("NVME_IOCTL_ID = 0x%08X; want 0x00004E40", IoctlID)
	}
}
