// CgroupCollector: per-cgroup CPU and memory from cgroup files, on v1, v2 and hybrid hosts.
//
// Series (source="procfs"; cgroup is the path relative to its hierarchy, "/" for the root,
// the same text on v1 and v2):
//   cgroup_cpu_seconds_total{cgroup}            counter; v1: cpuacct.usage (ns) from the
//                                               cpuacct hierarchy, or cpu.stat usage_usec
//                                               when there is no cpuacct; v2: cpu.stat
//                                               usage_usec
//   cgroup_cpu_throttled_seconds_total{cgroup}  counter; v1: cpu.stat throttled_time (ns);
//                                               v2: cpu.stat throttled_usec (present only
//                                               where the cpu controller is enabled)
//   cgroup_memory_bytes{cgroup}                 gauge; v1 memory.usage_in_bytes, v2
//                                               memory.current (absent on the v2 root)
//   cgroup_memory_limit_bytes{cgroup}           gauge; v1 memory.limit_in_bytes, omitted
//                                               when >= 2^62 (the kernel's "no limit");
//                                               v2 memory.max, omitted when "max"
//
// Which hierarchy serves which family comes from CgroupFs: a v1 hierarchy holding the
// controller wins over the unified tree (a controller is bound to one or the other, and on
// a hybrid host the v1 trees are where workloads are placed).
//
// Cgroups are found by CgroupFs::Walk on every Collect, breadth first, down to `max_depth`
// and at most `max_cgroups` per hierarchy, so a host with thousands of cgroups costs a
// bounded number of file reads and series; the top of the tree (slices, services) is kept.
// A cgroup that vanishes mid-walk, or lacks a file, is skipped without error.
//
// Thread safety: as Collector.
#ifndef AUGUR_TELEMETRY_CGROUP_COLLECTOR_H_
#define AUGUR_TELEMETRY_CGROUP_COLLECTOR_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "telemetry/cgroup_fs.h"
#include "telemetry/procfs_collector.h"

namespace augur::telemetry {

class CgroupCollector : public ProcfsCollector {
 public:
  // Discovers the hierarchies from <root_prefix>/proc/self/mountinfo (mount points are
  // prefixed too) on the first Collect, and again after a hierarchy's root disappears.
  // REQUIRES: max_depth >= 0, max_cgroups >= 1.
  explicit CgroupCollector(std::string root_prefix = "", int max_depth = 3,
                           size_t max_cgroups = 256);

  std::string_view name() const override { return "procfs_cgroup"; }
  // NotFound/IOError when mountinfo cannot be read; Unavailable (once) when no hierarchy
  // holds cpu, cpuacct or memory; IOError naming a hierarchy whose root cannot be listed.
  Status Collect(int64_t ts_ns, PointSink& sink) override;

 private:
  // What to read in each cgroup of one hierarchy.
  struct Plan {
    const CgroupMount* mount = nullptr;
    bool cpuacct_usage = false;   // v1 cpuacct.usage
    bool cpu_stat_usage = false;  // cpu.stat usage_usec
    bool cpu_stat_throttle = false;
    bool memory = false;
  };
  void CollectCgroup(const Plan& plan, const CgroupDir& dir, int64_t ts_ns, PointSink& sink);
  // Reads a file holding one unsigned number; nullopt when missing or malformed (counted).
  std::optional<uint64_t> ReadNumber(const std::string& path, bool allow_max);

  int max_depth_;
  size_t max_cgroups_;
  std::optional<CgroupFs> fs_;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_CGROUP_COLLECTOR_H_
