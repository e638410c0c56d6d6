package method

import (
	"strings"
	"testing"
)

// TestUIDValues pins every UID against the hex of PROTOCOL.md 1.6-1.8,
// written out independently of uid.go.
func TestUIDValues(t *testing.T) {
	tests := []struct {
		name string
		got  [8]byte
		want string
	}{
		{"SMUID", SMUID, "00000000000000FF"},
		{"ThisSP", ThisSP, "0000000000000001"},
		{"AdminSP", AdminSP, "0000020500000001"},
		{"LockingSP", LockingSP, "0000020500000002"},
		{"LockingSPEnterprise", LockingSPEnterprise, "0000020500010001"},
		{"SPTable", SPTable, "0000020500000000"},
		{"Anybody", Anybody, "0000000900000001"},
		{"Admins", Admins, "0000000900000002"},
		{"Makers", Makers, "0000000900000003"},
		{"SID", SID, "0000000900000006"},
		{"AdminSPAdmin(1)", AdminSPAdmin(1), "0000000900000201"},
		{"Admin(1)", Admin(1), "0000000900010001"},
		{"Admin(4)", Admin(4), "0000000900010004"},
		{"Users", Users, "0000000900030000"},
		{"User(1)", User(1), "0000000900030001"},
		{"User(9)", User(9), "0000000900030009"},
		{"PSID", PSID, "000000090001FF01"},
		{"BandMaster(0)", BandMaster(0), "0000000900008001"},
		{"BandMaster(1)", BandMaster(1), "0000000900008002"},
		{"EraseMaster", EraseMaster, "0000000900008401"},
		{"CPINTable", CPINTable, "0000000B00000000"},
		{"CPINSID", CPINSID, "0000000B00000001"},
		{"CPINMSID", CPINMSID, "0000000B00008402"},
		{"CPINAdmin(1)", CPINAdmin(1), "0000000B00010001"},
		{"CPINAdmin(4)", CPINAdmin(4), "0000000B00010004"},
		{"CPINUser(2)", CPINUser(2), "0000000B00030002"},
		{"CPINAdminSPAdmin(1)", CPINAdminSPAdmin(1), "0000000B00000201"},
		{"LockingInfo", LockingInfo, "0000080100000001"},
		{"LockingInfoTable", LockingInfoTable, "0000080100000000"},
		{"LockingTable", LockingTable, "0000080200000000"},
		{"GlobalRange", GlobalRange, "0000080200000001"},
		{"LockingRange(0)", LockingRange(0), "0000080200000001"},
		{"LockingRange(1)", LockingRange(1), "0000080200030001"},
		{"LockingRange(15)", LockingRange(15), "000008020003000F"},
		{"MBRControl", MBRControl, "0000080300000001"},
		{"MBR", MBR, "0000080400000000"},
		{"KAES128(0)", KAES128(0), "0000080500000001"},
		{"KAES128(3)", KAES128(3), "0000080500030003"},
		{"KAES256(0)", KAES256(0), "0000080600000001"},
		{"KAES256(3)", KAES256(3), "0000080600030003"},
		{"DataStore", DataStore, "0000100100000000"},
		{"DataStoreTable(1)", DataStoreTable(1), "0000100100000000"},
		{"DataStoreTable(2)", DataStoreTable(2), "0000100200000000"},
		{"SecretProtectTable", SecretProtectTable, "0000001D00000000"},
		{"DataRemovalMechanism", DataRemovalMechanism, "0000110100000001"},
		{"TPerInfo", TPerInfo, "0000020100030001"},
		{"TableTable", TableTable, "0000000100000000"},
		{"TableRow(MBR)", TableRow(MBR), "0000000100000804"},
		{"MethodIDTable", MethodIDTable, "0000000600000000"},
		{"AccessControlTable", AccessControlTable, "0000000700000000"},
		{"ACETable", ACETable, "0000000800000000"},
		{"ACE GetRange global", ACELockingRangeGetRangeStartToActiveKey(0), "000000080003D000"},
		{"ACE GetRange 2", ACELockingRangeGetRangeStartToActiveKey(2), "000000080003D002"},
		{"ACE RdLocked global", ACELockingRangeSetRdLocked(0), "000000080003E000"},
		{"ACE RdLocked 1", ACELockingRangeSetRdLocked(1), "000000080003E001"},
		{"ACE WrLocked global", ACELockingRangeSetWrLocked(0), "000000080003E800"},
		{"ACE WrLocked 1", ACELockingRangeSetWrLocked(1), "000000080003E801"},
		{"ACE K_AES_128 GenKey", ACEKAES128GenKey(0), "000000080003B000"},
		{"ACE K_AES_128 GenKey 1", ACEKAES128GenKey(1), "000000080003B001"},
		{"ACE K_AES_256 GenKey", ACEKAES256GenKey(0), "000000080003B800"},
		{"ACE K_AES_256 GenKey 1", ACEKAES256GenKey(1), "000000080003B801"},
		{"ACE MBRControl", ACEMBRControlSetDoneToDOR, "000000080003F801"},
		{"ACE DataStore Get", ACEDataStoreGetAll, "000000080003FC00"},
		{"ACE DataStore Set", ACEDataStoreSetAll, "000000080003FC01"},
		{"ACE Anybody", ACEAnybody, "0000000800000001"},
		{"ACE Admin", ACEAdmin, "0000000800000002"},
		{"Omitted", Omitted, "FFFFFFFFFFFFFFFF"},
		// Methods (PROTOCOL.md 1.6, 1.8).
		{"Properties", Properties, "000000000000FF01"},
		{"StartSession", StartSession, "000000000000FF02"},
		{"SyncSession", SyncSession, "000000000000FF03"},
		{"StartTrustedSession", StartTrustedSession, "000000000000FF04"},
		{"SyncTrustedSession", SyncTrustedSession, "000000000000FF05"},
		{"CloseSession", CloseSession, "000000000000FF06"},
		{"DeleteSP", DeleteSP, "0000000600000001"},
		{"CreateTable", CreateTable, "0000000600000002"},
		{"Delete", Delete, "0000000600000003"},
		{"CreateRow", CreateRow, "0000000600000004"},
		{"DeleteRow", DeleteRow, "0000000600000005"},
		{"EnterpriseGet", EnterpriseGet, "0000000600000006"},
		{"EnterpriseSet", EnterpriseSet, "0000000600000007"},
		{"Next", Next, "0000000600000008"},
		{"GetFreeSpace", GetFreeSpace, "0000000600000009"},
		{"GetFreeRows", GetFreeRows, "000000060000000A"},
		{"EnterpriseAuthenticate", EnterpriseAuthenticate, "000000060000000C"},
		{"GetACL", GetACL, "000000060000000D"},
		{"AddACE", AddACE, "000000060000000E"},
		{"RemoveACE", RemoveACE, "000000060000000F"},
		{"GenKey", GenKey, "0000000600000010"},
		{"RevertSP", RevertSP, "0000000600000011"},
		{"GetPackage", GetPackage, "0000000600000012"},
		{"SetPackage", SetPackage, "0000000600000013"},
		{"Get", Get, "0000000600000016"},
		{"Set", Set, "0000000600000017"},
		{"Authenticate", Authenticate, "000000060000001C"},
		{"IssueSP", IssueSP, "0000000600000201"},
		{"Revert", Revert, "0000000600000202"},
		{"Activate", Activate, "0000000600000203"},
		{"Random", Random, "0000000600000601"},
		{"Reactivate", Reactivate, "0000000600000801"},
		{"Erase", Erase, "0000000600000803"},
	}
	for _, tt := range tests {
		want := unhex(tt.want)
		if string(tt.got[:]) != string(want) {
			t.Errorf("%s = %X; want %s", tt.name, tt.got, tt.want)
		}
	}
	if HalfAuthorityObjectRef != (HalfUID{0, 0, 0x0C, 0x05}) || HalfBooleanACE != (HalfUID{0, 0, 0x04, 0x0E}) {
		t.Errorf("half-UIDs %X %X", HalfAuthorityObjectRef, HalfBooleanACE)
	}
}

func TestUIDNames(t *testing.T) {
	tests := []struct {
		u    UID
		name string
	}{
		{LockingSP, "LockingSP"},
		{Admin(1), "Admin1"},
		{AdminSPAdmin(1), "AdminSP_Admin1"},
		{User(12), "User12"},
		{Users, "Users"},
		{PSID, "PSID"},
		{CPINAdmin(2), "C_PIN_Admin2"},
		{CPINUser(3), "C_PIN_User3"},
		{CPINAdminSPAdmin(1), "C_PIN_AdminSP_Admin1"},
		{GlobalRange, "Locking_GlobalRange"},
		{LockingRange(4), "Locking_Range4"},
		{KAES256(0), "K_AES_256_GlobalRange"},
		{KAES256(2), "K_AES_256_Range2"},
		{ACELockingRangeSetRdLocked(0), "ACE_Locking_GlobalRange_Set_RdLocked"},
		{ACELockingRangeSetRdLocked(3), "ACE_Locking_Range3_Set_RdLocked"},
		{ACELockingRangeSetWrLocked(3), "ACE_Locking_Range3_Set_WrLocked"},
		{ACELockingRangeGetRangeStartToActiveKey(1), "ACE_Locking_Range1_Get_RangeStartToActiveKey"},
		{ACEKAES128GenKey(5), "ACE_K_AES_128_Range5_GenKey"},
		{BandMaster(0), "BandMaster0"},
		{BandMaster(15), "BandMaster15"},
		{EraseMaster, "EraseMaster"},
		{DataStoreTable(3), "DataStore3"},
		{TableRow(MBR), "Table_MBR"},
		{TableRow(DataStoreTable(2)), "Table_DataStore2"},
		{mk(0x12345678, 0x9ABCDEF0), ""},
		{mk(0x00000009, 0x00030000+0x800), ""},
	}
	for _, tt := range tests {
		if got := tt.u.Name(); got != tt.name {
			t.Errorf("%s.Name() = %q; want %q", tt.u.Hex(), got, tt.name)
		}
		want := tt.u.Hex()
		if tt.name != "" {
			want = tt.name + "(" + want + ")"
		}
		if got := tt.u.String(); got != want {
			t.Errorf("String() = %q; want %q", got, want)
		}
		for _, s := range []string{tt.u.String(), tt.u.Hex(), tt.name, strings.ToLower(tt.name)} {
			if s == "" {
				continue
			}
			if got, err := ParseUID(s); err != nil || got != tt.u {
				t.Errorf("ParseUID(%q) = %v, %v; want %v", s, got, err, tt.u)
			}
		}
	}
	if got := LockingSP.String(); got != "LockingSP(00000205:00000002)" {
		t.Errorf("LockingSP.String() = %q", got)
	}
	if got := Get.String(); got != "Get(00000006:00000016)" {
		t.Errorf("Get.String() = %q", got)
	}
	if got := MethodID(mk(6, 0x999)).String(); got != "00000006:00000999" {
		t.Errorf("unknown method String() = %q", got)
	}
	if LockingRange(3).Table() != LockingTable {
		t.Errorf("LockingRange(3).Table() = %v", LockingRange(3).Table())
	}
}

func TestParseUID(t *testing.T) {
	good := map[string]UID{
		"0000020500000002":           LockingSP,
		"0x0000020500000002":         LockingSP,
		"00000205:00000002":          LockingSP,
		"00000205 00000002":          LockingSP,
		"00000205_00000002":          LockingSP,
		" lockingsp ":                LockingSP,
		"c_pin_msid":                 CPINMSID,
		"USER7":                      User(7),
		"Whatever(0000000900030007)": User(7),
		"Locking_Range2047":          LockingRange(2047),
		"datastore":                  DataStore,
	}
	for s, want := range good {
		if got, err := ParseUID(s); err != nil || got != want {
			t.Errorf("ParseUID(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{
		"", "LockingSPX", "User0", "User-1", "User2048", "Locking_Range0", "000002050000000", "0000020500000002FF",
		"00000205-00000002", "zz00020500000002", "BandMaster1024", "DataStore1", "DataStore0", "Table_", "Table_User1",
		"Admin1(123)", "Table_Table_Foo",
	} {
		if got, err := ParseUID(s); err == nil {
			t.Errorf("ParseUID(%q) = %v; want an error", s, got)
		}
	}
	for s, want := range map[string]MethodID{
		"Get": Get, "startsession": StartSession, "0000000600000016": Get, "Get(00000006:00000016)": Get,
		"00000006:00000203": Activate,
	} {
		if got, err := ParseMethodID(s); err != nil || got != want {
			t.Errorf("ParseMethodID(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "Gett", "LockingSP", "x(1)"} {
		if got, err := ParseMethodID(s); err == nil {
			t.Errorf("ParseMethodID(%q) = %v; want an error", s, got)
		}
	}
}

func TestUIDValueRoundTrip(t *testing.T) {
	v := User(3).Value()
	if u, err := UIDFromValue(v); err != nil || u != User(3) {
		t.Errorf("UIDFromValue(%v) = %v, %v", v, u, err)
	}
	if m, err := MethodIDFromValue(Activate.Value()); err != nil || m != Activate {
		t.Errorf("MethodIDFromValue = %v, %v", m, err)
	}
	if _, err := UIDFromValue(HalfBooleanACE.Value()); err == nil {
		t.Errorf("UIDFromValue of 4 bytes succeeded")
	}
	if !(UID{}).IsZero() || SMUID.IsZero() {
		t.Errorf("IsZero wrong")
	}
}
