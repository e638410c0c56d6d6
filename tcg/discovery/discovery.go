// Package discovery parses and builds TCG Storage Level 0 Discovery data:
// the response a drive gives to IF-RECV on security protocol 0x01, ComID
// 0x0001 (Core 3.3.6), a 48-byte header followed by feature descriptors that
// say which security subsystem class (Opal, Pyrite, Ruby, Enterprise...) the
// drive speaks, its base ComID, and whether its locking and MBR shadowing are
// enabled.
//
// Parse decodes a response into a Discovery; Build does the reverse and is
// what a drive emulator answers with. The package is pure: no I/O, no
// logging. Parse never panics and never reads past the buffer or the length
// the header declares, whatever the input.
package discovery

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
)

// Sizes of the fixed parts of a Level 0 Discovery response (Core 3.3.6).
const (
	// HeaderLen is the size of the Level 0 Discovery header.
	HeaderLen = 48
	// DescriptorHeaderLen is the size of a feature descriptor's header:
	// feature code (2), version (1), length (1).
	DescriptorHeaderLen = 4
	// VendorSpecificLen is the size of the header's vendor specific area.
	VendorSpecificLen = 32
	// MaxDescriptorData is the largest data length a descriptor can declare.
	MaxDescriptorData = 255
)

// ErrTruncated is wrapped by the error Parse returns when the data ends
// before the header or a descriptor does: typically the host's allocation
// length was smaller than the drive's response.
var ErrTruncated = errors.New("discovery data truncated")

// A ParseError reports malformed or truncated discovery data.
type ParseError struct {
	// Offset is where in the response the problem is, in bytes.
	Offset int
	// Msg says what is wrong.
	Msg string
	// Err is ErrTruncated when the data was cut short, nil otherwise.
	Err error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("level 0 discovery: offset %d: %s", e.Offset, e.Msg)
}

// Unwrap returns e.Err.
func (e *ParseError) Unwrap() error { return e.Err }

// HexBytes is a byte string that JSON and other text encodings show as hex.
type HexBytes []byte

// String returns the bytes in lower-case hex.
func (h HexBytes) String() string { return hex.EncodeToString(h) }

// MarshalText encodes the bytes as lower-case hex.
func (h HexBytes) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(h)), nil
}

// UnmarshalText decodes hex text.
func (h *HexBytes) UnmarshalText(text []byte) error {
	b := make([]byte, hex.DecodedLen(len(text)))
	n, err := hex.Decode(b, text)
	if err != nil {
		return err
	}
	if n == 0 {
		*h = nil
		return nil
	}
	*h = b[:n]
	return nil
}

// cloneBytes copies b, returning nil for an empty slice so that decoded and
// re-decoded values compare equal.
func cloneBytes(b []byte) HexBytes {
	if len(b) == 0 {
		return nil
	}
	return HexBytes(append([]byte(nil), b...))
}

// RawFeature is a descriptor kept verbatim: a vendor unique (>= 0xC000) or
// unknown feature code, or a second descriptor for a code already decoded.
type RawFeature struct {
	Code    FeatureCode `json:"code"`
	Version uint8       `json:"version"`
	Data    HexBytes    `json:"data,omitempty"`
}

// Discovery is a decoded Level 0 Discovery response. A nil pointer field
// means the drive did not report that feature.
type Discovery struct {
	// MajorVersion and MinorVersion are the data structure revision from
	// the header (0 and 1 on every drive seen).
	MajorVersion uint16 `json:"major_version"`
	MinorVersion uint16 `json:"minor_version"`
	// VendorSpecific is the header's 32-byte vendor area, nil when it is
	// all zero. Build writes at most VendorSpecificLen bytes, zero padded.
	VendorSpecific HexBytes `json:"vendor_specific,omitempty"`

	TPer           *TPer             `json:"tper,omitempty"`
	Locking        *Locking          `json:"locking,omitempty"`
	Geometry       *Geometry         `json:"geometry,omitempty"`
	Enterprise     *Enterprise       `json:"enterprise,omitempty"`
	OpalV1         *OpalV1           `json:"opal_v1,omitempty"`
	SingleUserMode *SingleUserMode   `json:"single_user_mode,omitempty"`
	DataStore      *DataStore        `json:"datastore,omitempty"`
	OpalV2         *OpalV2           `json:"opal_v2,omitempty"`
	Opalite        *Opalite          `json:"opalite,omitempty"`
	PyriteV1       *PyriteV1         `json:"pyrite_v1,omitempty"`
	PyriteV2       *PyriteV2         `json:"pyrite_v2,omitempty"`
	Ruby           *Ruby             `json:"ruby,omitempty"`
	BlockSID       *BlockSID         `json:"block_sid,omitempty"`
	NamespaceLock  *NamespaceLocking `json:"namespace_locking,omitempty"`
	DataRemoval    *DataRemoval      `json:"data_removal,omitempty"`

	// Other holds every descriptor not decoded above, in response order.
	Other []RawFeature `json:"other,omitempty"`
}

// Parse decodes a Level 0 Discovery response. b may be longer than the
// response (a zero-padded allocation buffer): Parse reads only the header's
// declared length.
//
// If the declared length runs past the end of b, Parse returns the
// descriptors that fit completely together with an error that wraps
// ErrTruncated, so that a caller may still use a response the host cut
// short. Every other error comes with a nil Discovery.
//
// Descriptors longer than this package knows keep the extra bytes in their
// Extra field; a known descriptor too short for its fields is an error.
func Parse(b []byte) (*Discovery, error) {
	if len(b) < HeaderLen {
		return nil, &ParseError{Offset: len(b), Err: ErrTruncated,
			Msg: fmt.Sprintf("%d bytes, shorter than the %d-byte header", len(b), HeaderLen)}
	}
	length := binary.BigEndian.Uint32(b[0:4])
	if length < HeaderLen-4 {
		return nil, &ParseError{Offset: 0,
			Msg: fmt.Sprintf("parameter data length %d is shorter than the rest of the header (%d)", length, HeaderLen-4)}
	}
	d := &Discovery{
		MajorVersion: binary.BigEndian.Uint16(b[4:6]),
		MinorVersion: binary.BigEndian.Uint16(b[6:8]),
	}
	if !allZero(b[16:HeaderLen]) {
		d.VendorSpecific = cloneBytes(b[16:HeaderLen])
	}

	end := len(b)
	truncated := uint64(length)+4 > uint64(len(b))
	if !truncated {
		end = int(length) + 4
	}
	// cut reports a descriptor that does not fit: truncation if the buffer
	// ended early, a malformed response if the declared length did.
	cut := func(off int, msg string) (*Discovery, error) {
		if truncated {
			return d, &ParseError{Offset: off, Msg: msg + " (buffer ends first)", Err: ErrTruncated}
		}
		return nil, &ParseError{Offset: off, Msg: msg}
	}
	off := HeaderLen
	for off < end {
		if end-off < DescriptorHeaderLen {
			return cut(off, fmt.Sprintf("%d bytes left, too few for a descriptor header", end-off))
		}
		code := FeatureCode(binary.BigEndian.Uint16(b[off:]))
		version := b[off+2] >> 4
		n := int(b[off+3])
		dataEnd := off + DescriptorHeaderLen + n
		if dataEnd > end {
			return cut(off, fmt.Sprintf("feature %v declares %d data bytes, only %d left",
				code, n, end-off-DescriptorHeaderLen))
		}
		if err := d.add(code, version, b[off+DescriptorHeaderLen:dataEnd], off); err != nil {
			return nil, err
		}
		off = dataEnd
	}
	if truncated {
		return d, &ParseError{Offset: len(b), Err: ErrTruncated,
			Msg: fmt.Sprintf("header declares %d bytes of data, buffer holds %d", uint64(length)+4, len(b))}
	}
	return d, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// add decodes one descriptor found at offset off into d.
func (d *Discovery) add(code FeatureCode, version uint8, data []byte, off int) error {
	var (
		done bool
		err  error
	)
	switch code {
	case CodeTPer:
		done, err = decodeInto(&d.TPer, code, version, data, off)
	case CodeLocking:
		done, err = decodeInto(&d.Locking, code, version, data, off)
	case CodeGeometry:
		done, err = decodeInto(&d.Geometry, code, version, data, off)
	case CodeEnterprise:
		done, err = decodeInto(&d.Enterprise, code, version, data, off)
	case CodeOpalV1:
		done, err = decodeInto(&d.OpalV1, code, version, data, off)
	case CodeSingleUserMode:
		done, err = decodeInto(&d.SingleUserMode, code, version, data, off)
	case CodeDataStore:
		done, err = decodeInto(&d.DataStore, code, version, data, off)
	case CodeOpalV2:
		done, err = decodeInto(&d.OpalV2, code, version, data, off)
	case CodeOpalite:
		done, err = decodeInto(&d.Opalite, code, version, data, off)
	case CodePyriteV1:
		done, err = decodeInto(&d.PyriteV1, code, version, data, off)
	case CodePyriteV2:
		done, err = decodeInto(&d.PyriteV2, code, version, data, off)
	case CodeRuby:
		done, err = decodeInto(&d.Ruby, code, version, data, off)
	case CodeBlockSID:
		done, err = decodeInto(&d.BlockSID, code, version, data, off)
	case CodeNamespaceLocking:
		done, err = decodeInto(&d.NamespaceLock, code, version, data, off)
	case CodeDataRemoval:
		done, err = decodeInto(&d.DataRemoval, code, version, data, off)
	}
	if err != nil || done {
		return err
	}
	d.Other = append(d.Other, RawFeature{Code: code, Version: version, Data: cloneBytes(data)})
	return nil
}

// feature is implemented by the pointer to every decoded descriptor type.
type feature interface {
	// layout returns how many data bytes decode needs and how many encode
	// writes.
	layout() (minLen, stdLen int)
	// decode reads the fields from data, which holds at least minLen bytes.
	decode(data []byte)
	// encode writes the fields into data, stdLen zero bytes.
	encode(data []byte)
	descriptor() *Descriptor
}

// decodeInto decodes data into a new *T stored in *dst, unless *dst is
// already set (a duplicate descriptor, which the caller keeps raw).
func decodeInto[T any, P interface {
	*T
	feature
}](dst **T, code FeatureCode, version uint8, data []byte, off int) (bool, error) {
	if *dst != nil {
		return false, nil
	}
	v := new(T)
	p := P(v)
	minLen, stdLen := p.layout()
	if len(data) < minLen {
		return false, &ParseError{Offset: off,
			Msg: fmt.Sprintf("feature %v has %d data bytes, needs at least %d", code, len(data), minLen)}
	}
	p.decode(data)
	c := p.descriptor()
	c.Version = version
	if len(data) > stdLen {
		c.Extra = cloneBytes(data[stdLen:])
	}
	*dst = v
	return true, nil
}

// Build encodes d as a Level 0 Discovery response: the header, then the
// decoded features in ascending feature code order (the order drives use),
// then d.Other verbatim. Each decoded feature is written at the length its
// specification gives plus its Extra bytes, reserved bits and bytes zero.
//
// For any d returned by Parse without error, Parse(Build(d)) equals d.
func Build(d *Discovery) ([]byte, error) {
	if len(d.VendorSpecific) > VendorSpecificLen {
		return nil, fmt.Errorf("build level 0 discovery: vendor specific area is %d bytes, at most %d fit",
			len(d.VendorSpecific), VendorSpecificLen)
	}
	b := make([]byte, HeaderLen, 512)
	binary.BigEndian.PutUint16(b[4:], d.MajorVersion)
	binary.BigEndian.PutUint16(b[6:], d.MinorVersion)
	copy(b[16:HeaderLen], d.VendorSpecific)

	var err error
	b, err = appendFeature(b, CodeTPer, d.TPer, err)
	b, err = appendFeature(b, CodeLocking, d.Locking, err)
	b, err = appendFeature(b, CodeGeometry, d.Geometry, err)
	b, err = appendFeature(b, CodeEnterprise, d.Enterprise, err)
	b, err = appendFeature(b, CodeOpalV1, d.OpalV1, err)
	b, err = appendFeature(b, CodeSingleUserMode, d.SingleUserMode, err)
	b, err = appendFeature(b, CodeDataStore, d.DataStore, err)
	b, err = appendFeature(b, CodeOpalV2, d.OpalV2, err)
	b, err = appendFeature(b, CodeOpalite, d.Opalite, err)
	b, err = appendFeature(b, CodePyriteV1, d.PyriteV1, err)
	b, err = appendFeature(b, CodePyriteV2, d.PyriteV2, err)
	b, err = appendFeature(b, CodeRuby, d.Ruby, err)
	b, err = appendFeature(b, CodeBlockSID, d.BlockSID, err)
	b, err = appendFeature(b, CodeNamespaceLocking, d.NamespaceLock, err)
	b, err = appendFeature(b, CodeDataRemoval, d.DataRemoval, err)
	if err != nil {
		return nil, err
	}
	for _, r := range d.Other {
		if b, err = appendDescriptor(b, r.Code, r.Version, r.Data); err != nil {
			return nil, err
		}
	}
	if uint64(len(b)-4) > math.MaxUint32 {
		return nil, fmt.Errorf("build level 0 discovery: %d bytes do not fit the length field", len(b))
	}
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-4))
	return b, nil
}

// appendFeature appends f's descriptor unless f is nil or err is set
// (a sticky error keeps Build's list flat).
func appendFeature[T any, P interface {
	*T
	feature
}](b []byte, code FeatureCode, f P, err error) ([]byte, error) {
	if err != nil || f == nil {
		return b, err
	}
	_, stdLen := f.layout()
	c := f.descriptor()
	data := make([]byte, stdLen, stdLen+len(c.Extra))
	f.encode(data)
	data = append(data, c.Extra...)
	return appendDescriptor(b, code, c.Version, data)
}

func appendDescriptor(b []byte, code FeatureCode, version uint8, data []byte) ([]byte, error) {
	if version > 0x0F {
		return nil, fmt.Errorf("build level 0 discovery: feature %v version %d does not fit 4 bits", code, version)
	}
	if len(data) > MaxDescriptorData {
		return nil, fmt.Errorf("build level 0 discovery: feature %v has %d data bytes, at most %d fit",
			code, len(data), MaxDescriptorData)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	b = append(b, version<<4, byte(len(data)))
	return append(b, data...), nil
}
