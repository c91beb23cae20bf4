// LatencyHistogram: a fixed-bucket histogram of durations, in the shape of a Prometheus
// histogram (cumulative counts per upper bound, a sum and a count), for the mesh's own
// latencies: the placer's time from a shard handed to the negotiator to its grant
// (MeshPlacer::StatsJson, docs/MESH.md). The bounds are fixed so that hosts' histograms add
// up bucket by bucket; a quantile read from it is the upper bound of the bucket it falls in.
//
// Pure: values in, counts out. Thread safety: none; one thread records and reads.
#ifndef AUGUR_MESH_LATENCY_HISTOGRAM_H_
#define AUGUR_MESH_LATENCY_HISTOGRAM_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace augur::mesh {

class LatencyHistogram {
 public:
  // Upper bounds in seconds; one more bucket above the last (+Inf).
  static constexpr std::array<double, 16> kBounds = {
      0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02,
      0.05,   0.1,   0.2,   0.5,   1,     2,      5,      10};

  void Record(double seconds) {
    if (!(seconds >= 0)) seconds = 0;  // a clock that stepped back, or NaN
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    ++counts_[i];
    ++count_;
    sum_ += seconds;
  }

  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  // Recorded values <= kBounds[i]; i == kBounds.size() is every value (+Inf).
  uint64_t Cumulative(size_t i) const {
    uint64_t c = 0;
    for (size_t j = 0; j <= i && j < counts_.size(); ++j) c += counts_[j];
    return c;
  }
  // The upper bound of the bucket holding the q-quantile (nearest rank); +Inf when it is
  // above the last bound, 0 when nothing was recorded.
  double Quantile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = uint64_t(q * double(count_));
    if (rank >= count_) rank = count_ - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > rank) {
        return i < kBounds.size() ? kBounds[i] : std::numeric_limits<double>::infinity();
      }
    }
    return std::numeric_limits<double>::infinity();
  }

 private:
  std::array<uint64_t, kBounds.size() + 1> counts_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_LATENCY_HISTOGRAM_H_
