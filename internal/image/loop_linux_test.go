package image

import (
	"testing"
	"unsafe"
)

// TestLoopABI pins the layout of the structs mirrored from
// include/uapi/linux/loop.h (x86-64, arm64 and every other 64-bit ABI agree:
// the fields are naturally aligned and the struct has no padding).
func TestLoopABI(t *testing.T) {
	var info loopInfo64
	var cfg loopConfig
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct loop_info64)", unsafe.Sizeof(info), 232},
		{"loop_info64.lo_device", unsafe.Offsetof(info.Device), 0},
		{"loop_info64.lo_inode", unsafe.Offsetof(info.Inode), 8},
		{"loop_info64.lo_rdevice", unsafe.Offsetof(info.Rdevice), 16},
		{"loop_info64.lo_offset", unsafe.Offsetof(info.Offset), 24},
		{"loop_info64.lo_sizelimit", unsafe.Offsetof(info.SizeLimit), 32},
		{"loop_info64.lo_number", unsafe.Offsetof(info.Number), 40},
		{"loop_info64.lo_encrypt_type", unsafe.Offsetof(info.EncryptType), 44},
		{"loop_info64.lo_encrypt_key_size", unsafe.Offsetof(info.EncryptKeySize), 48},
		{"loop_info64.lo_flags", unsafe.Offsetof(info.Flags), 52},
		{"loop_info64.lo_file_name", unsafe.Offsetof(info.FileName), 56},
		{"loop_info64.lo_crypt_name", unsafe.Offsetof(info.CryptName), 120},
		{"loop_info64.lo_encrypt_key", unsafe.Offsetof(info.EncryptKey), 184},
		{"loop_info64.lo_init", unsafe.Offsetof(info.Init), 216},
		{"sizeof(struct loop_config)", unsafe.Sizeof(cfg), 304},
		{"loop_config.fd", unsafe.Offsetof(cfg.FD), 0},
		{"loop_config.block_size", unsafe.Offsetof(cfg.BlockSize), 4},
		{"loop_config.info", unsafe.Offsetof(cfg.Info), 8},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d; want %d", tt.name, tt.got, tt.want)
		}
	}
}
