// RecordingSink: a PointSink for tests that keeps the last value emitted for each series,
// keyed by the series' canonical text (SeriesKey::ToString()), plus every point in order.
//
// Thread safety: none; a test drives its collector from one thread.
#ifndef AUGUR_TESTS_TELEMETRY_RECORDING_SINK_H_
#define AUGUR_TESTS_TELEMETRY_RECORDING_SINK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "telemetry/collector.h"
#include "telemetry/series_key.h"

namespace augur::telemetry {

class RecordingSink : public PointSink {
 public:
  struct Point {
    SeriesKey key;
    int64_t ts_ns;
    double value;
  };

  void Emit(const SeriesKey& key, int64_t ts_ns, double value) override {
    points_.push_back(Point{key, ts_ns, value});
    last_[key.ToString()] = value;
  }

  // Last value emitted for the series whose canonical text is `key`, e.g.
  // `memory_bytes{kind="total",source="procfs"}`; nullopt when never emitted.
  std::optional<double> Get(std::string_view key) const {
    auto it = last_.find(std::string(key));
    if (it == last_.end()) return std::nullopt;
    return it->second;
  }
  bool Has(std::string_view key) const { return Get(key).has_value(); }

  // Canonical keys of every series named `name`, sorted.
  std::vector<std::string> KeysNamed(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : last_) {
      if (k == name || (k.size() > name.size() && k.compare(0, name.size(), name) == 0 &&
                        k[name.size()] == '{')) {
        out.push_back(k);
      }
    }
    return out;
  }

  const std::map<std::string, double>& last() const { return last_; }
  const std::vector<Point>& points() const { return points_; }
  void Clear() {
    points_.clear();
    last_.clear();
  }

 private:
  std::vector<Point> points_;
  std::map<std::string, double> last_;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TESTS_TELEMETRY_RECORDING_SINK_H_
