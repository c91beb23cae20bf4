#include "telemetry/procfs_collector.h"

#include <utility>

namespace augur::telemetry {

void ProcfsCollector::Emit(PointSink& sink, int64_t ts_ns, std::string_view name,
                           std::vector<Label> labels, double value) {
  labels.emplace_back("source", std::string(kSource));
  SeriesKey key(std::string(name), std::move(labels));
  // The shared-memory directory has fixed-size key slots; a key that does not fit would be
  // rejected there anyway, so drop it here where it can be counted per collector.
  if (key.ToString().size() > SeriesKey::kMaxKeyLength) {
    ++oversized_;
    return;
  }
  sink.Emit(key, ts_ns, value);
}

Status ProcfsCollector::UnavailableOnce(const Status& s) {
  if (unavailable_reported_) return Status::OK();
  unavailable_reported_ = true;
  return s;
}

}  // namespace augur::telemetry
