// Package resume is sedctl's unlock on resume: self-encrypting drives lose
// power in suspend-to-RAM and come back locked while the filesystems on them
// are still mounted (shared/opal/PROTOCOL.md 1.12). Two paths, chosen per
// drive by Enable (DESIGN.md "Unlock on resume"):
//
//   - Kernel path: where the block device answers the sed-opal ioctls,
//     IOC_OPAL_SAVE one entry per range with the derived PIN (with
//     OPAL_SAVE_FOR_LOCK on 6.2+); the NVMe and sd drivers replay it before
//     I/O resumes (PROTOCOL.md 3.5). The kernel forgets it at reboot, so the
//     boot unit re-arms it (Rearm). Package kernel holds the interface the
//     CLI implements with tcg/transport/sedioctl, and a model of the kernel's
//     list and replay for tests.
//   - Daemon path: everywhere else (no sed-opal, Pyrite and Ruby drives,
//     sedsim). RunDaemon holds the derived PINs in a Vault (memfd_secret or
//     mlocked memory, zeroised on removal and exit) in a hardened process
//     (mlockall, not dumpable, no core), and listens on a root-only Unix
//     socket (mode 0600 and SO_PEERCRED uid 0) speaking one JSON object per
//     line (protocol.go). On a resume it unlocks every registered range and
//     sets MBR Done where the shadow MBR shows, one session per drive and
//     authority, drives in parallel.
//
// # Resume events
//
// The systemd-sleep hook runs "sedctl resume notify post" (Notify), and the
// daemon watches CLOCK_BOOTTIME - CLOCK_MONOTONIC, which grows only across a
// suspend; whichever comes first unlocks. The other joins that unlock: a
// detected suspend whose suspended time was already seen by a run, or a
// notification within DaemonOptions.Debounce of a run with no new suspend
// in between.
//
// # Device handles
//
// The daemon opens each device when it is registered and keeps the handle
// (and its session.Client) open, so the resume path opens nothing and reads
// nothing from disk: the transport is a device node or a socket, already
// open. If the handle fails during an unlock (a transport error, not a drive
// status), it is re-opened once through the Opener, which for /dev nodes
// touches only devtmpfs and for sedsim a socket.
//
// # Wrong keys
//
// A key the drive refuses (NOT_AUTHORIZED, AUTHORITY_LOCKED_OUT) is reported
// once, loudly, and its entry is marked failed: it is never tried again
// until it is registered anew, so a wrong stored key costs one try per
// registration, not the drive's whole TryLimit.
//
// # Key storage
//
// Between boots the derived PIN (never the password) is kept as the user
// chose: nowhere (StoragePrompt, the default: enable again after each boot),
// in a root-only key file (StorageFile; owner and mode checked on every
// read), or in a systemd encrypted credential (StorageCredential, imported by
// the units with ImportCredential=sedctl-resume.*). Config
// (/etc/sedctl/resume.conf) records where, never the key itself.
//
// # CLI glue
//
//	sedctl resume enable    Enable(ctx, EnableOptions, w)
//	sedctl resume enable --from-config   Rearm(ctx, RearmOptions, w) (boot unit)
//	sedctl resume disable   Disable(ctx, DisableOptions, w)
//	sedctl resume status    Status(ctx, StatusOptions, w)
//	sedctl resume daemon    RunDaemon(ctx, DaemonOptions)
//	sedctl resume notify    Notify(ctx, NotifyOptions, w)
//	sedctl resume install   Install(root, InstallOptions, w)
//	sedctl resume uninstall Uninstall(root, w)
package resume
