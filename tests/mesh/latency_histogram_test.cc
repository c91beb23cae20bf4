#include "mesh/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

TEST(LatencyHistogram, CountsEachValueInTheBucketOfItsUpperBound) {
  LatencyHistogram h;
  EXPECT_EQ(h.Quantile(0.5), 0);
  h.Record(0.0005);   // on a bound: that bucket (le is inclusive)
  h.Record(0.0015);   // (1 ms, 2 ms]
  h.Record(0.0015);
  h.Record(0.009);    // (7.5 ms, 10 ms]
  h.Record(30);       // above the last bound: +Inf
  h.Record(-1);       // a clock that stepped back counts as 0
  EXPECT_EQ(h.count(), 6u);
  EXPECT_NEAR(h.sum(), 0.0005 + 0.003 + 0.009 + 30, 1e-12);
  EXPECT_EQ(h.Cumulative(0), 2u);  // 0 and 0.5 ms
  EXPECT_EQ(h.Cumulative(1), 2u);
  EXPECT_EQ(h.Cumulative(2), 4u);
  EXPECT_EQ(h.Cumulative(6), 5u);
  EXPECT_EQ(h.Cumulative(LatencyHistogram::kBounds.size() - 1), 5u);
  EXPECT_EQ(h.Cumulative(LatencyHistogram::kBounds.size()), 6u);
  EXPECT_EQ(h.Quantile(0.5), 0.002);
  EXPECT_EQ(h.Quantile(0), 0.0005);
  EXPECT_TRUE(std::isinf(h.Quantile(0.99)));
}

TEST(LatencyHistogram, QuantilesBoundTheExactOnesFromAbove) {
  // Seeded: the bucket a quantile falls in holds the exact nearest-rank quantile.
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> d(std::log(0.002), 1.0);
    LatencyHistogram h;
    std::vector<double> v;
    for (int i = 0; i < 1000; ++i) {
      v.push_back(d(rng));
      h.Record(v.back());
    }
    std::sort(v.begin(), v.end());
    for (double q : {0.5, 0.9, 0.99}) {
      const double exact = v[size_t(q * double(v.size()))];
      const double upper = h.Quantile(q);
      EXPECT_GE(upper, exact) << "seed " << seed << " q " << q;
      // ... and the bucket below it does not.
      const auto& b = LatencyHistogram::kBounds;
      auto it = std::find(b.begin(), b.end(), upper);
      if (it != b.begin() && it != b.end()) EXPECT_GT(exact, *(it - 1)) << "seed " << seed;
    }
  }
}

}  // namespace
}  // namespace augur::mesh
