#include "millrace/core/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace millrace {
namespace {

TEST(Crc32c, KnownVectors) {
  // The standard check value of CRC-32C.
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
}

TEST(Crc32c, IncrementalEqualsWhole) {
  std::string s = "the quick brown fox jumps over the lazy dog, twice over";
  uint32_t whole = crc32c(s.data(), s.size());
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    uint32_t part = crc32c(s.data(), cut);
    EXPECT_EQ(crc32c(s.data() + cut, s.size() - cut, part), whole) << cut;
  }
}

}  // namespace
}  // namespace millrace
