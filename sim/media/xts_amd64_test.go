//go:build amd64 && !purego

package media

import (
	"bytes"
	"crypto/aes"
	"math/rand/v2"
	"testing"
)

// TestAESNIBlocks checks the assembly loops block by block against
// crypto/aes for every count from 0 to 19, covering the groups of eight and
// the single-block tail, out of place and in place.
func TestAESNIBlocks(t *testing.T) {
	if !useAESNI {
		t.Skip("CPU without AES-NI")
	}
	r := rand.New(rand.NewPCG(5, 6))
	key := make([]byte, 32)
	fill(r, key)
	ref, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	k := newAESNIKeys(key)
	for n := range 20 {
		src := make([]byte, 16*n)
		tw := make([]byte, 16*n)
		fill(r, src)
		fill(r, tw)
		want := make([]byte, len(src))
		for i := 0; i < len(src); i += 16 {
			var x [16]byte
			for j := range x {
				x[j] = src[i+j] ^ tw[i+j]
			}
			ref.Encrypt(x[:], x[:])
			for j := range x {
				want[i+j] = x[j] ^ tw[i+j]
			}
		}
		got := make([]byte, len(src))
		k.encrypt(got, src, tw)
		if !bytes.Equal(got, want) {
			t.Fatalf("encrypt of %d blocks differs from crypto/aes", n)
		}
		k.decrypt(got, got, tw)
		if !bytes.Equal(got, src) {
			t.Fatalf("in-place decrypt of %d blocks does not invert encrypt", n)
		}
	}
}

// TestExpandKey256 checks the key schedule against FIPS 197 Appendix A.3
// (the last round key of the AES-256 expansion example) and the S-box
// against two entries of FIPS 197 Figure 7.
func TestExpandKey256(t *testing.T) {
	if sbox[0x00] != 0x63 || sbox[0x53] != 0xed || sbox[0xff] != 0x16 {
		t.Errorf("sbox[00,53,ff] = %02x %02x %02x; want 63 ed 16", sbox[0x00], sbox[0x53], sbox[0xff])
	}
	key := mustHex(t, "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
	var enc, dec [240]byte
	expandKey256(key, &enc, &dec)
	if want := mustHex(t, "fe4890d1e6188d0b046df344706c631e"); !bytes.Equal(enc[224:], want) {
		t.Errorf("round key 14 = %x; want %x", enc[224:], want)
	}
	if !bytes.Equal(enc[:32], key) {
		t.Errorf("round keys 0-1 = %x; want the key", enc[:32])
	}
	if !bytes.Equal(dec[:16], enc[224:]) || !bytes.Equal(dec[224:], enc[:16]) {
		t.Error("decryption round keys 0 and 14 are not encryption round keys 14 and 0")
	}
}
