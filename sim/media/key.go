package media

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// KeySize is the size of a media encryption key: two AES-256 keys, the data
// key then the tweak key, as XTS-AES-256 takes them.
const KeySize = 64

// ErrKeyWiped is returned for I/O with a key after its Wipe.
var ErrKeyWiped = errors.New("media key has been wiped")

// Key is one locking range's media encryption key (the K_AES_256 object a
// Locking row's ActiveKey names). It is safe for concurrent use, Wipe
// included: I/O already running with the key finishes with it, later I/O
// fails with ErrKeyWiped.
//
// A Key never prints its bytes: String, GoString and LogValue redact it.
type Key struct {
	state atomic.Pointer[keyState]
}

type keyState struct {
	raw [KeySize]byte
	xts xtsCipher
}

// NewKey returns a fresh random key, as GenKey makes one.
func NewKey() *Key {
	var raw [KeySize]byte
	for {
		rand.Read(raw[:]) // never fails (crypto/rand, Go 1.24+)
		if k, err := KeyFromBytes(raw[:]); err == nil {
			clear(raw[:])
			return k
		}
	}
}

// KeyFromBytes rebuilds a key from its 64 bytes (Bytes), for a drive
// loading its persisted state. The two halves must differ: IEEE 1619-2018
// requires distinct data and tweak keys.
func KeyFromBytes(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("media key is %d bytes, want %d", len(b), KeySize)
	}
	if subtle.ConstantTimeCompare(b[:KeySize/2], b[KeySize/2:]) == 1 {
		return nil, errors.New("media key has equal data and tweak halves")
	}
	s := new(keyState)
	copy(s.raw[:], b)
	var err error
	if s.xts, err = newXTS(s.raw[:]); err != nil {
		return nil, err
	}
	k := new(Key)
	k.state.Store(s)
	return k, nil
}

// Bytes returns a copy of the key's 64 bytes, for the caller to store
// wrapped, or nil after Wipe.
func (k *Key) Bytes() []byte {
	s := k.state.Load()
	if s == nil {
		return nil
	}
	return append([]byte(nil), s.raw[:]...)
}

// Wipe zeroes the key bytes and makes the key unusable. The AES key
// schedules inside crypto/aes cannot be zeroed from outside; they become
// unreachable and are left to the garbage collector.
func (k *Key) Wipe() {
	if s := k.state.Swap(nil); s != nil {
		clear(s.raw[:])
	}
}

// cipher returns the key's cipher, or ErrKeyWiped.
func (k *Key) cipher() (xtsCipher, error) {
	s := k.state.Load()
	if s == nil {
		return xtsCipher{}, ErrKeyWiped
	}
	return s.xts, nil
}

// String returns "media.Key(redacted)".
func (k *Key) String() string { return "media.Key(redacted)" }

// GoString returns "media.Key(redacted)".
func (k *Key) GoString() string { return k.String() }

// LogValue keeps the key out of slog output.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }
