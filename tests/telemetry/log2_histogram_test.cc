#include "telemetry/log2_histogram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace augur::telemetry {
namespace {

std::vector<uint64_t> Buckets(std::initializer_list<std::pair<size_t, uint64_t>> counts) {
  std::vector<uint64_t> b(40, 0);
  for (auto [bucket, n] : counts) b[bucket] = n;
  return b;
}

TEST(Log2HistogramTest, BucketBoundsMatchTheBpfLayout) {
  // bpf/log2_hist.h: bucket 0 holds 0 and 1, bucket b holds [2^b, 2^(b+1)).
  EXPECT_EQ(Log2BucketLower(0), 0);
  EXPECT_EQ(Log2BucketUpper(0), 2);
  EXPECT_EQ(Log2BucketLower(1), 2);
  EXPECT_EQ(Log2BucketUpper(1), 4);
  EXPECT_EQ(Log2BucketLower(10), 1024);
  EXPECT_EQ(Log2BucketUpper(10), 2048);
}

TEST(Log2HistogramTest, EmptyHistogramHasNoQuantile) {
  EXPECT_FALSE(Log2Quantile(Buckets({}), 0.5).has_value());
  EXPECT_FALSE(Log2Quantile(std::vector<uint64_t>{}, 0.5).has_value());
}

TEST(Log2HistogramTest, RejectsQuantilesOutsideZeroToOne) {
  const auto b = Buckets({{3, 10}});
  EXPECT_FALSE(Log2Quantile(b, -0.01).has_value());
  EXPECT_FALSE(Log2Quantile(b, 1.01).has_value());
  EXPECT_FALSE(Log2Quantile(b, std::numeric_limits<double>::quiet_NaN()).has_value());
}

TEST(Log2HistogramTest, InterpolatesInsideOneBucket) {
  const auto b = Buckets({{2, 10}});  // ten values in [4, 8)
  EXPECT_DOUBLE_EQ(*Log2Quantile(b, 0.0), 4);
  EXPECT_DOUBLE_EQ(*Log2Quantile(b, 0.5), 6);
  EXPECT_DOUBLE_EQ(*Log2Quantile(b, 0.25), 5);
  EXPECT_DOUBLE_EQ(*Log2Quantile(b, 1.0), 8);
}

TEST(Log2HistogramTest, FindsTheBucketHoldingTheRank) {
  // Half the values in [2, 4), half in [1024, 2048).
  const auto b = Buckets({{1, 50}, {10, 50}});
  // Rank 50 is the last value of the low bucket: its upper bound, not the next bucket.
  EXPECT_DOUBLE_EQ(*Log2Quantile(b, 0.50), 4);
  EXPECT_DOUBLE_EQ(*Log2Quantile(b, 0.51), 1024 + (51.0 - 50) / 50 * 1024);
  EXPECT_DOUBLE_EQ(*Log2Quantile(b, 0.99), 1024 + (99.0 - 50) / 50 * 1024);
}

TEST(Log2HistogramTest, SkipsEmptyBucketsBelowTheRank) {
  const auto b = Buckets({{0, 1}, {20, 99}});
  // q=0.01 is the single value in bucket 0 ([0, 2)), at its top.
  EXPECT_DOUBLE_EQ(*Log2Quantile(b, 0.01), 2);
  EXPECT_GE(*Log2Quantile(b, 0.02), Log2BucketLower(20));
}

TEST(Log2HistogramTest, QuantilesAreMonotonic) {
  const auto b = Buckets({{0, 3}, {4, 17}, {5, 1}, {9, 40}, {12, 2}, {39, 1}});
  double prev = -1;
  for (int i = 0; i <= 1000; ++i) {
    const double q = i / 1000.0;
    const double v = *Log2Quantile(b, q);
    EXPECT_GE(v, prev) << "q=" << q;
    prev = v;
  }
  EXPECT_DOUBLE_EQ(prev, Log2BucketUpper(39));
}

TEST(Log2HistogramTest, DeltaSubtractsAndClampsAtZero) {
  const std::vector<uint64_t> before = {5, 7, 9};
  const std::vector<uint64_t> after = {8, 7, 4, 2};
  EXPECT_EQ(Log2Delta(after, before), (std::vector<uint64_t>{3, 0, 0, 2}));
  EXPECT_EQ(Log2Delta(after, {}), after);
}

TEST(Log2HistogramTest, QuantileOfAnIntervalIgnoresEarlierSamples) {
  // A slow past (bucket 30) must not leak into the interval, which was all fast.
  const auto earlier = Buckets({{30, 1000}});
  auto later = earlier;
  later[3] += 10;
  const std::vector<uint64_t> interval = Log2Delta(later, earlier);
  EXPECT_LT(*Log2Quantile(interval, 0.99), Log2BucketUpper(3));
}

}  // namespace
}  // namespace augur::telemetry
