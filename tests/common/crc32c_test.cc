#include "common/crc32c.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace augur {
namespace {

// Check values: the CRC catalogue's "123456789", and the iSCSI vectors of RFC 3720, B.4.
TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(char(i));
    down.push_back(char(31 - i));
  }
  EXPECT_EQ(Crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(down), 0x113FDB5Cu);
}

// Slicing-by-8 against the bit-at-a-time definition, at every length and alignment around
// the 8-byte steps, and extending in pieces equals the whole.
TEST(Crc32c, MatchesBitwiseDefinitionAndExtends) {
  auto bitwise = [](std::string_view s) {
    uint32_t c = ~0u;
    for (unsigned char b : s) {
      c ^= b;
      for (int i = 0; i < 8; ++i) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
  };
  std::mt19937_64 rng(12);
  std::string data(300, '\0');
  for (char& ch : data) ch = char(rng());
  for (size_t off = 0; off < 9; ++off) {
    for (size_t len = 0; off + len <= data.size(); len += 7) {
      std::string_view s(data.data() + off, len);
      ASSERT_EQ(Crc32c(s), bitwise(s)) << off << "+" << len;
      const size_t cut = len / 3;
      EXPECT_EQ(Crc32cExtend(Crc32c(s.substr(0, cut)), s.substr(cut)), Crc32c(s));
    }
  }
}

TEST(Crc32c, DetectsEveryFlippedBit) {
  std::string data(4096, 'x');
  const uint32_t good = Crc32c(data);
  for (size_t i = 0; i < data.size(); i += 13) {
    for (int bit = 0; bit < 8; ++bit) {
      data[i] = char(data[i] ^ (1 << bit));
      EXPECT_NE(Crc32c(data), good);
      data[i] = char(data[i] ^ (1 << bit));
    }
  }
}

}  // namespace
}  // namespace augur
