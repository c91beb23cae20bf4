// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78): the checksum the mesh
// puts on data it moves between hosts (mesh/transfer.h: each chunk and each whole blob).
//
// Why CRC-32C: it detects every burst error up to 32 bits, every error of up to 5 bits in
// messages of this size (Hamming distance 6 up to ~5 KB, 4 up to 2^31 bits, Koopman 2002),
// and anything else with probability 1 - 2^-32; it is the checksum of iSCSI (RFC 3720), ext4
// metadata and SCTP. FNV-1a (common/hash.h) has none of these guarantees (two flipped bits can
// cancel) and is for names, not integrity. Neither is a defence against an adversary: the
// mesh's links are authenticated and encrypted by CurveZMQ; the checksum guards the data end
// to end against what the link cannot see (a bad read, a bug in reassembly, memory).
//
// Implementation: table-driven, slicing-by-8 (eight 256-entry tables made at compile time,
// eight bytes per step); standard initial value and final XOR of ~0, so Crc32c("123456789")
// is 0xE3069283. Crc32cExtend continues a checksum over more bytes: Crc32cExtend(Crc32c(a),
// b) == Crc32c(a + b).
//
// Pure functions; safe from any thread.
#ifndef AUGUR_COMMON_CRC32C_H_
#define AUGUR_COMMON_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace augur {

// The CRC-32C of `data` continued from `crc` (the CRC-32C of what came before; 0 for none).
uint32_t Crc32cExtend(uint32_t crc, std::string_view data);

// The CRC-32C of `data`.
inline uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data); }

}  // namespace augur

#endif  // AUGUR_COMMON_CRC32C_H_
