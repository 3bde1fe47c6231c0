#include "millrace/window/quantile_sketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <random>

namespace millrace {
namespace {

double exact(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::floor(q * (v.size() - 1)))];
}

// The stated bound: within 1% of the exact element of rank floor(q (n - 1)),
// on a sliding window (values added and removed) of mixed-sign data.
TEST(QuantileSketch, RelativeErrorBoundOnSlidingWindow) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> amount(3.0, 1.5);
  QuantileSketch sketch;
  std::deque<double> window;
  double worst = 0;
  for (int i = 0; i < 20000; ++i) {
    double x = amount(rng) * ((rng() % 10 == 0) ? -1 : 1);
    if (rng() % 50 == 0) x = 0;
    sketch.add(x);
    window.push_back(x);
    if (window.size() > 500) {
      sketch.remove(window.front());
      window.pop_front();
    }
    if (i % 97 == 0) {
      std::vector<double> v(window.begin(), window.end());
      for (double q : {0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0}) {
        double want = exact(v, q), got = sketch.quantile(q);
        double err = want == 0 ? std::fabs(got) : std::fabs(got - want) / std::fabs(want);
        worst = std::max(worst, err);
        ASSERT_LE(err, 0.01 + 1e-12) << "q=" << q << " want " << want << " got " << got;
      }
    }
  }
  EXPECT_GT(worst, 0);  // the sketch is approximate: the test really measured something
  EXPECT_EQ(sketch.count(), 500);
}

TEST(QuantileSketch, EmptyAndMerge) {
  QuantileSketch a, b;
  EXPECT_TRUE(std::isnan(a.quantile(0.5)));
  for (int i = 1; i <= 100; ++i) (i % 2 ? a : b).add(i);
  a.merge(b);
  EXPECT_EQ(a.count(), 100);
  EXPECT_NEAR(a.quantile(0.5), 50, 0.5);
  for (int i = 1; i <= 100; ++i) a.remove(i);
  EXPECT_TRUE(a.empty());
  EXPECT_LT(a.memory_bytes(), 200u);  // buckets are released as values leave
}

}  // namespace
}  // namespace millrace
