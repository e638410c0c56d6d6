// Package scsi is the SCSI backend of [transport.Transport] for Linux: SAS
// and SCSI drives, and SATA drives behind a SCSI/ATA translation layer
// (libata, most USB bridges), reached with the SG_IO ioctl on /dev/sdX or
// /dev/sgN (shared/opal/PROTOCOL.md 4.2 and 4.3).
//
// IF-SEND and IF-RECV are SECURITY PROTOCOL OUT (B5h) and SECURITY
// PROTOCOL IN (A2h) with INC_512 = 0, so lengths are in bytes. libata
// translates them to ATA TRUSTED SEND/RECEIVE itself, without the
// libata.allow_tpm parameter. When a drive behind a translation layer
// rejects them, [Open] falls back to ATA TRUSTED SEND (5Eh) and TRUSTED
// RECEIVE (5Ch) inside ATA PASS-THROUGH(16) (85h), or ATA PASS-THROUGH(12)
// (A1h) for bridges that know only that one. Linux's libata refuses those
// unless libata.allow_tpm=1; the error says so ([ErrTrustedBlocked]).
//
// The identity comes from ATA IDENTIFY DEVICE through pass-through for
// SATA drives (the 20 raw serial bytes that sedutil salts its password
// hashes with, and word 48's Trusted Computing bit), and from standard
// INQUIRY plus the Unit Serial Number VPD page (80h) otherwise.
//
// Failed commands come back as [Sense] errors (fixed and descriptor
// formats, with the ATA status return descriptor decoded) or [CommandError]
// for transport-level failures; both match the sentinels of package
// transport with errors.Is where they mean the same thing.
//
// SG_IO needs CAP_SYS_RAWIO for these commands and a node opened for
// writing; Open opens read-write, without O_EXCL, so a mounted disk is
// fine.
//
// Everything that builds or parses bytes is pure and portable; the device
// itself is Linux-only.
package scsi
