#include "telemetry/log2_histogram.h"

#include <cmath>
#include <numeric>

namespace augur::telemetry {

double Log2BucketLower(size_t b) { return b == 0 ? 0.0 : std::ldexp(1.0, static_cast<int>(b)); }

double Log2BucketUpper(size_t b) { return std::ldexp(1.0, static_cast<int>(b) + 1); }

std::optional<double> Log2Quantile(std::span<const uint64_t> buckets, double q) {
  if (!(q >= 0.0 && q <= 1.0)) return std::nullopt;  // also rejects NaN
  // Summed in double: counts are far below 2^53 in practice, and a double cannot overflow.
  const double total = std::accumulate(buckets.begin(), buckets.end(), 0.0,
                                       [](double acc, uint64_t n) { return acc + n; });
  if (total == 0) return std::nullopt;

  const double rank = q * total;
  double before = 0;  // values in the buckets below the current one
  for (size_t b = 0; b < buckets.size(); ++b) {
    if (buckets[b] == 0) continue;
    const double n = static_cast<double>(buckets[b]);
    // `>=` so that a rank exactly on a bucket's upper edge stays in that bucket (its upper
    // bound) instead of jumping to the lower bound of the next non-empty one, which may be
    // far above when the buckets in between are empty.
    if (before + n >= rank) {
      const double fraction = (rank - before) / n;
      const double lo = Log2BucketLower(b);
      return lo + fraction * (Log2BucketUpper(b) - lo);
    }
    before += n;
  }
  // Unreachable with finite counts (rank <= total); kept for floating-point safety.
  for (size_t b = buckets.size(); b-- > 0;) {
    if (buckets[b] != 0) return Log2BucketUpper(b);
  }
  return std::nullopt;
}

std::vector<uint64_t> Log2Delta(std::span<const uint64_t> after, std::span<const uint64_t> before) {
  std::vector<uint64_t> out(after.size());
  for (size_t i = 0; i < after.size(); ++i) {
    const uint64_t prev = i < before.size() ? before[i] : 0;
    out[i] = after[i] > prev ? after[i] - prev : 0;
  }
  return out;
}

}  // namespace augur::telemetry
