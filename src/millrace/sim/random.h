// Rng: a small, fast pseudo-random generator (xoshiro256**) with the
// distributions the simulators draw from, written out here so that a seed
// gives the same numbers on every platform and standard library (the std::
// distributions are implementation-defined).
//
// Rng::stream(seed, a, b, c) derives an independent generator for one part of
// a simulation (a day, a customer): a part's numbers do not depend on how many
// numbers other parts drew, so parts can be generated in any order.
#pragma once

#include <cmath>
#include <cstdint>

namespace millrace::sim {

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& w : s_) w = splitmix(&x);
  }

  static Rng stream(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
    uint64_t x = seed;
    uint64_t h = splitmix(&x);
    for (uint64_t v : {a, b, c}) {
      x = h ^ (v + 0x632be59bd9b4e019ULL);
      h = splitmix(&x);
    }
    return Rng(h);
  }

  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n); n > 0 (multiply-shift, bias below 2^-32 for n < 2^32).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  bool bernoulli(double p) { return uniform() < p; }

  // Standard normal (Marsaglia's polar method; the second value is kept).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2 * uniform() - 1;
      v = 2 * uniform() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s == 0);
    const double m = std::sqrt(-2 * std::log(s) / s);
    spare_ = v * m;
    has_spare_ = true;
    return u * m;
  }
  double normal(double mean, double sd) { return mean + sd * normal(); }

  // Poisson: inversion by sequential search below lambda 30, else a rounded
  // normal approximation (the simulators use small means).
  uint32_t poisson(double lambda) {
    if (lambda <= 0) return 0;
    if (lambda >= 30) {
      const double x = std::floor(normal(lambda, std::sqrt(lambda)) + 0.5);
      return x < 0 ? 0 : static_cast<uint32_t>(x);
    }
    double p = std::exp(-lambda), cdf = p;
    const double u = uniform();
    uint32_t k = 0;
    while (u > cdf && k < 1000) {
      ++k;
      p *= lambda / k;
      cdf += p;
    }
    return k;
  }

  // Exponential with the given mean.
  double exponential(double mean) { return -mean * std::log1p(-uniform()); }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix(uint64_t* x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace millrace::sim
