// The shortest decimal text of a double that reads back as the same double,
// exactly as std::to_chars(first, last, value) writes it (fixed or scientific,
// whichever is shorter). Two fast paths cover the values feature vectors hold
// most; everything else goes to std::to_chars:
//  - amounts and counts with at most 4 decimals (one multiplication and one
//    division tell them);
//  - any other non-integer with 0.01 <= |v| < 2^50 (averages, deviations,
//    sums with rounding error), whose shortest digits are found exactly in
//    64- and 128-bit integer arithmetic (see write_shortest_fraction()).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace millrace {

namespace shortest_double_detail {

inline constexpr uint64_t kPow10[20] = {1ull,
                                        10ull,
                                        100ull,
                                        1000ull,
                                        10000ull,
                                        100000ull,
                                        1000000ull,
                                        10000000ull,
                                        100000000ull,
                                        1000000000ull,
                                        10000000000ull,
                                        100000000000ull,
                                        1000000000000ull,
                                        10000000000000ull,
                                        100000000000000ull,
                                        1000000000000000ull,
                                        10000000000000000ull,
                                        100000000000000000ull,
                                        1000000000000000000ull,
                                        10000000000000000000ull};

// 5^k for k <= 20.
inline constexpr uint64_t kPow5[21] = {1ull,
                                       5ull,
                                       25ull,
                                       125ull,
                                       625ull,
                                       3125ull,
                                       15625ull,
                                       78125ull,
                                       390625ull,
                                       1953125ull,
                                       9765625ull,
                                       48828125ull,
                                       244140625ull,
                                       1220703125ull,
                                       6103515625ull,
                                       30517578125ull,
                                       152587890625ull,
                                       762939453125ull,
                                       3814697265625ull,
                                       19073486328125ull,
                                       95367431640625ull};

// The 8 decimal digits of x < 10^8 as text, leading zeros included, the
// first digit in the lowest byte: 4-, 2- and 1-digit halves split in the
// lanes of one word (multiplications by a reciprocal exact in these ranges),
// with no table and no store.
inline uint64_t digits8(uint32_t x) {
  uint64_t v = (x / 10000) | (static_cast<uint64_t>(x % 10000) << 32);
  const uint64_t hundreds = ((v * 10486) >> 20) & 0x0000007F0000007Full;
  v = hundreds | ((v - hundreds * 100) << 16);
  const uint64_t tens = ((v * 103) >> 10) & 0x000F000F000F000Full;
  v = tens | ((v - tens * 10) << 8);
  return v | 0x3030303030303030ull;
}

// Decimal digits of u (>= 1 digit for 0): from its bit length
// (log10(2) ~ 1233 / 4096), then one comparison.
inline int digit_count(uint64_t u) {
  u |= 1;  // as many digits, and 1 for 0
  const int t = ((64 - __builtin_clzll(u)) * 1233) >> 12;
  return t + (u >= kPow10[t]);
}

// "00" to "99".
inline constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// The 4 decimal digits of x < 10^4 as text (leading zeros included, the
// first digit in the lowest byte), from two digit pairs.
inline uint32_t digits4(uint32_t x) {
  uint16_t hi, lo;
  std::memcpy(&hi, kDigitPairs + 2 * (x / 100), 2);
  std::memcpy(&lo, kDigitPairs + 2 * (x % 100), 2);
  return hi | (static_cast<uint32_t>(lo) << 16);
}

// Writes the n (1 <= n <= 24) last digits of u (< 10^24 would not fit: u <
// 2^64), leading zeros included, at p; returns p + n. The text goes out in
// whole words (8-digit groups overlapping where n is not a multiple of 8:
// the later store overwrites the earlier one's excess), so up to 7 bytes
// after p + n are overwritten, and nothing just stored is loaded again.
inline void store_word(char* p, uint64_t w) {
  std::memcpy(p, &w, 8);
}
inline char* store_digits(char* p, uint64_t u, int n) {
  if (n <= 4) {  // most counts, and the parts of amounts
    const uint32_t w = digits4(static_cast<uint32_t>(u)) >> (8 * (4 - n));
    std::memcpy(p, &w, 4);
  } else if (n <= 8) {
    store_word(p, digits8(static_cast<uint32_t>(u)) >> (8 * (8 - n)));
  } else if (n <= 16) {
    const int off = 16 - n;
    store_word(p, digits8(static_cast<uint32_t>(u / 100000000)) >> (8 * off));
    store_word(p + 8 - off, digits8(static_cast<uint32_t>(u % 100000000)));
  } else {
    const int off = 24 - n;
    const uint64_t rest = u % 10000000000000000ull;
    store_word(p, digits8(static_cast<uint32_t>(u / 10000000000000000ull)) >> (8 * off));
    store_word(p + 8 - off, digits8(static_cast<uint32_t>(rest / 100000000)));
    store_word(p + 16 - off, digits8(static_cast<uint32_t>(rest % 100000000)));
  }
  return p + n;
}

// Writes the fixed-point text of a non-integer whose integer part is `whole`
// (< 10^16) and whose fraction is `frac` / 10^decimals (0 < decimals <= 20,
// frac < 10^19): "-"? whole "." frac with `decimals` digits. At most 1 + 16 +
// 1 + 20 characters; bytes up to 7 after them may be overwritten.
inline char* write_fixed(char* p, bool negative, uint64_t whole, uint64_t frac, int decimals) {
  *p = '-';
  p += negative;
  p = store_digits(p, whole, digit_count(whole));
  *p++ = '.';
  return store_digits(p, frac, decimals);
}

// The shortest digits of a finite, positive, normal, non-integer a with
// 0.01 <= a < 2^50 and a mantissa that is not a power of two, written in
// fixed notation (which std::to_chars chooses for all of them: fixed is
// shorter than scientific there). Returns nullptr when a is outside that
// domain (nothing written).
//
// a = m * 2^e2 reads back from every decimal in the rounding interval
// ((2m-1) * 2^(e2-1), (2m+1) * 2^(e2-1)), its ends included when m is even
// (round half to even). Scaled by 10^k (k = 17 - about log10(a), so a * 10^k
// has 18-19 digits), the interval's ends and a itself are
// (2m-1, 2m+1, 2m) * 5^k / 2^sh with sh = 1 - k - e2 >= 1: exact 128-bit
// products. The integers in the scaled interval are the 18-19 digit
// candidates; dropping a digit while a multiple of 10 remains in it gives the
// fewest digits, and of the candidates with that many, the one nearest to a
// (ties to even), as std::to_chars chooses.
inline char* write_shortest_fraction(char* p, bool negative, double a) {
  uint64_t bits;
  std::memcpy(&bits, &a, sizeof bits);
  const int biased = static_cast<int>(bits >> 52);
  const uint64_t frac = bits & ((1ull << 52) - 1);
  const int eb = biased - 1023;  // floor(log2(a))
  if (eb < -7 || eb > 49 || frac == 0 || !(a >= 0.01)) return nullptr;
  const uint64_t m = frac | (1ull << 52);
  const int e2 = eb - 52;                              // a = m * 2^e2, e2 in [-59, -3]
  if ((m & ((1ull << -e2) - 1)) == 0) return nullptr;  // an integer
  // floor(eb * log10(2)): a * 10^(17 - d) lies in [10^17, 2 * 10^18).
  const int d = (eb * 78913) >> 18;
  const int k = 17 - d;       // in [3, 20]
  const int sh = 1 - k - e2;  // in [1, 41]
  using u128 = unsigned __int128;
  const u128 p5 = kPow5[k];
  const u128 nv = static_cast<u128>(m << 1) * p5;
  const u128 nlo = nv - p5, nhi = nv + p5;
  const u128 mask = (static_cast<u128>(1) << sh) - 1;
  const bool inclusive = (m & 1) == 0;
  uint64_t lo = static_cast<uint64_t>(nlo >> sh);
  if (!((nlo & mask) == 0 && inclusive)) ++lo;  // the least candidate
  uint64_t hi = static_cast<uint64_t>(nhi >> sh);
  if ((nhi & mask) == 0 && !inclusive) --hi;  // the greatest
  // Drop digits while a candidate remains, and from a * 10^k the same
  // digits: the last one dropped, and whether those below it were all 0.
  const uint64_t v = static_cast<uint64_t>(nv >> sh);
  const bool fraction = (nv & mask) != 0;  // a * 10^k is not an integer
  uint64_t c = v;
  int j = 0, last = 0;
  bool zeros_below = true;
  for (;;) {
    const uint64_t lo10 = (lo + 9) / 10, hi10 = hi / 10;
    if (lo10 > hi10) break;
    lo = lo10;
    hi = hi10;
    const uint64_t c10 = c / 10;
    zeros_below = zeros_below && last == 0;
    last = static_cast<int>(c - c10 * 10);
    c = c10;
    ++j;
  }
  const int decimals = k - j;
  if (decimals <= 0) return nullptr;
  // The candidate nearest to a * 10^(k-j): c rounded by what was dropped,
  // half to even.
  int above;  // the dropped part against one half: -1, 0, 1
  if (j == 0) {
    const u128 rest = nv & mask, half = static_cast<u128>(1) << (sh - 1);
    above = rest > half ? 1 : rest == half ? 0 : -1;
  } else {
    above = last > 5 ? 1 : last < 5 ? -1 : (zeros_below && !fraction) ? 0 : 1;
  }
  if (above > 0 || (above == 0 && (c & 1))) ++c;
  if (c < lo) c = lo;
  if (c > hi) c = hi;
  // The interval holds no integer (a is a non-integer multiple of its ulp,
  // at least an ulp from any integer), so c has a's integer part.
  const uint64_t whole = static_cast<uint64_t>(a);
  return write_fixed(p, negative, whole, c - whole * kPow10[decimals], decimals);
}

}  // namespace shortest_double_detail

// Writes v in decimal at p, as std::to_chars writes it, and returns the end
// (at most 20 chars); p must have room for 32: up to 7 bytes after the text
// may be overwritten.
inline char* write_int64(char* p, int64_t v) {
  if (static_cast<uint64_t>(v) < 10) {  // 0-9: most counts of short windows
    *p = static_cast<char>('0' + v);
    return p + 1;
  }
  const uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  *p = '-';
  p += v < 0;
  return shortest_double_detail::store_digits(p, u, shortest_double_detail::digit_count(u));
}

// Writes `v` at p and returns the end of the text (at most 25 chars); p must
// have room for 32: bytes after the text, up to p + 32, may be overwritten. Non-finite values are
// written as std::to_chars writes them ("inf", "nan").
inline char* write_shortest_double(char* p, double v) {
  // Fast path: |v| in [0.01, 1e9) with at most 4 decimals. r = |v| * 10^4
  // rounded is then the exact decimal (the product is below 2^52, its error
  // far below 0.5), and r / 10^4 == |v| (one correctly rounded division)
  // says that decimal reads back as v. Dropping r's trailing zeros gives the
  // fewest decimals; in this range fixed notation is never longer than
  // scientific, except for integers from 10^4 up (10000 vs 1e+04), left to
  // std::to_chars.
  const double a = std::fabs(v);
  const bool negative = std::signbit(v);
  if (a >= 0.01 && a < 1e9) {
    const double r = std::nearbyint(a * 1e4);
    if (r / 1e4 == a) {
      uint64_t u = static_cast<uint64_t>(r);
      int decimals = 4;
      if (u % 100 == 0) {
        u /= 100;
        decimals = 2;
      }
      if (u % 10 == 0) {
        u /= 10;
        --decimals;
      }
      if (decimals == 1 && u % 10 == 0) {
        u /= 10;
        decimals = 0;
      }
      if (decimals > 0) {
        // a is at least 10^-4 from an integer, so its integer part is u's.
        const uint64_t whole = static_cast<uint64_t>(a);
        return shortest_double_detail::write_fixed(
            p, negative, whole, u - whole * shortest_double_detail::kPow10[decimals], decimals);
      }
      if (a < 1e4) {
        *p = '-';
        p += negative;
        return shortest_double_detail::store_digits(p, u, shortest_double_detail::digit_count(u));
      }
    } else if (char* q = shortest_double_detail::write_shortest_fraction(p, negative, a)) {
      return q;
    }
  } else if (std::isfinite(v)) {
    if (char* q = shortest_double_detail::write_shortest_fraction(p, negative, a)) return q;
  }
  return std::to_chars(p, p + 32, v).ptr;
}

}  // namespace millrace
