package image

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseHeaderGolden(t *testing.T) {
	tests := []struct {
		file     string
		wantType string
		wantSize uint64
	}{
		{"squashfs.hdr", Squashfs, 0}, // size checked below: <= 4096
		{"erofs.hdr", EROFS, 4096},
		{"ext4.hdr", Ext4, 4 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b := readTestdata(t, tt.file)
			h, err := ParseHeader(b)
			if err != nil {
				t.Fatalf("ParseHeader(%s) = %v", tt.file, err)
			}
			if h.Type != tt.wantType {
				t.Errorf("ParseHeader(%s).Type = %q; want %q", tt.file, h.Type, tt.wantType)
			}
			if tt.wantSize != 0 && h.Size != tt.wantSize {
				t.Errorf("ParseHeader(%s).Size = %d; want %d", tt.file, h.Size, tt.wantSize)
			}
			if h.Size == 0 || h.Size > 4<<20 {
				t.Errorf("ParseHeader(%s).Size = %d; want in (0, 4 MiB]", tt.file, h.Size)
			}
			if got, err := DetectType(b); got != tt.wantType || err != nil {
				t.Errorf("DetectType(%s) = %q, %v; want %q, nil", tt.file, got, err, tt.wantType)
			}
		})
	}
}

func TestDetectTypeBad(t *testing.T) {
	le := binary.LittleEndian
	sq := readTestdata(t, "squashfs.hdr")
	sq3 := append([]byte(nil), sq...)
	le.PutUint16(sq3[sqOffMajor:], 3)
	ext := readTestdata(t, "ext4.hdr")
	extBig := append([]byte(nil), ext...)
	le.PutUint32(extBig[extSuperOff+extOffLogBlockSize:], 30)
	erBad := append([]byte(nil), readTestdata(t, "erofs.hdr")...)
	erBad[erofsSuperOff+erofsOffBlkbits] = 40

	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"empty", nil, ErrUnknownType.Error()},
		{"zeros", make([]byte, 4096), ErrUnknownType.Error()},
		{"text", []byte("#!/bin/sh\necho hello\n"), ErrUnknownType.Error()},
		{"squashfs magic only", []byte("hsqs"), "squashfs superblock truncated"},
		{"squashfs 50 bytes", sq[:50], "squashfs superblock truncated: needs bytes 0..96, have 50"},
		{"squashfs v3", sq3, "squashfs version 3.0 is not supported"},
		{"erofs magic only", readTestdata(t, "erofs.hdr")[:1030], "erofs superblock truncated"},
		{"erofs block bits", erBad, "block size 2^40 is out of range"},
		{"ext4 magic only", ext[:1090], "ext4 superblock truncated: needs bytes 1024..1364, have 1090"},
		{"ext4 block size", extBig, "block size 1024<<30 is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectType(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("DetectType(%.16x...) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			if tt.wantErr == ErrUnknownType.Error() && !errors.Is(err, ErrUnknownType) {
				t.Errorf("DetectType(%.16x...) error %v is not ErrUnknownType", tt.in, err)
			}
		})
	}
}

func TestParseHeaderExt4Size64(t *testing.T) {
	b := append([]byte(nil), readTestdata(t, "ext4.hdr")...)
	le := binary.LittleEndian
	sb := b[extSuperOff:]
	le.PutUint32(sb[extOffIncompat:], le.Uint32(sb[extOffIncompat:])|extIncompat64bit)
	le.PutUint32(sb[extOffBlocksHi:], 1)
	le.PutUint32(sb[extOffBlocksLo:], 0)
	le.PutUint32(sb[extOffLogBlockSize:], 2) // 4 KiB
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(1) << 32 << 12; h.Size != want {
		t.Errorf("ParseHeader(64bit ext4).Size = %d; want %d", h.Size, want)
	}
	// 2^32-1 high blocks of 64 KiB overflow a uint64 byte count.
	le.PutUint32(sb[extOffBlocksHi:], 0xFFFFFFFF)
	le.PutUint32(sb[extOffLogBlockSize:], 6)
	if _, err := ParseHeader(b); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("ParseHeader(huge ext4) = %v; want overflow error", err)
	}
}

func FuzzDetectType(f *testing.F) {
	for _, name := range []string{"squashfs.hdr", "erofs.hdr", "ext4.hdr"} {
		b := readTestdata(f, name)
		f.Add(b)
		f.Add(b[:100])
		f.Add(b[:1100])
	}
	f.Add([]byte("hsqs"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		typ, err2 := DetectType(b)
		if typ != h.Type || (err == nil) != (err2 == nil) {
			t.Fatalf("DetectType(%x) = %q, %v; ParseHeader says %q, %v", b, typ, err2, h.Type, err)
		}
		if err == nil && typ != Squashfs && typ != EROFS && typ != Ext4 {
			t.Fatalf("DetectType(%x) = %q, nil; want a known type", b, typ)
		}
		if err != nil && typ != "" {
			t.Fatalf("DetectType(%x) = %q, %v; want no type with an error", b, typ, err)
		}
	})
}
