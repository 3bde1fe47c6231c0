// write_shortest_double against std::to_chars, the definition it must match
// byte for byte: the fast path's values (amounts, sums and averages of
// amounts), its edges (0.01, 10^4, 10^9, negative, trailing zeros), and random
// bit patterns that take the general path.
#include "millrace/core/shortest_double.h"

#include <cstring>
#include <random>
#include <string_view>

#include <gtest/gtest.h>

namespace millrace {
namespace {

void expect_same(double v, uint64_t* checked) {
  char want[64], got[64];
  const std::string_view w(want, std::to_chars(want, want + sizeof want, v).ptr - want);
  const std::string_view g(got, write_shortest_double(got, v) - got);
  ++*checked;
  ASSERT_EQ(g, w) << "value " << v;
}

TEST(ShortestDouble, MatchesToChars) {
  uint64_t n = 0;
  for (int64_t i = -200000; i <= 200000; ++i) {
    ASSERT_NO_FATAL_FAILURE(expect_same(static_cast<double>(i), &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(i / 100.0, &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(i / 1000.0, &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(i / 10000.0, &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(i / 100000.0, &n));  // 5 decimals: general path
    ASSERT_NO_FATAL_FAILURE(expect_same(i / 3.0, &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(i * 10.0, &n));
  }
  for (double v : {0.0,
                   -0.0,
                   0.01,
                   -0.01,
                   0.0099999999999999,
                   0.0100000000000001,
                   0.015625,
                   0.1 + 0.2,
                   9999.0,
                   10000.0,
                   10000.5,
                   99999.0,
                   100000.0,
                   123456789.1234,
                   999999999.9999,
                   1e9,
                   1e9 - 1,
                   1e15,
                   5e-324,
                   1.7976931348623157e308,
                   4503599627370496.5}) {
    ASSERT_NO_FATAL_FAILURE(expect_same(v, &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(-v, &n));
  }
  std::mt19937_64 rng(11);
  for (int i = 0; i < 300'000; ++i) {
    // Sums and averages of amounts with cents, as sliding features hold.
    const double a = static_cast<double>(rng() % 10'000'000) / 100.0;
    const double b = static_cast<double>(rng() % 10'000'000) / 100.0;
    ASSERT_NO_FATAL_FAILURE(expect_same(a + b, &n));
    ASSERT_NO_FATAL_FAILURE(expect_same((a + b) / static_cast<double>(1 + rng() % 7), &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(std::sqrt(a), &n));
    const uint64_t bits = rng();
    double v;
    std::memcpy(&v, &bits, sizeof v);
    if (std::isfinite(v)) {
      ASSERT_NO_FATAL_FAILURE(expect_same(v, &n));
    }
    ASSERT_NO_FATAL_FAILURE(expect_same(
        std::ldexp(static_cast<double>(rng() >> 11), -static_cast<int>(rng() % 80)), &n));
  }
  EXPECT_GT(n, 4'000'000u);
}

}  // namespace
}  // namespace millrace
