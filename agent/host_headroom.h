// HostHeadroom: what the forecaster predicts this host will have free, for the workflow
// engine's admission ("a shard is not started into a predicted spike of other load").
//
// It watches the forecaster's derived series as they are written (Observe) and keeps the
// latest forecast of each horizon of
//   memory_bytes:forecast_lo80{kind="available"}                 -> the least memory free
//   cpu_busy_seconds_total:rate:forecast_hi80{cpu="all"}         -> the most cores busy
// FreeByHorizon() gives each horizon (H steps of `step_s` seconds ahead: the default ones
// reach 15 minutes) as memory at its lower edge and CPU at the host's cores less the upper
// edge of busy; the engine admits a shard against the horizons its predicted run time
// spans.
// These include the engine's own running shards; the executor adds its grants back to get
// what the host's other load leaves. For the mesh's headroom gossip it also keeps the other
// edges (memory_bytes:forecast_hi80, cpu busy forecast_lo80): IntervalsByHorizon.
//
// Thread safety: Observe from the sampling thread, FreeByHorizon from the engine thread.
#ifndef AUGUR_AGENT_HOST_HEADROOM_H_
#define AUGUR_AGENT_HOST_HEADROOM_H_

#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "telemetry/series_key.h"
#include "workflow/scheduler.h"

namespace augur::agent {

class HostHeadroom {
 public:
  HostHeadroom(double cores, double step_s) : cores_(cores), step_s_(step_s) {}

  // Any derived point; the two families above are kept, the rest ignored.
  void Observe(const telemetry::SeriesKey& key, double value);

  // The horizons forecast for both memory and CPU, nearest first; empty until then.
  std::vector<workflow::HorizonFree> FreeByHorizon() const;

  // Each horizon with both edges of what is free: `lo` as FreeByHorizon, `hi` from the
  // optimistic edges (equal to `lo` where those are not forecast).
  struct Interval {
    double ahead_s = 0;
    workflow::Resources lo, hi;
  };
  std::vector<Interval> IntervalsByHorizon() const;

 private:
  const double cores_;
  const double step_s_;
  mutable std::mutex mu_;
  std::map<int, double> memory_lo_;  // by horizon in steps; guarded by mu_
  std::map<int, double> busy_hi_;    // by horizon in steps; guarded by mu_
  std::map<int, double> memory_hi_;  // by horizon in steps; guarded by mu_
  std::map<int, double> busy_lo_;    // by horizon in steps; guarded by mu_
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_HOST_HEADROOM_H_
