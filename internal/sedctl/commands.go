package sedctl

import (
	"slices"

	"github.com/shiftlock/shiftlock/tcg/opal"
)

func opts(groups ...[]string) []string { return slices.Concat(groups...) }

var (
	lockedState    = opal.Locked
	readWriteState = opal.ReadWrite
)

// commands returns every command, in the order help lists them. A command
// group ("range", "mbr", "resume") is just the commands whose
// path starts with the same word: add entries here and findCommand, help
// and 'sedctl GROUP --help' pick them up; a sedutil-cli alias for one goes
// in sedutil.go's table (TestAliasesReachCommands checks it).
func commands() []*command {
	return slices.Concat(driveCommands(), resumeCommands(), []*command{
		{path: "version", args: "", maxArgs: 0, run: cmdVersion, summary: "print sedctl's version",
			help: `Example:
  sedctl version --json`},
		{path: "help", args: "[COMMAND]", maxArgs: 2, run: cmdHelp, summary: "show help for sedctl or a command",
			help: `Example:
  sedctl help range
  sedctl help range lock`},
	})
}

// driveCommands are the commands that work on one drive (or scan them).
func driveCommands() []*command {
	return []*command{
		{path: "scan", args: "[--sim SOCKET]...", maxArgs: 0, run: cmdScan, opts: []string{"sim"},
			summary: "list the drives: SSC, locking state, model, serial",
			help: `Looks at /sys/class/nvme and /sys/block/sd*, plus the sedsim sockets given
with --sim or in SEDCTL_SIM_SOCKETS (colon separated). Only Level 0 discovery
is read: no session, no password.

Example:
  sedctl scan --sim /run/sedsim.sock`},
		{path: "query", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdQuery,
			summary: "identity, decoded Level 0 discovery and session properties",
			help:    "Example:\n  sedctl query /dev/nvme0\n  sedctl query --json sim:/run/sedsim.sock"},
		{path: "is-valid", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdIsValid,
			summary: "whether DEV is a self-encrypting drive, and which SSCs (exit 69 if not)",
			help: `Example:
  sedctl is-valid /dev/sda && echo self-encrypting`},
		{path: "msid", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdMSID,
			summary: "print the MSID, the factory SID password anybody may read",
			help: `Anybody may read it: no password. It is the SID password until someone
takes ownership, and sedctl setup uses it for that.

Example:
  sedctl msid /dev/nvme0`},
		{path: "setup", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdSetup, opts: opts(secretOpts, []string{"hash", "mbr"}),
			summary: "take ownership, activate locking, configure the global range",
			help: `Sets the SID password (asked twice, or read from --password-file or
--password-fd), activates the Locking SP (Admin1's password becomes the SID
password) and leaves the global range unlocked with locking disabled. With
--mbr it also enables the shadow MBR, as sedutil-cli --initialSetup does.
Refuses a drive that is already owned or set up, without using a try.

Example:
  sedctl setup /dev/nvme0
  sedctl setup --password-file /root/sid.pw sim:/run/sedsim.sock
Then:
  sedctl range enable 0 /dev/nvme0     # locks at the next power cycle
  sedctl range lock 0 /dev/nvme0`},
		{path: "take-ownership", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdTakeOwnership, opts: opts(secretOpts, []string{"hash"}),
			summary: "set the SID password of a factory-fresh drive (step 1 of setup)",
			help: `Example:
  sedctl take-ownership --password-file /root/sid.pw /dev/nvme0
  sedctl activate --password-file /root/sid.pw /dev/nvme0`},
		{path: "activate", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdActivate, opts: opts(secretOpts, []string{"hash"}),
			summary: "activate the Locking SP as SID (step 2 of setup)",
			help: `Example:
  sedctl activate /dev/nvme0`},
		{path: "password set", args: "--authority AUTH DEV", minArgs: 1, maxArgs: 1, run: cmdPasswordSet, opts: opts(authOpts, newPwOpts, []string{"authority"}),
			summary: "set the password of sid, admin1..4 or userN",
			help: `Logs in as --as (default: SID for sid, Admin1 otherwise; a user may set its
own with --as userN), then sets the new password, asked twice or read from
--new-password-file / --new-password-fd.

Example:
  sedctl password set --authority user1 /dev/nvme0
  sedctl password set --authority admin1 --password-file old.pw --new-password-file new.pw /dev/nvme0`},
		{path: "user enable", args: "USER DEV", minArgs: 2, maxArgs: 2, run: cmdUserEnable(true), opts: authOpts,
			summary: "enable a Locking SP user (userN), as Admin1",
			help: `Example:
  sedctl user enable user1 /dev/nvme0
  sedctl password set --authority user1 /dev/nvme0
  sedctl range add-user 1 user1 /dev/nvme0`},
		{path: "user disable", args: "USER DEV", minArgs: 2, maxArgs: 2, run: cmdUserEnable(false), opts: authOpts,
			summary: "disable a Locking SP user",
			help: `Example:
  sedctl user disable user1 /dev/nvme0`},
		{path: "user list", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdUserList, opts: authOpts,
			summary: "authorities with enabled state, try limit and tries left (as Admin1; --as sid for SID)",
			help: `Example:
  sedctl user list /dev/nvme0
  sedctl user list --as sid --json /dev/nvme0`},
		{path: "range list", args: "[N] DEV", minArgs: 1, maxArgs: 2, run: cmdRangeList, opts: authOpts,
			summary: "locking ranges: start, length, lock enables and state",
			help:    "Example:\n  sedctl range list /dev/nvme0\n  sedctl range list 1 --json /dev/nvme0"},
		{path: "range setup", args: "N START LENGTH DEV", minArgs: 4, maxArgs: 4, run: cmdRangeSetup(admin1), opts: authOpts,
			summary: "place range N (blocks), give it a new key (erases it), locking disabled",
			help: `START and LENGTH are in logical blocks and must respect the drive's
alignment (Geometry in 'sedctl query'). The range's old contents become
unreadable (new key), as with sedutil-cli --setupLockingRange.

Example:
  sedctl range setup 1 2048 1048576 /dev/nvme0
  sedctl range enable 1 /dev/nvme0`},
		{path: "range enable", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdRangeLockEnabled(true, true, "enable"), opts: authOpts,
			summary: "enable read and write locking of range N (it locks at power cycle, or with 'range lock')",
			help: `Example:
  sedctl range enable 0 /dev/nvme0    # the global range: the whole drive outside ranges 1..n`},
		{path: "range disable", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdRangeLockEnabled(false, false, "disable"), opts: authOpts,
			summary: "disable locking of range N",
			help: `Example:
  sedctl range disable 1 /dev/nvme0`},
		{path: "range readonly", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdRangeLockEnabled(false, true, "readonly"), opts: authOpts,
			summary: "enable write locking only (locked means read-only)",
			help: `Example:
  sedctl range readonly 1 /dev/nvme0
  sedctl range lock 1 /dev/nvme0      # now read-only`},
		{path: "range lock", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdRangeSet(&lockedState, admin1), opts: authOpts,
			summary: "lock range N (LK)", help: "Example:\n  sedctl range lock 1 /dev/nvme0\n  sedctl range lock 1 --as user1 /dev/nvme0"},
		{path: "range unlock", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdRangeSet(&readWriteState, admin1), opts: authOpts,
			summary: "unlock range N (RW)", help: "Example:\n  sedctl range unlock 1 --password-fd 3 /dev/nvme0 3</root/admin1.pw"},
		{path: "range set", args: "N RW|RO|LK DEV", minArgs: 3, maxArgs: 3, run: cmdRangeSet(nil, admin1), opts: authOpts,
			summary: "set range N read-write, read-only or locked (sedutil --setLockingRange)",
			help: `Example:
  sedctl range set 1 RO /dev/nvme0
  sedctl --setLockingRange 1 LK --password-file admin1.pw /dev/nvme0`},
		{path: "range erase", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdRangeErase, opts: opts(authOpts, []string{"yes"}),
			summary: "crypto-erase range N: new key (GenKey); asks to type ERASE unless --yes",
			help: `Example:
  sedctl range erase 1 /dev/nvme0
  sedctl range erase 1 --yes --password-file admin1.pw /dev/nvme0`},
		{path: "range add-user", args: "N USER DEV", minArgs: 3, maxArgs: 3, run: cmdRangeAddUser, opts: authOpts,
			summary: "let USER (userN) lock and unlock range N",
			help: `Example:
  sedctl range add-user 1 user1 /dev/nvme0
  sedctl range unlock 1 --as user1 /dev/nvme0`},
		{path: "mbr status", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdMBRStatus, opts: authOpts,
			summary: "shadow MBR control: enable, done, done-on-reset, table size",
			help: `Example:
  sedctl mbr status --json /dev/nvme0`},
		{path: "mbr enable", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdMBREnable(true), opts: authOpts,
			summary: "enable the shadow MBR (Done set first, as sedutil does)",
			help: `Example:
  sedctl mbr load pba.img /dev/nvme0
  sedctl mbr enable /dev/nvme0`},
		{path: "mbr disable", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdMBREnable(false), opts: authOpts,
			summary: "disable the shadow MBR",
			help: `Example:
  sedctl mbr disable /dev/nvme0`},
		{path: "mbr done", args: "on|off DEV", minArgs: 2, maxArgs: 2, run: cmdMBRDone, opts: authOpts,
			summary: "set MBR Done: on shows the real disk until the next power cycle",
			help: `Example:
  sedctl mbr done on /dev/nvme0       # what a PBA does after unlocking`},
		{path: "mbr load", args: "IMAGE DEV", minArgs: 2, maxArgs: 2, run: cmdMBRLoad, opts: opts(authOpts, []string{"no-verify"}),
			summary: "write a PBA image into the shadow MBR and read it back",
			help:    "Example:\n  sedctl mbr load /usr/share/sedutil/UEFI64.img /dev/nvme0\n  sedctl mbr enable /dev/nvme0"},
		{path: "datastore read", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdDataStoreRead, opts: opts(authOpts, []string{"offset", "length", "out", "table"}),
			summary: "read the DataStore table (raw bytes to stdout or --out FILE)",
			help: `Example:
  sedctl datastore read --offset 0 --length 64 /dev/nvme0 | xxd
  sedctl datastore read --out ds.bin /dev/nvme0`},
		{path: "datastore write", args: "FILE|- DEV", minArgs: 2, maxArgs: 2, run: cmdDataStoreWrite, opts: opts(authOpts, []string{"offset", "table"}),
			summary: "write FILE into the DataStore table at --offset",
			help: `Example:
  sedctl datastore write --offset 0 notes.txt /dev/nvme0
  echo hello | sedctl datastore write --password-file a.pw - /dev/nvme0`},
		{path: "revert", args: "--tper|--locking-sp [--keep-data] DEV", minArgs: 1, maxArgs: 1, run: cmdRevert,
			opts:    opts(authOpts, []string{"tper", "locking-sp", "keep-data", "yes"}),
			summary: "revert the drive (as SID) or the Locking SP (as Admin1); asks to type ERASE unless --yes",
			help: `--tper: the whole drive back to its factory state (every range erased,
SID password = MSID). --locking-sp: locking off, ranges and users reset, data
erased unless --keep-data (the global range's data is kept).

Example:
  sedctl revert --tper /dev/nvme0
  sedctl revert --locking-sp --keep-data --yes --password-file admin1.pw /dev/nvme0`},
		{path: "psid-revert", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdPSIDRevert, opts: opts(secretOpts, []string{"yes"}),
			summary: "factory reset with the PSID from the label (erases everything)",
			help:    "The PSID is read like a password (prompt, --password-file, --password-fd) and sent as it is, never hashed.\n\nExample:\n  sedctl psid-revert /dev/nvme0\n  sedctl psid-revert --yes --password-file psid.txt /dev/nvme0"},
		{path: "reset", args: "[--stack|--tper|--power-cycle] DEV", minArgs: 1, maxArgs: 1, run: cmdReset, opts: []string{"stack", "tper", "power-cycle"},
			summary: "STACK_RESET (ends stale sessions: SP_BUSY), TPer reset, or power-cycle a sedsim drive",
			help: `Example:
  sedctl reset /dev/nvme0                         # after SP_BUSY from a dead program
  sedctl reset --power-cycle sim:/run/sedsim.sock`},
		{path: "hash", args: "[--serial S | DEV]", maxArgs: 1, run: cmdHash, opts: opts(secretOpts, []string{"hash", "serial", "list", "self-test"}),
			summary: "print the PIN a password gives for a serial and --hash scheme",
			help: `The serial comes from DEV (raw, as its identify command reports it) or from
--serial (padded with spaces to 20 bytes). Compare with another tool's output
to find the scheme a drive was set up with.

Example:
  sedctl hash --hash sedutil-sha512 /dev/nvme0
  sedctl hash --serial S2RBNB0HA12200B --password-file pw
  sedctl hash --list`},
		{path: "raw get", args: "SP AUTH OBJECT DEV", minArgs: 4, maxArgs: 4, run: cmdRawGet, opts: opts(secretOpts, []string{"hash"}),
			summary: "Get every column of OBJECT (sedutil --objDump)",
			help: `SP is 0/admin or 1/locking, AUTH an authority (anybody needs no password),
OBJECT a UID in hex or by name.

Example:
  sedctl raw get admin anybody C_PIN_MSID /dev/nvme0
  sedctl raw get locking admin1 0000080200030001 /dev/nvme0`},
		{path: "raw set", args: "SP AUTH OBJECT COL=VALUE... DEV", minArgs: 5, maxArgs: -1, run: cmdRawSet, opts: opts(secretOpts, []string{"hash"}),
			summary: "Set columns of OBJECT",
			help: `Values: 42, -5, true/false, 0xHEX or hex:HEX (bytes), text:STRING, uid:NAME,
N=VALUE, [ ... ] (brackets as separate arguments), tokens:HEX.

Example:
  sedctl raw set locking admin1 Locking_Range1 7=true 8=true /dev/nvme0`},
		{path: "raw call", args: "SP AUTH INVOKER METHOD [ARG...] DEV", minArgs: 5, maxArgs: -1, run: cmdRawCall, opts: opts(secretOpts, []string{"hash"}),
			summary: "invoke any method in a read-write session (sedutil --rawCmd)",
			help:    "Example:\n  sedctl raw call locking admin1 ThisSP Random 16 /dev/nvme0"},
		{path: "sum activate", args: "RANGES|all DEV", minArgs: 2, maxArgs: 2, run: cmdSUMActivate, opts: opts(secretOpts, []string{"hash", "admins-set-ranges"}),
			summary: "activate with ranges (e.g. 1,2) in Single User Mode, owned by User<N+1>",
			help: `Example:
  sedctl sum activate 1,2 /dev/nvme0
  sedctl sum password 1 /dev/nvme0    # as User2; press Enter for the current (empty) password`},
		{path: "sum setup-drive", args: "N START LENGTH DEV", minArgs: 4, maxArgs: 4, run: cmdSUMSetupDrive, opts: opts(secretOpts, newPwOpts, []string{"hash"}),
			summary: "sedutil --setup_SUM: own, activate SUM range N, set it up, set its owner's password",
			help: `Example:
  sedctl sum setup-drive 1 2048 1048576 /dev/nvme0`},
		{path: "sum setup", args: "N START LENGTH DEV", minArgs: 4, maxArgs: 4, run: cmdRangeSetup(sumOwner), opts: authOpts,
			summary: "place a SUM range and give it a new key, as its owner",
			help: `Example:
  sedctl sum setup 1 2048 1048576 /dev/nvme0`},
		{path: "sum set", args: "N RW|RO|LK DEV", minArgs: 3, maxArgs: 3, run: cmdRangeSet(nil, sumOwner), opts: authOpts,
			summary: "set a SUM range's lock state, as its owner",
			help: `Example:
  sedctl sum set 1 RO /dev/nvme0`},
		{path: "sum lock", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdRangeSet(&lockedState, sumOwner), opts: authOpts,
			summary: "lock a SUM range, as its owner",
			help: `Example:
  sedctl sum lock 1 /dev/nvme0`},
		{path: "sum unlock", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdRangeSet(&readWriteState, sumOwner), opts: authOpts,
			summary: "unlock a SUM range, as its owner",
			help: `Example:
  sedctl sum unlock 1 --password-fd 3 /dev/nvme0 3<user2.pw`},
		{path: "sum erase", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdSUMErase, opts: opts(authOpts, []string{"yes"}),
			summary: "erase a SUM range (Erase method), as its owner",
			help: `Example:
  sedctl sum erase 1 /dev/nvme0`},
		{path: "sum password", args: "N DEV", minArgs: 2, maxArgs: 2, run: cmdSUMPassword, opts: opts(authOpts, newPwOpts),
			summary: "set the password of a SUM range's owner, as the owner (empty at first)",
			help: `Example:
  sedctl sum password 1 /dev/nvme0`},
	}
}
