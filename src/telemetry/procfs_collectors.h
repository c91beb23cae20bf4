// MakeProcfsCollectors: the full set of procfs / PSI / cgroup collectors.
//
// These need no privilege beyond reading /proc and /sys/fs/cgroup and exist on every Linux
// host, so the agent always runs them: they are the fallback for every metric family when
// the eBPF collectors cannot load, and the only source of the families eBPF does not cover
// (memory, PSI, cgroup limits). Every series they emit has source="procfs".
//
// Thread safety: the function is reentrant; the collectors are as Collector.
#ifndef AUGUR_TELEMETRY_PROCFS_COLLECTORS_H_
#define AUGUR_TELEMETRY_PROCFS_COLLECTORS_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "telemetry/collector.h"

namespace augur::telemetry {

struct ProcfsOptions {
  // Prepended to every path read (/proc/..., /sys/block/..., cgroup mount points), so tests
  // can point the collectors at a fixture tree. Default: "" (the live host).
  std::string root_prefix;
  // How deep below each cgroup hierarchy's root to look (0 = only the root). Default: 3.
  int cgroup_depth = 3;
  // At most this many cgroups per hierarchy per collect. Default: 256.
  size_t max_cgroups = 256;
};

// One collector per source, in a stable order: procfs_stat, procfs_meminfo,
// procfs_diskstats, procfs_netdev, procfs_snmp, procfs_schedstat, procfs_psi, procfs_cgroup.
// A source the host lacks (PSI, schedstats, cgroups) is still in the list: its collector
// reports Unavailable on its first Collect() and emits nothing after.
std::vector<std::unique_ptr<Collector>> MakeProcfsCollectors(const ProcfsOptions& options);

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PROCFS_COLLECTORS_H_
