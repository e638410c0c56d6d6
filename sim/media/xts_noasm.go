//go:build !amd64 || purego

package media

// Without the amd64 assembly, the crypto/aes block path does all the work.

var useAESNI = false

type aesniKeys struct{}

func newAESNIKeys([]byte) *aesniKeys { return nil }

func (*aesniKeys) encrypt(dst, src, tw []byte) { panic("media: no AES-NI path") }
func (*aesniKeys) decrypt(dst, src, tw []byte) { panic("media: no AES-NI path") }
