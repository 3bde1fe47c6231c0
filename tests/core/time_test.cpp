#include "millrace/core/time.h"

#include <gtest/gtest.h>

namespace millrace {
namespace {

TEST(Time, ParsesDurations) {
  EXPECT_EQ(parse_duration_ms("500ms").value(), 500);
  EXPECT_EQ(parse_duration_ms("5s").value(), 5000);
  EXPECT_EQ(parse_duration_ms("1m").value(), 60'000);
  EXPECT_EQ(parse_duration_ms("24h").value(), 86'400'000);
  EXPECT_EQ(parse_duration_ms("7d").value(), 604'800'000);
  EXPECT_EQ(parse_duration_ms("1h30m").value(), 5'400'000);
  EXPECT_EQ(parse_duration_ms("250").value(), 250);
  EXPECT_FALSE(parse_duration_ms("").ok());
  EXPECT_FALSE(parse_duration_ms("5 s").ok());
  EXPECT_FALSE(parse_duration_ms("5w").ok());
  EXPECT_NE(parse_duration_ms("5w").status().message().find("unknown unit 'w'"), std::string::npos);
  EXPECT_EQ(format_duration(5'400'000), "1h30m");
  EXPECT_EQ(format_duration(250), "250ms");
}

TEST(Time, ParsesRfc3339) {
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_ms("2026-01-01T00:00:00Z"), 1767225600000);
  EXPECT_EQ(parse_rfc3339_ms("2026-01-01T00:00:00.25Z"), 1767225600250);
  EXPECT_EQ(parse_rfc3339_ms("2026-01-01 02:00:00.123456+02:00"), 1767225600123);
  EXPECT_EQ(parse_rfc3339_ms("2025-12-31T19:30:00-04:30"), 1767225600000);
  EXPECT_EQ(parse_rfc3339_ms("2024-02-29T12:00:00Z"), 1709208000000);
  EXPECT_FALSE(parse_rfc3339_ms("2026-01-01T00:00:00"));  // no offset
  EXPECT_FALSE(parse_rfc3339_ms("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339_ms("yesterday"));
  EXPECT_FALSE(parse_rfc3339_ms("2026-01-01T00:00:00Zjunk"));
}

TEST(Time, FormatsAndRoundTrips) {
  for (TimeMs t : {0LL, 1767225600123LL, 951782400000LL, -86'400'001LL, 4102444799999LL}) {
    auto back = parse_rfc3339_ms(format_rfc3339_ms(t));
    ASSERT_TRUE(back.has_value()) << format_rfc3339_ms(t);
    EXPECT_EQ(*back, t) << format_rfc3339_ms(t);
  }
  EXPECT_EQ(format_rfc3339_ms(1767225600123), "2026-01-01T00:00:00.123Z");
}

}  // namespace
}  // namespace millrace
