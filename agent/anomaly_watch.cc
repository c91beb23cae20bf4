#include "agent/anomaly_watch.h"

#include <cmath>
#include <string_view>

namespace augur::agent {

void AnomalyWatch::Observe(const telemetry::SeriesKey& key, double value) {
  constexpr std::string_view kSuffix = ":anomaly_events_total";
  const std::string& name = key.name();
  if (!name.ends_with(kSuffix) || !std::isfinite(value)) return;
  auto [it, first] = last_.emplace(key.ToString(), value);
  // The first point of a series is its count so far (restored state): not new events.
  if (first || value <= it->second) {
    it->second = value;
    return;
  }
  it->second = value;
  std::string base = name.substr(0, name.size() - kSuffix.size());
  // A counter's forecast series is "<name>:rate"; the event is about <name>.
  if (base.ends_with(":rate")) base.resize(base.size() - 5);
  ++events_;
  on_event_(base, std::string(key.label("cgroup")));
}

}  // namespace augur::agent
