#include "millrace/log/format.h"

#include <gtest/gtest.h>

#include <string>

namespace millrace::log {
namespace {

TEST(LogFormat, FrameRoundTrip) {
  std::string buf;
  AppendFrame(&buf, 42, -7, kFlagTransactional, "hello");
  AppendFrame(&buf, 43, 1700000000000, 0, "");
  ASSERT_EQ(buf.size(), frame_bytes(5) + frame_bytes(0));
  Frame f;
  std::string why;
  ASSERT_EQ(DecodeFrame(buf.data(), buf.size(), &f, &why), FrameStatus::kOk);
  EXPECT_EQ(f.offset, 42u);
  EXPECT_EQ(f.timestamp_ms, -7);
  EXPECT_EQ(f.flags, kFlagTransactional);
  EXPECT_EQ(f.payload, "hello");
  ASSERT_EQ(DecodeFrame(buf.data() + f.size, buf.size() - f.size, &f, &why), FrameStatus::kOk);
  EXPECT_EQ(f.offset, 43u);
  EXPECT_EQ(f.timestamp_ms, 1700000000000);
  EXPECT_EQ(f.payload, "");
}

TEST(LogFormat, EveryPrefixIsIncomplete) {
  std::string buf;
  AppendFrame(&buf, 1, 2, 0, "a record of some length");
  Frame f;
  std::string why;
  for (size_t n = 0; n < buf.size(); ++n) {
    EXPECT_EQ(DecodeFrame(buf.data(), n, &f, &why), FrameStatus::kIncomplete) << n;
  }
}

TEST(LogFormat, EveryFlippedBitIsCaught) {
  std::string good;
  AppendFrame(&good, 9, 10, 0, "payload");
  for (size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      Frame f;
      std::string why;
      // A flipped length bit may make the frame look longer (incomplete) or
      // shorter (CRC mismatch); it must never decode as a record.
      EXPECT_NE(DecodeFrame(bad.data(), bad.size(), &f, &why), FrameStatus::kOk)
          << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(LogFormat, UnknownFlagsAndHugeLengthsAreCorrupt) {
  std::string buf;
  AppendFrame(&buf, 1, 2, 0x80, "x");
  Frame f;
  std::string why;
  EXPECT_EQ(DecodeFrame(buf.data(), buf.size(), &f, &why), FrameStatus::kCorrupt);
  EXPECT_NE(why.find("flags"), std::string::npos);
  std::string huge(kFrameHeaderBytes, '\0');
  uint32_t len = kMaxRecordBytes + 1;
  std::memcpy(huge.data(), &len, 4);
  EXPECT_EQ(DecodeFrame(huge.data(), huge.size(), &f, &why), FrameStatus::kCorrupt);
}

TEST(LogFormat, SegmentHeader) {
  std::string h;
  AppendSegmentHeader(&h, 123456789);
  ASSERT_EQ(h.size(), kSegmentHeaderBytes);
  uint64_t base = 0;
  EXPECT_TRUE(ParseSegmentHeader(h.data(), h.size(), &base));
  EXPECT_EQ(base, 123456789u);
  EXPECT_FALSE(ParseSegmentHeader(h.data(), h.size() - 1, &base));
  h[0] = 'X';
  EXPECT_FALSE(ParseSegmentHeader(h.data(), h.size(), &base));
}

}  // namespace
}  // namespace millrace::log
