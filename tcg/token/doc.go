// Package token encodes and decodes the TCG Storage token stream (TCG Core
// Specification 2.01, section 3.2.2): the atoms, lists, names and control
// tokens that carry method calls and their results inside a SubPacket.
//
// A stream decodes into a sequence of [Value]s ([Decode]): unsigned and signed
// integers, byte sequences, lists, named values, and the Call, EndOfData,
// EndOfSession and transaction markers. Values encode back with [Encode] or
// [AppendValue]; [Encoder] writes tokens one at a time into a caller-supplied
// buffer, and the Append functions ([AppendUint], [AppendInt], [AppendBytes])
// write single atoms.
//
// Encoding always picks the shortest form, as sedutil and the Linux kernel
// do: unsigned integers 0..63 and signed integers -32..31 as tiny atoms,
// other integers as short atoms of minimal width (1..8 bytes, never
// truncated), and byte sequences as short (up to 15 bytes), medium (up to
// 2047) or long atoms (up to [MaxAtomLen]).
//
// Decoding accepts every form the Core specification defines: tiny, short,
// medium and long atoms, integers of any width whose value fits 64 bits,
// continued byte sequences (joined into one byte sequence), and Empty atoms
// (skipped). It is bounded by [Limits]: malformed, truncated or over-limit
// input is a [*DecodeError] carrying the byte offset, never a panic.
//
// The package is pure: no I/O, no logging, standard library only.
package token
