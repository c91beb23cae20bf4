// NetDevCollector: per-interface network counters from /proc/net/dev.
//
// Series (counters, source="procfs"; direction is received|transmitted):
//   network_bytes_total{interface,direction}
//   network_packets_total{interface,direction}
//   network_errors_total{interface,direction}
//   network_drops_total{interface,direction}
// /proc/net/dev shows the network namespace of the reading process; the agent runs in the
// host's.
//
// Thread safety: as Collector.
#ifndef AUGUR_TELEMETRY_PROCFS_NETDEV_COLLECTOR_H_
#define AUGUR_TELEMETRY_PROCFS_NETDEV_COLLECTOR_H_

#include <string>
#include <string_view>

#include "telemetry/procfs_collector.h"

namespace augur::telemetry {

class NetDevCollector : public ProcfsCollector {
 public:
  // Reads <root_prefix>/proc/net/dev.
  explicit NetDevCollector(std::string root_prefix = "")
      : ProcfsCollector(std::move(root_prefix)) {}

  std::string_view name() const override { return "procfs_netdev"; }
  // NotFound when the file is missing.
  Status Collect(int64_t ts_ns, PointSink& sink) override;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PROCFS_NETDEV_COLLECTOR_H_
