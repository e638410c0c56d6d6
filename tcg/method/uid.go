package method

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/token"
)

// A UID names an object or a table: 8 bytes, written as two 4-byte halves
// (table, row) in PROTOCOL.md. The package-level UID variables are constants
// in spirit; never modify them.
type UID [8]byte

// A MethodID is the UID of a method (a row of the MethodID table
// 00000006 00000000, or a Session Manager method 00000000 0000FFxx). It has
// its own type so that an invoking UID and a method UID cannot be swapped.
type MethodID [8]byte

// A HalfUID is the 4-byte name of a column reference in an ACE BooleanExpr
// (PROTOCOL.md 1.7).
type HalfUID [4]byte

func mk(hi, lo uint32) UID {
	var u UID
	binary.BigEndian.PutUint32(u[:4], hi)
	binary.BigEndian.PutUint32(u[4:], lo)
	return u
}

func mkMethod(hi, lo uint32) MethodID { return MethodID(mk(hi, lo)) }

// Halves returns the table half and the row half of u.
func (u UID) Halves() (hi, lo uint32) {
	return binary.BigEndian.Uint32(u[:4]), binary.BigEndian.Uint32(u[4:])
}

// IsZero reports whether u is all zeros, which this package uses for
// "omitted".
func (u UID) IsZero() bool { return u == UID{} }

// Hex returns u as two 8-digit hex halves, "00000205:00000002".
func (u UID) Hex() string {
	hi, lo := u.Halves()
	return fmt.Sprintf("%08X:%08X", hi, lo)
}

// String returns the friendly name and the hex form, "LockingSP(00000205:00000002)",
// or only the hex form for a UID without a known name.
func (u UID) String() string {
	if n := u.Name(); n != "" {
		return n + "(" + u.Hex() + ")"
	}
	return u.Hex()
}

// Value returns u as an 8-byte byte-sequence token.
func (u UID) Value() token.Value { return token.Bytes(u[:]) }

// Table returns the UID of the table u is a row of (its first half, then
// zeros).
func (u UID) Table() UID {
	hi, _ := u.Halves()
	return mk(hi, 0)
}

// Hex returns m as two 8-digit hex halves, "00000006:00000016".
func (m MethodID) Hex() string { return UID(m).Hex() }

// String returns the method's name and hex form, "Get(00000006:00000016)", or
// only the hex form for an unknown method.
func (m MethodID) String() string {
	if n := m.Name(); n != "" {
		return n + "(" + m.Hex() + ")"
	}
	return m.Hex()
}

// Name returns the method's name ("Get", "StartSession"), or "" if unknown.
func (m MethodID) Name() string { return methodNames[m] }

// Value returns m as an 8-byte byte-sequence token.
func (m MethodID) Value() token.Value { return token.Bytes(m[:]) }

// Value returns h as a 4-byte byte-sequence token.
func (h HalfUID) Value() token.Value { return token.Bytes(h[:]) }

// UIDFromValue returns the UID held by an 8-byte byte-sequence token.
func UIDFromValue(v token.Value) (UID, error) {
	b, err := v.AsBytes()
	if err != nil {
		return UID{}, err
	}
	if len(b) != 8 {
		return UID{}, fmt.Errorf("method: UID of %d bytes; want 8", len(b))
	}
	return UID(b), nil
}

// MethodIDFromValue returns the method UID held by an 8-byte byte-sequence
// token.
func MethodIDFromValue(v token.Value) (MethodID, error) {
	u, err := UIDFromValue(v)
	return MethodID(u), err
}

// Session Manager and SPs (PROTOCOL.md 1.7).
var (
	SMUID               = mk(0x00000000, 0x000000FF) // Session Manager: invoking UID of Properties, StartSession...
	ThisSP              = mk(0x00000000, 0x00000001) // the SP of the current session
	AdminSP             = mk(0x00000205, 0x00000001)
	LockingSP           = mk(0x00000205, 0x00000002) // Opal
	LockingSPEnterprise = mk(0x00000205, 0x00010001) // Enterprise SSC
)

// Tables. A table's UID is its table number (the first half) followed by
// zeros; its rows share that first half.
var (
	TableTable         = mk(0x00000001, 0) // Table table; Rows = column 7
	MethodIDTable      = mk(0x00000006, 0)
	AccessControlTable = mk(0x00000007, 0)
	ACETable           = mk(0x00000008, 0)
	AuthorityTable     = mk(0x00000009, 0) // Enabled = column 5
	CPINTable          = mk(0x0000000B, 0) // PIN = column 3
	SecretProtectTable = mk(0x0000001D, 0)
	SPTable            = mk(0x00000205, 0) // LifeCycleState = column 6, Frozen = column 7
	LockingInfoTable   = mk(0x00000801, 0) // also the Enterprise LockingInfo row
	LockingTable       = mk(0x00000802, 0)
	MBR                = mk(0x00000804, 0) // the shadow MBR byte table
	KAES128Table       = mk(0x00000805, 0)
	KAES256Table       = mk(0x00000806, 0)
	DataStore          = mk(0x00001001, 0) // the first DataStore byte table
)

// Authorities (Authority table 00000009).
var (
	Anybody     = mk(0x00000009, 0x00000001)
	Admins      = mk(0x00000009, 0x00000002) // class
	Makers      = mk(0x00000009, 0x00000003)
	SID         = mk(0x00000009, 0x00000006)
	Users       = mk(0x00000009, 0x00030000) // class
	PSID        = mk(0x00000009, 0x0001FF01)
	EraseMaster = mk(0x00000009, 0x00008401) // Enterprise
)

// C_PIN rows (C_PIN table 0000000B).
var (
	CPINSID  = mk(0x0000000B, 0x00000001)
	CPINMSID = mk(0x0000000B, 0x00008402)
)

// Locking SP and Admin SP objects.
var (
	LockingInfo          = mk(0x00000801, 0x00000001) // Opal; Enterprise uses LockingInfoTable
	GlobalRange          = mk(0x00000802, 0x00000001)
	MBRControl           = mk(0x00000803, 0x00000001)
	DataRemovalMechanism = mk(0x00001101, 0x00000001) // Admin SP
	TPerInfo             = mk(0x00000201, 0x00030001) // Admin SP
)

// ACE rows used to grant access (PROTOCOL.md 1.7); the per-range ones are
// functions below.
var (
	ACEAnybody                = mk(0x00000008, 0x00000001)
	ACEAdmin                  = mk(0x00000008, 0x00000002)
	ACEMBRControlSetDoneToDOR = mk(0x00000008, 0x0003F801)
	ACEDataStoreGetAll        = mk(0x00000008, 0x0003FC00)
	ACEDataStoreSetAll        = mk(0x00000008, 0x0003FC01)
)

// Omitted is the all-ones placeholder some implementations send for an
// omitted UID parameter.
var Omitted = mk(0xFFFFFFFF, 0xFFFFFFFF)

// AdminSPAdmin returns the Admin SP's Admin n authority (00000009 00000200+n).
func AdminSPAdmin(n uint32) UID { return mk(0x00000009, 0x00000200+n) }

// Admin returns the Locking SP's Admin n authority (00000009 00010000+n),
// n = 1..4 in Opal.
func Admin(n uint32) UID { return mk(0x00000009, 0x00010000+n) }

// User returns the Locking SP's User n authority (00000009 00030000+n).
func User(n uint32) UID { return mk(0x00000009, 0x00030000+n) }

// BandMaster returns the Enterprise BandMaster n authority (00000009
// 00008001+n: BandMaster0 is 00008001).
func BandMaster(n uint32) UID { return mk(0x00000009, 0x00008001+n) }

// CPINAdminSPAdmin returns the C_PIN row of the Admin SP's Admin n
// (0000000B 00000200+n).
func CPINAdminSPAdmin(n uint32) UID { return mk(0x0000000B, 0x00000200+n) }

// CPINAdmin returns the C_PIN row of the Locking SP's Admin n (0000000B
// 00010000+n).
func CPINAdmin(n uint32) UID { return mk(0x0000000B, 0x00010000+n) }

// CPINUser returns the C_PIN row of User n (0000000B 00030000+n).
func CPINUser(n uint32) UID { return mk(0x0000000B, 0x00030000+n) }

// rangeRow is the row of locking range n in a per-range table: row 1 for the
// global range (n = 0), 00030000+n for range n.
func rangeRow(table, n uint32) UID {
	if n == 0 {
		return mk(table, 1)
	}
	return mk(table, 0x00030000+n)
}

// LockingRange returns the Locking object of range n: GlobalRange for n = 0
// (the kernel's numbering), 00000802 00030000+n otherwise.
func LockingRange(n uint32) UID { return rangeRow(0x00000802, n) }

// KAES128 returns the K_AES_128 media-key object of range n (0 = global).
func KAES128(n uint32) UID { return rangeRow(0x00000805, n) }

// KAES256 returns the K_AES_256 media-key object of range n (0 = global).
func KAES256(n uint32) UID { return rangeRow(0x00000806, n) }

// DataStoreTable returns the n-th DataStore byte table, n >= 1: table
// number 00001000+n, so DataStoreTable(1) is DataStore (only the first is
// certain, PROTOCOL.md 1.7).
func DataStoreTable(n uint32) UID { return mk(0x00001000+n, 0) }

// TableRow returns the Table-table row that describes table t: 00000001
// followed by t's first half (the MBR's row is 00000001 00000804).
func TableRow(t UID) UID {
	hi, _ := t.Halves()
	return mk(0x00000001, hi)
}

// ACELockingRangeGetRangeStartToActiveKey returns the ACE that guards Get of
// columns RangeStart..ActiveKey of range n (0 = global): 00000008 0003D000+n.
func ACELockingRangeGetRangeStartToActiveKey(n uint32) UID { return mk(0x00000008, 0x0003D000+n) }

// ACELockingRangeSetRdLocked returns the ACE that guards Set ReadLocked of
// range n (0 = global): 00000008 0003E000+n.
func ACELockingRangeSetRdLocked(n uint32) UID { return mk(0x00000008, 0x0003E000+n) }

// ACELockingRangeSetWrLocked returns the ACE that guards Set WriteLocked of
// range n (0 = global): 00000008 0003E800+n.
func ACELockingRangeSetWrLocked(n uint32) UID { return mk(0x00000008, 0x0003E800+n) }

// ACEKAES128GenKey returns the ACE that guards GenKey on K_AES_128 of range n
// (0 = global): 00000008 0003B000+n.
func ACEKAES128GenKey(n uint32) UID { return mk(0x00000008, 0x0003B000+n) }

// ACEKAES256GenKey returns the ACE that guards GenKey on K_AES_256 of range n
// (0 = global): 00000008 0003B800+n.
func ACEKAES256GenKey(n uint32) UID { return mk(0x00000008, 0x0003B800+n) }

// Half-UIDs of BooleanExpr elements (PROTOCOL.md 1.7).
var (
	HalfAuthorityObjectRef = HalfUID{0x00, 0x00, 0x0C, 0x05}
	HalfBooleanACE         = HalfUID{0x00, 0x00, 0x04, 0x0E}
)

// Session Manager methods, invoked on SMUID (PROTOCOL.md 1.6).
var (
	Properties          = mkMethod(0, 0x0000FF01)
	StartSession        = mkMethod(0, 0x0000FF02)
	SyncSession         = mkMethod(0, 0x0000FF03)
	StartTrustedSession = mkMethod(0, 0x0000FF04)
	SyncTrustedSession  = mkMethod(0, 0x0000FF05)
	CloseSession        = mkMethod(0, 0x0000FF06)
)

// Methods of the MethodID table (PROTOCOL.md 1.8). Opal's Get, Set and
// Authenticate (0x16, 0x17, 0x1C) differ from the Enterprise SSC's (0x06,
// 0x07, 0x0C), which also encode their parameters differently.
var (
	DeleteSP               = mkMethod(6, 0x00000001)
	CreateTable            = mkMethod(6, 0x00000002)
	Delete                 = mkMethod(6, 0x00000003)
	CreateRow              = mkMethod(6, 0x00000004)
	DeleteRow              = mkMethod(6, 0x00000005)
	EnterpriseGet          = mkMethod(6, 0x00000006)
	EnterpriseSet          = mkMethod(6, 0x00000007)
	Next                   = mkMethod(6, 0x00000008)
	GetFreeSpace           = mkMethod(6, 0x00000009)
	GetFreeRows            = mkMethod(6, 0x0000000A)
	EnterpriseAuthenticate = mkMethod(6, 0x0000000C)
	GetACL                 = mkMethod(6, 0x0000000D)
	AddACE                 = mkMethod(6, 0x0000000E)
	RemoveACE              = mkMethod(6, 0x0000000F)
	GenKey                 = mkMethod(6, 0x00000010)
	RevertSP               = mkMethod(6, 0x00000011)
	GetPackage             = mkMethod(6, 0x00000012)
	SetPackage             = mkMethod(6, 0x00000013)
	Get                    = mkMethod(6, 0x00000016)
	Set                    = mkMethod(6, 0x00000017)
	Authenticate           = mkMethod(6, 0x0000001C)
	IssueSP                = mkMethod(6, 0x00000201)
	Revert                 = mkMethod(6, 0x00000202)
	Activate               = mkMethod(6, 0x00000203)
	Random                 = mkMethod(6, 0x00000601)
	Reactivate             = mkMethod(6, 0x00000801)
	Erase                  = mkMethod(6, 0x00000803)
)

var uidNames = map[UID]string{
	SMUID: "SMUID", ThisSP: "ThisSP", AdminSP: "AdminSP", LockingSP: "LockingSP",
	LockingSPEnterprise: "LockingSP_Enterprise",
	TableTable:          "Table", MethodIDTable: "MethodID", AccessControlTable: "AccessControl",
	ACETable: "ACE", AuthorityTable: "Authority", CPINTable: "C_PIN", SecretProtectTable: "SecretProtect",
	SPTable: "SP", LockingInfoTable: "LockingInfoTable", LockingTable: "Locking", MBR: "MBR",
	KAES128Table: "K_AES_128", KAES256Table: "K_AES_256", DataStore: "DataStore",
	Anybody: "Anybody", Admins: "Admins", Makers: "Makers", SID: "SID", Users: "Users", PSID: "PSID",
	EraseMaster: "EraseMaster", CPINSID: "C_PIN_SID", CPINMSID: "C_PIN_MSID",
	LockingInfo: "LockingInfo", GlobalRange: "Locking_GlobalRange", MBRControl: "MBRControl",
	DataRemovalMechanism: "DataRemovalMechanism", TPerInfo: "TPerInfo",
	KAES128(0): "K_AES_128_GlobalRange", KAES256(0): "K_AES_256_GlobalRange",
	ACEAnybody: "ACE_Anybody", ACEAdmin: "ACE_Admin",
	ACEMBRControlSetDoneToDOR: "ACE_MBRControl_Set_DoneToDOR",
	ACEDataStoreGetAll:        "ACE_DataStore_Get_All", ACEDataStoreSetAll: "ACE_DataStore_Set_All",
	ACELockingRangeGetRangeStartToActiveKey(0): "ACE_Locking_GlobalRange_Get_RangeStartToActiveKey",
	ACELockingRangeSetRdLocked(0):              "ACE_Locking_GlobalRange_Set_RdLocked",
	ACELockingRangeSetWrLocked(0):              "ACE_Locking_GlobalRange_Set_WrLocked",
	ACEKAES128GenKey(0):                        "ACE_K_AES_128_GlobalRange_GenKey",
	ACEKAES256GenKey(0):                        "ACE_K_AES_256_GlobalRange_GenKey",
	Omitted:                                    "Omitted",
}

var methodNames = map[MethodID]string{
	Properties: "Properties", StartSession: "StartSession", SyncSession: "SyncSession",
	StartTrustedSession: "StartTrustedSession", SyncTrustedSession: "SyncTrustedSession",
	CloseSession: "CloseSession", DeleteSP: "DeleteSP", CreateTable: "CreateTable", Delete: "Delete",
	CreateRow: "CreateRow", DeleteRow: "DeleteRow", EnterpriseGet: "EnterpriseGet",
	EnterpriseSet: "EnterpriseSet", Next: "Next", GetFreeSpace: "GetFreeSpace",
	GetFreeRows: "GetFreeRows", EnterpriseAuthenticate: "EnterpriseAuthenticate", GetACL: "GetACL",
	AddACE: "AddACE", RemoveACE: "RemoveACE", GenKey: "GenKey", RevertSP: "RevertSP",
	GetPackage: "GetPackage", SetPackage: "SetPackage", Get: "Get", Set: "Set",
	Authenticate: "Authenticate", IssueSP: "IssueSP", Revert: "Revert", Activate: "Activate",
	Random: "Random", Reactivate: "Reactivate", Erase: "Erase",
}

// numbered are the families of UIDs Name derives from a row number: table
// half, first row, name prefix, suffix. Row first+n is named prefix+n+suffix.
var numbered = []struct {
	hi, first    uint32
	prefix, tail string
}{
	{0x00000009, 0x00000200, "AdminSP_Admin", ""},
	{0x00000009, 0x00010000, "Admin", ""},
	{0x00000009, 0x00030000, "User", ""},
	{0x0000000B, 0x00000200, "C_PIN_AdminSP_Admin", ""},
	{0x0000000B, 0x00010000, "C_PIN_Admin", ""},
	{0x0000000B, 0x00030000, "C_PIN_User", ""},
	{0x00000802, 0x00030000, "Locking_Range", ""},
	{0x00000805, 0x00030000, "K_AES_128_Range", ""},
	{0x00000806, 0x00030000, "K_AES_256_Range", ""},
	{0x00000008, 0x0003D000, "ACE_Locking_Range", "_Get_RangeStartToActiveKey"},
	{0x00000008, 0x0003E000, "ACE_Locking_Range", "_Set_RdLocked"},
	{0x00000008, 0x0003E800, "ACE_Locking_Range", "_Set_WrLocked"},
	{0x00000008, 0x0003B000, "ACE_K_AES_128_Range", "_GenKey"},
	{0x00000008, 0x0003B800, "ACE_K_AES_256_Range", "_GenKey"},
}

// maxNumbered is the highest row number Name derives names for; the ACE
// families are 0x800 apart.
const maxNumbered = 0x7FF

// Name returns u's friendly name ("LockingSP", "User3", "Locking_Range2",
// "C_PIN_Admin1"), or "" if u is not one this package knows.
func (u UID) Name() string {
	if n, ok := uidNames[u]; ok {
		return n
	}
	hi, lo := u.Halves()
	for _, f := range numbered {
		if hi == f.hi && lo > f.first && lo-f.first <= maxNumbered {
			return f.prefix + strconv.FormatUint(uint64(lo-f.first), 10) + f.tail
		}
	}
	if hi == 0x00000009 && lo >= 0x00008001 && lo-0x00008001 <= 0x3FF {
		return "BandMaster" + strconv.FormatUint(uint64(lo-0x00008001), 10)
	}
	if hi > 0x00001001 && hi <= 0x000010FF && lo == 0 {
		return "DataStore" + strconv.FormatUint(uint64(hi-0x00001000), 10)
	}
	if hi == 0x00000001 && lo != 0 {
		if n := mk(lo, 0).Name(); n != "" {
			return "Table_" + n
		}
	}
	return ""
}

var uidByName = func() map[string]UID {
	m := make(map[string]UID, len(uidNames))
	for u, n := range uidNames {
		m[strings.ToLower(n)] = u
	}
	return m
}()

var methodByName = func() map[string]MethodID {
	m := make(map[string]MethodID, len(methodNames))
	for u, n := range methodNames {
		m[strings.ToLower(n)] = u
	}
	return m
}()

// ParseUID parses a UID written as 16 hex digits, with an optional "0x"
// prefix and an optional ':', '_', '.' or ' ' between the halves; as a name
// [UID.Name] returns (case-insensitive: "LockingSP", "user3"); or in the
// form String returns ("User3(00000009:00030003)", where the hex decides).
func ParseUID(s string) (UID, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '('); i > 0 && strings.HasSuffix(s, ")") {
		return parseHexUID(s[i+1 : len(s)-1])
	}
	if u, err := parseHexUID(s); err == nil {
		return u, nil
	}
	if u, ok := uidByName[strings.ToLower(s)]; ok {
		return u, nil
	}
	for _, f := range numbered {
		if rest, ok := cutAffixes(s, f.prefix, f.tail); ok {
			if n, err := strconv.ParseUint(rest, 10, 32); err == nil && n >= 1 && n <= maxNumbered {
				if u := mk(f.hi, f.first+uint32(n)); strings.EqualFold(u.Name(), s) {
					return u, nil
				}
			}
		}
	}
	for _, f := range []struct {
		prefix string
		mk     func(uint32) UID
	}{{"BandMaster", BandMaster}, {"DataStore", DataStoreTable}} {
		if rest, ok := cutAffixes(s, f.prefix, ""); ok {
			if n, err := strconv.ParseUint(rest, 10, 32); err == nil && n <= maxNumbered {
				if u := f.mk(uint32(n)); strings.EqualFold(u.Name(), s) {
					return u, nil
				}
			}
		}
	}
	if rest, ok := cutAffixes(s, "Table_", ""); ok {
		if t, err := ParseUID(rest); err == nil && t == t.Table() {
			return TableRow(t), nil
		}
	}
	return UID{}, fmt.Errorf("method: %q is neither a known object name nor 16 hex digits", s)
}

// ParseMethodID parses a method UID written as 16 hex digits (see
// [ParseUID]), as a method name ("Get", case-insensitive), or in the form
// String returns.
func ParseMethodID(s string) (MethodID, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '('); i > 0 && strings.HasSuffix(s, ")") {
		u, err := parseHexUID(s[i+1 : len(s)-1])
		return MethodID(u), err
	}
	if u, err := parseHexUID(s); err == nil {
		return MethodID(u), nil
	}
	if m, ok := methodByName[strings.ToLower(s)]; ok {
		return m, nil
	}
	return MethodID{}, fmt.Errorf("method: %q is neither a known method name nor 16 hex digits", s)
}

func cutAffixes(s, prefix, suffix string) (string, bool) {
	if len(s) < len(prefix)+len(suffix) || !strings.EqualFold(s[:len(prefix)], prefix) ||
		!strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return "", false
	}
	return s[len(prefix) : len(s)-len(suffix)], true
}

func parseHexUID(s string) (UID, error) {
	h := s
	if len(h) >= 2 && (h[:2] == "0x" || h[:2] == "0X") {
		h = h[2:]
	}
	if len(h) == 17 && strings.IndexByte(":_. ", h[8]) >= 0 {
		h = h[:8] + h[9:]
	}
	var u UID
	if len(h) != 16 {
		return u, fmt.Errorf("method: UID %q: want 16 hex digits", s)
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("method: UID %q: want 16 hex digits", s)
	}
	return u, nil
}
