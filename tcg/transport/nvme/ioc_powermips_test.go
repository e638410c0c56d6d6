//go:build ppc64 || ppc64le || mips || mipsle || mips64 || mips64le

package nvme

import "testing"

// TestIoctlNumbers pins the request numbers for the powerpc/mips _IOC
// encoding: read|write is 6<<29, the same bits as the generic 3<<30, and
// _IO carries direction 1 (_IOC_NONE).
func TestIoctlNumbers(t *testing.T) {
	if IoctlAdminCmd != 0xC0484E41 {
		t.Errorf("NVME_IOCTL_ADMIN_CMD = 0x%08X; want 0xC0484E41", IoctlAdminCmd)
	}
	if IoctlID != 0x20004E40 {
		t.Errorf("NVME_IOCTL_ID = 0x%08X; want 0x20004E40", IoctlID)
	}
}
