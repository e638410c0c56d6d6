package media

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/xts"
)

// TestXTSVector10 checks the IEEE 1619 vector for XTS-AES-256 with a
// 512-byte data unit.
func TestXTSVector10(t *testing.T) {
	f, err := os.Open("testdata/ieee1619-vector10.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fields := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<16)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		fields[k] = v
	}
	key := mustHex(t, fields["key1"]+fields["key2"])
	want := mustHex(t, fields["ciphertext"])
	sector, err := strconv.ParseUint(fields["sector"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, 512)
	for i := range pt {
		pt[i] = byte(i)
	}
	for name, c := range ciphers(t, key) {
		scratch := make([]byte, 4096)
		got := make([]byte, len(pt))
		c.encrypt(got, pt, sector, len(pt), scratch)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: encrypt(vector 10) = %x...; want %x...", name, got[:32], want[:32])
		}
		c.decrypt(got, got, sector, len(pt), scratch)
		if !bytes.Equal(got, pt) {
			t.Fatalf("%s: decrypt(vector 10) = %x...; want %x...", name, got[:32], pt[:32])
		}
	}
}

// ciphers returns the key's cipher on every path this machine has: the
// crypto/aes block path ("generic"), and "aesni" where it runs.
func ciphers(t *testing.T, key []byte) map[string]xtsCipher {
	t.Helper()
	c, err := newXTS(key)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]xtsCipher{}
	if c.ni != nil {
		m["aesni"] = c
	} else if useAESNI {
		t.Fatal("AES-NI is available but newXTS did not use it")
	}
	c.ni = nil
	m["generic"] = c
	return m
}

// TestXTSMatchesXCrypto compares the fast XTS with golang.org/x/crypto/xts
// over random keys, data, sector numbers (carries in the tweak included)
// and both sector sizes, out of place and in place.
func TestXTSMatchesXCrypto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sectors := []uint64{0, 1, 0xff, 1 << 32, 1<<63 + 5, ^uint64(0) - 3}
	for _, size := range []int{512, 4096} {
		for i, first := range sectors {
			key := make([]byte, KeySize)
			fill(r, key)
			ref, err := xts.NewCipher(aes.NewCipher, key)
			if err != nil {
				t.Fatal(err)
			}
			for name, c := range ciphers(t, key) {
				n := 3
				pt := make([]byte, n*size)
				fill(r, pt)
				want := make([]byte, len(pt))
				for s := range n {
					ref.Encrypt(want[s*size:(s+1)*size], pt[s*size:(s+1)*size], first+uint64(s))
				}
				scratch := make([]byte, 4096)
				got := make([]byte, len(pt))
				c.encrypt(got, pt, first, size, scratch)
				if !bytes.Equal(got, want) {
					t.Fatalf("%s size %d case %d: encrypt differs from x/crypto/xts", name, size, i)
				}
				inplace := bytes.Clone(pt)
				c.encrypt(inplace, inplace, first, size, scratch)
				if !bytes.Equal(inplace, want) {
					t.Fatalf("%s size %d case %d: in-place encrypt differs from x/crypto/xts", name, size, i)
				}
				c.decrypt(inplace, inplace, first, size, scratch)
				if !bytes.Equal(inplace, pt) {
					t.Fatalf("%s size %d case %d: decrypt does not invert encrypt", name, size, i)
				}
			}
		}
	}
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkXTSEncrypt is the cipher alone on 1 MiB of 4096-byte sectors:
// this package's AES-NI and generic paths, and golang.org/x/crypto/xts for
// comparison.
func BenchmarkXTSEncrypt(b *testing.B) {
	key := NewKey()
	fast, _ := key.cipher()
	generic := fast
	generic.ni = nil
	ref, err := xts.NewCipher(aes.NewCipher, key.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	paths := []struct {
		name string
		enc  func(buf []byte, sector uint64, scratch []byte)
	}{
		{"generic", func(buf []byte, s uint64, scratch []byte) { generic.encrypt(buf, buf, s, 4096, scratch) }},
		{"x-crypto-xts", func(buf []byte, s uint64, _ []byte) {
			for off := 0; off < len(buf); off += 4096 {
				ref.Encrypt(buf[off:off+4096], buf[off:off+4096], s+uint64(off/4096))
			}
		}},
	}
	if fast.ni != nil {
		paths = append([]struct {
			name string
			enc  func(buf []byte, sector uint64, scratch []byte)
		}{{"aesni", func(buf []byte, s uint64, scratch []byte) { fast.encrypt(buf, buf, s, 4096, scratch) }}}, paths...)
	}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			buf := make([]byte, 1<<20)
			scratch := make([]byte, 4096)
			b.SetBytes(int64(len(buf)))
			cpu0 := cpuTime()
			for b.Loop() {
				p.enc(buf, 0, scratch)
			}
			reportCPU(b, cpu0, len(buf))
		})
	}
}
