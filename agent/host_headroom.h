// HostHeadroom: what the forecaster predicts this host will have free, for the workflow
// engine's admission ("a shard is not started into a predicted spike of other load").
//
// It watches the forecaster's derived series as they are written (Observe) and keeps the
// latest forecast of each horizon of
//   memory_bytes:forecast_lo80{kind="available"}                 -> the least memory free
//   cpu_busy_seconds_total:rate:forecast_hi80{cpu="all"}         -> the most cores busy
// PredictedFree() is the worst of the horizons (the default ones reach 15 minutes): memory
// at its lowest lower edge, CPU at the host's cores less the highest upper edge of busy.
// These include the engine's own running shards; the executor adds its grants back to get
// what the host's other load leaves.
//
// Thread safety: Observe from the sampling thread, PredictedFree from the engine thread.
#ifndef AUGUR_AGENT_HOST_HEADROOM_H_
#define AUGUR_AGENT_HOST_HEADROOM_H_

#include <map>
#include <mutex>
#include <optional>

#include "telemetry/series_key.h"
#include "workflow/resources.h"

namespace augur::agent {

class HostHeadroom {
 public:
  explicit HostHeadroom(double cores) : cores_(cores) {}

  // Any derived point; the two families above are kept, the rest ignored.
  void Observe(const telemetry::SeriesKey& key, double value);

  // nullopt until both forecasts have been seen.
  std::optional<workflow::Resources> PredictedFree() const;

 private:
  const double cores_;
  mutable std::mutex mu_;
  std::map<std::string, double> memory_lo_;  // by horizon; guarded by mu_
  std::map<std::string, double> busy_hi_;    // by horizon; guarded by mu_
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_HOST_HEADROOM_H_
