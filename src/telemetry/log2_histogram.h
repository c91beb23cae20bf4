// Quantiles of log2 histograms, the shape the eBPF programs aggregate latencies into
// (bpf/log2_hist.h): bucket 0 counts the values 0 and 1, bucket b >= 1 counts [2^b, 2^(b+1)).
//
// The programs keep cumulative counts; a collector subtracts the previous sample's buckets
// (Log2Delta) and asks for quantiles of what happened in between (Log2Quantile). Inside a
// bucket values are assumed to be spread evenly, so a quantile is interpolated linearly
// between the bucket's bounds: the error is at most the bucket's width, i.e. within a factor
// of two, which is what a log2 histogram can promise.
//
// Thread safety: pure functions.
#ifndef AUGUR_TELEMETRY_LOG2_HISTOGRAM_H_
#define AUGUR_TELEMETRY_LOG2_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace augur::telemetry {

// Lower bound of bucket `b`: 0 for bucket 0, else 2^b.
double Log2BucketLower(size_t b);
// Upper bound (exclusive) of bucket `b`: 2^(b+1).
double Log2BucketUpper(size_t b);

// The q-quantile (0 <= q <= 1) of the values counted in `buckets`, in the histogram's unit.
// The value of rank q*N (N = total count) is found in its bucket and interpolated there:
// q = 0 gives the lower bound of the first non-empty bucket, q = 1 the upper bound of the
// last. nullopt when the histogram is empty or q is outside [0, 1] (or NaN).
std::optional<double> Log2Quantile(std::span<const uint64_t> buckets, double q);

// after[i] - before[i] for every bucket, 0 where that would be negative (a counter that
// went backwards, e.g. a map entry recreated). `before` may be shorter than `after` (missing
// buckets count as 0), which is how a first sample is diffed against nothing.
std::vector<uint64_t> Log2Delta(std::span<const uint64_t> after, std::span<const uint64_t> before);

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_LOG2_HISTOGRAM_H_
