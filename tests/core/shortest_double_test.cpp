// write_shortest_double against std::to_chars, the definition it must match
// byte for byte: the fast paths' values (amounts, sums and averages of
// amounts, deviations), their edges (0.01, 10^4, 10^9, 2^50, powers of ten
// and their neighbours, negative, trailing zeros, mantissas of few bits whose
// shortest digits can tie), and random bit patterns in and out of the
// integer path's domain. Every write must stay within the 32 bytes at p.
#include "millrace/core/shortest_double.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string_view>

#include <gtest/gtest.h>

namespace millrace {
namespace {

void expect_same(double v, uint64_t* checked) {
  char want[64], got[64];
  const std::string_view w(want, std::to_chars(want, want + sizeof want, v).ptr - want);
  std::memset(got, '#', sizeof got);
  const std::string_view g(got, write_shortest_double(got, v) - got);
  ++*checked;
  ASSERT_EQ(g, w) << "value " << v;
  for (size_t i = 32; i < sizeof got; ++i) ASSERT_EQ(got[i], '#') << "value " << v;
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

double from_bits(uint64_t bits) {
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

TEST(ShortestDouble, MatchesToCharsOnTheIntegerPath) {
  uint64_t n = 0;
  std::mt19937_64 rng(29);
  // Powers of ten and 2^50 with their neighbours: the domain's edges and
  // where the digit count changes.
  for (int e = -3; e <= 16; ++e) {
    const double p = std::pow(10.0, e);
    double below = p, above = p;
    for (int i = 0; i < 40; ++i) {
      below = std::nextafter(below, 0.0);
      above = std::nextafter(above, 1e300);
      ASSERT_NO_FATAL_FAILURE(expect_same(below, &n));
      ASSERT_NO_FATAL_FAILURE(expect_same(-above, &n));
    }
  }
  for (double edge : {std::ldexp(1.0, 50), std::ldexp(1.0, -7), 0.01}) {
    double below = edge, above = edge;
    for (int i = 0; i < 1000; ++i) {
      below = std::nextafter(below, 0.0);
      above = std::nextafter(above, 1e300);
      ASSERT_NO_FATAL_FAILURE(expect_same(below, &n));
      ASSERT_NO_FATAL_FAILURE(expect_same(above, &n));
    }
  }
  for (int i = 0; i < 400'000; ++i) {
    // Any mantissa with a binary exponent in [-9, 52].
    const uint64_t exponent = static_cast<uint64_t>(1023 - 9 + static_cast<int>(rng() % 62));
    const double v = from_bits((rng() & ((1ull << 52) - 1)) | (exponent << 52));
    ASSERT_NO_FATAL_FAILURE(expect_same(v, &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(-v, &n));
    // Few mantissa bits: short exact decimals, and the ties of rounding.
    ASSERT_NO_FATAL_FAILURE(expect_same(
        std::ldexp(static_cast<double>(rng() % 4096), -static_cast<int>(rng() % 60)), &n));
    // Averages and deviations of amounts, as the backfill's rows hold.
    double sum = 0, sumsq = 0;
    const int count = 1 + static_cast<int>(rng() % 40);
    for (int k = 0; k < count; ++k) {
      const double x = static_cast<double>(rng() % 100'000) / 100.0;
      sum += x;
      sumsq += x * x;
    }
    const double mean = sum / count;
    ASSERT_NO_FATAL_FAILURE(expect_same(sum, &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(mean, &n));
    ASSERT_NO_FATAL_FAILURE(expect_same(std::sqrt(std::max(0.0, sumsq / count - mean * mean)), &n));
  }
  EXPECT_GT(n, 2'000'000u);
}

}  // namespace
}  // namespace millrace

namespace millrace {
namespace {

TEST(ShortestDouble, Int64MatchesToChars) {
  std::mt19937_64 rng(31);
  auto check = [](int64_t v) {
    char want[32], got[64];
    const std::string_view w(want, std::to_chars(want, want + sizeof want, v).ptr - want);
    std::memset(got, '#', sizeof got);
    const std::string_view g(got, write_int64(got, v) - got);
    ASSERT_EQ(g, w);
    for (size_t i = 32; i < sizeof got; ++i) ASSERT_EQ(got[i], '#') << v;
  };
  for (int64_t v : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()})
    ASSERT_NO_FATAL_FAILURE(check(v));
  for (int64_t v = -20; v <= 20; ++v) ASSERT_NO_FATAL_FAILURE(check(v));  // one digit: its own path
  for (int e = 0; e < 19; ++e) {
    int64_t p = 1;
    for (int k = 0; k < e; ++k) p *= 10;
    for (int64_t d = -2; d <= 2; ++d) {
      ASSERT_NO_FATAL_FAILURE(check(p + d));
      ASSERT_NO_FATAL_FAILURE(check(-(p + d)));
    }
  }
  for (int i = 0; i < 1'000'000; ++i) {
    // Every length: a random value shifted right by a random amount.
    ASSERT_NO_FATAL_FAILURE(check(static_cast<int64_t>(rng()) >> (rng() % 64)));
  }
}

}  // namespace
}  // namespace millrace
