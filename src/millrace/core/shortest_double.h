// The shortest decimal text of a double that reads back as the same double,
// exactly as std::to_chars(first, last, value) writes it (fixed or scientific,
// whichever is shorter), with a fast path for the values feature vectors hold
// most: amounts and counts with at most 4 decimals.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>

namespace millrace {

// Writes `v` at p (at most 32 chars) and returns the end. Non-finite values
// are written as std::to_chars writes them ("inf", "nan").
inline char* write_shortest_double(char* p, double v) {
  // Fast path: |v| in [0.01, 1e9) with at most 4 decimals. r = |v| * 10^4
  // rounded is then the exact decimal (the product is below 2^52, its error
  // far below 0.5), and r / 10^4 == |v| (one correctly rounded division)
  // says that decimal reads back as v. Dropping r's trailing zeros gives the
  // fewest decimals; in this range fixed notation is never longer than
  // scientific, except for integers from 10^4 up (10000 vs 1e+04), left to
  // std::to_chars.
  const double a = std::fabs(v);
  if (a >= 0.01 && a < 1e9) {
    const double r = std::nearbyint(a * 1e4);
    if (r / 1e4 == a) {
      uint64_t u = static_cast<uint64_t>(r);
      int decimals = 4;
      while (decimals > 0 && u % 10 == 0) {
        u /= 10;
        --decimals;
      }
      if (decimals > 0 || a < 1e4) {
        char digits[24];
        int n = 0;
        do {
          digits[n++] = static_cast<char>('0' + u % 10);
          u /= 10;
        } while (u);
        if (v < 0) *p++ = '-';
        if (n <= decimals) {  // 0.0ddd
          *p++ = '0';
          *p++ = '.';
          for (int z = n; z < decimals; ++z) *p++ = '0';
        } else {
          while (n > decimals) *p++ = digits[--n];
          if (decimals > 0) *p++ = '.';
        }
        while (n > 0) *p++ = digits[--n];
        return p;
      }
    }
  }
  return std::to_chars(p, p + 32, v).ptr;
}

}  // namespace millrace
