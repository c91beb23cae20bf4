// MeminfoCollector: host memory from /proc/meminfo.
//
// Series (gauges, bytes, source="procfs"):
//   memory_bytes{kind}  kind is total|free|available|buffers|cached|swap_total|swap_free|
//                       dirty|anon|shmem, from MemTotal, MemFree, MemAvailable, Buffers,
//                       Cached, SwapTotal, SwapFree, Dirty, AnonPages, Shmem.
// A field the running kernel does not print (MemAvailable before 3.14) is simply absent.
//
// Thread safety: as Collector.
#ifndef AUGUR_TELEMETRY_PROCFS_MEMINFO_COLLECTOR_H_
#define AUGUR_TELEMETRY_PROCFS_MEMINFO_COLLECTOR_H_

#include <string>
#include <string_view>

#include "telemetry/procfs_collector.h"

namespace augur::telemetry {

class MeminfoCollector : public ProcfsCollector {
 public:
  // Reads <root_prefix>/proc/meminfo.
  explicit MeminfoCollector(std::string root_prefix = "")
      : ProcfsCollector(std::move(root_prefix)) {}

  std::string_view name() const override { return "procfs_meminfo"; }
  // NotFound when the file is missing; Corruption when it has no valid MemTotal.
  Status Collect(int64_t ts_ns, PointSink& sink) override;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PROCFS_MEMINFO_COLLECTOR_H_
