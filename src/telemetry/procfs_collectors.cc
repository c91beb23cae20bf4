#include "telemetry/procfs_collectors.h"

#include "telemetry/cgroup_collector.h"
#include "telemetry/procfs_diskstats_collector.h"
#include "telemetry/procfs_meminfo_collector.h"
#include "telemetry/procfs_netdev_collector.h"
#include "telemetry/procfs_schedstat_collector.h"
#include "telemetry/procfs_snmp_collector.h"
#include "telemetry/procfs_stat_collector.h"
#include "telemetry/psi_collector.h"

namespace augur::telemetry {

std::vector<std::unique_ptr<Collector>> MakeProcfsCollectors(const ProcfsOptions& options) {
  const std::string& root = options.root_prefix;
  std::vector<std::unique_ptr<Collector>> out;
  out.push_back(std::make_unique<ProcStatCollector>(root));
  out.push_back(std::make_unique<MeminfoCollector>(root));
  out.push_back(std::make_unique<DiskstatsCollector>(root));
  out.push_back(std::make_unique<NetDevCollector>(root));
  out.push_back(std::make_unique<SnmpCollector>(root));
  out.push_back(std::make_unique<SchedstatCollector>(root));
  out.push_back(std::make_unique<PsiCollector>(root));
  out.push_back(std::make_unique<CgroupCollector>(root, options.cgroup_depth, options.max_cgroups));
  return out;
}

}  // namespace augur::telemetry
