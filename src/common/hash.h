// Hash: 64-bit FNV-1a, for names and checksums that must be the same in every build and run
// (instance names derived from attempt ids, forecaster state file names and checksums). Not
// for anything an adversary chooses.
#ifndef AUGUR_COMMON_HASH_H_
#define AUGUR_COMMON_HASH_H_

#include <cstdint>
#include <string_view>

namespace augur {

inline uint64_t Fnv1a64(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace augur

#endif  // AUGUR_COMMON_HASH_H_
