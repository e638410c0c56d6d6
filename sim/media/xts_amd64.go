//go:build amd64 && !purego

package media

import (
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

// useAESNI is false on CPUs without the AES instructions, where the
// crypto/aes block path runs instead. Tests turn it off to cover that path.
var useAESNI = cpu.X86.HasAES

//go:noescape
func encryptBlocksAESNI(rk *[240]byte, dst, src, tw *byte, n int)

//go:noescape
func decryptBlocksAESNI(rk *[240]byte, dst, src, tw *byte, n int)

// aesniKeys are the expanded data key (XTS key 1) for the assembly loops.
// crypto/aes keeps its own schedule private, so it is expanded here; tests
// check the result against crypto/aes and x/crypto/xts.
type aesniKeys struct {
	enc, dec [240]byte // 15 round keys of 16 bytes
}

// newAESNIKeys expands a 32-byte AES-256 key, or returns nil when the CPU
// lacks AES-NI.
func newAESNIKeys(key []byte) *aesniKeys {
	if !useAESNI || len(key) != 32 {
		return nil
	}
	k := new(aesniKeys)
	expandKey256(key, &k.enc, &k.dec)
	return k
}

// encrypt runs dst = AES(src ^ tw) ^ tw over len(src)/16 blocks.
func (k *aesniKeys) encrypt(dst, src, tw []byte) {
	if n := len(src) / 16; n > 0 {
		_, _ = dst[n*16-1], tw[n*16-1]
		encryptBlocksAESNI(&k.enc, &dst[0], &src[0], &tw[0], n)
	}
}

// decrypt runs dst = AES⁻¹(src ^ tw) ^ tw over len(src)/16 blocks.
func (k *aesniKeys) decrypt(dst, src, tw []byte) {
	if n := len(src) / 16; n > 0 {
		_, _ = dst[n*16-1], tw[n*16-1]
		decryptBlocksAESNI(&k.dec, &dst[0], &src[0], &tw[0], n)
	}
}

// expandKey256 is the AES-256 key expansion (FIPS 197 section 5.2: Nk = 8,
// Nr = 14) into the 15 round keys of enc, and the Equivalent Inverse
// Cipher's round keys (section 5.3.5) into dec: enc's in reverse order,
// InvMixColumns applied to all but the first and last.
func expandKey256(key []byte, enc, dec *[240]byte) {
	var w [60]uint32
	for i := range 8 {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := 8; i < len(w); i++ {
		t := w[i-1]
		switch i % 8 {
		case 0:
			t = subWord(t<<8|t>>24) ^ rcon<<24
			rcon = uint32(xtime(byte(rcon)))
		case 4:
			t = subWord(t)
		}
		w[i] = w[i-8] ^ t
	}
	for i, v := range w {
		binary.BigEndian.PutUint32(enc[4*i:], v)
	}
	copy(dec[0:16], enc[224:240])
	for r := 1; r < 14; r++ {
		invMixColumns(dec[16*r:16*r+16], enc[16*(14-r):16*(14-r)+16])
	}
	copy(dec[224:240], enc[0:16])
}

func subWord(w uint32) uint32 {
	return uint32(sbox[w>>24])<<24 | uint32(sbox[w>>16&0xff])<<16 | uint32(sbox[w>>8&0xff])<<8 | uint32(sbox[w&0xff])
}

// xtime multiplies by x in GF(2^8) modulo x^8+x^4+x^3+x+1.
func xtime(b byte) byte { return b<<1 ^ 0x1b&-(b>>7) }

// gmul multiplies in GF(2^8).
func gmul(a, b byte) byte {
	var p byte
	for ; b != 0; b >>= 1 {
		p ^= a & -(b & 1)
		a = xtime(a)
	}
	return p
}

// invMixColumns applies InvMixColumns (FIPS 197 section 5.3.3) to the four
// columns of src.
func invMixColumns(dst, src []byte) {
	for c := 0; c < 16; c += 4 {
		b0, b1, b2, b3 := src[c], src[c+1], src[c+2], src[c+3]
		dst[c] = gmul(b0, 14) ^ gmul(b1, 11) ^ gmul(b2, 13) ^ gmul(b3, 9)
		dst[c+1] = gmul(b0, 9) ^ gmul(b1, 14) ^ gmul(b2, 11) ^ gmul(b3, 13)
		dst[c+2] = gmul(b0, 13) ^ gmul(b1, 9) ^ gmul(b2, 14) ^ gmul(b3, 11)
		dst[c+3] = gmul(b0, 11) ^ gmul(b1, 13) ^ gmul(b2, 9) ^ gmul(b3, 14)
	}
}

// sbox is the AES S-box (FIPS 197 section 5.1.1), computed: the
// multiplicative inverse in GF(2^8), then the affine transformation.
var sbox = func() (s [256]byte) {
	for i := range 256 {
		var inv byte
		if i != 0 {
			for inv = 1; gmul(byte(i), inv) != 1; inv++ {
			}
		}
		s[i] = inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^ rotl8(inv, 4) ^ 0x63
	}
	return s
}()

func rotl8(b byte, n uint) byte { return b<<n | b>>(8-n) }
