package nvme

import (
	"encoding/binary"

	"github.com/shiftlock/shiftlock/tcg/transport/internal/ioctl"
)

// Admin command opcodes (NVM Express Base Specification 2.0, figure 138).
const (
	OpIdentify        = 0x06
	OpSecuritySend    = 0x81
	OpSecurityReceive = 0x82
)

// Identify CNS values (NVMe Base 2.0, figure 273).
const (
	CNSNamespace  = 0x00 // Identify Namespace data structure for NSID
	CNSController = 0x01 // Identify Controller data structure
)

// IdentifyLen is the size of every Identify data structure.
const IdentifyLen = 4096

// PassthruCmd mirrors struct nvme_passthru_cmd (also named nvme_admin_cmd)
// from include/uapi/linux/nvme_ioctl.h: 72 bytes, the argument of
// NVME_IOCTL_ADMIN_CMD. Every field is a fixed-width integer, so the layout
// is the same on every architecture (PROTOCOL.md 4.1). Sizes and offsets are
// pinned by TestPassthruCmdABI.
type PassthruCmd struct {
	Opcode      uint8  // opcode
	Flags       uint8  // flags: must be 0, the kernel rejects anything else with EINVAL
	_           uint16 // rsvd1
	NSID        uint32 // nsid
	CDW2        uint32 // cdw2
	CDW3        uint32 // cdw3
	Metadata    uint64 // metadata: user address of a metadata buffer
	Addr        uint64 // addr: user address of the data buffer
	MetadataLen uint32 // metadata_len
	DataLen     uint32 // data_len
	CDW10       uint32 // cdw10
	CDW11       uint32 // cdw11
	CDW12       uint32 // cdw12
	CDW13       uint32 // cdw13
	CDW14       uint32 // cdw14
	CDW15       uint32 // cdw15
	TimeoutMS   uint32 // timeout_ms: 0 means the driver's admin timeout
	Result      uint32 // result: completion queue entry DW0, written by the kernel
}

// PassthruCmdSize is sizeof(struct nvme_passthru_cmd).
const PassthruCmdSize = 72

// ioctl request numbers from include/uapi/linux/nvme_ioctl.h, computed as
// the _IO/_IOWR macros do (pinned by TestIoctlNumbers).
var (
	// NVME_IOCTL_ID = _IO('N', 0x40): the namespace id of a namespace
	// device, as the ioctl's return value.
	IoctlID = ioctl.IO('N', 0x40)
	// NVME_IOCTL_ADMIN_CMD = _IOWR('N', 0x41, struct nvme_admin_cmd).
	IoctlAdminCmd = ioctl.IOWR('N', 0x41, PassthruCmdSize)
)

// SecurityCDW10 returns command dword 10 of Security Send and Security
// Receive: SECP in bits 31:24, SPSP (the ComID for protocols 1 and 2) in
// bits 23:8, NSSF 0 (NVMe Base 2.0 figures 314 and 317; PROTOCOL.md 4.1).
func SecurityCDW10(proto uint8, spsp uint16) uint32 {
	return uint32(proto)<<24 | uint32(spsp)<<8
}

// SecuritySendCmd returns the passthrough command for Security Send of n
// bytes: cdw11 is the transfer length in bytes. Addr is left for the caller.
// The NSID is 0, as the kernel's own sed-opal path sends it.
func SecuritySendCmd(proto uint8, spsp uint16, n uint32) PassthruCmd {
	return PassthruCmd{Opcode: OpSecuritySend, CDW10: SecurityCDW10(proto, spsp), CDW11: n, DataLen: n}
}

// SecurityReceiveCmd returns the passthrough command for Security Receive
// with an allocation length of n bytes (cdw11). Addr is left for the caller.
func SecurityReceiveCmd(proto uint8, spsp uint16, n uint32) PassthruCmd {
	return PassthruCmd{Opcode: OpSecurityReceive, CDW10: SecurityCDW10(proto, spsp), CDW11: n, DataLen: n}
}

// IdentifyCmd returns the passthrough command for Identify with the given
// CNS and namespace id, transferring IdentifyLen bytes.
func IdentifyCmd(cns uint8, nsid uint32) PassthruCmd {
	return PassthruCmd{Opcode: OpIdentify, NSID: nsid, CDW10: uint32(cns), DataLen: IdentifyLen}
}

// MarshalBinary returns the 72 bytes the kernel reads, in host byte order
// as the kernel expects (the driver converts to the little-endian
// submission queue entry itself). It exists for golden tests and traces;
// the ioctl passes the struct's memory, which TestPassthruCmdABI proves
// identical.
func (c *PassthruCmd) MarshalBinary() ([]byte, error) {
	b := make([]byte, PassthruCmdSize)
	le := binary.NativeEndian
	b[0] = c.Opcode
	b[1] = c.Flags
	le.PutUint32(b[4:], c.NSID)
	le.PutUint32(b[8:], c.CDW2)
	le.PutUint32(b[12:], c.CDW3)
	le.PutUint64(b[16:], c.Metadata)
	le.PutUint64(b[24:], c.Addr)
	le.PutUint32(b[32:], c.MetadataLen)
	le.PutUint32(b[36:], c.DataLen)
	for i, v := range []uint32{c.CDW10, c.CDW11, c.CDW12, c.CDW13, c.CDW14, c.CDW15, c.TimeoutMS, c.Result} {
		le.PutUint32(b[40+4*i:], v)
	}
	return b, nil
}
