// AnomalyWatch: turns the forecaster's anomaly counters into events for the workflow engine
// (seed 003: "flags anomalies ... can trigger alerts or initiate corrective actions").
//
// The forecaster writes `<base>:anomaly_events_total{<labels>}` for every series it
// forecasts (forecast_runner.h). The watch sees each derived point as it is written
// (Observe, from the sampling thread) and calls `on_event(base, cgroup)` once per event:
// when a series' counter rises above the value it had when first seen. `base` is the
// forecast series' name (e.g. "cgroup_memory_bytes"), `cgroup` its cgroup label ("" for a
// host-wide series). The daemon passes the events to the executor, which applies the
// engine's action to the shard whose instance that cgroup is, or makes admission cautious
// for an anomaly on anything else.
//
// Thread safety: one thread (the sampling thread) calls Observe.
#ifndef AUGUR_AGENT_ANOMALY_WATCH_H_
#define AUGUR_AGENT_ANOMALY_WATCH_H_

#include <functional>
#include <string>
#include <unordered_map>

#include "telemetry/series_key.h"

namespace augur::agent {

class AnomalyWatch {
 public:
  using OnEvent = std::function<void(const std::string& base, const std::string& cgroup)>;
  explicit AnomalyWatch(OnEvent on_event) : on_event_(std::move(on_event)) {}

  // Any derived point; only `*:anomaly_events_total` series are looked at.
  void Observe(const telemetry::SeriesKey& key, double value);

  uint64_t events() const { return events_; }

 private:
  OnEvent on_event_;
  std::unordered_map<std::string, double> last_;  // by series text
  uint64_t events_ = 0;
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_ANOMALY_WATCH_H_
